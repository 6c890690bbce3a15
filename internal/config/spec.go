package config

// Spec is the spec of a CalicoAPIConfig: how calicoctl reaches its datastore.
// JSON names are the field names used in config files, in Options.Overrides
// and in Resolved.Sources.
type Spec struct {
	DatastoreType string `json:"datastoreType"`

	EtcdEndpoints    string `json:"etcdEndpoints"` // comma-separated URLs
	EtcdDiscoverySrv string `json:"etcdDiscoverySrv"`
	EtcdUsername     string `json:"etcdUsername"`
	EtcdPassword     string `json:"etcdPassword"`
	EtcdKeyFile      string `json:"etcdKeyFile"`
	EtcdCertFile     string `json:"etcdCertFile"`
	EtcdCACertFile   string `json:"etcdCACertFile"`
	EtcdKey          string `json:"etcdKey"`    // inline PEM
	EtcdCert         string `json:"etcdCert"`   // inline PEM
	EtcdCACert       string `json:"etcdCACert"` // inline PEM

	Kubeconfig               string  `json:"kubeconfig"`
	K8sAPIEndpoint           string  `json:"k8sAPIEndpoint"`
	K8sKeyFile               string  `json:"k8sKeyFile"`
	K8sCertFile              string  `json:"k8sCertFile"`
	K8sCAFile                string  `json:"k8sCAFile"`
	K8sAPIToken              string  `json:"k8sAPIToken"`
	K8sInsecureSkipTLSVerify bool    `json:"k8sInsecureSkipTLSVerify"`
	K8sDisableNodePoll       bool    `json:"k8sDisableNodePoll"`
	UsePodCIDR               bool    `json:"usePodCIDR"`
	KubeconfigInline         string  `json:"kubeconfigInline"`
	K8sClientQPS             float64 `json:"k8sClientQPS"`
	K8sClientBurst           int     `json:"k8sClientBurst"`
	K8sCurrentContext        string  `json:"k8sCurrentContext"`
	CalicoAPIGroup           string  `json:"calicoAPIGroup"`
}

// Datastore types accepted in datastoreType.
const (
	DatastoreEtcdV3     = "etcdv3"
	DatastoreKubernetes = "kubernetes"
)

type valueKind int

const (
	kindString valueKind = iota
	kindBool
	kindFloat
	kindInt
)

// field describes one spec field: its name, the environment variable that
// sets it (without the CALICO_ prefix; empty when file-only), its type, and
// whether its value is a secret to mask when shown.
type field struct {
	name   string
	env    string
	kind   valueKind
	secret bool
	// set stores a parsed value into a Spec; get reads it back.
	set func(s *Spec, v any)
	get func(s *Spec) any
}

func str(p func(*Spec) *string) (func(*Spec, any), func(*Spec) any) {
	return func(s *Spec, v any) { *p(s) = v.(string) }, func(s *Spec) any { return *p(s) }
}

func boolean(p func(*Spec) *bool) (func(*Spec, any), func(*Spec) any) {
	return func(s *Spec, v any) { *p(s) = v.(bool) }, func(s *Spec) any { return *p(s) }
}

func newField(name, env string, kind valueKind, secret bool, set func(*Spec, any), get func(*Spec) any) field {
	return field{name: name, env: env, kind: kind, secret: secret, set: set, get: get}
}

func strField(name, env string, secret bool, p func(*Spec) *string) field {
	set, get := str(p)
	return newField(name, env, kindString, secret, set, get)
}

func boolField(name, env string, p func(*Spec) *bool) field {
	set, get := boolean(p)
	return newField(name, env, kindBool, false, set, get)
}

