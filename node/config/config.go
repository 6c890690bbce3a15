// Package config turns calico-node's environment (and the equivalent
// `calicoctl node run` flags) into the agent's Config. It is pure: the
// environment is injected, and every error names the variable and value.
package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opencalico/calicoctl/resources"
)

// Networking backends (CALICO_NETWORKING_BACKEND).
const (
	BackendBird  = "bird"
	BackendVXLAN = "vxlan"
	BackendNone  = "none"

	// CALICO_POLICY values.
	PolicyEnforce = "enforce"
	PolicyOff     = "off"
)

// Address modes of IP / IP6.
const (
	AddrUnset      = ""           // keep the Node's address, autodetect if it has none
	AddrAutodetect = "autodetect" // always autodetect
	AddrNone       = "none"       // no address of this family
)

// Defaults as upstream's calico-node.
const (
	DefaultNodenameFile        = "/var/lib/calico/nodename"
	DefaultBGPStateDir         = "/var/run/calico"
	DefaultBGPSecretsDir       = "/etc/calico/bgp-secrets"
	DefaultAutodetectPoll      = 60 * time.Second
	DefaultIPv4BlockSize       = 26
	DefaultIPv6BlockSize       = 122
	DefaultIPv4PoolName        = "default-ipv4-ippool"
	DefaultIPv6PoolName        = "default-ipv6-ippool"
	DefaultHealthHost          = "localhost"
	DefaultHealthPort          = 9099
	DefaultAutodetectionMethod = "first-found"
)

// Method is a parsed IP_AUTODETECTION_METHOD.
type Method struct {
	// Kind is first-found, can-reach, interface, skip-interface, cidr or
	// kubernetes-internal-ip.
	Kind string
	// Args: the destination for can-reach, regexes for (skip-)interface,
	// CIDRs for cidr.
	Args []string
}

// String is the method as written in the environment.
func (m Method) String() string {
	if len(m.Args) == 0 {
		return m.Kind
	}
	return m.Kind + "=" + strings.Join(m.Args, ",")
}

// Address is an explicit IP or IP6 value, or one of the modes.
type Address struct {
	// Mode is AddrUnset, AddrAutodetect, AddrNone, or "explicit".
	Mode string
	// Prefix is set when Mode is "explicit"; Bits() == BitLen() when the
	// value had no mask (the prefix length is looked up from the
	// interface carrying it).
	Prefix netip.Prefix
	// HasMask reports whether the value carried a prefix length.
	HasMask bool
}

// PoolConfig is one family's CALICO_IPV*POOL_* settings.
type PoolConfig struct {
	// CIDR is the pool to create; empty means "choose" (IPv4 only) and
	// Disabled means CALICO_IPV*POOL_CIDR=none.
	CIDR             netip.Prefix
	Disabled         bool
	IPIPMode         resources.EncapMode
	VXLANMode        resources.EncapMode
	BlockSize        int
	NATOutgoing      bool
	NodeSelector     string
	DisableBGPExport bool
}

// Config is everything the node agent reads from its environment.
type Config struct {
	NodeName     string
	NodenameFile string

	IPv4, IPv6             Address
	IPv4Method, IPv6Method Method
	AutodetectPoll         time.Duration
	DisableNodeIPCheck     bool

	AS               string
	Backend          string
	IPv4Pool         PoolConfig
	IPv6Pool         PoolConfig
	NoDefaultPools   bool
	K8sNodeRef       string
	RouterID         string
	AdvertiseCluster string

	// BGP: where the speaker keeps its restart marker
	// (CALICO_BGP_STATE_DIR, default /var/run/calico), the status socket
	// `calicoctl node status` reads (CALICO_BGP_STATUS_SOCKET, default
	// <state dir>/bgp.sock), where BGP passwords are read from on etcd
	// (CALICO_BGP_SECRETS_DIR, default /etc/calico/bgp-secrets:
	// <secret>/<key> files, a mounted Secret) and the namespace of the
	// Secrets on Kubernetes (POD_NAMESPACE, default kube-system).
	// Policy is CALICO_POLICY (our addition): "enforce" (the default, as
	// upstream's Felix always enforces) programs network policy into
	// nftables; "off" does not (a node whose traffic another firewall
	// owns, or a rollback).
	Policy string

	BGPStateDir     string
	BGPStatusSocket string
	BGPSecretsDir   string
	Namespace       string

	// Felix holds FELIX_* overrides, keyed by the lower-cased parameter
	// name (FELIX_IPINIPMTU -> "ipinipmtu").
	Felix map[string]string

	HealthEnabled bool
	HealthHost    string
	HealthPort    int
}

