package agent

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencalico/calicoctl/node/health"
	"github.com/opencalico/calicoctl/node/policy"
	"github.com/opencalico/calicoctl/node/reconcile"
	"github.com/opencalico/calicoctl/node/state"
)

// PolicyWriter programs the compiled policy (node/policy.Writer on the
// kernel's nftables).
type PolicyWriter interface {
	Apply(ctx context.Context, d policy.Desired) error
	ForceResync()
}

// policyRunner keeps the node's nftables policy table on what
// policy.Compile makes of the followed state (through a policy.Compiler,
// which re-evaluates only what changed; a full resync starts it afresh). It is a reconciler of its
// own: it recompiles when the model changed (never on a timer, nothing
// while the follower is out of step with the datastore, so an outage keeps
// the policy in force) and rewrites the table in full every resync period.
type policyRunner struct {
	node string
	f    *state.Follower
	w    PolicyWriter
	log  *slog.Logger
	r    *reconcile.Reconciler[uint64]
	c    *policy.Compiler

	mu    sync.Mutex
	notes []string
}

func newPolicyRunner(node string, f *state.Follower, w PolicyWriter, hs *health.Server, resync time.Duration, log *slog.Logger) *policyRunner {
	if log == nil {
		log = slog.Default()
	}
	p := &policyRunner{node: node, f: f, w: w, log: log.With("component", "policy"), c: policy.NewCompiler()}
	cfg := reconcile.Config{Name: "policy", Resync: resync, Logger: log}
	if hs != nil {
		cfg.Health = hs.Register("dataplane-policy", health.Reports{Live: true, Ready: true}, 0)
	}
	p.r = reconcile.New(cfg, p.write)
	return p
}

func (p *policyRunner) run(ctx context.Context, changes func() <-chan struct{}) error {
	go func() { _ = p.r.Run(ctx) }()
	for {
		ch := changes()
		if st := p.f.Status(); st.Synced {
			p.r.Set(p.f.Version())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (p *policyRunner) write(ctx context.Context, _ uint64, full bool) error {
	var d policy.Desired
	if full {
		p.c.Reset()
	}
	p.f.Read(func(m *state.Model, _ uint64) {
		d = p.c.Compile(policy.FromModel(m, p.node, policy.SettingsFrom(m.FelixConfiguration("default"))))
	})
	p.logNotes(d.Notes)
	if full {
		p.w.ForceResync()
	}
	if err := p.w.Apply(ctx, d); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	return nil
}

// logNotes logs what the compiler could not enforce, once per change.
func (p *policyRunner) logNotes(notes []string) {
	p.mu.Lock()
	same := slices.Equal(notes, p.notes)
	p.notes = slices.Clone(notes)
	p.mu.Unlock()
	if same {
		return
	}
	for _, n := range notes {
		p.log.Warn("not enforced", "what", n)
	}
}
