// Package ipamstore picks the IPAM store that matches a resource datastore:
// upstream's etcd keys for the etcd backend, the IPAM custom resources for
// the Kubernetes backend.
package ipamstore

import (
	"errors"
	"fmt"

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

// Open returns the IPAM store sharing ds's connection: an etcdstore for an
// *etcd.Backend, a kubestore for a *kubernetes.Backend.
func Open(ds datastore.Interface) (ipam.Store, error) {
	switch b := ds.(type) {
	case *etcd.Backend:
		if b == nil || b.Client() == nil {
			return nil, fmt.Errorf("ipam store: etcd backend has no client: %w", ErrUnsupportedDatastore)
		}
		return etcdstore.New(b.Client()), nil
	case *kubernetes.Backend:
		if b == nil || b.RESTConfig() == nil {
			return nil, fmt.Errorf("ipam store: kubernetes backend has no REST config: %w", ErrUnsupportedDatastore)
		}
		s, err := kubestore.New(b.RESTConfig())
		if err != nil {
			return nil, fmt.Errorf("ipam store: %w", err)
		}
		return s, nil
	case nil:
		return nil, fmt.Errorf("ipam store: no datastore: %w", ErrUnsupportedDatastore)
	default:
		return nil, fmt.Errorf("ipam store: datastore %T: %w", ds, ErrUnsupportedDatastore)
	}
}
