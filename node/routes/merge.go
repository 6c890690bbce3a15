package routes

import (
	"cmp"
	"net/netip"
	"slices"
)

// SourcePlan is the source of the routes node/plan computes from the
// datastore; it wins over every other source for a destination.
const SourcePlan = "plan"

// Merge combines the routes of several sources (the plan, later BGP) into
// one desired set for the Syncer. For a destination wanted by more than one
// source, the plan's route wins, then the source whose name sorts first;
// within a source the first route wins. The result is sorted by prefix.
func Merge(sources map[string][]Route) []Route {
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(-cmp.Compare(boolInt(a == SourcePlan), boolInt(b == SourcePlan)), cmp.Compare(a, b))
	})
	seen := map[netip.Prefix]bool{}
	var out []Route
	for _, name := range names {
		for _, r := range sources[name] {
			r.Dst = r.Dst.Masked()
			if seen[r.Dst] {
				continue
			}
			seen[r.Dst] = true
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Route) int { return ComparePrefix(a.Dst, b.Dst) })
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
