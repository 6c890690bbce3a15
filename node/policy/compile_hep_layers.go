package policy

import (
	"fmt"

	"github.com/opencalico/calicoctl/resources"
)

// The preDNAT and doNotTrack layers of host endpoint policy (spec/policy.md
// §3). Upstream programs them in the mangle and raw tables; here they are
// base chains of our own table at mangle (-150) and raw (-300) priority,
// named with upstream's layer prefixes ("mangle-", "raw-"), which the
// filter layer's names leave out.
const (
	layerMangle = "mangle"
	layerRaw    = "raw"

	ChainManglePrerouting       = "mangle-PREROUTING"
	ChainMangleFromHostEndpoint = "mangle-cali-from-host-endpoint"
	ChainRawPrerouting          = "raw-PREROUTING"
	ChainRawOutput              = "raw-OUTPUT"
	ChainRawFromHostEndpoint    = "raw-cali-from-host-endpoint"
	ChainRawToHostEndpoint      = "raw-cali-to-host-endpoint"
	ChainRawFailsafeIn          = "raw-cali-failsafe-in"
	ChainRawFailsafeOut         = "raw-cali-failsafe-out"
)

// acceptIfMarked accepts what a preDNAT or doNotTrack policy allowed, so
// that the filter layer's host endpoint chains do not police it again.
var acceptIfMarked = Rule{Rule: fmt.Sprintf("meta mark & 0x%08x != 0 accept", markAccept), Comment: "allowed by preDNAT or doNotTrack policy"}

func layerPrefix(layer string) string {
	if layer == "" {
		return ""
	}
	return layer + "-"
}

func layerWhat(layer string) string {
	if layer == layerRaw {
		return "doNotTrack"
	}
	return "preDNAT"
}

// layerPolicyProblem says why a GlobalNetworkPolicy's preDNAT/doNotTrack
// combination cannot be programmed ("" when it can), as upstream's
// validation rejects it.
func layerPolicyProblem(s resources.GlobalNetworkPolicySpec) string {
	switch {
	case s.PreDNAT && s.DoNotTrack:
		return "preDNAT and doNotTrack together"
	case (s.PreDNAT || s.DoNotTrack) && !s.ApplyOnForward:
		return "preDNAT and doNotTrack need applyOnForward: true"
	case s.PreDNAT && len(s.Egress) > 0:
		return "a preDNAT policy has ingress rules only"
	}
	for _, t := range s.Types {
		if s.PreDNAT && t == resources.PolicyTypeEgress {
			return "a preDNAT policy has ingress rules only"
		}
	}
	return ""
}

