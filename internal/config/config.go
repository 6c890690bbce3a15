// Package config resolves calicoctl's client configuration, the spec of a
// CalicoAPIConfig, from command-line flags, the environment, a config file
// and defaults, in that order of precedence, and records where each value
// came from.
//
// The file (default /etc/calico/calicoctl.cfg) is YAML or JSON:
//
//	apiVersion: projectcalico.org/v3
//	kind: CalicoAPIConfig
//	metadata: {}
//	spec:
//	  datastoreType: etcdv3
//	  etcdEndpoints: http://127.0.0.1:2379
//
// Unknown fields are rejected with the field name and line. A missing file at
// the default path is not an error (configuration then comes from the
// environment and defaults); a missing file at any other path given by the
// user is ("Error reading config file: <path>").
//
// Each field with an environment variable is looked up as CALICO_<NAME> first,
// then <NAME> (for example CALICO_ETCD_ENDPOINTS, then ETCD_ENDPOINTS). Empty
// variables count as unset. etcdKey, etcdCert, etcdCACert and kubeconfigInline
// can only be set in the file (or by a flag).
//
// Deliberate difference from upstream calicoctl: upstream ignores the
// environment entirely when a config file is used. Here the layers are
// merged per field, so an environment variable overrides the same field in
// the file, and fields the file leaves out can still come from the
// environment. `calicoctl config view` shows the source of every value.
//
// Defaults: datastoreType is etcdv3 when etcdEndpoints (or etcdDiscoverySrv)
// is set and kubernetes otherwise; for kubernetes with no kubeconfig,
// k8sAPIEndpoint or kubeconfigInline, $HOME/.kube/config is used if it exists.
//
// All layering is done by one github.com/spf13/viper instance. Viper reads
// the environment only through os.LookupEnv, so to keep the environment
// injectable (Options.Env) the looked-up variables are handed to viper as
// its flag-value layer, and flag values go in as overrides (viper's Set),
// which rank above it: flag > env > file > default.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/viper"
)

// DefaultConfigFile is where calicoctl looks for its config when -c is not given.
const DefaultConfigFile = "/etc/calico/calicoctl.cfg"

// Options are the inputs to Load.
type Options struct {
	// ConfigFile is the -c/--config path; empty means DefaultConfigFile.
	ConfigFile string
	// ConfigFileSet says the user gave ConfigFile explicitly. A missing file
	// is an error only when it was set and is not DefaultConfigFile.
	ConfigFileSet bool
	// Context is the --context flag; it sets k8sCurrentContext unless
	// Overrides already does.
	Context string
	// Env looks up environment variables; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// Overrides are flag values keyed by spec field name (e.g.
	// "etcdEndpoints"). Empty values are ignored.
	Overrides map[string]string
}

// SourceKind is the layer a value came from.
type SourceKind string

// The layers, highest precedence first.
const (
	SourceFlag    SourceKind = "flag"
	SourceEnv     SourceKind = "env"
	SourceFile    SourceKind = "file"
	SourceDefault SourceKind = "default"
)

// Source says where a resolved value came from. Name is the environment
// variable (SourceEnv), the file path (SourceFile), the flag ("--context")
// or a note on how a default was found; Line is the file line, if known.
type Source struct {
	Kind SourceKind
	Name string
	Line int
}

func (s Source) String() string {
	switch {
	case s.Name == "":
		return string(s.Kind)
	case s.Line > 0:
		return fmt.Sprintf("%s %s:%d", s.Kind, s.Name, s.Line)
	default:
		return fmt.Sprintf("%s %s", s.Kind, s.Name)
	}
}

// Resolved is the outcome of Load.
type Resolved struct {
	Spec Spec
	// Sources maps every spec field name to where its value came from.
	Sources map[string]Source
	// File is the config file that was read; empty when none was.
	File string
}

