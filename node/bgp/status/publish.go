package status

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// Publisher copies the speaker's report into the CalicoNodeStatus objects
// of this node (spec.node == Node). As upstream, it only updates objects
// that exist, each at most once per its spec.updatePeriodSeconds (0:
// written once, never refreshed), and only when the content changed.
type Publisher struct {
	Datastore datastore.Interface
	Node      string
	Source    Source
	// Interval is how often the objects are re-listed and checked (default
	// 1 s; an object is still written at most once per its period).
	Interval time.Duration
	Log      *slog.Logger
	// Now is the clock (time.Now by default).
	Now func() time.Time

	// written: object name -> when we last wrote it.
	written map[string]time.Time
}

// updateTries bounds the retries of a write that lost a race.
const updateTries = 3

// Run publishes until ctx ends. changes (may be nil) wakes it early, e.g.
// from the speaker's StatusChanges.
func (p *Publisher) Run(ctx context.Context, changes <-chan struct{}) error {
	if p.Interval <= 0 {
		p.Interval = time.Second
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	p.written = map[string]time.Time{}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		if err := p.Once(ctx); err != nil && ctx.Err() == nil {
			p.Log.Warn("bgp status: publishing CalicoNodeStatus", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-changes:
		}
	}
}

// Once checks every CalicoNodeStatus of this node and writes the due ones.
func (p *Publisher) Once(ctx context.Context) error {
	if p.written == nil {
		p.written = map[string]time.Time{}
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	list, err := p.Datastore.List(ctx, datastore.ListOptions{Kind: "CalicoNodeStatus"})
	if err != nil {
		return fmt.Errorf("list CalicoNodeStatus: %w", err)
	}
	now := p.Now()
	var rep *Report
	var errs []error
	seen := map[string]bool{}
	for _, item := range list.Items {
		cns, ok := item.(*resources.CalicoNodeStatus)
		if !ok || cns.Spec.Node != p.Node {
			continue
		}
		seen[cns.Name] = true
		if !p.due(cns, now) {
			continue
		}
		if rep == nil {
			wantRoutes := false
			for _, it := range list.Items {
				if c, ok := it.(*resources.CalicoNodeStatus); ok && c.Spec.Node == p.Node && slices.Contains(c.Spec.Classes, resources.NodeStatusClassRoutes) {
					wantRoutes = true
				}
			}
			r, err := p.Source.Report(ctx, wantRoutes)
			if err != nil {
				return fmt.Errorf("BGP report: %w", err)
			}
			rep = &r
		}
		if err := p.write(ctx, cns, *rep, now); err != nil {
			errs = append(errs, err)
		}
	}
	for name := range p.written {
		if !seen[name] {
			delete(p.written, name)
		}
	}
	return errors.Join(errs...)
}

// due reports whether an object should be (re)computed now.
func (p *Publisher) due(c *resources.CalicoNodeStatus, now time.Time) bool {
	last, ok := p.written[c.Name]
	if !ok {
		return true
	}
	period := c.Spec.UpdatePeriodSeconds
	if period == nil || *period == 0 {
		return false
	}
	return !now.Before(last.Add(time.Duration(*period) * time.Second))
}

// write updates one object's status when it changed, retrying on
// conflicts with a fresh copy.
func (p *Publisher) write(ctx context.Context, c *resources.CalicoNodeStatus, rep Report, now time.Time) error {
	key := resources.KeyOf(c)
	for try := 0; ; try++ {
		st := Build(c.Spec.Classes, rep, now)
		if sameStatus(c.Status, st) {
			p.written[c.Name] = now
			return nil
		}
		cp := *c
		cp.Status = st
		_, err := p.Datastore.Update(ctx, &cp)
		if err == nil {
			p.written[c.Name] = now
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) || try+1 >= updateTries {
			return fmt.Errorf("update %s: %w", key, err)
		}
		fresh, err := p.Datastore.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("re-read %s: %w", key, err)
		}
		var ok bool
		if c, ok = fresh.(*resources.CalicoNodeStatus); !ok || c.Spec.Node != p.Node {
			return nil
		}
	}
}

// sameStatus compares everything but lastUpdated.
func sameStatus(a, b resources.CalicoNodeStatusStatus) bool {
	a.LastUpdated, b.LastUpdated = metav1.Time{}, metav1.Time{}
	return reflect.DeepEqual(a, b)
}

// sinceFormat is how peers' "since" is written.
const sinceFormat = "2006-01-02 15:04:05"

var peerTypes = map[string]string{
	"node-to-node mesh": "NodeMesh",
	"node specific":     "NodePeer",
	"global":            "GlobalPeer",
}

// Build is the status of the given classes from a report.
func Build(classes []string, rep Report, now time.Time) resources.CalicoNodeStatusStatus {
	st := resources.CalicoNodeStatusStatus{LastUpdated: metav1.NewTime(now.UTC().Truncate(time.Second))}
	if slices.Contains(classes, resources.NodeStatusClassAgent) {
		d := resources.BGPDaemonStatus{State: "NotReady", Version: rep.Version}
		if rep.Running {
			d.State, d.RouterID = "Ready", rep.RouterID
			if !rep.Started.IsZero() {
				d.LastBootTime = rep.Started.UTC().Format(sinceFormat)
			}
		}
		st.Agent.BIRDV4, st.Agent.BIRDV6 = d, d
	}
	if slices.Contains(classes, resources.NodeStatusClassBGP) {
		b := &st.BGP
		for _, pr := range rep.Peers {
			typ, ok := peerTypes[pr.Type]
			if !ok {
				continue // local-workload peers are not listed upstream
			}
			cp := resources.CalicoNodePeer{PeerIP: pr.Address, Type: typ, State: pr.BGPState}
			if !pr.Since.IsZero() {
				cp.Since = pr.Since.UTC().Format(sinceFormat)
			}
			up := pr.BGPState == "Established"
			switch {
			case pr.IPv6() && up:
				b.NumberEstablishedV6++
			case pr.IPv6():
				b.NumberNotEstablishedV6++
			case up:
				b.NumberEstablishedV4++
			default:
				b.NumberNotEstablishedV4++
			}
			if pr.IPv6() {
				b.PeersV6 = append(b.PeersV6, cp)
			} else {
				b.PeersV4 = append(b.PeersV4, cp)
			}
		}
	}
	if slices.Contains(classes, resources.NodeStatusClassRoutes) {
		mesh := map[string]bool{}
		for _, pr := range rep.Peers {
			if pr.Type == "node-to-node mesh" {
				mesh[pr.Address] = true
			}
		}
		for _, r := range rep.Routes {
			cr := resources.CalicoNodeRoute{Type: "RIB", Destination: r.Prefix, Gateway: r.NextHop}
			if r.Best {
				cr.Type = "FIB"
			}
			switch {
			case r.Local:
				cr.LearnedFrom.SourceType = "Static"
			case mesh[r.Peer]:
				cr.LearnedFrom = resources.CalicoNodeRouteSource{SourceType: "NodeMesh", PeerIP: r.Peer}
			default:
				cr.LearnedFrom = resources.CalicoNodeRouteSource{SourceType: "BGPPeer", PeerIP: r.Peer}
			}
			if strings.Contains(r.Prefix, ":") {
				st.Routes.RoutesV6 = append(st.Routes.RoutesV6, cr)
			} else {
				st.Routes.RoutesV4 = append(st.Routes.RoutesV4, cr)
			}
		}
	}
	return st
}
