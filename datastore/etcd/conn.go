package etcd

import (
	"context"

	"google.golang.org/grpc/connectivity"
)

// WatchConnectivity reports the client connection going down (transient
// failure) and up (ready) until ctx ends, from the gRPC connection state:
// it sends nothing to etcd. Watches resume by themselves when the
// connection comes back; this tells a follower an outage is under way.
func (b *Backend) WatchConnectivity(ctx context.Context, report func(up bool)) {
	conn := b.client.ActiveConnection()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			report(true)
		case connectivity.TransientFailure, connectivity.Shutdown:
			report(false)
		}
		if s == connectivity.Shutdown || !conn.WaitForStateChange(ctx, s) {
			return
		}
	}
}
