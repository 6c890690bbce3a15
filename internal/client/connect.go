package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/config"
)

// ErrNoDatastore is returned by Connect when the configuration names no
// datastore at all.
var ErrNoDatastore = errors.New("no datastore configured: set KUBECONFIG (or --kubeconfig) for the Kubernetes datastore, " +
	"or DATASTORE_TYPE=etcdv3 and ETCD_ENDPOINTS (e.g. http://127.0.0.1:2379 for `calicoctl datastore serve`)")

// Connect opens the datastore a resolved client configuration describes.
// The CLI, the node agent and the CNI plugin all connect through it. env
// answers the environment lookups the Kubernetes backend makes (in-cluster
// detection); nil means none.
func Connect(ctx context.Context, spec config.Spec, env func(string) (string, bool)) (datastore.Interface, error) {
	switch spec.DatastoreType {
	case "etcdv3":
		return etcd.New(ctx, etcd.Config{
			Endpoints:  spec.EtcdEndpointList(),
			Username:   spec.EtcdUsername,
			Password:   spec.EtcdPassword,
			KeyFile:    spec.EtcdKeyFile,
			CertFile:   spec.EtcdCertFile,
			CACertFile: spec.EtcdCACertFile,
			Key:        spec.EtcdKey,
			Cert:       spec.EtcdCert,
			CACert:     spec.EtcdCACert,
		})
	case "kubernetes":
		kc := KubernetesConfig(spec, env)
		if kc.Kubeconfig == "" && kc.APIEndpoint == "" && !kc.InCluster {
			return nil, ErrNoDatastore
		}
		return kubernetes.New(ctx, kc)
	default:
		return nil, fmt.Errorf("unknown datastore type %q", spec.DatastoreType)
	}
}

// KubernetesConfig maps a client configuration onto the Kubernetes
// backend's settings. With neither a kubeconfig nor an API endpoint, a
// process running in a pod uses its service account.
func KubernetesConfig(s config.Spec, env func(string) (string, bool)) kubernetes.Config {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	kc := kubernetes.Config{
		Kubeconfig:            s.Kubeconfig,
		Context:               s.K8sCurrentContext,
		APIEndpoint:           s.K8sAPIEndpoint,
		CertFile:              s.K8sCertFile,
		KeyFile:               s.K8sKeyFile,
		CAFile:                s.K8sCAFile,
		Token:                 s.K8sAPIToken,
		InsecureSkipTLSVerify: s.K8sInsecureSkipTLSVerify,
		QPS:                   float32(s.K8sClientQPS),
		Burst:                 s.K8sClientBurst,
	}
	if host, ok := env("KUBERNETES_SERVICE_HOST"); ok && host != "" && kc.Kubeconfig == "" && kc.APIEndpoint == "" {
		kc.InCluster = true
	}
	return kc
}
