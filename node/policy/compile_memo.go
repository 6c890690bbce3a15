package policy

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/opencalico/calicoctl/node/state"
	"github.com/opencalico/calicoctl/resources"
)

// Compiler is Compile with memory: it keeps the members of every selector
// and named-port set between calls and, when few subjects (endpoints,
// host endpoints, network sets) changed, re-evaluates only those against
// each set instead of every subject against every set. Its result is
// always Compile(in)'s.
//
// Subjects are recognised by their fingerprint (namespace, service
// account, labels, addresses, named ports), computed once per
// *state.Endpoint; policy and profile rules by their slice. So, as the
// agent's model does, a changed object must be a new object: Input's
// objects are never modified once handed to a Compiler.
type Compiler struct {
	mu   sync.Mutex
	memo *setMemo
}

// NewCompiler returns a Compiler with nothing remembered.
func NewCompiler() *Compiler { return &Compiler{} }

// Reset forgets everything (the next Compile evaluates every subject).
func (k *Compiler) Reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.memo = nil
}

// Compile returns Compile(in), reusing the set members of the last call.
func (k *Compiler) Compile(in Input) Desired {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.memo == nil {
		k.memo = &setMemo{}
	}
	return compile(in, k.memo)
}

// maxSubjectChurn is the number of changed subjects above which the sets
// are rebuilt rather than updated.
const maxSubjectChurn = 64

// setMemo is what a Compiler remembers.
type setMemo struct {
	// subjects by fingerprint, as of the last call.
	subjects map[string]compileSubject
	// scope is the fingerprint of namespace and service account labels;
	// a change of it forgets every set.
	scope string
	sets  map[string]*memoSet
	// endpoints are the subjects and fingerprints of the last call's
	// workload endpoints, valid while profileLabels stays the same.
	endpoints, nextEndpoints map[*state.Endpoint]memoEndpoint
	profileLabels            string
	chains                   map[string]*memoChain
	policyGen                string
}

// memoChain is a compiled policy or profile chain, the rules it was
// compiled from (recognised by their address: held here, so it is not
// reused) and what compiling it asked for.
type memoChain struct {
	key   string
	rules []resources.Rule
	chain Chain
	rec   chainRecord
	used  bool
}

// chainRecord is what compiling a chain asked of the compiler besides its
// rules.
type chainRecord struct {
	sets   []setCall
	notes  []string
	replay []func(*compiler) // policyChain and profileChain calls
}

// setCall is one selectorSet or namedPortSet call.
type setCall struct {
	m     *compileSideMatch
	named bool
	port  string
	proto *resources.Protocol
	v6    bool
}

// ruleChain returns build(ch) (ch: the chain without its rules), or, for
// a Compiler, the chain compiled from the same rules (the same slice:
// the datastore's objects are replaced, never modified) with the same
// header and settings in an earlier call.
func (c *compiler) ruleChain(ch Chain, rules []resources.Rule, build func(Chain) Chain) Chain {
	if c.memo == nil {
		return build(ch)
	}
	s := c.memo
	key := ch.Comment + "\x00" + c.in.Felix.FilterDenyAction
	if mc, ok := s.chains[ch.Name]; ok && mc.key == key && sameSlice(mc.rules, rules) {
		mc.used = true
		for _, sc := range mc.rec.sets {
			if sc.named {
				c.namedPortSet(sc.m, sc.port, sc.proto, sc.v6)
			} else {
				c.selectorSet(sc.m, sc.v6)
			}
		}
		for _, n := range mc.rec.notes {
			c.notes[n] = true
		}
		return mc.chain
	}
	prev := c.rec
	c.rec = &chainRecord{}
	built := build(ch)
	s.chains[ch.Name] = &memoChain{key: key, rules: rules, chain: built, rec: *c.rec, used: true}
	c.rec = prev
	return built
}

// workloadChain is c.endpointChain(e) for a workload endpoint whose
// subject has fingerprint fp, reused when the endpoint, what selects
// policies and orders them (not their rules: their chains are asked for
// again), the tiers, the profiles and the namespace and service account
// labels are what they were.
func (s *setMemo) workloadChain(c *compiler, e compileEndpoint, fp string) Chain {
	key := fmt.Sprintf("%s\x00%s\x00%s\x00%v%v\x00%s", e.comment, fp, strings.Join(e.profiles, "\x00"), e.ingress, e.fromWorkload, s.policyGen)
	if mc, ok := s.chains[e.chain]; ok && mc.key == key {
		mc.used = true
		for _, r := range mc.rec.replay {
			r(c)
		}
		for _, n := range mc.rec.notes {
			c.notes[n] = true
		}
		return mc.chain
	}
	prev := c.rec
	c.rec = &chainRecord{}
	built := c.endpointChain(e)
	s.chains[e.chain] = &memoChain{key: key, chain: built, rec: *c.rec, used: true}
	c.rec = prev
	return built
}

// beginPolicies indexes c's policies by id and sums up what endpoint
// chains read of them (selectors, types, order, tier, layer), of profiles
// and of scope labels.
func (s *setMemo) beginPolicies(c *compiler) {
	c.policyByID = make(map[string]*compilePolicy, len(c.policies))
	h := sha256.New()
	for _, p := range c.policies {
		c.policyByID[p.id] = p
		fmt.Fprintf(h, "%s %q %s %v %v %v %v %s %v %v %v\n", p.id, p.selectors, p.tier.name, p.tier.order, p.tier.pass, p.tier.valid, p.order, p.layer, p.ingress, p.egress, p.applyOnForward)
	}
	h.Write([]byte(s.scope))
	h.Write([]byte{0})
	h.Write([]byte(s.profileLabels))
	s.policyGen = string(h.Sum(nil))
}

