package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newMemberCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Add or remove members of an etcd datastore (ETCD_* settings)",
	}
	cmd.AddCommand(newMemberAddCommand(f), newMemberRemoveCommand(f))
	return cmd
}

// MemberAddOptions drive `calicoctl datastore member add NAME --peer-url URL`.
type MemberAddOptions struct {
	f           *Factory
	Name        string
	PeerURL     string
	DialTimeout time.Duration
	Wait        time.Duration
}

func newMemberAddCommand(f *Factory) *cobra.Command {
	o := &MemberAddOptions{f: f}
	cmd := &cobra.Command{
		Use:     "add NAME --peer-url URL",
		Short:   "Announce a new member; then start it with the printed --initial-cluster and --initial-cluster-state existing",
		Example: "  calicoctl datastore member add m2 --peer-url https://10.0.0.2:2380",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.PeerURL, "peer-url", "", "the new member's peer URL (https://ip:2380)")
	cmd.Flags().DurationVar(&o.Wait, "wait", 30*time.Second, "how long to wait for the cluster to be healthy enough to add a member")
	cmd.Flags().DurationVar(&o.DialTimeout, "dial-timeout", 5*time.Second, "give up when the datastore does not answer in this time")
	return cmd
}

// Validate checks the URL.
func (o *MemberAddOptions) Validate() error {
	u, err := url.Parse(o.PeerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		return fmt.Errorf("invalid --peer-url %q: want https://ip:port", o.PeerURL)
	}
	return nil
}

// Run adds the member and prints how to start it.
func (o *MemberAddOptions) Run(ctx context.Context) error {
	c, err := o.f.etcdClient(o.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	// etcd refuses a new member until every member has been connected for
	// a few seconds (right after the previous one joined): wait for that.
	deadline := time.Now().Add(o.Wait)
	var resp *clientv3.MemberAddResponse
	for {
		actx, cancel := context.WithTimeout(ctx, o.DialTimeout)
		resp, err = c.MemberAdd(actx, []string{o.PeerURL})
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrUnhealthy) || time.Now().After(deadline) {
			return fmt.Errorf("member add %s: %w", o.Name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("member add %s: %w", o.Name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	var ic []string
	for _, m := range resp.Members {
		name := m.Name
		if m.ID == resp.Member.ID {
			name = o.Name
		}
		for _, p := range m.PeerURLs {
			ic = append(ic, name+"="+p)
		}
	}
	slices.Sort(ic)
	fmt.Fprintf(o.f.Streams.Out, "Added member %s (%x). Start it with:\n  calicoctl datastore serve --name %s --initial-cluster %s --initial-cluster-state existing ...\n",
		o.Name, resp.Member.ID, o.Name, strings.Join(ic, ","))
	return nil
}

// MemberRemoveOptions drive `calicoctl datastore member remove NAME`.
type MemberRemoveOptions struct {
	f           *Factory
	Name        string
	DialTimeout time.Duration
}

func newMemberRemoveCommand(f *Factory) *cobra.Command {
	o := &MemberRemoveOptions{f: f}
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a member (for example one whose machine is gone for good)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&o.DialTimeout, "dial-timeout", 5*time.Second, "give up when the datastore does not answer in this time")
	return cmd
}

// Run removes the named member.
func (o *MemberRemoveOptions) Run(ctx context.Context) error {
	c, err := o.f.etcdClient(o.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	rctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	list, err := c.MemberList(rctx)
	if err != nil {
		return fmt.Errorf("member list: %w", err)
	}
	var names []string
	for _, m := range list.Members {
		if m.Name == o.Name {
			if _, err := c.MemberRemove(rctx, m.ID); err != nil {
				return fmt.Errorf("member remove %s: %w", o.Name, err)
			}
			fmt.Fprintf(o.f.Streams.Out, "Removed member %s (%x)\n", o.Name, m.ID)
			return nil
		}
		names = append(names, m.Name)
	}
	return fmt.Errorf("no member named %q (members: %s)", o.Name, strings.Join(names, ", "))
}

// etcdClient connects to every configured endpoint.
func (f *Factory) etcdClient(dialTimeout time.Duration) (*clientv3.Client, error) {
	base, endpoints, err := etcdClientConfig(f, dialTimeout)
	if err != nil {
		return nil, err
	}
	base.Endpoints = endpoints
	return clientv3.New(base)
}
