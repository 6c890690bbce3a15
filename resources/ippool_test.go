package resources

import (
	"encoding/json"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func validPool(cidr string) *IPPool {
	p := &IPPool{ObjectMeta: metav1.ObjectMeta{Name: "pool-a"}, Spec: IPPoolSpec{CIDR: cidr}}
	p.Default()
	return p
}

func TestIPPoolValidate(t *testing.T) {
	cases := []struct {
		name      string
		cidr      string
		mutate    func(*IPPoolSpec)
		wantField string
	}{
		{name: "v4 defaults", cidr: "10.10.0.0/16"},
		{name: "v6 defaults", cidr: "fd00:10::/48"},
		{name: "vxlan cross subnet", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.VXLANMode = EncapCrossSubnet }},
		{name: "pool exactly one block", cidr: "10.10.0.0/26"},
		{name: "block 32", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.BlockSize = 32 }},
		{name: "load balancer pool", cidr: "10.20.0.0/24", mutate: func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{AllowedUseLoadBalancer} }},
		{name: "manual assignment", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.AssignmentMode = ptr(AssignmentManual) }},
		{name: "selectors", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.NodeSelector = "zone == 'a'"; s.NamespaceSelector = "has(team)" }},

		{name: "missing cidr", cidr: "", wantField: "spec.cidr"},
		{name: "bad cidr", cidr: "10.10.0.0/33", wantField: "spec.cidr"},
		{name: "bare address", cidr: "10.10.0.1", wantField: "spec.cidr"},
		{name: "host bits set", cidr: "10.10.0.1/16", wantField: "spec.cidr"},
		{name: "link local v4", cidr: "169.254.0.0/16", wantField: "spec.cidr"},
		{name: "contains link local", cidr: "169.0.0.0/8", wantField: "spec.cidr"},
		{name: "link local v6", cidr: "fe80::/64", wantField: "spec.cidr"},
		{name: "block too big v4", cidr: "10.0.0.0/8", mutate: func(s *IPPoolSpec) { s.BlockSize = 19 }, wantField: "spec.blockSize"},
		{name: "block too small v4", cidr: "10.0.0.0/8", mutate: func(s *IPPoolSpec) { s.BlockSize = 33 }, wantField: "spec.blockSize"},
		{name: "v4 size on v6", cidr: "fd00::/48", mutate: func(s *IPPoolSpec) { s.BlockSize = 26 }, wantField: "spec.blockSize"},
		{name: "block too big v6", cidr: "fd00::/48", mutate: func(s *IPPoolSpec) { s.BlockSize = 115 }, wantField: "spec.blockSize"},
		{name: "pool smaller than block", cidr: "10.10.0.0/28", wantField: "spec.blockSize"},
		{name: "bad ipip mode", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.IPIPMode = "always" }, wantField: "spec.ipipMode"},
		{name: "bad vxlan mode", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.VXLANMode = "Sometimes" }, wantField: "spec.vxlanMode"},
		{name: "ipip and vxlan", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.IPIPMode = EncapAlways; s.VXLANMode = EncapCrossSubnet }, wantField: "spec.vxlanMode"},
		{name: "ipip on v6", cidr: "fd00::/48", mutate: func(s *IPPoolSpec) { s.IPIPMode = EncapAlways }, wantField: "spec.ipipMode"},
		{name: "legacy ipip", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.IPIP = &LegacyIPIPConfiguration{Enabled: true} }, wantField: "spec.ipip"},
		{name: "legacy nat", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.NATOutgoingV1 = true }, wantField: "spec.nat-outgoing"},
		{name: "bad node selector", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.NodeSelector = "a ==" }, wantField: "spec.nodeSelector"},
		{name: "global node selector", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.NodeSelector = "global()" }, wantField: "spec.nodeSelector"},
		{name: "bad namespace selector", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.NamespaceSelector = "(" }, wantField: "spec.namespaceSelector"},
		{name: "bad allowed use", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{"Pods"} }, wantField: "spec.allowedUses[0]"},
		{name: "duplicate allowed use", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{"Tunnel", "Tunnel"} }, wantField: "spec.allowedUses[1]"},
		{name: "lb with workload", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.AllowedUses = []IPPoolAllowedUse{"LoadBalancer", "Workload"} }, wantField: "spec.allowedUses"},
		{name: "lb with vxlan", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) {
			s.AllowedUses = []IPPoolAllowedUse{"LoadBalancer"}
			s.VXLANMode = EncapAlways
		}, wantField: "spec.allowedUses"},
		{name: "lb with node selector", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) {
			s.AllowedUses = []IPPoolAllowedUse{"LoadBalancer"}
			s.NodeSelector = "has(lb)"
		}, wantField: "spec.nodeSelector"},
		{name: "lb without export", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) {
			s.AllowedUses = []IPPoolAllowedUse{"LoadBalancer"}
			s.DisableBGPExport = true
		}, wantField: "spec.disableBGPExport"},
		{name: "bad assignment mode", cidr: "10.10.0.0/16", mutate: func(s *IPPoolSpec) { s.AssignmentMode = ptr(AssignmentMode("Auto")) }, wantField: "spec.assignmentMode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPool(tc.cidr)
			if tc.mutate != nil {
				tc.mutate(&p.Spec)
			}
			expectValidation(t, p, tc.wantField)
		})
	}
}

