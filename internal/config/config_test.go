package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeCfg(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "calicoctl.cfg")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func cfgYAML(spec string) string {
	return "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n" + spec
}

// noFile is a path that does not exist and was not set by the user.
func noFile(t *testing.T) string { return filepath.Join(t.TempDir(), "absent.cfg") }

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name       string
		flag, env  string
		file       string
		want       string
		wantSource SourceKind
	}{
		{name: "default only", want: "kubernetes", wantSource: SourceDefault},
		{name: "file over default", file: "etcdv3", want: "etcdv3", wantSource: SourceFile},
		{name: "env over default", env: "etcdv3", want: "etcdv3", wantSource: SourceEnv},
		{name: "flag over default", flag: "etcdv3", want: "etcdv3", wantSource: SourceFlag},
		{name: "env over file", env: "etcdv3", file: "kubernetes", want: "etcdv3", wantSource: SourceEnv},
		{name: "flag over file", flag: "etcdv3", file: "kubernetes", want: "etcdv3", wantSource: SourceFlag},
		{name: "flag over env", flag: "kubernetes", env: "etcdv3", want: "kubernetes", wantSource: SourceFlag},
		{name: "flag over env and file", flag: "etcdv3", env: "kubernetes", file: "kubernetes", want: "etcdv3", wantSource: SourceFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"HOME": ""})}
			if tt.file != "" {
				opts.ConfigFile = writeCfg(t, cfgYAML("  datastoreType: "+tt.file+"\n"))
				opts.ConfigFileSet = true
			}
			if tt.env != "" {
				opts.Env = envOf(map[string]string{"DATASTORE_TYPE": tt.env})
			}
			if tt.flag != "" {
				opts.Overrides = map[string]string{"datastoreType": tt.flag}
			}
			r, err := Load(opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if r.Spec.DatastoreType != tt.want {
				t.Errorf("datastoreType = %q, want %q", r.Spec.DatastoreType, tt.want)
			}
			if got := r.Sources["datastoreType"].Kind; got != tt.wantSource {
				t.Errorf("source = %q, want %q", got, tt.wantSource)
			}
		})
	}
}

func TestTypedFieldsFromEachLayer(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(t *testing.T) Options
		want  Spec
		field string
		src   Source
	}{
		{
			name: "file",
			opts: func(t *testing.T) Options {
				return Options{ConfigFileSet: true, ConfigFile: writeCfg(t, cfgYAML(
					"  datastoreType: kubernetes\n  k8sClientQPS: 12.5\n  k8sClientBurst: 30\n  usePodCIDR: true\n"))}
			},
			want:  Spec{DatastoreType: "kubernetes", K8sClientQPS: 12.5, K8sClientBurst: 30, UsePodCIDR: true},
			field: "k8sClientBurst", src: Source{Kind: SourceFile, Line: 7},
		},
		{
			name: "env",
			opts: func(t *testing.T) Options {
				return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{
					"DATASTORE_TYPE": "kubernetes", "K8S_CLIENT_QPS": "3", "K8S_CLIENT_BURST": "4",
					"K8S_INSECURE_SKIP_TLS_VERIFY": "1", "K8S_DISABLE_NODE_POLL": "true"})}
			},
			want:  Spec{DatastoreType: "kubernetes", K8sClientQPS: 3, K8sClientBurst: 4, K8sInsecureSkipTLSVerify: true, K8sDisableNodePoll: true},
			field: "k8sClientQPS", src: Source{Kind: SourceEnv, Name: "K8S_CLIENT_QPS"},
		},
		{
			name: "flag",
			opts: func(t *testing.T) Options {
				return Options{ConfigFile: noFile(t), Env: envOf(nil), Overrides: map[string]string{
					"etcdEndpoints": "http://a:2379,https://b:2379", "usePodCIDR": "false", "k8sClientBurst": "7"}}
			},
			want:  Spec{DatastoreType: "etcdv3", EtcdEndpoints: "http://a:2379,https://b:2379", K8sClientBurst: 7},
			field: "usePodCIDR", src: Source{Kind: SourceFlag},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts(t)
			r, err := Load(opts)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if r.Spec != tt.want {
				t.Errorf("spec = %+v\nwant   %+v", r.Spec, tt.want)
			}
			src := tt.src
			if src.Kind == SourceFile {
				src.Name = opts.ConfigFile
			}
			if got := r.Sources[tt.field]; got != src {
				t.Errorf("source of %s = %+v, want %+v", tt.field, got, src)
			}
		})
	}
}

