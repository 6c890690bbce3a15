package cli

import (
	"context"

	"github.com/opencalico/calicoctl/datastore"
	"github.com/opencalico/calicoctl/internal/config"
)

// DatastoreForSpec connects to the datastore a client configuration spec
// describes, exactly as the CLI's Factory does (the CNI plugin builds the
// spec from its network configuration). env answers the environment lookups
// the Kubernetes backend makes (in-cluster detection); nil means none.
func DatastoreForSpec(ctx context.Context, spec config.Spec, env func(string) (string, bool)) (datastore.Interface, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	f := &Factory{Env: env, resolved: &config.Resolved{Spec: spec}}
	return f.Datastore(ctx)
}
