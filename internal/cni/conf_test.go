package cni

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

type fakeFS struct {
	files    map[string]string
	hostname string
}

func (f fakeFS) ReadFile(p string) ([]byte, error) {
	if v, ok := f.files[p]; ok {
		return []byte(v), nil
	}
	return nil, fs.ErrNotExist
}

func (f fakeFS) Hostname() (string, error) { return f.hostname, nil }

func TestParseConf(t *testing.T) {
	tests := []struct {
		name      string
		conf      string
		wantField string // "" = valid
		check     func(t *testing.T, c *NetConf)
	}{
		{name: "upstream installer conf", conf: `{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico",
			"log_level":"info","log_file_path":"/var/log/calico/cni/cni.log","datastore_type":"kubernetes",
			"nodename":"n1","mtu":0,"ipam":{"type":"calico-ipam","assign_ipv4":"true","assign_ipv6":"false","ipv4_pools":["default-ipv4-ippool"]},
			"policy":{"type":"k8s"},"kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"},
			"feature_control":{"floating_ips":true,"ip_addrs_no_ipam":false}}`,
			check: func(t *testing.T, c *NetConf) {
				if !c.AssignIPv4() || c.AssignIPv6() || c.Kubernetes.Kubeconfig == "" || !c.FeatureControl.FloatingIPs || c.IPAM.IPv4Pools[0] != "default-ipv4-ippool" {
					t.Errorf("fields not read: %+v", c)
				}
			}},
		{name: "bool spelling of assign flags", conf: `{"name":"n","ipam":{"type":"calico-ipam","assign_ipv4":false,"assign_ipv6":true}}`,
			check: func(t *testing.T, c *NetConf) {
				if c.AssignIPv4() || !c.AssignIPv6() {
					t.Errorf("assign flags = %v/%v", c.AssignIPv4(), c.AssignIPv6())
				}
			}},
		{name: "defaults", conf: `{"name":"n","ipam":{"type":"calico-ipam"}}`,
			check: func(t *testing.T, c *NetConf) {
				if !c.AssignIPv4() || c.AssignIPv6() {
					t.Errorf("default assign flags = %v/%v, want true/false", c.AssignIPv4(), c.AssignIPv6())
				}
			}},
		{name: "no name", conf: `{"ipam":{"type":"calico-ipam"}}`, wantField: "name"},
		{name: "negative mtu", conf: `{"name":"n","mtu":-1,"ipam":{"type":"calico-ipam"}}`, wantField: "mtu"},
		{name: "mtu wrong type", conf: `{"name":"n","mtu":"big","ipam":{"type":"calico-ipam"}}`, wantField: "mtu"},
		{name: "bad datastore", conf: `{"name":"n","datastore_type":"consul","ipam":{"type":"calico-ipam"}}`, wantField: "datastore_type"},
		{name: "bad log level", conf: `{"name":"n","log_level":"chatty","ipam":{"type":"calico-ipam"}}`, wantField: "log_level"},
		{name: "no ipam", conf: `{"name":"n"}`, wantField: "ipam.type"},
		{name: "nothing to assign", conf: `{"name":"n","ipam":{"type":"calico-ipam","assign_ipv4":"false"}}`, wantField: "ipam.assign_ipv4"},
		{name: "bad assign flag", conf: `{"name":"n","ipam":{"type":"calico-ipam","assign_ipv4":"maybe"}}`, wantField: ""},
		{name: "v6 pool in v4 list", conf: `{"name":"n","ipam":{"type":"calico-ipam","ipv4_pools":["fd00::/64"]}}`, wantField: "ipam.ipv4_pools[0]"},
		{name: "bad pool CIDR", conf: `{"name":"n","ipam":{"type":"calico-ipam","ipv6_pools":["fd00::/999"]}}`, wantField: "ipam.ipv6_pools[0]"},
		{name: "netkit", conf: `{"name":"n","device_type":"netkit","ipam":{"type":"calico-ipam"}}`, wantField: "device_type"},
		{name: "policy type", conf: `{"name":"n","policy":{"type":"calico"},"ipam":{"type":"calico-ipam"}}`, wantField: "policy.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConf([]byte(tt.conf))
			if tt.name == "bad assign flag" {
				if err == nil || !strings.Contains(err.Error(), "maybe") {
					t.Fatalf("err = %v, want it to quote the bad value", err)
				}
				return
			}
			if tt.wantField != "" {
				var ce *ConfError
				if !errors.As(err, &ce) || ce.Field != tt.wantField {
					t.Fatalf("err = %v, want a ConfError naming %q", err, tt.wantField)
				}
				if !strings.Contains(err.Error(), tt.wantField) {
					t.Errorf("message %q does not name the field", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConf: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestNodenameFrom(t *testing.T) {
	tests := []struct {
		name    string
		conf    NetConf
		fs      fakeFS
		want    string
		wantErr string
	}{
		{"field wins", NetConf{Nodename: "a"}, fakeFS{files: map[string]string{DefaultNodenameFile: "b"}}, "a", ""},
		{"file", NetConf{}, fakeFS{files: map[string]string{DefaultNodenameFile: "node-b\n"}, hostname: "h"}, "node-b", ""},
		{"custom file", NetConf{NodenameFile: "/x"}, fakeFS{files: map[string]string{"/x": "c"}}, "c", ""},
		{"missing file is an error", NetConf{}, fakeFS{hostname: "h"}, "", "nodename_file"},
		{"optional file falls back to hostname", NetConf{NodenameFileOptional: true}, fakeFS{hostname: "Host-1"}, "host-1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.conf.NodenameFrom(tt.fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMTUFrom(t *testing.T) {
	tests := []struct {
		name    string
		conf    NetConf
		files   map[string]string
		want    int
		wantErr bool
	}{
		{"field", NetConf{MTU: 1410}, map[string]string{DefaultMTUFile: "1450"}, 1410, false},
		{"file", NetConf{}, map[string]string{DefaultMTUFile: "1450\n"}, 1450, false},
		{"default", NetConf{}, nil, 1500, false},
		{"required file missing", NetConf{RequireMTUFile: true}, nil, 0, true},
		{"garbage file", NetConf{}, map[string]string{DefaultMTUFile: "lots"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.conf.MTUFrom(fakeFS{files: tt.files}, "")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("got %d, %v; want %d (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
