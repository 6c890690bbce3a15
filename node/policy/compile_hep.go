package policy

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/opencalico/calicoctl/resources"
)

// Host endpoint chains and maps (upstream's names; the HEP dispatch uses
// verdict maps like the workload dispatch, where upstream uses iifname
// rule trees).
const (
	ChainFromHostEndpoint = "cali-from-host-endpoint"
	ChainToHostEndpoint   = "cali-to-host-endpoint"
	ChainFromHEPForward   = "cali-from-hep-forward"
	ChainToHEPForward     = "cali-to-hep-forward"
	ChainFailsafeIn       = "cali-failsafe-in"
	ChainFailsafeOut      = "cali-failsafe-out"
	// The maps share their dispatch chain's name.
	MapFromHostEndpoint = ChainFromHostEndpoint
	MapToHostEndpoint   = ChainToHostEndpoint
	MapFromHEPForward   = ChainFromHEPForward
	MapToHEPForward     = ChainToHEPForward
	// anyInterface is the chain suffix of the "*" host endpoint.
	anyInterface = "any-interface-at-all"
)

// Upstream's default failsafe ports (config_params.go).
var (
	defaultFailsafeIn = []resources.ProtoPort{
		{Protocol: "tcp", Port: 22}, {Protocol: "udp", Port: 68}, {Protocol: "tcp", Port: 179},
		{Protocol: "tcp", Port: 2379}, {Protocol: "tcp", Port: 2380}, {Protocol: "tcp", Port: 5473},
		{Protocol: "tcp", Port: 6443}, {Protocol: "tcp", Port: 6666}, {Protocol: "tcp", Port: 6667},
	}
	defaultFailsafeOut = []resources.ProtoPort{
		{Protocol: "udp", Port: 53}, {Protocol: "udp", Port: 67}, {Protocol: "tcp", Port: 179},
		{Protocol: "tcp", Port: 2379}, {Protocol: "tcp", Port: 2380}, {Protocol: "tcp", Port: 5473},
		{Protocol: "tcp", Port: 6443}, {Protocol: "tcp", Port: 6666}, {Protocol: "tcp", Port: 6667},
	}
)

// hostEndpoints adds the chains of this node's host endpoints (normal and
// applyOnForward policy, failsafes, dispatch) and hooks them into the base
// chains; it returns the dispatch maps (none without host endpoints).
func (c *compiler) hostEndpoints() []Map {
	byIface := map[string]*resources.HostEndpoint{}
	for _, h := range c.in.HostEndpoints {
		if h == nil || h.Spec.Node != c.in.NodeName {
			continue
		}
		if h.Spec.InterfaceName == "" {
			c.note("host endpoint %s: no interfaceName; matching by expectedIPs needs the interfaces' addresses (TODO), not programmed", h.Name)
			continue
		}
		if cur := byIface[h.Spec.InterfaceName]; cur == nil || h.Name < cur.Name {
			byIface[h.Spec.InterfaceName] = h // upstream: the smallest ID wins
		}
	}
	if len(byIface) == 0 {
		return nil
	}
	ifaces := make([]string, 0, len(byIface))
	for i := range byIface {
		ifaces = append(ifaces, i)
	}
	slices.Sort(ifaces)

	maps := []Map{
		{Name: MapFromHostEndpoint, Type: "ifname : verdict", Comment: "host interface -> its ingress chain"},
		{Name: MapToHostEndpoint, Type: "ifname : verdict", Comment: "host interface -> its egress chain"},
		{Name: MapFromHEPForward, Type: "ifname : verdict", Comment: "host interface -> its forward ingress chain"},
		{Name: MapToHEPForward, Type: "ifname : verdict", Comment: "host interface -> its forward egress chain"},
	}
	var anyChains [4]string
	for _, iface := range ifaces {
		h := byIface[iface]
		sfx := ifaceSuffix(iface)
		subj := c.hepSubject(h)
		who := "host endpoint " + h.Name
		specs := []compileEndpoint{
			{chain: "cali-fh-" + sfx, comment: "ingress of " + who, ingress: true, failsafe: ChainFailsafeIn},
			{chain: "cali-th-" + sfx, comment: "egress of " + who, failsafe: ChainFailsafeOut},
			{chain: "cali-fhfw-" + sfx, comment: "forwarded ingress of " + who, ingress: true, forward: true},
			{chain: "cali-thfw-" + sfx, comment: "forwarded egress of " + who, forward: true},
		}
		for i, e := range specs {
			e.subj, e.profiles = subj, h.Spec.Profiles
			c.chains[e.chain] = c.endpointChain(e)
			if iface == "*" {
				anyChains[i] = e.chain
				continue
			}
			maps[i].Elements = append(maps[i].Elements, MapElement{Key: quote(iface), Value: "goto " + e.chain})
		}
	}
	dispatch := []struct{ chain, dir, m string }{
		{ChainFromHostEndpoint, "iifname", MapFromHostEndpoint},
		{ChainToHostEndpoint, "oifname", MapToHostEndpoint},
		{ChainFromHEPForward, "iifname", MapFromHEPForward},
		{ChainToHEPForward, "oifname", MapToHEPForward},
	}
	for i, dsp := range dispatch {
		c.chains[dsp.chain] = dispatchChain(dsp.chain, dsp.dir, anyChains[i])
	}
	c.chains[ChainFailsafeIn] = c.failsafeChain(ChainFailsafeIn, c.in.Felix.FailsafeInboundHostPorts, defaultFailsafeIn, "saddr")
	c.chains[ChainFailsafeOut] = c.failsafeChain(ChainFailsafeOut, c.in.Felix.FailsafeOutboundHostPorts, defaultFailsafeOut, "daddr")

	layerMaps := c.hepLayers(ifaces, byIface)

	// Hook the dispatch into the base chains; what a preDNAT or
	// doNotTrack policy allowed is not policed again.
	fromHEPForward := Rule{Rule: "jump " + ChainFromHEPForward, Comment: "forwarded, in through a host endpoint"}
	if len(layerMaps) > 0 {
		c.appendRule(ChainInput, acceptIfMarked)
		c.appendRule(ChainOutput, acceptIfMarked)
		fromHEPForward.Rule = fmt.Sprintf("meta mark & 0x%08x == 0 ", markAccept) + fromHEPForward.Rule
	}
	c.appendRule(ChainInput, Rule{Rule: "jump " + ChainFromHostEndpoint, Comment: "to the host through a host endpoint"})
	c.appendRule(ChainOutput, Rule{Rule: "jump " + ChainToHostEndpoint, Comment: "from the host through a host endpoint"})
	fwd := c.chains[ChainForward]
	fwd.Rules = slices.Insert(fwd.Rules, 3, fromHEPForward)
	fwd.Rules = append(fwd.Rules, Rule{Rule: "jump " + ChainToHEPForward, Comment: "forwarded, out through a host endpoint"})
	c.chains[ChainForward] = fwd
	return append(maps, layerMaps...)
}

