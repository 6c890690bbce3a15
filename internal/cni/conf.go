// Package cni is the Calico CNI plugin (`calico`) and its IPAM plugin
// (`calico-ipam`), answering the CNI protocol (spec 1.0.0 and older versions
// through the library's result conversion) from the same binary as calicoctl.
package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Default paths, as upstream's installer lays them out.
const (
	DefaultNodenameFile = "/var/lib/calico/nodename"
	DefaultMTUFile      = "/var/lib/calico/mtu"
	DefaultMTU          = 1500
	// IPAMCalico is the ipam type served in-process.
	IPAMCalico = "calico-ipam"
)

// Flag is a boolean that upstream's configs spell as a JSON bool or as the
// strings "true"/"false" (assign_ipv4 and assign_ipv6 are strings upstream).
type Flag struct {
	Set   bool // the field was present
	Value bool
}

// UnmarshalJSON accepts true, false, "true", "false" (any case) and null.
func (f *Flag) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*f = Flag{}
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	v, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(s)))
	if err != nil {
		return fmt.Errorf("want true or false, got %s", b)
	}
	*f = Flag{Set: true, Value: v}
	return nil
}

// MarshalJSON writes the string form upstream writes.
func (f Flag) MarshalJSON() ([]byte, error) {
	if !f.Set {
		return []byte("null"), nil
	}
	return json.Marshal(strconv.FormatBool(f.Value))
}

// Or returns the value, or def when the field was absent.
func (f Flag) Or(def bool) bool {
	if !f.Set {
		return def
	}
	return f.Value
}

// IPAMConf is the "ipam" section.
type IPAMConf struct {
	Type       string   `json:"type"`
	Subnet     string   `json:"subnet,omitempty"`
	AssignIPv4 Flag     `json:"assign_ipv4"`
	AssignIPv6 Flag     `json:"assign_ipv6"`
	IPv4Pools  []string `json:"ipv4_pools,omitempty"`
	IPv6Pools  []string `json:"ipv6_pools,omitempty"`
}

// KubernetesConf is the "kubernetes" section.
type KubernetesConf struct {
	Kubeconfig string `json:"kubeconfig,omitempty"`
	K8sAPIRoot string `json:"k8s_api_root,omitempty"`
	NodeName   string `json:"node_name,omitempty"`
}

// PolicyConf is the "policy" section.
type PolicyConf struct {
	Type string `json:"type,omitempty"`
}

// FeatureControl is the "feature_control" section.
type FeatureControl struct {
	IPAddrsNoIPAM bool `json:"ip_addrs_no_ipam,omitempty"`
	FloatingIPs   bool `json:"floating_ips,omitempty"`
}

// ContainerSettings is the "container_settings" section.
type ContainerSettings struct {
	AllowIPForwarding bool `json:"allow_ip_forwarding,omitempty"`
}

// NetConf is the network configuration of the calico and calico-ipam
// plugins, with upstream's field names.
type NetConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Mode       string `json:"mode,omitempty"`
	MTU        int    `json:"mtu,omitempty"`
	NumQueues  int    `json:"num_queues,omitempty"`

	Nodename             string `json:"nodename,omitempty"`
	NodenameFile         string `json:"nodename_file,omitempty"`
	NodenameFileOptional bool   `json:"nodename_file_optional,omitempty"`
	// IPAMLockFile is accepted and ignored: the allocator is CAS-safe and
	// needs no host-wide lock.
	IPAMLockFile string `json:"ipam_lock_file,omitempty"`

	DatastoreType    string `json:"datastore_type,omitempty"`
	EtcdEndpoints    string `json:"etcd_endpoints,omitempty"`
	EtcdDiscoverySrv string `json:"etcd_discovery_srv,omitempty"`
	EtcdKeyFile      string `json:"etcd_key_file,omitempty"`
	EtcdCertFile     string `json:"etcd_cert_file,omitempty"`
	EtcdCACertFile   string `json:"etcd_ca_cert_file,omitempty"`
	EtcdUsername     string `json:"etcd_username,omitempty"`
	EtcdPassword     string `json:"etcd_password,omitempty"`

	LogLevel        string `json:"log_level,omitempty"`
	LogFilePath     string `json:"log_file_path,omitempty"`
	LogFileMaxSize  int    `json:"log_file_max_size,omitempty"`
	LogFileMaxAge   int    `json:"log_file_max_age,omitempty"`
	LogFileMaxCount int    `json:"log_file_max_count,omitempty"`

	Policy            PolicyConf        `json:"policy,omitempty"`
	Kubernetes        KubernetesConf    `json:"kubernetes,omitempty"`
	FeatureControl    FeatureControl    `json:"feature_control,omitempty"`
	ContainerSettings ContainerSettings `json:"container_settings,omitempty"`
	IPAM              IPAMConf          `json:"ipam"`

	IncludeDefaultRoutes bool   `json:"include_default_routes,omitempty"`
	RequireMTUFile       bool   `json:"require_mtu_file,omitempty"`
	CalicoAPIGroup       string `json:"calico_api_group,omitempty"`
	EndpointStatusDir    string `json:"endpoint_status_dir,omitempty"`
	DeviceType           string `json:"device_type,omitempty"`

	// RawPrevResult is the previous plugin's result (CHECK, chained ADD).
	RawPrevResult map[string]any `json:"prevResult,omitempty"`
}

// ConfError is an invalid network configuration; it names the field.
type ConfError struct {
	Field  string
	Value  any
	Reason string
}