// Env looks one variable up.
type Env func(string) (string, bool)

// FromEnviron reads the calico-node environment from KEY=VALUE pairs as
// os.Environ returns them. NodeName is left empty when NODENAME is unset:
// ResolveNodeName fills it from the nodename file or the hostname.
func FromEnviron(environ []string) (*Config, error) {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	env := func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	get := func(k string) string { v, _ := env(k); return strings.TrimSpace(v) }
	c := &Config{
		NodeName:       strings.ToLower(get("NODENAME")),
		NodenameFile:   orDefault(get("CALICO_NODENAME_FILE"), DefaultNodenameFile),
		AS:             get("AS"),
		K8sNodeRef:     get("CALICO_K8S_NODE_REF"),
		RouterID:       get("CALICO_ROUTER_ID"),
		HealthHost:     DefaultHealthHost,
		HealthPort:     DefaultHealthPort,
		Felix:          map[string]string{},
		AutodetectPoll: DefaultAutodetectPoll,
	}
	c.AdvertiseCluster = get("CALICO_ADVERTISE_CLUSTER_IPS")
	switch v := strings.ToLower(get("CALICO_POLICY")); v {
	case "":
		c.Policy = PolicyEnforce
	case PolicyOff, PolicyEnforce:
		c.Policy = v
	default:
		return nil, fmt.Errorf("CALICO_POLICY=%q: must be enforce or off", v)
	}
	c.BGPStateDir = orDefault(get("CALICO_BGP_STATE_DIR"), DefaultBGPStateDir)
	c.BGPStatusSocket = orDefault(get("CALICO_BGP_STATUS_SOCKET"), filepath.Join(c.BGPStateDir, "bgp.sock"))
	c.BGPSecretsDir = orDefault(get("CALICO_BGP_SECRETS_DIR"), DefaultBGPSecretsDir)
	c.Namespace = orDefault(get("POD_NAMESPACE"), "kube-system")
	var err error
	if c.IPv4, err = parseAddress("IP", get("IP"), 4); err != nil {
		return nil, err
	}
	if c.IPv6, err = parseAddress("IP6", get("IP6"), 6); err != nil {
		return nil, err
	}
	if c.IPv4Method, err = ParseMethod("IP_AUTODETECTION_METHOD", get("IP_AUTODETECTION_METHOD")); err != nil {
		return nil, err
	}
	if c.IPv6Method, err = ParseMethod("IP6_AUTODETECTION_METHOD", get("IP6_AUTODETECTION_METHOD")); err != nil {
		return nil, err
	}
	if v := get("AUTODETECT_POLL_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("AUTODETECT_POLL_INTERVAL=%q: not a duration such as 60s", v)
		}
		c.AutodetectPoll = d
	}
	if c.DisableNodeIPCheck, err = parseBool("DISABLE_NODE_IP_CHECK", get("DISABLE_NODE_IP_CHECK"), false); err != nil {
		return nil, err
	}
	if c.AS != "" {
		if _, err := parseAS(c.AS); err != nil {
			return nil, fmt.Errorf("AS=%q: %w", c.AS, err)
		}
	}
	switch b := strings.ToLower(get("CALICO_NETWORKING_BACKEND")); b {
	case "":
		c.Backend = BackendBird
	case BackendBird, BackendVXLAN, BackendNone:
		c.Backend = b
	default:
		return nil, fmt.Errorf("CALICO_NETWORKING_BACKEND=%q: must be bird, vxlan or none", b)
	}
	if c.NoDefaultPools, err = parseBool("NO_DEFAULT_POOLS", get("NO_DEFAULT_POOLS"), false); err != nil {
		return nil, err
	}
	if c.IPv4Pool, err = parsePool(get, "IPV4", 4); err != nil {
		return nil, err
	}
	if c.IPv6Pool, err = parsePool(get, "IPV6", 6); err != nil {
		return nil, err
	}
	if c.NoDefaultPools && (c.IPv4Pool.CIDR.IsValid() || c.IPv6Pool.CIDR.IsValid()) {
		return nil, fmt.Errorf("NO_DEFAULT_POOLS=true conflicts with CALICO_IPV4POOL_CIDR/CALICO_IPV6POOL_CIDR: set one or the other")
	}
	if c.RouterID != "" && c.RouterID != "hash" {
		if a, err := netip.ParseAddr(c.RouterID); err != nil || !a.Is4() {
			return nil, fmt.Errorf("CALICO_ROUTER_ID=%q: must be an IPv4 address or \"hash\"", c.RouterID)
		}
	}
	if err := c.readFelix(m); err != nil {
		return nil, err
	}
	return c, nil
}

