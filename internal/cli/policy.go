package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/client"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/resources"
)

func newPolicyCommand(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Explain network policy",
	}
	cmd.AddCommand(newPolicyExplainCommand(f))
	return cmd
}

// PolicyExplainOptions drive `calicoctl policy explain`.
type PolicyExplainOptions struct {
	f *Factory

	From, To  string
	Protocol  string
	Port      int
	SrcPort   int
	ICMPType  int
	ICMPCode  int
	Namespace string
	Output    string

	proto uint8
}

func newPolicyExplainCommand(f *Factory) *cobra.Command {
	o := &PolicyExplainOptions{f: f}
	cmd := &cobra.Command{
		Use:   "explain --from SRC --to DST [--protocol tcp] [--port N]",
		Short: "Explain which tiers, policies and rules allow or deny a packet",
		Long: "Evaluates one packet against the policy in the datastore as the node agent enforces it:\n" +
			"the egress policy of SRC (when it is one of our workload or host endpoints) and the ingress\n" +
			"policy of DST, tier by tier (order, Pass, end-of-tier drop, defaultAction Pass), policy by\n" +
			"policy, rule by rule (whether it matched and, if not, the first field that did not), then\n" +
			"the endpoints' profiles, and the verdict: Allow only if both directions allow.\n" +
			"SRC and DST are workload endpoint names or pod names (in -n NAMESPACE, or NAMESPACE/NAME),\n" +
			"or IP addresses (resolved to a workload endpoint, a host endpoint's expectedIPs or a network\n" +
			"set). It reads the datastore only, so it works from any host.",
		Example: "  calicoctl policy explain -n tenant --from frontend1 --to database --protocol tcp --port 3306\n" +
			"  calicoctl policy explain --from 10.0.0.9 --to tenant/database --port 3306 -o json\n" +
			"  calicoctl policy explain --from frontend1 --to 10.244.2.7 --protocol icmp --icmp-type 8",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "source: a workload endpoint or pod name, NAMESPACE/NAME, or an IP address")
	fl.StringVar(&o.To, "to", "", "destination: a workload endpoint or pod name, NAMESPACE/NAME, or an IP address")
	fl.StringVar(&o.Protocol, "protocol", "tcp", "IP protocol: tcp, udp, icmp, icmpv6, sctp, udplite or a number")
	fl.IntVar(&o.Port, "port", 0, "destination port")
	fl.IntVar(&o.SrcPort, "src-port", 0, "source port (default 0: matches only rules without source ports)")
	fl.IntVar(&o.ICMPType, "icmp-type", -1, "ICMP type")
	fl.IntVar(&o.ICMPCode, "icmp-code", -1, "ICMP code")
	fl.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of workload endpoint names (default \"default\")")
	fl.StringVarP(&o.Output, "output", "o", "", "output format: text (default), json or yaml")
	return cmd
}

// Complete fills the namespace.
func (o *PolicyExplainOptions) Complete() error {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	return nil
}

// Validate checks the flags.
func (o *PolicyExplainOptions) Validate() error {
	if o.From == "" || o.To == "" {
		return errors.New("both --from and --to are required")
	}
	p, err := policy.ParseProtocol(o.Protocol)
	if err != nil {
		return fmt.Errorf("invalid --protocol: %w", err)
	}
	o.proto = p
	for _, pf := range []struct {
		name string
		v    int
	}{{"--port", o.Port}, {"--src-port", o.SrcPort}} {
		if pf.v < 0 || pf.v > 65535 {
			return fmt.Errorf("invalid %s %d: must be 0-65535", pf.name, pf.v)
		}
		if pf.v != 0 && !policy.PortsSupported(p) {
			return fmt.Errorf("%s given, but protocol %s has no ports", pf.name, o.Protocol)
		}
	}
	if o.ICMPType > 255 || o.ICMPCode > 255 {
		return errors.New("invalid --icmp-type or --icmp-code: must be 0-255")
	}
	if (o.ICMPType >= 0 || o.ICMPCode >= 0) && p != 1 && p != 58 {
		return fmt.Errorf("--icmp-type and --icmp-code need --protocol icmp or icmpv6, not %s", o.Protocol)
	}
	if o.ICMPCode >= 0 && o.ICMPType < 0 {
		return errors.New("--icmp-code needs --icmp-type")
	}
	switch o.Output {
	case "", "text", "json", "yaml":
	default:
		return fmt.Errorf("unknown output format %q: use text, json or yaml", o.Output)
	}
	return nil
}

