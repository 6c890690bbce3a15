package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/opencalico/calicoctl/resources"
)

func TestFromEnvironDefaults(t *testing.T) {
	c, err := FromEnviron(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != BackendBird || c.IPv4.Mode != AddrUnset || c.IPv6.Mode != AddrUnset {
		t.Errorf("backend/addresses = %q %q %q", c.Backend, c.IPv4.Mode, c.IPv6.Mode)
	}
	if c.IPv4Method.Kind != "first-found" || c.AutodetectPoll != 60*time.Second {
		t.Errorf("method/poll = %v %v", c.IPv4Method, c.AutodetectPoll)
	}
	want4 := PoolConfig{IPIPMode: resources.EncapNever, VXLANMode: resources.EncapNever, BlockSize: 26, NATOutgoing: true, NodeSelector: "all()"}
	if c.IPv4Pool != want4 {
		t.Errorf("ipv4 pool = %+v, want %+v", c.IPv4Pool, want4)
	}
	want6 := PoolConfig{IPIPMode: resources.EncapNever, VXLANMode: resources.EncapNever, BlockSize: 122, NATOutgoing: false, NodeSelector: "all()"}
	if c.IPv6Pool != want6 {
		t.Errorf("ipv6 pool = %+v, want %+v", c.IPv6Pool, want6)
	}
	if c.NodenameFile != DefaultNodenameFile || c.HealthPort != 9099 || c.HealthHost != "localhost" {
		t.Errorf("nodename file/health = %q %d %q", c.NodenameFile, c.HealthPort, c.HealthHost)
	}
}

func TestFromEnvironValues(t *testing.T) {
	c, err := FromEnviron([]string{
		"NODENAME=Worker-1", "IP=10.0.0.5/24", "IP6=autodetect",
		"IP_AUTODETECTION_METHOD=interface=eth.*,ens.*", "IP6_AUTODETECTION_METHOD=can-reach=fd00::1",
		"CALICO_NETWORKING_BACKEND=VXLAN", "CALICO_IPV4POOL_CIDR=10.244.0.0/16",
		"CALICO_IPV4POOL_VXLAN=cross-subnet", "CALICO_IPV4POOL_BLOCK_SIZE=24",
		"CALICO_IPV4POOL_NAT_OUTGOING=false", "CALICO_IPV4POOL_NODE_SELECTOR=zone == 'a'",
		"CALICO_IPV6POOL_CIDR=none", "AS=64512.7", "CALICO_ROUTER_ID=hash",
		"FELIX_IPINIPMTU=1400", "FELIX_HEALTHENABLED=true", "FELIX_HEALTHPORT=9199", "AUTODETECT_POLL_INTERVAL=5s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "worker-1" {
		t.Errorf("node name %q not lower-cased", c.NodeName)
	}
	if c.IPv4.Mode != "explicit" || c.IPv4.Prefix != netip.MustParsePrefix("10.0.0.5/24") || !c.IPv4.HasMask {
		t.Errorf("IP = %+v", c.IPv4)
	}
	if c.IPv6.Mode != AddrAutodetect {
		t.Errorf("IP6 = %+v", c.IPv6)
	}
	if got := c.IPv4Method.String(); got != "interface=eth.*,ens.*" {
		t.Errorf("method = %q", got)
	}
	if c.IPv6Method.Kind != "can-reach" || c.IPv6Method.Args[0] != "fd00::1" {
		t.Errorf("v6 method = %+v", c.IPv6Method)
	}
	if c.Backend != BackendVXLAN || c.IPv4Pool.VXLANMode != resources.EncapCrossSubnet || c.IPv4Pool.BlockSize != 24 ||
		c.IPv4Pool.NATOutgoing || c.IPv4Pool.NodeSelector != "zone == 'a'" || c.IPv4Pool.CIDR.String() != "10.244.0.0/16" {
		t.Errorf("pool = %+v backend %q", c.IPv4Pool, c.Backend)
	}
	if !c.IPv6Pool.Disabled {
		t.Errorf("CALICO_IPV6POOL_CIDR=none not honoured")
	}
	if c.Felix["ipinipmtu"] != "1400" || !c.HealthEnabled || c.HealthPort != 9199 || c.AutodetectPoll != 5*time.Second {
		t.Errorf("felix = %v health %v %d poll %v", c.Felix, c.HealthEnabled, c.HealthPort, c.AutodetectPoll)
	}
}

func TestFromEnvironErrors(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"IP=10.0.0.300", `IP="10.0.0.300": not an IP address`},
		{"IP=fd00::1", `IP="fd00::1": not an IPv4 address`},
		{"IP6=10.0.0.1", `IP6="10.0.0.1": not an IPv6 address`},
		{"IP_AUTODETECTION_METHOD=magic", `IP_AUTODETECTION_METHOD="magic": unknown method`},
		{"IP_AUTODETECTION_METHOD=can-reach", `needs a value`},
		{"IP_AUTODETECTION_METHOD=first-found=x", `takes no value`},
		{"IP_AUTODETECTION_METHOD=interface=eth(", `bad interface regex "eth("`},
		{"IP_AUTODETECTION_METHOD=cidr=10.0.0.0/33", `bad CIDR "10.0.0.0/33"`},
		{"CALICO_NETWORKING_BACKEND=gobgp", `CALICO_NETWORKING_BACKEND="gobgp": must be bird, vxlan or none`},
		{"CALICO_IPV4POOL_CIDR=10.244.0.1/16", `host bits set (did you mean 10.244.0.0/16?)`},
		{"CALICO_IPV4POOL_CIDR=fd00::/48", `not an IPv4 CIDR`},
		{"CALICO_IPV4POOL_IPIP=sometimes", `CALICO_IPV4POOL_IPIP="sometimes": must be Always, CrossSubnet or Never`},
		{"CALICO_IPV4POOL_BLOCK_SIZE=19", `must be between 20 and 32`},
		{"CALICO_IPV6POOL_BLOCK_SIZE=64", `must be between 116 and 128`},
		{"CALICO_IPV4POOL_NAT_OUTGOING=maybe", `must be true or false`},
		{"CALICO_ROUTER_ID=fd00::1", `must be an IPv4 address or "hash"`},
		{"AS=ninety", `AS="ninety": not an AS number`},
		{"FELIX_HEALTHPORT=http", `FELIX_HEALTHPORT="http": not a port number`},
		{"AUTODETECT_POLL_INTERVAL=often", `not a duration`},
		{"CALICO_IPV4POOL_CIDR=10.0.0.0/28", `smaller than one block (/26)`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := FromEnviron([]string{tc.env})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	if _, err := FromEnviron([]string{"CALICO_IPV4POOL_IPIP=Always", "CALICO_IPV4POOL_VXLAN=Always"}); err == nil {
		t.Error("IPIP and VXLAN on one pool accepted")
	}
	if _, err := FromEnviron([]string{"NO_DEFAULT_POOLS=true", "CALICO_IPV4POOL_CIDR=10.0.0.0/16"}); err == nil {
		t.Error("NO_DEFAULT_POOLS with a pool CIDR accepted")
	}
}

func TestParseEncap(t *testing.T) {
	for in, want := range map[string]resources.EncapMode{"": resources.EncapNever, "off": resources.EncapNever, "NEVER": resources.EncapNever,
		"always": resources.EncapAlways, "CrossSubnet": resources.EncapCrossSubnet, "cross-subnet": resources.EncapCrossSubnet} {
		if got, err := ParseEncap("X", in); err != nil || got != want {
			t.Errorf("ParseEncap(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestResolveNodeName(t *testing.T) {
	noFile := func(string) ([]byte, error) { return nil, errors.New("no file") }
	file := func(string) ([]byte, error) { return []byte("From-File\n"), nil }
	host := func() (string, error) { return "OS-Host", nil }
	env := func(m map[string]string) Env { return func(k string) (string, bool) { v, ok := m[k]; return v, ok } }
	for _, tc := range []struct {
		name     string
		cfg      Config
		env      map[string]string
		readFile func(string) ([]byte, error)
		want     string
	}{
		{"NODENAME wins", Config{NodeName: "n1"}, map[string]string{"HOSTNAME": "h"}, file, "n1"},
		{"nodename file", Config{}, map[string]string{"HOSTNAME": "h"}, file, "from-file"},
		{"HOSTNAME", Config{}, map[string]string{"HOSTNAME": "Env-Host"}, noFile, "env-host"},
		{"os hostname", Config{}, nil, noFile, "os-host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveNodeName(&tc.cfg, env(tc.env), tc.readFile, host)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ResolveNodeName(&Config{}, env(nil), noFile, func() (string, error) { return "", errors.New("x") }); err == nil {
		t.Error("no source of a node name accepted")
	}
}

func TestPolicyDefaultEnforce(t *testing.T) {
	for _, tc := range []struct{ env, want string }{{"", PolicyEnforce}, {"off", PolicyOff}, {"ENFORCE", PolicyEnforce}} {
		env := []string{"NODENAME=n1"}
		if tc.env != "" {
			env = append(env, "CALICO_POLICY="+tc.env)
		}
		c, err := FromEnviron(env)
		if err != nil || c.Policy != tc.want {
			t.Errorf("CALICO_POLICY=%q: %q, %v; want %q", tc.env, c.Policy, err, tc.want)
		}
	}
	if _, err := FromEnviron([]string{"NODENAME=n1", "CALICO_POLICY=maybe"}); err == nil {
		t.Error("CALICO_POLICY=maybe accepted")
	}
}
