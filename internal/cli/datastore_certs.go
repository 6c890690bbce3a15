package cli

import (
	"context"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/opencalico/calicoctl/internal/etcdserver"
)

func newCertsCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Manage the embedded datastore's CA and certificates",
		Long: "The datastore's CA lives in <data-dir>/pki (or --ca-dir). `init` creates it, `issue` signs a client\n" +
			"certificate (one per node agent or operator), `issue-member` signs the server/peer certificate of\n" +
			"another member of a highly available datastore and writes it into that member's data directory.",
	}
	cmd.AddCommand(newCertsInitCommand(f), newCertsIssueCommand(f, false), newCertsIssueCommand(f, true))
	return cmd
}

// caLocation is the --data-dir/--ca-dir pair shared by the certs commands.
type caLocation struct {
	DataDir string
	CADir   string
}

func (l *caLocation) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.DataDir, "data-dir", "./calico-data", "datastore directory whose pki/ holds the CA")
	cmd.Flags().StringVar(&l.CADir, "ca-dir", "", "directory holding ca.crt and ca.key (default <data-dir>/pki)")
}

func (l *caLocation) dir() string {
	if l.CADir != "" {
		return l.CADir
	}
	return etcdserver.PKIDir(l.DataDir)
}

// CertsInitOptions drive `calicoctl datastore certs init`.
type CertsInitOptions struct {
	f        *Factory
	loc      caLocation
	Validity time.Duration
}

func newCertsInitCommand(f *Factory) *cobra.Command {
	o := &CertsInitOptions{f: f}
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Create the datastore CA (kept when it exists)",
		Example: "  calicoctl datastore certs init --ca-dir /root/calico-ca",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
	o.loc.bind(cmd)
	cmd.Flags().DurationVar(&o.Validity, "valid-for", etcdserver.DefaultCAValidity, "CA validity")
	return cmd
}

// Run creates or reports the CA.
func (o *CertsInitOptions) Run(context.Context) error {
	ca, created, err := etcdserver.InitCA(o.loc.dir(), o.Validity)
	if err != nil {
		return err
	}
	verb := "Kept existing"
	if created {
		verb = "Created"
	}
	fmt.Fprintf(o.f.Streams.Out, "%s CA %s (valid until %s)\n", verb, filepath.Join(o.loc.dir(), etcdserver.CACertFile), ca.Cert.NotAfter.UTC().Format(time.DateOnly))
	return nil
}

// CertsIssueOptions drive `certs issue NAME` (a client certificate) and
// `certs issue-member NAME` (a member's server/peer and client certificates).
type CertsIssueOptions struct {
	f        *Factory
	member   bool
	loc      caLocation
	Name     string
	Out      string
	SANs     []string
	Validity time.Duration
}

func newCertsIssueCommand(f *Factory, member bool) *cobra.Command {
	o := &CertsIssueOptions{f: f, member: member}
	cmd := &cobra.Command{
		Use:     "issue NAME",
		Short:   "Issue a client certificate (CN=NAME) signed by the datastore CA",
		Example: "  calicoctl datastore certs issue node-1 --data-dir /var/lib/calico-datastore --out ./node-1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	if member {
		cmd.Use = "issue-member NAME"
		cmd.Short = "Issue a member's server/peer certificate into its data directory (--out)"
		cmd.Example = "  calicoctl datastore certs issue-member m2 --ca-dir ./ca --out ./m2-data --san 10.0.0.2"
		cmd.Flags().StringArrayVar(&o.SANs, "san", nil, "IP or DNS name of the member (repeatable; 127.0.0.1 and localhost are added)")
	}
	o.loc.bind(cmd)
	cmd.Flags().StringVar(&o.Out, "out", ".", "output directory (issue-member: the member's data directory)")
	cmd.Flags().DurationVar(&o.Validity, "valid-for", etcdserver.DefaultLeafValidity, "certificate validity")
	return cmd
}

// Complete takes the name.
func (o *CertsIssueOptions) Complete(args []string) error {
	o.Name = args[0]
	return nil
}

// Validate checks the name and the output.
func (o *CertsIssueOptions) Validate() error {
	if o.Name == "" || filepath.Base(o.Name) != o.Name {
		return fmt.Errorf("invalid certificate name %q: want a plain name such as node-1", o.Name)
	}
	if o.Validity <= 0 {
		return fmt.Errorf("--valid-for must be positive")
	}
	if o.member && len(o.SANs) == 0 {
		return fmt.Errorf("issue-member needs the member's address: --san IP")
	}
	return nil
}

// Run signs and writes the certificates.
func (o *CertsIssueOptions) Run(context.Context) error {
	ca, err := etcdserver.LoadCA(o.loc.dir())
	if err != nil {
		return fmt.Errorf("load CA (create it with `calicoctl datastore certs init`): %w", err)
	}
	out := o.f.Streams.Out
	if o.member {
		pki := etcdserver.PKIDir(o.Out)
		files := etcdserver.FilesIn(pki)
		if err := writeCACert(ca.Cert.Raw, files.CA); err != nil {
			return err
		}
		sans := append([]string{"127.0.0.1", "localhost"}, o.SANs...)
		if err := ca.Issue(etcdserver.LeafSpec{CommonName: o.Name, Server: true, SANs: sans, Validity: o.Validity}, files.ServerCert, files.ServerKey); err != nil {
			return err
		}
		if err := ca.Issue(etcdserver.LeafSpec{CommonName: etcdserver.ServerClientName, Validity: o.Validity}, files.ClientCert, files.ClientKey); err != nil {
			return err
		}
		fmt.Fprintf(out, "Wrote member %s's certificates to %s; start it with --data-dir %s\n", o.Name, pki, o.Out)
		return nil
	}
	certPath := filepath.Join(o.Out, o.Name+".crt")
	keyPath := filepath.Join(o.Out, o.Name+".key")
	caPath := filepath.Join(o.Out, etcdserver.CACertFile)
	if err := ca.Issue(etcdserver.LeafSpec{CommonName: o.Name, Validity: o.Validity}, certPath, keyPath); err != nil {
		return err
	}
	if err := writeCACert(ca.Cert.Raw, caPath); err != nil {
		return err
	}
	fmt.Fprintf(out, "Issued client certificate %s for %q. Use it with:\n  export ETCD_CA_CERT_FILE=%s ETCD_CERT_FILE=%s ETCD_KEY_FILE=%s\n", certPath, o.Name, abs(caPath), abs(certPath), abs(keyPath))
	return nil
}

// writeCACert writes a CA certificate (DER) as PEM.
func writeCACert(der []byte, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
