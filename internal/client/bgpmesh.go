package client

import (
	"context"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/resources"
)

// MeshOffWarning returns a warning when the node-to-node mesh is off while
// nothing replaces it: no node is a route reflector and no BGPPeer exists.
// In that state every node loses its BGP routes (upstream's docs warn about
// disabling the mesh before the reflectors are configured; calicoctl says
// so at the moment it happens). "" means nothing to warn about; a read
// error also yields "" (the warning is advice, never a failure).
func (c *Client) MeshOffWarning(ctx context.Context) string {
	r, err := c.Get(ctx, resources.Key{Kind: "BGPConfiguration", Name: "default"})
	if err != nil {
		return ""
	}
	bc, ok := r.(*resources.BGPConfiguration)
	if !ok || bc.Spec.NodeToNodeMeshEnabled == nil || *bc.Spec.NodeToNodeMeshEnabled {
		return ""
	}
	peers, err := c.List(ctx, datastore.ListOptions{Kind: "BGPPeer"})
	if err != nil || len(peers.Items) > 0 {
		return ""
	}
	nodes, err := c.List(ctx, datastore.ListOptions{Kind: "Node"})
	if err != nil {
		return ""
	}
	for _, it := range nodes.Items {
		if n, ok := it.(*resources.Node); ok && n.Spec.BGP != nil && n.Spec.BGP.RouteReflectorClusterID != "" {
			return ""
		}
	}
	return "Warning: the node-to-node BGP mesh is disabled (BGPConfiguration default, spec.nodeToNodeMeshEnabled: false) " +
		"but no node is a route reflector and no BGPPeer exists: nodes learn no BGP routes. " +
		"Configure the reflectors and peers first, then disable the mesh."
}
