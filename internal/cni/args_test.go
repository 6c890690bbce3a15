package cni

import (
	"errors"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseArgs(t *testing.T) {
	full := map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0",
		"CNI_PATH": "/opt/cni/bin:/usr/lib/cni", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=web-1;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u-1"}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range full {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	with := func(k, v string) map[string]string { m := without(k); m[k] = v; return m }
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"complete", full, ""},
		{"no command", without("CNI_COMMAND"), "CNI_COMMAND"},
		{"unknown command", with("CNI_COMMAND", "FROB"), "CNI_COMMAND"},
		{"no container", without("CNI_CONTAINERID"), "CNI_CONTAINERID"},
		{"no ifname", without("CNI_IFNAME"), "CNI_IFNAME"},
		{"no netns on ADD", without("CNI_NETNS"), "CNI_NETNS"},
		{"no netns on DEL is fine", with("CNI_COMMAND", "DEL"), ""},
		{"bad CNI_ARGS", with("CNI_ARGS", "K8S_POD_NAME"), "CNI_ARGS"},
		{"VERSION needs nothing", map[string]string{"CNI_COMMAND": "VERSION"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseArgs(envOf(tt.env))
			if tt.wantVar != "" {
				var ee *EnvError
				if !errors.As(err, &ee) || ee.Var != tt.wantVar {
					t.Fatalf("err = %v, want EnvError for %s", err, tt.wantVar)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseArgs: %v", err)
			}
			if tt.name == "complete" {
				want := K8sArgs{Namespace: "prod", Name: "web-1", InfraContainerID: "c1", UID: "u-1"}
				if a.K8s != want || len(a.Path) != 2 || !a.IsK8s() || a.Namespace() != "prod" {
					t.Fatalf("args = %+v", a)
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	k8s := &Args{ContainerID: "4d1e2f3a4b5c6d7e8f", IfName: "eth0", K8s: K8sArgs{Namespace: "default", Name: "nginx"}}
	plain := &Args{ContainerID: "4d1e2f3a4b5c6d7e8f", IfName: "eth0"}
	tests := []struct {
		name, got, want string
	}{
		// sha1("default.nginx") starts with c440f455693 (checked with sha1sum).
		{"k8s veth", VethName("cali", k8s), "calic440f455693"},
		{"cni veth", VethName("cali", plain), "cali4d1e2f3a4b5"},
		{"long prefix truncated", VethName("calico-", plain), "calico-4d1e2f3a"},
		{"prefix env", InterfacePrefix(envOf(map[string]string{"FELIX_INTERFACEPREFIX": "tap,cali"})), "tap"},
		{"prefix default", InterfacePrefix(envOf(nil)), "cali"},
		{"handle", HandleID("k8s-pod-network", "abc"), "k8s-pod-network.abc"},
		{"legacy handle", LegacyHandleID(k8s), "default.nginx"},
		{"k8s wep", mustName(t, WEPIdentifiers("worker-1", k8s)), "worker--1-k8s-nginx-eth0"},
		{"cni wep", mustName(t, WEPIdentifiers("n1", plain)), "n1-cni-4d1e2f3a4b5c6d7e8f-eth0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if len(VethName("cali", k8s)) != 15 {
		t.Errorf("veth name %q is not 15 characters", VethName("cali", k8s))
	}
}
