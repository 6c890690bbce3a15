// Package ipamstore picks the IPAM store that matches a resource datastore:
// upstream's etcd keys for the etcd backend, the IPAM custom resources for
// the Kubernetes backend.
package ipamstore

import (
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/rest"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/datastore/etcd"
	"github.com/opencalico/calicoctl/datastore/kubernetes"
	"github.com/opencalico/calicoctl/internal/ipam"
	"github.com/opencalico/calicoctl/internal/ipam/etcdstore"
	"github.com/opencalico/calicoctl/internal/ipam/kubestore"
)

// ErrUnsupportedDatastore is wrapped by Open's error for a datastore with no
// IPAM store.
var ErrUnsupportedDatastore = errors.New("IPAM is not supported on this datastore")

// EtcdBacked is the capability of a datastore kept in etcd v3: the IPAM store
// shares its client (upstream's keys under /calico/ipam/v2/).
type EtcdBacked interface {
	Client() *clientv3.Client
}

// KubernetesBacked is the capability of a datastore kept in the Kubernetes
// API: the IPAM store uses its REST configuration (the IPAM custom
// resources).
type KubernetesBacked interface {
	RESTConfig() *rest.Config
}

// Open returns the IPAM store sharing ds's connection, found by what ds can
// do (through wrappers such as datastore.FailFast), not by its type.
func Open(ds datastore.Interface) (ipam.Store, error) {
	if ds == nil {
		return nil, fmt.Errorf("ipam store: no datastore: %w", ErrUnsupportedDatastore)
	}
	if b, ok := datastore.As[EtcdBacked](ds); ok {
		c := b.Client()
		if c == nil {
			return nil, fmt.Errorf("ipam store: etcd backend has no client: %w", ErrUnsupportedDatastore)
		}
		return etcdstore.New(c), nil
	}
	if b, ok := datastore.As[KubernetesBacked](ds); ok {
		rc := b.RESTConfig()
		if rc == nil {
			return nil, fmt.Errorf("ipam store: kubernetes backend has no REST config: %w", ErrUnsupportedDatastore)
		}
		s, err := kubestore.New(rc)
		if err != nil {
			return nil, fmt.Errorf("ipam store: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("ipam store: datastore %T: %w", ds, ErrUnsupportedDatastore)
}

var (
	_ EtcdBacked       = (*etcd.Backend)(nil)
	_ KubernetesBacked = (*kubernetes.Backend)(nil)
)
