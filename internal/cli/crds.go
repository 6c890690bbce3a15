package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/internal/crds"
)

// newCRDsCommand is `calicoctl datastore crds`: the crd.projectcalico.org
// CustomResourceDefinitions the Kubernetes datastore needs.
func newCRDsCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "crds",
		Short: "Install or print the Calico CustomResourceDefinitions (Kubernetes datastore)",
		Long: "The Kubernetes datastore keeps Calico resources as crd.projectcalico.org/v1 custom resources.\n" +
			"`install` applies their CustomResourceDefinitions to the cluster; `print` writes the manifest.",
	}
	cmd.AddCommand(newCRDsInstallCommand(f), newCRDsPrintCommand(f))
	return cmd
}

// CRDsInstallOptions drive `calicoctl datastore crds install`.
type CRDsInstallOptions struct {
	f *Factory
	// Timeout bounds the wait for the CRDs to be established.
	Timeout time.Duration
}

func newCRDsInstallCommand(f *Factory) *cobra.Command {
	o := &CRDsInstallOptions{f: f}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Apply the Calico CRDs server-side and wait until they are established",
		Long: "Apply every crd.projectcalico.org CustomResourceDefinition with server-side apply (field manager\n" +
			"calicoctl) and wait until the API server serves them. Safe to repeat: it also upgrades them.\n" +
			"The cluster comes from --kubeconfig, KUBECONFIG, the config file's k8s settings, or the pod's\n" +
			"service account when run inside the cluster.",
		Example: "  calicoctl datastore crds install --kubeconfig ~/.kube/config",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&o.Timeout, "timeout", crds.DefaultEstablishTimeout, "how long to wait for the CRDs to be established")
	return cmd
}

// Validate checks the flags.
func (o *CRDsInstallOptions) Validate() error {
	if o.Timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", o.Timeout)
	}
	return nil
}

// Run applies the CRDs and reports how many were applied.
func (o *CRDsInstallOptions) Run(ctx context.Context) error {
	rc, err := o.restConfig(ctx)
	if err != nil {
		return err
	}
	n, err := crds.Install(ctx, rc, crds.InstallOptions{EstablishTimeout: o.Timeout})
	if err != nil {
		return fmt.Errorf("installing CRDs (%d applied): %w", n, err)
	}
	fmt.Fprintf(o.f.Streams.Out, "Successfully applied %d CRD(s)\n", n)
	return nil
}

// restConfig reaches the cluster the way the Kubernetes datastore does
// (same kubeconfig, context, overrides and in-cluster account), without
// requiring the CRDs that are about to be installed.
func (o *CRDsInstallOptions) restConfig(ctx context.Context) (*rest.Config, error) {
	cfg, err := o.f.Config()
	if err != nil {
		return nil, err
	}
	kc := client.KubernetesConfig(cfg.Spec, o.f.Env)
	if kc.Kubeconfig == "" && kc.APIEndpoint == "" && !kc.InCluster {
		return nil, errors.New("no Kubernetes cluster configured: set KUBECONFIG or --kubeconfig (or K8S_API_ENDPOINT), or run inside a pod")
	}
	kc.SkipCRDCheck = true
	b, err := kubernetes.New(ctx, kc)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return b.RESTConfig(), nil
}

func newCRDsPrintCommand(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:     "print",
		Short:   "Print the Calico CRDs as a YAML manifest",
		Example: "  calicoctl datastore crds print | kubectl apply --server-side -f -",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := crds.YAML()
			if err != nil {
				return err
			}
			_, err = f.Streams.Out.Write(data)
			return err
		},
	}
}

// newPauseCommand is the hidden `calicoctl pause`: it waits for SIGTERM or
// SIGINT (main cancels the command's context) so the calicoctl pod of
// manifests/calicoctl.yaml stays up in a scratch image with no shell or
// sleep, ready for `kubectl exec`.
func newPauseCommand(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "pause",
		Short:  "Wait until terminated (keeps the in-cluster calicoctl pod running)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			<-cmd.Context().Done()
			return nil
		},
	}
}