func TestEnvPrefixOrder(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		field    string
		want     string
		wantFrom string
	}{
		{"prefixed wins", map[string]string{"CALICO_ETCD_ENDPOINTS": "http://p:1", "ETCD_ENDPOINTS": "http://q:1"},
			"etcdEndpoints", "http://p:1", "CALICO_ETCD_ENDPOINTS"},
		{"plain alone", map[string]string{"ETCD_ENDPOINTS": "http://q:1"}, "etcdEndpoints", "http://q:1", "ETCD_ENDPOINTS"},
		{"empty prefixed is unset", map[string]string{"CALICO_ETCD_ENDPOINTS": "", "ETCD_ENDPOINTS": "http://q:1"},
			"etcdEndpoints", "http://q:1", "ETCD_ENDPOINTS"},
		{"double prefix for CALICO_API_GROUP", map[string]string{"CALICO_CALICO_API_GROUP": "a", "CALICO_API_GROUP": "b"},
			"calicoAPIGroup", "a", "CALICO_CALICO_API_GROUP"},
		{"plain CALICO_API_GROUP", map[string]string{"CALICO_API_GROUP": "b"}, "calicoAPIGroup", "b", "CALICO_API_GROUP"},
		{"kubeconfig", map[string]string{"CALICO_KUBECONFIG": "/k1", "KUBECONFIG": "/k2"}, "kubeconfig", "/k1", "CALICO_KUBECONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(Options{ConfigFile: noFile(t), Env: envOf(tt.env)})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := fieldValue(t, r, tt.field)
			if got != tt.want {
				t.Errorf("%s = %q, want %q", tt.field, got, tt.want)
			}
			if src := r.Sources[tt.field]; src != (Source{Kind: SourceEnv, Name: tt.wantFrom}) {
				t.Errorf("source = %+v, want env %s", src, tt.wantFrom)
			}
		})
	}
}

func fieldValue(t *testing.T, r *Resolved, name string) any {
	t.Helper()
	f, ok := fieldByName(name)
	if !ok {
		t.Fatalf("no field %q", name)
	}
	return f.get(&r.Spec)
}

func TestFileOnlyFieldsIgnoreEnv(t *testing.T) {
	// etcdKey has no environment variable, so ETCD_KEY must not set it.
	r, err := Load(Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"ETCD_KEY": "x", "CALICO_ETCD_KEY": "y"})})
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.EtcdKey != "" || r.Sources["etcdKey"].Kind != SourceDefault {
		t.Errorf("etcdKey = %q from %v, want unset default", r.Spec.EtcdKey, r.Sources["etcdKey"])
	}
	if EnvNames("etcdKey") != nil {
		t.Errorf("EnvNames(etcdKey) = %v, want nil", EnvNames("etcdKey"))
	}
	if got := strings.Join(EnvNames("etcdEndpoints"), ","); got != "CALICO_ETCD_ENDPOINTS,ETCD_ENDPOINTS" {
		t.Errorf("EnvNames(etcdEndpoints) = %s", got)
	}
}

func TestEnvAndFileMerge(t *testing.T) {
	p := writeCfg(t, cfgYAML("  etcdEndpoints: http://file:2379\n  etcdUsername: fileuser\n"))
	r, err := Load(Options{ConfigFile: p, ConfigFileSet: true, Env: envOf(map[string]string{"ETCD_USERNAME": "envuser", "ETCD_PASSWORD": "pw"})})
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{DatastoreType: "etcdv3", EtcdEndpoints: "http://file:2379", EtcdUsername: "envuser", EtcdPassword: "pw"}
	if r.Spec != want {
		t.Errorf("spec = %+v, want %+v", r.Spec, want)
	}
	if r.File != p {
		t.Errorf("File = %q, want %q", r.File, p)
	}
	if got := r.Sources["etcdEndpoints"]; got != (Source{Kind: SourceFile, Name: p, Line: 5}) {
		t.Errorf("etcdEndpoints source = %+v", got)
	}
	if got := r.Sources["datastoreType"]; got.Kind != SourceDefault {
		t.Errorf("datastoreType source = %+v, want default", got)
	}
	if len(r.Sources) != len(FieldNames()) {
		t.Errorf("Sources has %d entries, want one per field (%d)", len(r.Sources), len(FieldNames()))
	}
}

func TestDatastoreTypeDefault(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing", nil, "kubernetes"},
		{"endpoints", map[string]string{"ETCD_ENDPOINTS": "http://x:2379"}, "etcdv3"},
		{"discovery srv", map[string]string{"ETCD_DISCOVERY_SRV": "example.com"}, "etcdv3"},
		{"explicit, padded", map[string]string{"DATASTORE_TYPE": " etcdv3 "}, "etcdv3"},
		{"explicit kubernetes with endpoints", map[string]string{"ETCD_ENDPOINTS": "http://x:2379", "DATASTORE_TYPE": "kubernetes"}, "kubernetes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(Options{ConfigFile: noFile(t), Env: envOf(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Spec.DatastoreType != tt.want {
				t.Errorf("datastoreType = %q, want %q", r.Spec.DatastoreType, tt.want)
			}
		})
	}
}