// Run reads the policy from the datastore, evaluates and prints.
func (o *PolicyExplainOptions) Run(ctx context.Context) error {
	c, err := o.f.connect(ctx)
	if err != nil {
		return err
	}
	defer c.DS.Close()
	in, weps, err := loadPolicyInput(ctx, c)
	if err != nil {
		return err
	}
	src, err := o.ref(o.From, weps)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, err := o.ref(o.To, weps)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	pk := policy.Packet{Src: src, Dst: dst, Protocol: o.proto, SrcPort: uint16(o.SrcPort), DstPort: uint16(o.Port)}
	if o.ICMPType >= 0 {
		t := o.ICMPType
		pk.ICMPType = &t
	}
	if o.ICMPCode >= 0 {
		c := o.ICMPCode
		pk.ICMPCode = &c
	}
	v := policy.Evaluate(in, pk)
	return printVerdict(o.f.Streams.Out, o.Output, &v)
}

// printVerdict prints v in the chosen format (the one place -o is read).
func printVerdict(w io.Writer, output string, v *policy.Verdict) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode the verdict: %w", err)
		}
		_, err = w.Write(b)
		return err
	default:
		_, err := io.WriteString(w, renderVerdict(v))
		return err
	}
}

// policyKinds are what explain reads.
var policyKinds = []string{"Tier", "GlobalNetworkPolicy", "NetworkPolicy", "Profile", "GlobalNetworkSet",
	"NetworkSet", "HostEndpoint", "WorkloadEndpoint", "FelixConfiguration"}

// loadPolicyInput lists the policy kinds and endpoints.
func loadPolicyInput(ctx context.Context, c *client.Client) (policy.Input, []*resources.WorkloadEndpoint, error) {
	var in policy.Input
	var weps []*resources.WorkloadEndpoint
	for _, kind := range policyKinds {
		list, err := c.List(ctx, datastore.ListOptions{Kind: kind})
		if err != nil {
			if errors.Is(err, datastore.ErrNotSupported) {
				continue
			}
			return in, nil, fmt.Errorf("list %s: %w", kind, err)
		}
		for _, it := range list.Items {
			if w, ok := it.(*resources.WorkloadEndpoint); ok {
				weps = append(weps, w)
			}
			in.Add(it)
		}
	}
	return in, weps, nil
}

// ref resolves SRC or DST: an IP address, or a workload endpoint by name
// or pod name in -n NAMESPACE (or NAMESPACE/NAME).
func (o *PolicyExplainOptions) ref(s string, weps []*resources.WorkloadEndpoint) (policy.Ref, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return policy.Ref{Addr: a}, nil
	}
	ns, name := o.Namespace, s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		ns, name = s[:i], s[i+1:]
	}
	var byPod []*resources.WorkloadEndpoint
	for _, w := range weps {
		if w.Namespace != ns {
			continue
		}
		if w.Name == name {
			return wepRef(w), nil
		}
		if w.Spec.Pod == name || w.Spec.Workload == name {
			byPod = append(byPod, w)
		}
	}
	switch len(byPod) {
	case 1:
		return wepRef(byPod[0]), nil
	case 0:
		return policy.Ref{}, fmt.Errorf("WorkloadEndpoint %q not found in namespace %q", name, ns)
	default:
		names := make([]string, len(byPod))
		for i, w := range byPod {
			names[i] = w.Name
		}
		return policy.Ref{}, fmt.Errorf("%q names %d workload endpoints in namespace %q (%s): give the endpoint name", name, len(byPod), ns, strings.Join(names, ", "))
	}
}

func wepRef(w *resources.WorkloadEndpoint) policy.Ref {
	return policy.Ref{Key: resources.Key{Kind: "WorkloadEndpoint", Namespace: w.Namespace, Name: w.Name}}
}