func (e *ConfError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("network config field %q: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("network config field %q = %v: %s", e.Field, e.Value, e.Reason)
}

// ParseConf decodes and validates a network configuration.
func ParseConf(data []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(data, c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &ConfError{Field: te.Field, Reason: fmt.Sprintf("want %s, got JSON %s", te.Type, te.Value)}
		}
		return nil, fmt.Errorf("decoding network config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

var logLevels = map[string]slog.Level{
	"": slog.LevelInfo, "debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError,
	"fatal": slog.LevelError, "panic": slog.LevelError,
}

// Validate checks what the plugin relies on; every error names its field.
func (c *NetConf) Validate() error {
	switch {
	case c.Name == "":
		return &ConfError{Field: "name", Reason: "the network name is required"}
	case c.MTU < 0 || c.MTU > 65535:
		return &ConfError{Field: "mtu", Value: c.MTU, Reason: "must be between 0 (auto) and 65535"}
	case c.NumQueues < 0:
		return &ConfError{Field: "num_queues", Value: c.NumQueues, Reason: "may not be negative"}
	}
	switch c.DatastoreType {
	case "", "etcdv3", "kubernetes":
	default:
		return &ConfError{Field: "datastore_type", Value: c.DatastoreType, Reason: "must be etcdv3 or kubernetes"}
	}
	if _, ok := logLevels[strings.ToLower(c.LogLevel)]; !ok {
		return &ConfError{Field: "log_level", Value: c.LogLevel, Reason: "must be debug, info, warning or error"}
	}
	switch c.Policy.Type {
	case "", "k8s", "none":
	default:
		return &ConfError{Field: "policy.type", Value: c.Policy.Type, Reason: "must be k8s (or empty)"}
	}
	switch c.DeviceType {
	case "", "veth":
	default:
		return &ConfError{Field: "device_type", Value: c.DeviceType, Reason: "only veth is supported"}
	}
	if c.IPAM.Type == "" {
		return &ConfError{Field: "ipam.type", Reason: "an IPAM plugin type is required (e.g. calico-ipam)"}
	}
	if c.IPAM.Type == IPAMCalico && !c.AssignIPv4() && !c.AssignIPv6() {
		return &ConfError{Field: "ipam.assign_ipv4", Value: false, Reason: "assign_ipv4 and assign_ipv6 are both false: nothing to assign"}
	}
	for _, p := range []struct {
		field string
		pools []string
		v4    bool
	}{{"ipam.ipv4_pools", c.IPAM.IPv4Pools, true}, {"ipam.ipv6_pools", c.IPAM.IPv6Pools, false}} {
		for i, s := range p.pools {
			f := fmt.Sprintf("%s[%d]", p.field, i)
			if s == "" {
				return &ConfError{Field: f, Reason: "empty pool name"}
			}
			if strings.Contains(s, "/") {
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					return &ConfError{Field: f, Value: s, Reason: "not a valid CIDR"}
				}
				if pfx.Addr().Is4() != p.v4 {
					return &ConfError{Field: f, Value: s, Reason: "pool is of the wrong IP family"}
				}
			}
		}
	}
	return nil
}

// AssignIPv4 reports whether IPv4 is assigned (default true).
func (c *NetConf) AssignIPv4() bool { return c.IPAM.AssignIPv4.Or(true) }

// AssignIPv6 reports whether IPv6 is assigned (default false).
func (c *NetConf) AssignIPv6() bool { return c.IPAM.AssignIPv6.Or(false) }

// LevelOf returns the slog level of log_level.
func (c *NetConf) LevelOf() slog.Level { return logLevels[strings.ToLower(c.LogLevel)] }

// FileSystem is what the plugin reads from the host (injectable in tests).
type FileSystem interface {
	ReadFile(path string) ([]byte, error)
	Hostname() (string, error)
}

type osFS struct{}

func (osFS) ReadFile(p string) ([]byte, error) { return os.ReadFile(p) }
func (osFS) Hostname() (string, error)         { return os.Hostname() }

// NodenameFrom picks the node name: the nodename field, then the nodename file
// (written by the node agent), then the host name. A missing nodename file
// is an error unless nodename_file_optional is set, because a wrong node
// name silently puts the pod's addresses in another node's blocks.
func (c *NetConf) NodenameFrom(fs FileSystem) (string, error) {
	if c.Nodename != "" {
		return c.Nodename, nil
	}
	if c.Kubernetes.NodeName != "" {
		return c.Kubernetes.NodeName, nil
	}
	path := c.NodenameFile
	if path == "" {
		path = DefaultNodenameFile
	}
	b, err := fs.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		return strings.TrimSpace(string(b)), nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("reading nodename_file %s: %w", path, err)
	case err != nil && !c.NodenameFileOptional:
		return "", fmt.Errorf("nodename_file %s does not exist: check that the Calico node agent is running and has written it (or set nodename / nodename_file_optional): %w", path, err)
	}
	h, err := fs.Hostname()
	if err != nil {
		return "", fmt.Errorf("no node name: %w", err)
	}
	return strings.ToLower(h), nil
}

// MTUFrom picks the veth MTU: the mtu field, else the node agent's MTU
// file, else 1500. require_mtu_file makes a missing file an error.
func (c *NetConf) MTUFrom(fs FileSystem, mtuFile string) (int, error) {
	if c.MTU > 0 {
		return c.MTU, nil
	}
	if mtuFile == "" {
		mtuFile = DefaultMTUFile
	}
	b, err := fs.ReadFile(mtuFile)
	if err != nil {
		if c.RequireMTUFile {
			return 0, fmt.Errorf("require_mtu_file is set but %s cannot be read: %w", mtuFile, err)
		}
		return DefaultMTU, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 68 || n > 65535 {
		return 0, fmt.Errorf("MTU file %s holds %q, not an MTU", mtuFile, strings.TrimSpace(string(b)))
	}
	return n, nil
}