func TestKubeconfigDefault(t *testing.T) {
	withKube := t.TempDir()
	if err := os.MkdirAll(filepath.Join(withKube, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(withKube, ".kube", "config"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	withoutKube := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"home has config", map[string]string{"HOME": withKube}, filepath.Join(withKube, ".kube", "config")},
		{"home lacks config", map[string]string{"HOME": withoutKube}, ""},
		{"etcd datastore", map[string]string{"HOME": withKube, "ETCD_ENDPOINTS": "http://x:1"}, ""},
		{"endpoint given", map[string]string{"HOME": withKube, "K8S_API_ENDPOINT": "https://api:6443"}, ""},
		{"kubeconfig given", map[string]string{"HOME": withKube, "KUBECONFIG": "/mine"}, "/mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Load(Options{ConfigFile: noFile(t), Env: envOf(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			if r.Spec.Kubeconfig != tt.want {
				t.Errorf("kubeconfig = %q, want %q", r.Spec.Kubeconfig, tt.want)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		set     bool
		wantErr string
	}{
		{"unset path missing is silent", noFile, false, ""},
		{"given path missing", noFile, true, "Error reading config file: "},
		{"given default path missing is silent", func(*testing.T) string { return DefaultConfigFile }, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.path(t)
			if p == DefaultConfigFile {
				if _, err := os.Stat(p); err == nil {
					t.Skip("this machine has a real " + DefaultConfigFile)
				}
			}
			r, err := Load(Options{ConfigFile: p, ConfigFileSet: tt.set, Env: envOf(nil)})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if r.File != "" {
					t.Errorf("File = %q, want none", r.File)
				}
				return
			}
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if err.Error() != tt.wantErr+p {
				t.Errorf("error = %q, want %q", err, tt.wantErr+p)
			}
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error does not wrap fs.ErrNotExist: %v", err)
			}
		})
	}
}

func TestBadConfigFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // suffix after "Error reading config file: <path>"
	}{
		{"yaml syntax", cfgYAML("  etcdUsername: a: b\n"), ": line 5: mapping values are not allowed in this context"},
		{"unknown spec field", cfgYAML("  datastoreType: etcdv3\n  etcdEndpoint: http://x\n"), ": line 6: unknown field \"spec.etcdEndpoint\""},
		{"case hint", cfgYAML("  etcdendpoints: http://x\n"), ": line 5: unknown field \"spec.etcdendpoints\" (did you mean \"etcdEndpoints\"?)"},
		{"unknown top-level field", cfgYAML("  datastoreType: etcdv3\nstatus: {}\n"), ": line 6: unknown field \"status\""},
		{"wrong kind", "apiVersion: projectcalico.org/v3\nkind: IPPool\nspec: {}\n", ": line 1: kind must be \"CalicoAPIConfig\", got \"IPPool\""},
		{"wrong apiVersion", "apiVersion: v1\nkind: CalicoAPIConfig\n", ": line 1: apiVersion must be \"projectcalico.org/v3\", got \"v1\""},
		{"empty", "\n\n", ": file is empty"},
		{"not a mapping", "- a\n- b\n", ": line 1: expected a CalicoAPIConfig object"},
		{"spec is a list", "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n- a\n", ": line 4: field \"spec\" must be an object"},
		{"value is a list", cfgYAML("  etcdEndpoints:\n  - http://x\n"), ": line 6: field \"spec.etcdEndpoints\" must be a single value"},
		{"duplicate", cfgYAML("  etcdUsername: a\n  etcdUsername: b\n"), ": line 6: duplicate field \"spec.etcdUsername\""},
		{"bad json", "{\"apiVersion\": \"projectcalico.org/v3\",\n \"kind\": \"CalicoAPIConfig\",\n \"spec\": {\"x\": 1,}\n", ": line 3:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeCfg(t, tt.content)
			_, err := Load(Options{ConfigFile: p, ConfigFileSet: true, Env: envOf(nil)})
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			want := "Error reading config file: " + p + tt.want
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error = %q\nwant prefix %q", err, want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != p {
				t.Errorf("error is not a *FileError for %s: %#v", p, err)
			}
		})
	}
}