func TestIPPoolBadName(t *testing.T) {
	p := validPool("10.0.0.0/16")
	p.Name = "Pool_A"
	expectValidation(t, p, "metadata.name")
}

func TestIPPoolDefault(t *testing.T) {
	cases := []struct {
		cidr      string
		blockSize int
	}{
		{"10.10.0.0/16", 26},
		{"fd00:10::/48", 122},
		{"not-a-cidr", 0},
	}
	for _, tc := range cases {
		t.Run(tc.cidr, func(t *testing.T) {
			p := &IPPool{Spec: IPPoolSpec{CIDR: tc.cidr}}
			expectDefaultIdempotent(t, p)
			s := p.Spec
			if s.BlockSize != tc.blockSize {
				t.Errorf("blockSize = %d, want %d", s.BlockSize, tc.blockSize)
			}
			if s.NodeSelector != "all()" || s.IPIPMode != EncapNever || s.VXLANMode != EncapNever {
				t.Errorf("selector/modes not defaulted: %+v", s)
			}
			if !slices.Equal(s.AllowedUses, []IPPoolAllowedUse{AllowedUseWorkload, AllowedUseTunnel}) {
				t.Errorf("allowedUses = %v", s.AllowedUses)
			}
			if s.AssignmentMode == nil || *s.AssignmentMode != AssignmentAutomatic {
				t.Errorf("assignmentMode = %v", s.AssignmentMode)
			}
		})
	}
}

func TestIPPoolDefaultKeepsUserValues(t *testing.T) {
	p := &IPPool{Spec: IPPoolSpec{CIDR: "10.0.0.0/16", BlockSize: 28, IPIPMode: EncapCrossSubnet,
		NodeSelector: "has(x)", AllowedUses: []IPPoolAllowedUse{AllowedUseTunnel}, AssignmentMode: ptr(AssignmentManual)}}
	p.Default()
	if p.Spec.BlockSize != 28 || p.Spec.IPIPMode != EncapCrossSubnet || p.Spec.NodeSelector != "has(x)" ||
		len(p.Spec.AllowedUses) != 1 || *p.Spec.AssignmentMode != AssignmentManual {
		t.Fatalf("Default overwrote user values: %+v", p.Spec)
	}
}

// The stored form in the compatibility notes (§1.2) decodes and re-encodes to
// the same JSON.
func TestIPPoolStoredValue(t *testing.T) {
	stored := `{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"pool-a","uid":"6c1c7e4a-0000-4000-8000-000000000000","creationTimestamp":"2024-05-01T10:00:00Z"},"spec":{"cidr":"10.10.0.0/16","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":26,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"],"assignmentMode":"Automatic"}}`
	p := expectStrictRoundTrip[IPPool](t, stored)
	out, _ := json.Marshal(p)
	if string(out) != stored {
		t.Fatalf("re-encoded differently:\n got  %s\n want %s", out, stored)
	}
}

func TestIPPoolStrictDecode(t *testing.T) {
	manifests := map[string]string{
		"seed ipv4": `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 10.244.0.0/16
  blockSize: 26
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
`,
		"everything": `
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: lb-pool
  labels: {purpose: lb}
spec:
  cidr: fd00:20::/112
  vxlanMode: Never
  ipipMode: Never
  blockSize: 122
  disabled: false
  disableBGPExport: false
  nodeSelector: all()
  namespaceSelector: has(team)
  allowedUses: [LoadBalancer]
  assignmentMode: Manual
`,
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) { expectStrictRoundTrip[IPPool](t, m) })
	}
	t.Run("unknown field rejected", func(t *testing.T) {
		p := &IPPool{}
		if err := yaml.UnmarshalStrict([]byte("spec:\n  cidr: 10.0.0.0/16\n  ipipModes: Always\n"), p); err == nil {
			t.Fatal("want an unknown-field error for ipipModes")
		}
	})
}

func TestEncapMode(t *testing.T) {
	tests := []struct {
		mode                 EncapMode
		on, sameSub, crossSu bool
	}{
		{"", false, false, false},
		{EncapNever, false, false, false},
		{"off", false, false, false},
		{EncapAlways, true, true, true},
		{"always", true, true, true},
		{EncapCrossSubnet, true, false, true},
		{"cross-subnet", true, false, true},
		{"Sometimes", false, false, false},
	}
	for _, tt := range tests {
		if got := tt.mode.On(); got != tt.on {
			t.Errorf("%q.On() = %v, want %v", tt.mode, got, tt.on)
		}
		if got := tt.mode.Encaps(true); got != tt.sameSub {
			t.Errorf("%q.Encaps(same subnet) = %v, want %v", tt.mode, got, tt.sameSub)
		}
		if got := tt.mode.Encaps(false); got != tt.crossSu {
			t.Errorf("%q.Encaps(other subnet) = %v, want %v", tt.mode, got, tt.crossSu)
		}
	}
	if _, err := ParseEncapMode("Sometimes"); err == nil {
		t.Error("ParseEncapMode(Sometimes) accepted")
	}
}
