package cli

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/opencalico/calicoctl/datastore"
)

// conflictRetries bounds read-modify-write attempts of patch and label. Each
// attempt re-reads the object, so a retry never loses another writer's
// change; with jittered backoff, dozens of concurrent writers of one object
// all get through.
const conflictRetries = 50

// retryOnConflict runs attempt until it returns nil or an error other than a
// conflict (datastore.ErrConflict, which client.OutOfDateError matches),
// sleeping a growing, jittered delay between attempts. It gives up after
// conflictRetries attempts or when ctx ends, returning the last error.
func retryOnConflict(ctx context.Context, attempt func() error) error {
	delay := 5 * time.Millisecond
	var err error
	for range conflictRetries {
		if err = attempt(); err == nil || !errors.Is(err, datastore.ErrConflict) {
			return err
		}
		t := time.NewTimer(delay/2 + rand.N(delay))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
	return err
}
