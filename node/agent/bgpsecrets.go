package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	k8s "k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
)

// dirSecrets reads BGP passwords from files <dir>/<secret>/<key>: a
// Kubernetes Secret mounted as a volume, or files an operator wrote on an
// etcd cluster. Files are local: reading them on every apply costs the
// datastore nothing.
type dirSecrets struct{ dir string }

func (s dirSecrets) Secret(_ context.Context, name, key string) (string, error) {
	if name == "" || key == "" || strings.ContainsAny(name+key, "/\\") || name == ".." || key == ".." {
		return "", fmt.Errorf("secret %q key %q: not a valid name", name, key)
	}
	p := filepath.Join(s.dir, name, key)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("secret %s key %s: %s does not exist (set CALICO_BGP_SECRETS_DIR or mount the Secret there)", name, key, p)
		}
		return "", fmt.Errorf("secret %s key %s: %w", name, key, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// kubeSecrets reads Secrets of the agent's namespace. Each Secret named by
// a peer is listed once and then watched (a field selector on its name), so
// a rotated password reaches the speaker and an idle agent sends nothing.
type kubeSecrets struct {
	cs       k8s.Interface
	ns       string
	changed  func() // a watched Secret changed
	stop     <-chan struct{}
	mu       sync.Mutex
	watching map[string]toolscache.SharedIndexInformer
}

func newKubeSecrets(ctx context.Context, cs k8s.Interface, ns string, changed func()) *kubeSecrets {
	return &kubeSecrets{cs: cs, ns: ns, changed: changed, stop: ctx.Done(), watching: map[string]toolscache.SharedIndexInformer{}}
}

func (s *kubeSecrets) Secret(ctx context.Context, name, key string) (string, error) {
	inf := s.informer(name)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !toolscache.WaitForCacheSync(waitCtx.Done(), inf.HasSynced) {
		return "", fmt.Errorf("secret %s/%s: not read from the API server yet", s.ns, name)
	}
	for _, o := range inf.GetStore().List() {
		sec, ok := o.(*corev1.Secret)
		if !ok || sec.Name != name {
			continue
		}
		v, ok := secretData(sec)[key]
		if !ok {
			return "", fmt.Errorf("secret %s/%s has no key %q", s.ns, name, key)
		}
		return strings.TrimRight(string(v), "\r\n"), nil
	}
	return "", fmt.Errorf("secret %s/%s does not exist (or the agent may not read it)", s.ns, name)
}

func (s *kubeSecrets) informer(name string) toolscache.SharedIndexInformer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inf, ok := s.watching[name]; ok {
		return inf
	}
	f := informers.NewSharedInformerFactoryWithOptions(s.cs, 0, informers.WithNamespace(s.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	inf := f.Core().V1().Secrets().Informer()
	notify := func(any) {
		if s.changed != nil {
			s.changed()
		}
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, n any) { notify(n) },
		DeleteFunc: notify,
	})
	f.Start(s.stop)
	s.watching[name] = inf
	return inf
}

// secretData is a Secret's data with stringData laid under it (the API
// server folds stringData into data on write; fakes may not).
func secretData(sec *corev1.Secret) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range sec.StringData {
		out[k] = []byte(v)
	}
	for k, v := range sec.Data {
		out[k] = v
	}
	return out
}