// sameSlice: a and b are the same slice (not equal: the same elements).
func sameSlice[T any](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

type memoEndpoint struct {
	subj compileSubject
	fp   string
}

// beginProfiles forgets the endpoints' subjects when the labels profiles
// apply changed (they are part of every endpoint's labels).
func (s *setMemo) beginProfiles(c *compiler) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c.profiles)) {
		b.WriteString(name)
		b.WriteByte(3)
		writeLabels(&b, c.profiles[name].Spec.LabelsToApply)
	}
	if b.String() != s.profileLabels {
		s.endpoints = nil
	}
	s.profileLabels = b.String()
	s.nextEndpoints = make(map[*state.Endpoint]memoEndpoint, len(s.endpoints))
}

// endpointSubject is c.endpointSubject(ep) and its fingerprint,
// remembered by pointer: the agent's model replaces an endpoint's record
// when it changes and never modifies one (Input's objects are read-only).
func (s *setMemo) endpointSubject(c *compiler, ep *state.Endpoint) (compileSubject, string) {
	me, ok := s.endpoints[ep]
	if !ok {
		me.subj = c.endpointSubject(ep)
		me.fp = subjectFingerprint(me.subj)
	}
	s.nextEndpoints[ep] = me
	return me.subj, me.fp
}

// memoSet is a set, the match that defines it and its members.
type memoSet struct {
	set     Set
	m       *compileSideMatch // nil: every subject
	build   func(members []compileSubject) []string
	members map[string]bool // fingerprints
	used    bool
}

// begin brings the memo up to c's subjects: sets lose the subjects that
// are gone and gain the new ones that match. It is called after c is
// indexed and before anything is compiled.
func (s *setMemo) begin(c *compiler) {
	subjects := make(map[string]compileSubject, len(c.subjects))
	for i, sub := range c.subjects {
		if i < len(c.subjectFPs) {
			subjects[c.subjectFPs[i]] = sub
		} else {
			subjects[subjectFingerprint(sub)] = sub
		}
	}
	scope := scopeFingerprint(c)
	var gone, added []string
	if s.subjects != nil && scope == s.scope {
		for fp := range s.subjects {
			if _, ok := subjects[fp]; !ok {
				gone = append(gone, fp)
			}
		}
		for fp := range subjects {
			if _, ok := s.subjects[fp]; !ok {
				added = append(added, fp)
			}
		}
	}
	if s.subjects == nil || scope != s.scope || len(gone)+len(added) > maxSubjectChurn {
		s.sets = map[string]*memoSet{}
	}
	if s.chains == nil {
		s.chains = map[string]*memoChain{}
	}
	s.beginPolicies(c)
	s.subjects, s.scope = subjects, scope
	for _, ms := range s.sets {
		ms.used = false
		dirty := false
		for _, fp := range gone {
			if ms.members[fp] {
				delete(ms.members, fp)
				dirty = true
			}
		}
		for _, fp := range added {
			if ms.m == nil || ms.m.matches(c, subjects[fp]) {
				ms.members[fp] = true
				dirty = true
			}
		}
		if dirty {
			members := make([]compileSubject, 0, len(ms.members))
			for fp := range ms.members {
				members = append(members, subjects[fp])
			}
			ms.set.Elements = ms.build(members)
		}
	}
}

// set returns the set named name: remembered, or built from the subjects
// m matches and remembered.
func (s *setMemo) set(c *compiler, name string, m *compileSideMatch, build func([]compileSubject) []string, def Set) Set {
	if ms, ok := s.sets[name]; ok {
		ms.used = true
		return ms.set
	}
	ms := &memoSet{m: m, build: build, members: map[string]bool{}, used: true}
	var members []compileSubject
	c.eachMatch(m, func(sub compileSubject) {
		members = append(members, sub)
		ms.members[subjectFingerprint(sub)] = true
	})
	ms.set = def
	ms.set.Elements = build(members)
	s.sets[name] = ms
	return ms.set
}

// end forgets the sets the last compile did not use.
func (s *setMemo) end() {
	s.endpoints, s.nextEndpoints = s.nextEndpoints, nil
	maps.DeleteFunc(s.sets, func(_ string, ms *memoSet) bool { return !ms.used })
	maps.DeleteFunc(s.chains, func(_ string, mc *memoChain) bool { return !mc.used })
	for _, mc := range s.chains {
		mc.used = false
	}
}

// subjectFingerprint is everything about a subject that set membership
// and set elements read.
func subjectFingerprint(s compileSubject) string {
	var b strings.Builder
	b.WriteString(s.ns)
	b.WriteByte(0)
	b.WriteString(s.sa)
	b.WriteByte(0)
	if s.ep != nil {
		b.WriteByte('w')
	}
	b.WriteByte(0)
	writeLabels(&b, s.labels)
	b.WriteByte(0)
	for _, n := range s.nets {
		b.WriteString(n)
		b.WriteByte(2)
	}
	b.WriteByte(0)
	for _, p := range s.namedPorts {
		fmt.Fprintf(&b, "%s/%s/%d%c", p.Name, p.Protocol.String(), p.Port, 2)
	}
	return b.String()
}

// scopeFingerprint is the namespace and service account labels.
func scopeFingerprint(c *compiler) string {
	var b strings.Builder
	for _, m := range []map[string]map[string]string{c.nsLabels, c.saLabels} {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			b.WriteString(k)
			b.WriteByte(3)
			writeLabels(&b, m[k])
		}
		b.WriteByte(0)
	}
	return b.String()
}

func writeLabels(b *strings.Builder, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		b.WriteString(k)
		b.WriteByte(1)
		b.WriteString(labels[k])
		b.WriteByte(2)
	}
}
