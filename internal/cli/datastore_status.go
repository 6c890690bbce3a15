package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DatastoreStatusOptions drive `calicoctl datastore status`.
type DatastoreStatusOptions struct {
	f           *Factory
	DialTimeout time.Duration
}

func newDatastoreStatusCommand(f *Factory) *cobra.Command {
	o := &DatastoreStatusOptions{f: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each etcd endpoint's member, leadership and revision (ETCD_* settings)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().DurationVar(&o.DialTimeout, "dial-timeout", 3*time.Second, "give up on an endpoint that does not answer in this time")
	return cmd
}

// memberStatus is one row of the status table.
type memberStatus struct {
	Endpoint, Name string
	Leader         bool
	Revision       int64
	DBSize         int64
	Err            error
}

// statusRows renders the rows (pure, for tests).
func statusRows(rows []memberStatus) [][]string {
	out := [][]string{{"ENDPOINT", "MEMBER", "LEADER", "REVISION", "DB SIZE", "ERROR"}}
	for _, r := range rows {
		if r.Err != nil {
			out = append(out, []string{r.Endpoint, "", "", "", "", strings.ReplaceAll(r.Err.Error(), "\n", " ")})
			continue
		}
		out = append(out, []string{r.Endpoint, r.Name, strconv.FormatBool(r.Leader), strconv.FormatInt(r.Revision, 10), strconv.FormatInt(r.DBSize, 10), ""})
	}
	return out
}

// Run asks every endpoint for its status; it fails when none answers.
func (o *DatastoreStatusOptions) Run(ctx context.Context) error {
	base, endpoints, err := etcdClientConfig(o.f, o.DialTimeout)
	if err != nil {
		return err
	}
	var rows []memberStatus
	answered := 0
	for _, ep := range endpoints {
		r := o.status(ctx, base, ep)
		if r.Err == nil {
			answered++
		}
		rows = append(rows, r)
	}
	tw := tabwriter.NewWriter(o.f.Streams.Out, 0, 4, 3, ' ', 0)
	for _, row := range statusRows(rows) {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if answered == 0 {
		return fmt.Errorf("no etcd endpoint answered (%s)", strings.Join(endpoints, ","))
	}
	return nil
}

func (o *DatastoreStatusOptions) status(ctx context.Context, base clientv3.Config, ep string) memberStatus {
	r := memberStatus{Endpoint: ep}
	base.Endpoints = []string{ep}
	c, err := clientv3.New(base)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	st, err := c.Status(sctx, ep)
	if err != nil {
		r.Err = fmt.Errorf("unreachable: %w", err)
		return r
	}
	r.Leader = st.Leader != 0 && st.Leader == st.Header.MemberId
	r.Revision, r.DBSize = st.Header.Revision, st.DbSize
	if ml, err := c.MemberList(sctx); err == nil {
		for _, m := range ml.Members {
			if m.ID == st.Header.MemberId {
				r.Name = m.Name
			}
		}
	}
	return r
}