// fields lists every spec field in the order they are shown by View.
var fields = []field{
	strField("datastoreType", "DATASTORE_TYPE", false, func(s *Spec) *string { return &s.DatastoreType }),
	strField("etcdEndpoints", "ETCD_ENDPOINTS", false, func(s *Spec) *string { return &s.EtcdEndpoints }),
	strField("etcdDiscoverySrv", "ETCD_DISCOVERY_SRV", false, func(s *Spec) *string { return &s.EtcdDiscoverySrv }),
	strField("etcdUsername", "ETCD_USERNAME", false, func(s *Spec) *string { return &s.EtcdUsername }),
	strField("etcdPassword", "ETCD_PASSWORD", true, func(s *Spec) *string { return &s.EtcdPassword }),
	strField("etcdKeyFile", "ETCD_KEY_FILE", false, func(s *Spec) *string { return &s.EtcdKeyFile }),
	strField("etcdCertFile", "ETCD_CERT_FILE", false, func(s *Spec) *string { return &s.EtcdCertFile }),
	strField("etcdCACertFile", "ETCD_CA_CERT_FILE", false, func(s *Spec) *string { return &s.EtcdCACertFile }),
	strField("etcdKey", "", true, func(s *Spec) *string { return &s.EtcdKey }),
	strField("etcdCert", "", false, func(s *Spec) *string { return &s.EtcdCert }),
	strField("etcdCACert", "", false, func(s *Spec) *string { return &s.EtcdCACert }),
	strField("kubeconfig", "KUBECONFIG", false, func(s *Spec) *string { return &s.Kubeconfig }),
	strField("k8sAPIEndpoint", "K8S_API_ENDPOINT", false, func(s *Spec) *string { return &s.K8sAPIEndpoint }),
	strField("k8sKeyFile", "K8S_KEY_FILE", false, func(s *Spec) *string { return &s.K8sKeyFile }),
	strField("k8sCertFile", "K8S_CERT_FILE", false, func(s *Spec) *string { return &s.K8sCertFile }),
	strField("k8sCAFile", "K8S_CA_FILE", false, func(s *Spec) *string { return &s.K8sCAFile }),
	strField("k8sAPIToken", "K8S_API_TOKEN", true, func(s *Spec) *string { return &s.K8sAPIToken }),
	boolField("k8sInsecureSkipTLSVerify", "K8S_INSECURE_SKIP_TLS_VERIFY", func(s *Spec) *bool { return &s.K8sInsecureSkipTLSVerify }),
	boolField("k8sDisableNodePoll", "K8S_DISABLE_NODE_POLL", func(s *Spec) *bool { return &s.K8sDisableNodePoll }),
	boolField("usePodCIDR", "USE_POD_CIDR", func(s *Spec) *bool { return &s.UsePodCIDR }),
	// An inline kubeconfig can carry client keys and tokens: treat it as a secret.
	strField("kubeconfigInline", "", true, func(s *Spec) *string { return &s.KubeconfigInline }),
	newField("k8sClientQPS", "K8S_CLIENT_QPS", kindFloat, false,
		func(s *Spec, v any) { s.K8sClientQPS = v.(float64) }, func(s *Spec) any { return s.K8sClientQPS }),
	newField("k8sClientBurst", "K8S_CLIENT_BURST", kindInt, false,
		func(s *Spec, v any) { s.K8sClientBurst = v.(int) }, func(s *Spec) any { return s.K8sClientBurst }),
	strField("k8sCurrentContext", "K8S_CURRENT_CONTEXT", false, func(s *Spec) *string { return &s.K8sCurrentContext }),
	strField("calicoAPIGroup", "CALICO_API_GROUP", false, func(s *Spec) *string { return &s.CalicoAPIGroup }),
}

// fieldByName finds a field by its spec name (exact spelling).
func fieldByName(name string) (field, bool) {
	for _, f := range fields {
		if f.name == name {
			return f, true
		}
	}
	return field{}, false
}

// FieldNames returns every spec field name in display order.
func FieldNames() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// EnvNames returns the environment variables consulted for a field, in
// lookup order (CALICO_<NAME> first, then <NAME>); nil for file-only fields.
func EnvNames(fieldName string) []string {
	f, ok := fieldByName(fieldName)
	if !ok || f.env == "" {
		return nil
	}
	return []string{"CALICO_" + f.env, f.env}
}