// EtcdEndpointList splits EtcdEndpoints on commas, dropping blanks.
func (s Spec) EtcdEndpointList() []string {
	var out []string
	for _, p := range strings.Split(s.EtcdEndpoints, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ValueError reports a configuration value that is not valid for its field.
type ValueError struct {
	Field  string
	Value  string
	Source Source
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("invalid %s %q (from %s): %s", e.Field, e.Value, e.Source, e.Reason)
}

// ErrUnknownField is wrapped by Load's error for an Overrides key that is
// not a spec field.
var ErrUnknownField = errors.New("unknown configuration field")

// Load resolves the configuration. Errors are single-line: a *FileError for
// an unreadable, malformed or strictly-invalid file, a *ValueError for a
// value that fails validation.
func Load(opts Options) (*Resolved, error) {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}

	flags, err := flagLayer(opts)
	if err != nil {
		return nil, err
	}

	path := opts.ConfigFile
	if path == "" {
		path = DefaultConfigFile
	}
	res := &Resolved{Sources: map[string]Source{}}
	file, err := readFile(path)
	switch {
	case err == nil:
		res.File = path
	case errors.Is(err, fs.ErrNotExist) && (!opts.ConfigFileSet || path == DefaultConfigFile):
		slog.Debug("no config file, using environment and defaults", "path", path)
		file = fileLayer{}
	default:
		return nil, err
	}

	v := viper.New()
	fileMap := map[string]any{}
	for _, f := range fields {
		key := strings.ToLower(f.name)
		if val, ok := flags[f.name]; ok {
			v.Set(key, val.text)
		}
		if name, val, ok := lookupEnv(env, f); ok {
			if err := v.BindFlagValue(key, envValue{name: name, value: val}); err != nil {
				return nil, fmt.Errorf("binding %s: %w", name, err)
			}
		}
		if val, ok := file[f.name]; ok {
			fileMap[key] = val.text
		}
	}
	if err := v.MergeConfigMap(fileMap); err != nil {
		return nil, fmt.Errorf("merging config file values: %w", err)
	}

	sourceOf := func(f field) Source {
		if val, ok := flags[f.name]; ok {
			return Source{Kind: SourceFlag, Name: val.flag}
		}
		if name, _, ok := lookupEnv(env, f); ok {
			return Source{Kind: SourceEnv, Name: name}
		}
		if val, ok := file[f.name]; ok {
			return Source{Kind: SourceFile, Name: path, Line: val.line}
		}
		return Source{Kind: SourceDefault}
	}

	// Defaults that depend on other fields are computed from the resolved
	// values, then set in viper's default layer.
	get := func(name string) string { return v.GetString(strings.ToLower(name)) }
	defaultNote := map[string]string{}
	dsType := DatastoreKubernetes
	if get("etcdEndpoints") != "" || get("etcdDiscoverySrv") != "" {
		dsType = DatastoreEtcdV3
	}
	v.SetDefault("datastoretype", dsType)
	if get("datastoreType") == DatastoreKubernetes && get("kubeconfig") == "" &&
		get("k8sAPIEndpoint") == "" && get("kubeconfigInline") == "" {
		if kc := homeKubeconfig(env, opts.Env == nil); kc != "" {
			v.SetDefault("kubeconfig", kc)
			defaultNote["kubeconfig"] = "$HOME/.kube/config"
		}
	}

	for _, f := range fields {
		src := sourceOf(f)
		if src.Kind == SourceDefault {
			src.Name = defaultNote[f.name]
		}
		res.Sources[f.name] = src
		text := v.GetString(strings.ToLower(f.name))
		val, reason := parseValue(f, text)
		if reason == "" {
			reason = checkValue(f.name, text)
		}
		if reason != "" {
			shown := text
			if f.secret {
				shown = mask
			}
			return nil, &ValueError{Field: f.name, Value: shown, Source: src, Reason: reason}
		}
		f.set(&res.Spec, val)
	}
	return res, nil
}

type flagValue struct {
	text string
	flag string // flag name when known
}

func flagLayer(opts Options) (map[string]flagValue, error) {
	out := map[string]flagValue{}
	for name, val := range opts.Overrides {
		f, ok := fieldByName(name)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownField, name)
		}
		if val != "" {
			out[f.name] = flagValue{text: val}
		}
	}
	if _, ok := out["k8sCurrentContext"]; !ok && opts.Context != "" {
		out["k8sCurrentContext"] = flagValue{text: opts.Context, flag: "--context"}
	}
	return out, nil
}

// lookupEnv finds a field's environment variable: CALICO_<NAME>, then <NAME>.
func lookupEnv(env func(string) (string, bool), f field) (name, value string, ok bool) {
	if f.env == "" {
		return "", "", false
	}
	for _, n := range []string{"CALICO_" + f.env, f.env} {
		if v, found := env(n); found && v != "" {
			return n, v, true
		}
	}
	return "", "", false
}

// envValue presents one environment variable to viper as a set flag value.
type envValue struct{ name, value string }

func (e envValue) HasChanged() bool    { return true }
func (e envValue) Name() string        { return e.name }
func (e envValue) ValueString() string { return e.value }
func (e envValue) ValueType() string   { return "string" }

func homeKubeconfig(env func(string) (string, bool), realEnv bool) string {
	home, ok := env("HOME")
	if (!ok || home == "") && realEnv {
		home, _ = os.UserHomeDir()
	}
	if home == "" {
		return ""
	}
	p := filepath.Join(home, ".kube", "config")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p
	}
	return ""
}

// parseValue converts text to the field's Go type; a non-empty reason says
// why it cannot be. Empty text is the zero value.
func parseValue(f field, text string) (any, string) {
	if f.kind == kindString {
		if strings.Contains(text, "\n") {
			return text, "" // inline PEM is kept as written, final newline included
		}
		return strings.TrimSpace(text), ""
	}
	text = strings.TrimSpace(text)
	switch f.kind {
	case kindBool:
		if text == "" {
			return false, ""
		}
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, "must be true or false"
		}
		return b, ""
	case kindFloat:
		if text == "" {
			return float64(0), ""
		}
		n, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, "must be a number"
		}
		if n < 0 {
			return nil, "must not be negative"
		}
		return n, ""
	case kindInt:
		if text == "" {
			return 0, ""
		}
		n, err := strconv.Atoi(text)
		if err != nil {
			return nil, "must be a whole number"
		}
		if n < 0 {
			return nil, "must not be negative"
		}
		return n, ""
	default:
		return text, ""
	}
}

// checkValue applies per-field rules beyond the type.
func checkValue(name, text string) string {
	text = strings.TrimSpace(text)
	switch name {
	case "datastoreType":
		if text != DatastoreEtcdV3 && text != DatastoreKubernetes {
			return fmt.Sprintf("must be %q or %q", DatastoreEtcdV3, DatastoreKubernetes)
		}
	case "etcdEndpoints":
		for _, ep := range (Spec{EtcdEndpoints: text}).EtcdEndpointList() {
			if !validURL(ep, "http", "https", "unix", "unixs") {
				return fmt.Sprintf("%q is not an etcd URL (want e.g. http://127.0.0.1:2379)", ep)
			}
		}
	case "k8sAPIEndpoint":
		if text != "" && !validURL(text, "http", "https") {
			return "not an API server URL (want e.g. https://10.0.0.1:6443)"
		}
	}
	return ""
}

func validURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			if strings.HasPrefix(sc, "unix") {
				return u.Host != "" || u.Path != ""
			}
			return u.Host != "" && u.Hostname() != ""
		}
	}
	return false
}
