package policy

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/opencalico/calicoctl/internal/netnstest"
)

func TestParseCounters(t *testing.T) {
	in := `{"nftables": [{"metainfo": {"version": "1.0.6"}},
 {"table": {"family": "inet", "name": "calico-filter", "handle": 1}},
 {"chain": {"family": "inet", "table": "calico-filter", "name": "cali-pi-gnp/x", "handle": 2}},
 {"rule": {"family": "inet", "table": "calico-filter", "chain": "cali-pi-gnp/x", "handle": 7, "comment": "gnp x ingress rule 0",
   "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"counter": {"packets": 3, "bytes": 180}}, {"accept": null}]}},
 {"rule": {"family": "inet", "table": "calico-filter", "chain": "cali-pi-gnp/x", "handle": 8, "expr": [{"return": null}]}}]}`
	got, err := ParseCounters([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (RuleCounter{Chain: "cali-pi-gnp/x", Handle: 7, Comment: "gnp x ingress rule 0", Packets: 3, Bytes: 180}) {
		t.Errorf("got %+v", got)
	}
	if _, err := ParseCounters([]byte("{")); err == nil {
		t.Error("bad JSON: no error")
	}
}

// Counters read back from a real table: one per counted rule, with the
// rule's comment (the netns e2e checks that denied packets move them).
func TestPrivilegedReadCounters(t *testing.T) {
	requirePrivileged(t)
	ns := netnstest.NewNamed(t, "calpolc").Name
	d := Compile(seed001("slave2"))
	var got []RuleCounter
	inNS(t, ns, func() {
		nft, err := knftables.New(knftables.InetFamily, TableName)
		if err != nil {
			t.Fatal(err)
		}
		tx := nft.NewTransaction()
		Render(tx, d)
		if err := nft.Run(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
		if got, err = ReadCounters(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	rules := 0
	for _, ch := range d.Chains {
		for _, r := range ch.Rules {
			if strings.Contains(r.Rule, "counter") {
				rules++
			}
		}
	}
	if len(got) != rules {
		t.Errorf("read %d counters, the table has %d counted rules", len(got), rules)
	}
	named := false
	for _, c := range got {
		if strings.HasPrefix(c.Chain, "cali-pri-") && c.Comment != "" {
			named = true
		}
	}
	if !named {
		t.Errorf("no profile rule with its comment among the counters: %+v", got)
	}
}