func (c *compiler) appendRule(chain string, r Rule) {
	ch := c.chains[chain]
	ch.Rules = append(ch.Rules, r)
	c.chains[chain] = ch
}

// hepSubject is a host endpoint's view for policy selectors: its labels
// over its profiles' labelsToApply.
func (c *compiler) hepSubject(h *resources.HostEndpoint) compileSubject {
	labels := map[string]string{}
	for i := len(h.Spec.Profiles) - 1; i >= 0; i-- {
		if p := c.profiles[h.Spec.Profiles[i]]; p != nil {
			for k, v := range p.Spec.LabelsToApply {
				labels[k] = v
			}
		}
	}
	for k, v := range h.Labels {
		labels[k] = v
	}
	return compileSubject{labels: labels, nets: h.Spec.ExpectedIPs}
}

// failsafeChain accepts the failsafe ports (upstream's defaults when the
// setting is nil); side is the remote address ("saddr" inbound, "daddr"
// outbound) that an entry's net restricts.
//
// portSide is "dport" unless given ("sport": the replies of those
// connections, for the raw layer).
func (c *compiler) failsafeChain(name string, ports, defaults []resources.ProtoPort, side string, portSide ...string) Chain {
	pside := "dport"
	if len(portSide) > 0 {
		pside = portSide[0]
	}
	if ports == nil {
		ports = defaults
	}
	ch := Chain{Name: name, Comment: "failsafe ports: never blocked by host endpoint policy"}
	for _, pp := range ports {
		proto := cmp.Or(strings.ToLower(pp.Protocol), "tcp")
		if proto != "tcp" && proto != "udp" {
			c.note("failsafe %s:%d: protocol must be tcp or udp, left out", pp.Protocol, pp.Port)
			continue
		}
		rule := ""
		if pp.Net != "" {
			p, err := netip.ParsePrefix(pp.Net)
			if err != nil {
				c.note("failsafe %s:%s:%d: bad net, left out", proto, pp.Net, pp.Port)
				continue
			}
			fam := "ip"
			if p.Addr().Is6() {
				fam = "ip6"
			}
			rule = fmt.Sprintf("%s %s %s ", fam, side, p.Masked())
		}
		ch.Rules = append(ch.Rules, Rule{
			Rule:    fmt.Sprintf("%smeta l4proto %s th %s %d accept", rule, proto, pside, pp.Port),
			Comment: failsafeComment(proto, pp.Port, pside),
		})
	}
	return ch
}

func failsafeComment(proto string, port uint16, portSide string) string {
	if portSide == "sport" {
		return fmt.Sprintf("failsafe %s:%d (replies)", proto, port)
	}
	return fmt.Sprintf("failsafe %s:%d", proto, port)
}