// renderVerdict is the text form of a verdict: the packet, both ends, each
// direction's tiers, policies and rules, and the verdict.
func renderVerdict(v *policy.Verdict) string {
	var b strings.Builder
	p := v.Packet
	fmt.Fprintf(&b, "Packet:  %s %s -> %s\n", policy.ProtocolName(p.Protocol), endpointAddr(v.Src.Addr, p.SrcPort, p.Protocol), endpointAddr(v.Dst.Addr, p.DstPort, p.Protocol))
	if p.ICMPType != nil {
		fmt.Fprintf(&b, "ICMP:    type %d", *p.ICMPType)
		if p.ICMPCode != nil {
			fmt.Fprintf(&b, " code %d", *p.ICMPCode)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "From:    %s\n", describeEntity(v.Src))
	fmt.Fprintf(&b, "To:      %s\n", describeEntity(v.Dst))
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "Note:    %s\n", n)
	}
	for _, d := range []policy.Direction{v.Egress, v.Ingress} {
		b.WriteString("\n")
		title := "Egress from"
		if d.Direction == "ingress" {
			title = "Ingress to"
		}
		if !d.Policed {
			fmt.Fprintf(&b, "%s %s: %s (%s)\n", title, entityOr(d.Endpoint, v, d.Direction), d.Action, d.Reason)
			continue
		}
		fmt.Fprintf(&b, "%s %s:\n", title, d.Endpoint)
		if len(d.Tiers) == 0 && len(d.Profiles) == 0 && d.Reason != "" {
			fmt.Fprintf(&b, "  (no tier or profile evaluated)\n")
		}
		for _, t := range d.Tiers {
			fmt.Fprintf(&b, "  tier %s (order %s, default action %s)\n", t.Name, orderString(t.Order), t.DefaultAction)
			for _, pt := range t.Policies {
				writePolicy(&b, pt, "    ")
			}
			switch {
			case t.EndOfTier && t.Result == policy.Pass:
				b.WriteString("    end of tier: no policy decided, default action Pass: next tier\n")
			case t.EndOfTier:
				b.WriteString("    end of tier: no policy decided: Deny\n")
			case t.Result == policy.Pass:
				b.WriteString("    Pass: next tier\n")
			}
		}
		for _, pt := range d.Profiles {
			writePolicy(&b, pt, "  ")
		}
		fmt.Fprintf(&b, "  => %s: %s\n", d.Action, d.Reason)
	}
	fmt.Fprintf(&b, "\nVerdict: %s\n", v.Action)
	return b.String()
}

func entityOr(s string, v *policy.Verdict, dir string) string {
	if s != "" {
		return s
	}
	if dir == "egress" {
		return v.Src.String()
	}
	return v.Dst.String()
}

func writePolicy(b *strings.Builder, pt policy.PolicyTrace, indent string) {
	order := ""
	if pt.Kind != "Profile" {
		order = " (order " + orderString(pt.Order) + ")"
	}
	head := pt.ID() + order
	switch pt.Result {
	case "":
		fmt.Fprintf(b, "%s%s: not reached\n", indent, head)
		return
	case policy.NoMatch:
		if len(pt.Rules) == 0 {
			fmt.Fprintf(b, "%s%s: no rules for this direction (or not found)\n", indent, head)
			return
		}
		fmt.Fprintf(b, "%s%s: no rule matched\n", indent, head)
	default:
		fmt.Fprintf(b, "%s%s: %s (rule %d)\n", indent, head, pt.Result, pt.Rule)
	}
	for _, r := range pt.Rules {
		res := "matched"
		if !r.Matched {
			res = "no match: " + r.Mismatch.String()
		}
		if r.Note != "" {
			res += " (" + r.Note + ")"
		}
		fmt.Fprintf(b, "%s  rule %d  %-5s  %s\n", indent, r.Index, r.Action, res)
	}
}

func orderString(o *float64) string {
	if o == nil {
		return "none"
	}
	return resources.FormatOrder(*o)
}

func endpointAddr(a netip.Addr, port uint16, proto uint8) string {
	if !policy.PortsSupported(proto) {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

func describeEntity(e policy.Entity) string {
	if e.Kind == "IP" {
		return e.Addr.String() + " (not a Calico endpoint or network set)"
	}
	s := e.String() + " (" + e.Addr.String()
	if e.Node != "" {
		s += ", node " + e.Node
	}
	if len(e.Profiles) > 0 {
		s += ", profiles " + strings.Join(e.Profiles, ",")
	}
	return s + ")"
}
