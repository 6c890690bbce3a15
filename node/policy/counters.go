package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// RuleCounter is the packet counter of one rule of our table, read from
// the kernel: which chain, the rule's comment (naming the policy and rule
// index), and what it counted.
type RuleCounter struct {
	Chain   string `json:"chain"`
	Handle  int    `json:"handle"`
	Comment string `json:"comment,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// ReadCounters lists the counters of every rule of table inet TableName in
// this network namespace (`nft -j list table`), in the kernel's order.
func ReadCounters(ctx context.Context) ([]RuleCounter, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "nft", "-j", "list", "table", "inet", TableName)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if strings.Contains(msg, "No such file or directory") {
			return nil, fmt.Errorf("no nftables table inet %s on this host: the agent does not enforce policy here (CALICO_POLICY=enforce)", TableName)
		}
		return nil, fmt.Errorf("nft list table inet %s: %w: %s", TableName, err, msg)
	}
	return ParseCounters(out.Bytes())
}

// ParseCounters reads the rules with a counter from `nft -j` output.
func ParseCounters(b []byte) ([]RuleCounter, error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Chain   string            `json:"chain"`
				Handle  int               `json:"handle"`
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("reading nft's JSON: %w", err)
	}
	var out []RuleCounter
	for _, item := range doc.Nftables {
		r := item.Rule
		if r == nil {
			continue
		}
		for _, e := range r.Expr {
			var ex struct {
				Counter *struct {
					Packets uint64 `json:"packets"`
					Bytes   uint64 `json:"bytes"`
				} `json:"counter"`
			}
			if json.Unmarshal(e, &ex) != nil || ex.Counter == nil {
				continue
			}
			out = append(out, RuleCounter{Chain: r.Chain, Handle: r.Handle, Comment: r.Comment, Packets: ex.Counter.Packets, Bytes: ex.Counter.Bytes})
			break
		}
	}
	return out, nil
}