// readFelix collects FELIX_* variables and the health settings among them.
func (c *Config) readFelix(env map[string]string) error {
	keys := make([]string, 0, len(env))
	for k := range env {
		if strings.HasPrefix(strings.ToUpper(k), "FELIX_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // FELIX_X before felix_x: the last spelling wins, predictably
	for _, k := range keys {
		c.Felix[strings.ToLower(k[len("FELIX_"):])] = strings.TrimSpace(env[k])
	}
	var err error
	if v, ok := c.Felix["healthenabled"]; ok {
		if c.HealthEnabled, err = parseBool("FELIX_HEALTHENABLED", v, false); err != nil {
			return err
		}
	}
	if v, ok := c.Felix["healthhost"]; ok && v != "" {
		c.HealthHost = v
	}
	if v, ok := c.Felix["healthport"]; ok && v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("FELIX_HEALTHPORT=%q: not a port number", v)
		}
		c.HealthPort = p
	}
	return nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func parseBool(name, v string, def bool) (bool, error) {
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, fmt.Errorf("%s=%q: must be true or false", name, v)
	}
	return b, nil
}

func parseAS(s string) (uint32, error) {
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("not an AS number")
		}
		return uint32(h<<16 | l), nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("not an AS number")
	}
	return uint32(n), nil
}

