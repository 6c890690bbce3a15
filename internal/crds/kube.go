package crds

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/opencalico/calicoctl/internal/config"
)

// RESTConfig builds a Kubernetes client configuration from calicoctl's
// resolved settings: an inline kubeconfig, else the kubeconfig file, with the
// k8s* fields overriding what it says; with neither a kubeconfig nor an API
// endpoint, the in-cluster service account (the calicoctl pod).
func RESTConfig(s config.Spec) (*rest.Config, error) {
	overrides := &clientcmd.ConfigOverrides{
		CurrentContext: s.K8sCurrentContext,
		ClusterInfo: clientcmdapi.Cluster{
			Server:                s.K8sAPIEndpoint,
			CertificateAuthority:  s.K8sCAFile,
			InsecureSkipTLSVerify: s.K8sInsecureSkipTLSVerify,
		},
		AuthInfo: clientcmdapi.AuthInfo{
			ClientCertificate: s.K8sCertFile,
			ClientKey:         s.K8sKeyFile,
			Token:             s.K8sAPIToken,
		},
	}
	var (
		cfg *rest.Config
		err error
	)
	switch {
	case s.KubeconfigInline != "":
		var kc *clientcmdapi.Config
		if kc, err = clientcmd.Load([]byte(s.KubeconfigInline)); err != nil {
			return nil, fmt.Errorf("reading kubeconfigInline: %w", err)
		}
		cfg, err = clientcmd.NewDefaultClientConfig(*kc, overrides).ClientConfig()
	case s.Kubeconfig != "" || s.K8sAPIEndpoint != "":
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: s.Kubeconfig}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	default:
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, errors.New("no Kubernetes configuration: set --kubeconfig, KUBECONFIG or K8S_API_ENDPOINT, or run inside a pod")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	if s.K8sClientQPS > 0 {
		cfg.QPS = float32(s.K8sClientQPS)
	}
	if s.K8sClientBurst > 0 {
		cfg.Burst = s.K8sClientBurst
	}
	return cfg, nil
}
