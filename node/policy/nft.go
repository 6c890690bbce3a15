package policy

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/knftables"
)

const tableComment = "Calico policy (owned by calicoctl node)"

// Render adds d to tx (a transaction for table inet TableName) as a whole:
// the table, every chain, set and map, each flushed and refilled, so the
// transaction leaves exactly d's rules and elements in them. Deleting
// chains, sets and maps that d no longer has is the writer's job.
func Render(tx *knftables.Transaction, d Desired) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo(tableComment)})
	for _, s := range d.Sets {
		set := setObject(s)
		tx.Add(set)
		tx.Flush(set)
		for _, e := range s.Elements {
			tx.Add(&knftables.Element{Set: s.Name, Key: []string{e}})
		}
	}
	// Chains before maps: map elements name chains (goto cali-fw-X), and
	// dispatch rules name maps, so all objects exist before any rule or
	// element is added.
	for _, ch := range d.Chains {
		tx.Add(chainObject(ch))
		tx.Flush(&knftables.Chain{Name: ch.Name})
	}
	for _, m := range d.Maps {
		mp := mapObject(m)
		tx.Add(mp)
		tx.Flush(mp)
	}
	for _, m := range d.Maps {
		for _, e := range m.Elements {
			tx.Add(&knftables.Element{Map: m.Name, Key: []string{e.Key}, Value: []string{e.Value}})
		}
	}
	for _, ch := range d.Chains {
		addRules(tx, ch)
	}
}

func setObject(s Set) *knftables.Set {
	set := &knftables.Set{Name: s.Name, Type: s.Type}
	if s.Interval {
		set.Flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	if s.Comment != "" {
		set.Comment = knftables.PtrTo(nftComment(s.Comment))
	}
	return set
}

func mapObject(m Map) *knftables.Map {
	mp := &knftables.Map{Name: m.Name, Type: m.Type}
	if m.Comment != "" {
		mp.Comment = knftables.PtrTo(nftComment(m.Comment))
	}
	return mp
}

// addRules adds a chain's rules, in order.
func addRules(tx *knftables.Transaction, ch Chain) {
	for _, r := range ch.Rules {
		rule := &knftables.Rule{Chain: ch.Name, Rule: r.Rule}
		if r.Comment != "" {
			rule.Comment = knftables.PtrTo(nftComment(r.Comment))
		}
		tx.Add(rule)
	}
}

func chainObject(ch Chain) *knftables.Chain {
	c := &knftables.Chain{Name: ch.Name}
	if ch.Comment != "" {
		c.Comment = knftables.PtrTo(nftComment(ch.Comment))
	}
	if ch.Hook != "" {
		c.Type = knftables.PtrTo(knftables.FilterType)
		c.Hook = knftables.PtrTo(knftables.BaseChainHook(ch.Hook))
		c.Priority = knftables.PtrTo(knftables.FilterPriority)
		if ch.Priority != "" {
			c.Priority = knftables.PtrTo(knftables.BaseChainPriority(ch.Priority))
		}
	}
	return c
}

// Dump renders d as the deterministic text of `nft list`-like commands
// (knftables' Fake dump): the form of the golden files.
func Dump(d Desired) (string, error) {
	fake := knftables.NewFake(knftables.InetFamily, TableName)
	tx := fake.NewTransaction()
	Render(tx, d)
	if err := fake.Run(context.Background(), tx); err != nil {
		return "", fmt.Errorf("render policy table: %w", err)
	}
	return fake.Dump(), nil
}

// nftComment makes s a valid nft comment: nft strings have no escapes, so
// double quotes become single ones, and comments hold at most 128 bytes.
func nftComment(s string) string {
	return truncate(strings.ReplaceAll(s, `"`, "'"), 128)
}