func TestJSONConfigFile(t *testing.T) {
	p := writeCfg(t, "{\n\t\"apiVersion\": \"projectcalico.org/v3\",\n\t\"kind\": \"CalicoAPIConfig\",\n\t\"metadata\": {},\n"+
		"\t\"spec\": {\n\t\t\"etcdEndpoints\": \"http://j:2379\",\n\t\t\"k8sDisableNodePoll\": true,\n\t\t\"etcdUsername\": null\n\t}\n}\n")
	r, err := Load(Options{ConfigFile: p, ConfigFileSet: true, Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{DatastoreType: "etcdv3", EtcdEndpoints: "http://j:2379", K8sDisableNodePoll: true}
	if r.Spec != want {
		t.Errorf("spec = %+v, want %+v", r.Spec, want)
	}
	if got := r.Sources["etcdEndpoints"].Line; got != 6 {
		t.Errorf("etcdEndpoints line = %d, want 6", got)
	}
}

func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name string
		opts func(t *testing.T) Options
		want string // the whole error, with PATH replaced by the file path
	}{
		{"datastoreType from env", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"CALICO_DATASTORE_TYPE": "etcd"})}
		}, `invalid datastoreType "etcd" (from env CALICO_DATASTORE_TYPE): must be "etcdv3" or "kubernetes"`},
		{"qps from file", func(t *testing.T) Options {
			return Options{ConfigFileSet: true, ConfigFile: writeCfg(t, cfgYAML("  k8sClientQPS: fast\n"))}
		}, `invalid k8sClientQPS "fast" (from file PATH:5): must be a number`},
		{"burst from flag", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(nil), Overrides: map[string]string{"k8sClientBurst": "-1"}}
		}, `invalid k8sClientBurst "-1" (from flag): must not be negative`},
		{"burst fraction", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"K8S_CLIENT_BURST": "2.5"})}
		}, `invalid k8sClientBurst "2.5" (from env K8S_CLIENT_BURST): must be a whole number`},
		{"bool", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"USE_POD_CIDR": "maybe"})}
		}, `invalid usePodCIDR "maybe" (from env USE_POD_CIDR): must be true or false`},
		{"endpoint not a URL", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"ETCD_ENDPOINTS": "http://ok:2379,127.0.0.1:2379"})}
		}, `invalid etcdEndpoints "http://ok:2379,127.0.0.1:2379" (from env ETCD_ENDPOINTS): "127.0.0.1:2379" is not an etcd URL (want e.g. http://127.0.0.1:2379)`},
		{"api endpoint", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(map[string]string{"K8S_API_ENDPOINT": "ftp://x"})}
		}, `invalid k8sAPIEndpoint "ftp://x" (from env K8S_API_ENDPOINT): not an API server URL (want e.g. https://10.0.0.1:6443)`},
		{"unknown override", func(t *testing.T) Options {
			return Options{ConfigFile: noFile(t), Env: envOf(nil), Overrides: map[string]string{"etcdEndpoint": "x"}}
		}, `unknown configuration field "etcdEndpoint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts(t)
			_, err := Load(opts)
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			want := strings.ReplaceAll(tt.want, "PATH", opts.ConfigFile)
			if err.Error() != want {
				t.Errorf("error = %q\nwant    %q", err, want)
			}
		})
	}
}

func TestContextFlag(t *testing.T) {
	tests := []struct {
		name      string
		opts      Options
		want      string
		wantSrc   Source
		wantNoErr bool
	}{
		{"context", Options{Context: "ctx1"}, "ctx1", Source{Kind: SourceFlag, Name: "--context"}, true},
		{"override wins", Options{Context: "ctx1", Overrides: map[string]string{"k8sCurrentContext": "ctx2"}}, "ctx2", Source{Kind: SourceFlag}, true},
		{"context over env", Options{Context: "ctx1", Env: envOf(map[string]string{"K8S_CURRENT_CONTEXT": "envctx"})}, "ctx1", Source{Kind: SourceFlag, Name: "--context"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.ConfigFile = noFile(t)
			if opts.Env == nil {
				opts.Env = envOf(nil)
			}
			r, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Spec.K8sCurrentContext != tt.want || r.Sources["k8sCurrentContext"] != tt.wantSrc {
				t.Errorf("k8sCurrentContext = %q from %+v, want %q from %+v",
					r.Spec.K8sCurrentContext, r.Sources["k8sCurrentContext"], tt.want, tt.wantSrc)
			}
		})
	}
}

func TestEtcdEndpointList(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"http://a:1", "http://a:1"},
		{" http://a:1 , ,https://b:2,", "http://a:1|https://b:2"},
	}
	for _, tt := range tests {
		if got := strings.Join(Spec{EtcdEndpoints: tt.in}.EtcdEndpointList(), "|"); got != tt.want {
			t.Errorf("EtcdEndpointList(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