// hepLayers adds the preDNAT (mangle) and doNotTrack (raw) chains of the
// host endpoints, when any policy of those layers exists, and returns
// their dispatch maps. ifaces are sorted; "*" is the default endpoint.
func (c *compiler) hepLayers(ifaces []string, byIface map[string]*resources.HostEndpoint) []Map {
	var mangle, raw bool
	for _, p := range c.policies {
		mangle = mangle || p.layer == layerMangle
		raw = raw || p.layer == layerRaw
	}
	var maps []Map
	if mangle {
		m := Map{Name: ChainMangleFromHostEndpoint, Type: "ifname : verdict", Comment: "host interface -> its preDNAT chain"}
		var any string
		for _, iface := range ifaces {
			h, sfx := byIface[iface], ifaceSuffix(iface)
			e := compileEndpoint{chain: "mangle-cali-fh-" + sfx, comment: "preDNAT ingress of host endpoint " + h.Name,
				ingress: true, failsafe: ChainFailsafeIn, layer: layerMangle, subj: c.hepSubject(h)}
			c.chains[e.chain] = c.endpointChain(e)
			if iface == "*" {
				any = e.chain
				continue
			}
			m.Elements = append(m.Elements, MapElement{Key: quote(iface), Value: "goto " + e.chain})
		}
		maps = append(maps, m)
		c.chains[ChainMangleFromHostEndpoint] = dispatchChain(ChainMangleFromHostEndpoint, "iifname", any)
		c.chains[ChainManglePrerouting] = Chain{Name: ChainManglePrerouting, Hook: "prerouting", Priority: layerMangle,
			Comment: "Calico preDNAT policy (owned by calicoctl node)", Rules: []Rule{
				acceptIfMarked,
				{Rule: "jump " + ChainMangleFromHostEndpoint},
				acceptIfMarked,
			}}
	}
	if raw {
		from := Map{Name: ChainRawFromHostEndpoint, Type: "ifname : verdict", Comment: "host interface -> its doNotTrack ingress chain"}
		to := Map{Name: ChainRawToHostEndpoint, Type: "ifname : verdict", Comment: "host interface -> its doNotTrack egress chain"}
		for _, iface := range ifaces {
			h := byIface[iface]
			if iface == "*" {
				c.note("host endpoint %s: doNotTrack policy is not supported on interfaceName \"*\" (as upstream), not programmed", h.Name)
				continue
			}
			subj := c.hepSubject(h)
			in := compileEndpoint{chain: "raw-cali-fh-" + iface, comment: "doNotTrack ingress of host endpoint " + h.Name,
				ingress: true, failsafe: ChainRawFailsafeIn, layer: layerRaw, subj: subj}
			out := compileEndpoint{chain: "raw-cali-th-" + iface, comment: "doNotTrack egress of host endpoint " + h.Name,
				failsafe: ChainRawFailsafeOut, layer: layerRaw, subj: subj}
			c.chains[in.chain], c.chains[out.chain] = c.endpointChain(in), c.endpointChain(out)
			from.Elements = append(from.Elements, MapElement{Key: quote(iface), Value: "goto " + in.chain})
			to.Elements = append(to.Elements, MapElement{Key: quote(iface), Value: "goto " + out.chain})
		}
		maps = append(maps, from, to)
		c.chains[ChainRawFromHostEndpoint] = dispatchChain(ChainRawFromHostEndpoint, "iifname", "")
		c.chains[ChainRawToHostEndpoint] = dispatchChain(ChainRawToHostEndpoint, "oifname", "")
		c.chains[ChainRawPrerouting] = Chain{Name: ChainRawPrerouting, Hook: "prerouting", Priority: layerRaw,
			Comment: "Calico doNotTrack policy, inbound (owned by calicoctl node)", Rules: []Rule{{Rule: "jump " + ChainRawFromHostEndpoint}}}
		c.chains[ChainRawOutput] = Chain{Name: ChainRawOutput, Hook: "output", Priority: layerRaw,
			Comment: "Calico doNotTrack policy, outbound (owned by calicoctl node)", Rules: []Rule{{Rule: "jump " + ChainRawToHostEndpoint}}}
		// Before conntrack nothing is a reply: the failsafes accept both
		// directions of their connections.
		in, out := c.in.Felix.FailsafeInboundHostPorts, c.in.Felix.FailsafeOutboundHostPorts
		if in == nil {
			in = defaultFailsafeIn
		}
		if out == nil {
			out = defaultFailsafeOut
		}
		fin := c.failsafeChain(ChainRawFailsafeIn, in, nil, "saddr")
		fin.Rules = append(fin.Rules, c.failsafeChain("", out, nil, "saddr", "sport").Rules...)
		fout := c.failsafeChain(ChainRawFailsafeOut, out, nil, "daddr")
		fout.Rules = append(fout.Rules, c.failsafeChain("", in, nil, "daddr", "sport").Rules...)
		c.chains[ChainRawFailsafeIn], c.chains[ChainRawFailsafeOut] = fin, fout
	}
	return maps
}

func ifaceSuffix(iface string) string {
	if iface == "*" {
		return anyInterface
	}
	return iface
}

// dispatchChain is a host endpoint dispatch chain: the verdict map of the
// same name, then (anyChain != "") the "*" endpoint for every other
// non-workload interface.
func dispatchChain(name, dir, anyChain string) Chain {
	ch := Chain{Name: name, Comment: "dispatch to host endpoint chains", Rules: []Rule{{Rule: dir + " vmap @" + name}}}
	if anyChain != "" {
		ch.Rules = append(ch.Rules, Rule{
			Rule:    fmt.Sprintf(`%s != "lo" %s != "cali*" goto %s`, dir, dir, anyChain),
			Comment: "the * host endpoint: every other non-workload interface",
		})
	}
	return ch
}