func parseAddress(name, v string, family int) (Address, error) {
	switch strings.ToLower(v) {
	case "":
		return Address{Mode: AddrUnset}, nil
	case AddrAutodetect:
		return Address{Mode: AddrAutodetect}, nil
	case AddrNone:
		return Address{Mode: AddrNone}, nil
	}
	var p netip.Prefix
	hasMask := strings.Contains(v, "/")
	if hasMask {
		var err error
		if p, err = netip.ParsePrefix(v); err != nil {
			return Address{}, fmt.Errorf("%s=%q: not an IP address, CIDR, \"autodetect\" or \"none\"", name, v)
		}
	} else {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return Address{}, fmt.Errorf("%s=%q: not an IP address, CIDR, \"autodetect\" or \"none\"", name, v)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if (family == 4) != p.Addr().Is4() {
		return Address{}, fmt.Errorf("%s=%q: not an IPv%d address", name, v, family)
	}
	return Address{Mode: "explicit", Prefix: p, HasMask: hasMask}, nil
}

var methodKinds = map[string]bool{
	"first-found": false, "can-reach": true, "interface": true, "skip-interface": true,
	"cidr": true, "kubernetes-internal-ip": false,
}

// ParseMethod parses an IP autodetection method; empty is first-found.
// name is the variable, for errors.
func ParseMethod(name, v string) (Method, error) {
	if v == "" {
		return Method{Kind: DefaultAutodetectionMethod}, nil
	}
	kind, arg, hasArg := strings.Cut(v, "=")
	needsArg, known := methodKinds[kind]
	if !known {
		return Method{}, fmt.Errorf("%s=%q: unknown method (want first-found, can-reach=, interface=, skip-interface=, cidr= or kubernetes-internal-ip)", name, v)
	}
	if needsArg != hasArg || (needsArg && arg == "") {
		if needsArg {
			return Method{}, fmt.Errorf("%s=%q: %s needs a value (%s=...)", name, v, kind, kind)
		}
		return Method{}, fmt.Errorf("%s=%q: %s takes no value", name, v, kind)
	}
	m := Method{Kind: kind}
	if !needsArg {
		return m, nil
	}
	if kind == "can-reach" {
		m.Args = []string{arg}
		return m, nil
	}
	for _, a := range strings.Split(arg, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		switch kind {
		case "interface", "skip-interface":
			if _, err := regexp.Compile(a); err != nil {
				return Method{}, fmt.Errorf("%s=%q: bad interface regex %q: %v", name, v, a, err)
			}
		case "cidr":
			if _, err := netip.ParsePrefix(a); err != nil {
				return Method{}, fmt.Errorf("%s=%q: bad CIDR %q", name, v, a)
			}
		}
		m.Args = append(m.Args, a)
	}
	if len(m.Args) == 0 {
		return Method{}, fmt.Errorf("%s=%q: %s needs a value", name, v, kind)
	}
	return m, nil
}

// ParseEncap normalises an IPIP/VXLAN mode variable: Never (also off and
// empty), Always, CrossSubnet (also cross-subnet); case-insensitive.
func ParseEncap(name, v string) (resources.EncapMode, error) {
	m, err := resources.ParseEncapMode(v)
	if err != nil {
		return "", fmt.Errorf("%s=%q: must be Always, CrossSubnet or Never", name, v)
	}
	return m, nil
}

func parsePool(get func(string) string, fam string, family int) (PoolConfig, error) {
	prefix := "CALICO_" + fam + "POOL_"
	p := PoolConfig{BlockSize: DefaultIPv4BlockSize, NATOutgoing: true, NodeSelector: "all()"}
	minBS, maxBS := 20, 32
	if family == 6 {
		p.BlockSize, p.NATOutgoing, minBS, maxBS = DefaultIPv6BlockSize, false, 116, 128
	}
	if v := get(prefix + "CIDR"); strings.EqualFold(v, "none") {
		p.Disabled = true
	} else if v != "" {
		c, err := netip.ParsePrefix(v)
		if err != nil || (family == 4) != c.Addr().Is4() {
			return p, fmt.Errorf("%sCIDR=%q: not an IPv%d CIDR", prefix, v, family)
		}
		if c.Masked() != c {
			return p, fmt.Errorf("%sCIDR=%q: host bits set (did you mean %s?)", prefix, v, c.Masked())
		}
		p.CIDR = c
	}
	var err error
	if p.IPIPMode, err = ParseEncap(prefix+"IPIP", get(prefix+"IPIP")); err != nil {
		return p, err
	}
	if family == 6 && p.IPIPMode.On() {
		return p, fmt.Errorf("%sIPIP=%q: IPIP is IPv4 only", prefix, get(prefix+"IPIP"))
	}
	if p.VXLANMode, err = ParseEncap(prefix+"VXLAN", get(prefix+"VXLAN")); err != nil {
		return p, err
	}
	if p.IPIPMode.On() && p.VXLANMode.On() {
		return p, fmt.Errorf("%sIPIP and %sVXLAN: a pool uses IPIP or VXLAN, not both", prefix, prefix)
	}
	if v := get(prefix + "BLOCK_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < minBS || n > maxBS {
			return p, fmt.Errorf("%sBLOCK_SIZE=%q: must be between %d and %d", prefix, v, minBS, maxBS)
		}
		p.BlockSize = n
	}
	if p.CIDR.IsValid() && p.CIDR.Bits() > p.BlockSize {
		return p, fmt.Errorf("%sCIDR=%s: smaller than one block (/%d)", prefix, p.CIDR, p.BlockSize)
	}
	if p.NATOutgoing, err = parseBool(prefix+"NAT_OUTGOING", get(prefix+"NAT_OUTGOING"), p.NATOutgoing); err != nil {
		return p, err
	}
	if v := get(prefix + "NODE_SELECTOR"); v != "" {
		p.NodeSelector = v
	}
	if p.DisableBGPExport, err = parseBool(prefix+"DISABLE_BGP_EXPORT", get(prefix+"DISABLE_BGP_EXPORT"), false); err != nil {
		return p, err
	}
	return p, nil
}

// ResolveNodeName applies upstream's order: NODENAME, else the nodename
// file, else HOSTNAME, else the OS hostname; lower-cased.
func ResolveNodeName(c *Config, env Env, readFile func(string) ([]byte, error), hostname func() (string, error)) (string, error) {
	if c.NodeName != "" {
		return c.NodeName, nil
	}
	if b, err := readFile(c.NodenameFile); err == nil {
		if n := strings.TrimSpace(string(b)); n != "" {
			return strings.ToLower(n), nil
		}
	}
	if h, ok := env("HOSTNAME"); ok && strings.TrimSpace(h) != "" {
		return strings.ToLower(strings.TrimSpace(h)), nil
	}
	h, err := hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("cannot determine the node name: set NODENAME (hostname: %v)", err)
	}
	return strings.ToLower(h), nil
}
