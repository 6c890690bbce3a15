package crds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// crdResource is where CustomResourceDefinitions live.
var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Defaults for InstallOptions.
const (
	DefaultEstablishTimeout = 60 * time.Second
	DefaultPollInterval     = 250 * time.Millisecond
)

// InstallOptions tune Install.
type InstallOptions struct {
	// CRDs to apply; nil means All().
	CRDs []*CustomResourceDefinition
	// EstablishTimeout bounds the wait for every CRD to be Established;
	// default DefaultEstablishTimeout. Negative skips the wait.
	EstablishTimeout time.Duration
	// PollInterval is how often the CRDs' status is read while waiting;
	// default DefaultPollInterval.
	PollInterval time.Duration
}

// ErrNotEstablished is wrapped by Install's error when the API server did not
// accept a CRD's names or did not establish it in time.
var ErrNotEstablished = errors.New("CRD not established")

// Install applies the CRDs server-side (an apply patch with field manager
// "calicoctl", forcing ownership of conflicting fields), then waits until the
// API server reports each one Established. It returns how many CRDs were
// applied, which is also the count when the wait fails.
func Install(ctx context.Context, cfg *rest.Config, opts InstallOptions) (int, error) {
	list := opts.CRDs
	if list == nil {
		var err error
		if list, err = All(); err != nil {
			return 0, err
		}
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("crds: kubernetes client: %w", err)
	}
	client := dc.Resource(crdResource)
	force := true
	applied := 0
	for _, c := range list {
		body, err := json.Marshal(c)
		if err != nil {
			return applied, fmt.Errorf("crds: encoding %s: %w", c.Name, err)
		}
		_, err = client.Patch(ctx, c.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
		if err != nil {
			return applied, fmt.Errorf("applying CustomResourceDefinition %s: %w", c.Name, err)
		}
		slog.Debug("applied CRD", "name", c.Name)
		applied++
	}
	if opts.EstablishTimeout < 0 {
		return applied, nil
	}
	names := make([]string, len(list))
	for i, c := range list {
		names[i] = c.Name
	}
	return applied, waitEstablished(ctx, client, names, opts)
}

// waitEstablished polls the CRDs until each is Established, failing early
// when the API server rejects a CRD's names.
func waitEstablished(ctx context.Context, client dynamic.ResourceInterface, names []string, opts InstallOptions) error {
	timeout := opts.EstablishTimeout
	if timeout == 0 {
		timeout = DefaultEstablishTimeout
	}
	interval := opts.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	pending := append([]string(nil), names...)
	var last error
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		var still []string
		for _, name := range pending {
			obj, err := client.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last = fmt.Errorf("reading CustomResourceDefinition %s: %w", name, err)
				still = append(still, name)
				continue
			}
			done, err := established(obj)
			if err != nil {
				return false, fmt.Errorf("%w: %s: %w", ErrNotEstablished, name, err)
			}
			if !done {
				last = fmt.Errorf("%s is not established yet", name)
				still = append(still, name)
			}
		}
		pending = still
		return len(pending) == 0, nil
	})
	if err != nil && wait.Interrupted(err) {
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for CustomResourceDefinitions: %w", ctx.Err())
		}
		return fmt.Errorf("%w: %d not ready after %s (%s): last: %w", ErrNotEstablished, len(pending), timeout, strings.Join(pending, ", "), last)
	}
	return err
}

// established reads a CRD's conditions: true once Established is True; an
// error when NamesAccepted is False (the wait would never end).
func established(obj *unstructured.Unstructured) (bool, error) {
	// A CRD the API server has only just stored has "conditions": null (or
	// no status at all): not established yet, not an error.
	raw, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "conditions")
	conds, _ := raw.([]any)
	ok := false
	for _, c := range conds {
		m, isMap := c.(map[string]any)
		if !isMap {
			continue
		}
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		switch {
		case typ == "NamesAccepted" && status == "False":
			msg, _ := m["message"].(string)
			return false, fmt.Errorf("names not accepted: %s", msg)
		case typ == "Established" && status == "True":
			ok = true
		}
	}
	return ok, nil
}
