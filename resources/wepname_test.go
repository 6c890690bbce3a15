package resources

import (
	"errors"
	"testing"
)

func TestWEPName(t *testing.T) {
	tests := []struct {
		name string
		ids  WEPIdentifiers
		want string
	}{
		{"k8s example", WEPIdentifiers{Node: "worker-1", Orchestrator: "k8s", Pod: "web-7f9c", Endpoint: "eth0"}, "worker--1-k8s-web--7f9c-eth0"},
		{"cni example", WEPIdentifiers{Node: "n1", Orchestrator: "cni", ContainerID: "4d1e9f0a7b2c", Endpoint: "eth0"}, "n1-cni-4d1e9f0a7b2c-eth0"},
		{"libnetwork", WEPIdentifiers{Node: "host", Orchestrator: "libnetwork", Endpoint: "ep-1"}, "host-libnetwork-libnetwork-ep--1"},
		{"other orchestrator", WEPIdentifiers{Node: "compute-3", Orchestrator: "openstack", Workload: "vm-42", Endpoint: "tap1234"}, "compute--3-openstack-vm--42-tap1234"},
		{"dots are kept", WEPIdentifiers{Node: "node1.example.com", Orchestrator: "k8s", Pod: "db.0", Endpoint: "eth0"}, "node1.example.com-k8s-db.0-eth0"},
		{"many dashes", WEPIdentifiers{Node: "a-b-c", Orchestrator: "k8s", Pod: "x--y", Endpoint: "e-0"}, "a--b--c-k8s-x----y-e--0"},
		{"other fields ignored for k8s", WEPIdentifiers{Node: "n", Orchestrator: "k8s", Pod: "p", Endpoint: "e", Workload: "w", ContainerID: "c"}, "n-k8s-p-e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ids.Name()
			if err != nil || got != tt.want {
				t.Fatalf("Name() = %q, %v; want %q", got, err, tt.want)
			}
			back, err := ParseWEPName(got)
			if err != nil {
				t.Fatalf("ParseWEPName(%q): %v", got, err)
			}
			want := tt.ids
			switch want.Orchestrator { // only the orchestrator's own segments survive
			case "k8s":
				want.Workload, want.ContainerID = "", ""
			}
			if back != want {
				t.Fatalf("ParseWEPName(%q) = %+v, want %+v", got, back, want)
			}
			if !tt.ids.Matches(got) {
				t.Errorf("Matches(%q) = false", got)
			}
		})
	}
}

func TestWEPNameErrors(t *testing.T) {
	tests := []struct {
		name  string
		ids   WEPIdentifiers
		field string
	}{
		{"no node", WEPIdentifiers{Orchestrator: "k8s", Pod: "p", Endpoint: "e"}, "spec.node"},
		{"no pod", WEPIdentifiers{Node: "n", Orchestrator: "k8s", Endpoint: "e"}, "spec.pod"},
		{"no container", WEPIdentifiers{Node: "n", Orchestrator: "cni", Endpoint: "e"}, "spec.containerID"},
		{"no workload", WEPIdentifiers{Node: "n", Orchestrator: "openstack", Endpoint: "e"}, "spec.workload"},
		{"no orchestrator", WEPIdentifiers{Node: "n", Workload: "w", Endpoint: "e"}, "spec.orchestrator"},
		{"no endpoint", WEPIdentifiers{Node: "n", Orchestrator: "libnetwork"}, "spec.endpoint"},
		{"leading dash", WEPIdentifiers{Node: "-n", Orchestrator: "k8s", Pod: "p", Endpoint: "e"}, "spec.node"},
		{"trailing dash", WEPIdentifiers{Node: "n", Orchestrator: "k8s", Pod: "p-", Endpoint: "e"}, "spec.pod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.ids.Name()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("Name() error = %v, want a field error on %s", err, tt.field)
			}
		})
	}
}

func TestWEPNamePrefix(t *testing.T) {
	tests := []struct {
		ids  WEPIdentifiers
		want string
	}{
		{WEPIdentifiers{Node: "n-1"}, "n--1-"},
		{WEPIdentifiers{Node: "n-1", Orchestrator: "k8s"}, "n--1-k8s-"},
		{WEPIdentifiers{Node: "n-1", Orchestrator: "k8s", Pod: "web-1"}, "n--1-k8s-web--1-"},
		{WEPIdentifiers{Node: "n-1", Orchestrator: "k8s", Pod: "web-1", Endpoint: "eth0"}, "n--1-k8s-web--1-eth0"},
		{WEPIdentifiers{Node: "n", Orchestrator: "libnetwork"}, "n-libnetwork-libnetwork-"},
	}
	for _, tt := range tests {
		got, err := tt.ids.NamePrefix()
		if err != nil || got != tt.want {
			t.Errorf("NamePrefix(%+v) = %q, %v; want %q", tt.ids, got, err, tt.want)
		}
	}
	if _, err := (WEPIdentifiers{Orchestrator: "k8s"}).NamePrefix(); err == nil {
		t.Error("NamePrefix without a node succeeded")
	}
}

func TestWEPNameMatches(t *testing.T) {
	q := WEPIdentifiers{Node: "node1", Orchestrator: "k8s", Pod: "pod"}
	tests := []struct {
		name string
		ok   bool
	}{
		{"node1-k8s-pod-eth0", true},
		{"node1-k8s-pod-eth1", true},
		{"node1-k8s-pod--1-eth0", false}, // pod "pod-1" shares the prefix
		{"node1-k8s-pod", false},
		{"node1-k8s-pod-", false},
		{"node2-k8s-pod-eth0", false},
		{"node1-cni-pod-eth0", false},
	}
	for _, tt := range tests {
		if got := q.Matches(tt.name); got != tt.ok {
			t.Errorf("Matches(%q) = %v, want %v", tt.name, got, tt.ok)
		}
	}
	if (WEPIdentifiers{Node: "node1"}).Matches("node1-k8s-pod-eth0") {
		t.Error("Matches without an orchestrator should be false")
	}
}

func TestParseWEPName(t *testing.T) {
	tests := []struct {
		name    string
		want    WEPIdentifiers
		wantErr bool
	}{
		{"node1-k8s-", WEPIdentifiers{Node: "node1", Orchestrator: "k8s"}, false},
		{"node1", WEPIdentifiers{Node: "node1"}, false},
		{"a--b-cni-abc-eth0", WEPIdentifiers{Node: "a-b", Orchestrator: "cni", ContainerID: "abc", Endpoint: "eth0"}, false},
		{"n-libnetwork-libnetwork-ep", WEPIdentifiers{Node: "n", Orchestrator: "libnetwork", Endpoint: "ep"}, false},
		{"n-libnetwork-other-ep", WEPIdentifiers{}, true},
		{"n-k8s-p-e-extra", WEPIdentifiers{}, true},
		{"", WEPIdentifiers{}, true},
	}
	for _, tt := range tests {
		got, err := ParseWEPName(tt.name)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseWEPName(%q) = %+v, %v; want %+v (error %v)", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
