package resources

import "testing"

func TestLookupAliases(t *testing.T) {
	tests := []struct{ word, kind string }{
		{"ippool", "IPPool"}, {"IPPools", "IPPool"}, {"pool", "IPPool"}, {"ipp", "IPPool"},
		{"gnp", "GlobalNetworkPolicy"}, {"globalnetworkpolicies", "GlobalNetworkPolicy"},
		{"wep", "WorkloadEndpoint"}, {"hep", "HostEndpoint"}, {"np", "NetworkPolicy"},
		{"policy", "NetworkPolicy"}, {"bgpconfig", "BGPConfiguration"}, {"Node", "Node"},
		{"clusterinfo", "ClusterInformation"}, {"netsets", "NetworkSet"}, {"gnetsets", "GlobalNetworkSet"},
	}
	for _, tt := range tests {
		k, err := Lookup(tt.word)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", tt.word, err)
		}
		if k.Kind != tt.kind {
			t.Errorf("Lookup(%q) = %s, want %s", tt.word, k.Kind, tt.kind)
		}
	}
	if _, err := Lookup("bogus"); err == nil || err.Error() != "resource type 'bogus' is not supported" {
		t.Errorf("Lookup(bogus) error = %v", err)
	}
}

func TestKindOfAndNew(t *testing.T) {
	for _, k := range Kinds() {
		r := k.New()
		if got := KindOf(r); got != k {
			t.Errorf("KindOf(New %s) = %v", k.Kind, got)
		}
		if r.GetObjectKind().GroupVersionKind().Kind != k.Kind {
			t.Errorf("%s: TypeMeta kind not set", k.Kind)
		}
		if lk, isList := LookupKind(k.ListKind()); lk != k || !isList {
			t.Errorf("LookupKind(%s) = %v,%v", k.ListKind(), lk, isList)
		}
	}
}
