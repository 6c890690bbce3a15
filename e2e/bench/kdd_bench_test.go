package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// The Kubernetes-datastore benchmarks run the binary against a real
// kube-apiserver (internal/kubetest; the binary is built or taken from
// KUBE_APISERVER_BIN) with the Calico CRDs installed by
// `calicoctl datastore crds install`.

const (
	nPods       = 10000
	nPodNS      = 10
	nPodNodes   = 8
	nGNPs       = 1000
	setupWorker = 64
)

// kddCalicoctl runs one command against the API server behind kubeconfig
// and returns its stdout and its own peak RSS in MiB.
func kddCalicoctl(b *testing.B, kubeconfig string, args ...string) (string, float64) {
	b.Helper()
	return runBinary(b, []string{"DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + kubeconfig}, args...)
}

// startKDD starts an API server and installs the Calico CRDs through the CLI.
func startKDD(b *testing.B) *kubetest.APIServer {
	b.Helper()
	srv := kubetest.Start(b)
	out, _ := kddCalicoctl(b, srv.Kubeconfig, "datastore", "crds", "install")
	if !strings.HasPrefix(out, "Successfully applied ") {
		b.Fatalf("crds install: %q", out)
	}
	return srv
}

// fastClientset is an admin clientset without client-side rate limiting,
// for bulk setup.
func fastClientset(b *testing.B, srv *kubetest.APIServer) kubernetes.Interface {
	b.Helper()
	rc := srv.RESTConfig()
	rc.QPS, rc.Burst = 1e6, 1e6
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// createPods creates n running pods across nPodNS namespaces and nPodNodes
// nodes, as a scheduler and kubelets would leave them (spec.nodeName, then
// status.podIPs through the status subresource), with setupWorker clients
// in parallel.
func createPods(b *testing.B, srv *kubetest.APIServer, n int) {
	b.Helper()
	for i := range nPodNS {
		srv.CreateNamespace(b, fmt.Sprintf("ns%d", i), map[string]string{"bench": "kdd"})
	}
	cs := fastClientset(b, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobs := make(chan int)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		firstEr error
	)
	for range setupWorker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := createPod(ctx, cs, i); err != nil {
					errOnce.Do(func() { firstEr = err; cancel() })
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstEr != nil {
		b.Fatal(firstEr)
	}
}

func createPod(ctx context.Context, cs kubernetes.Interface, i int) error {
	ns := fmt.Sprintf("ns%d", i%nPodNS)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("web%d", i), Labels: map[string]string{"app": "web", "tier": "frontend"}},
		Spec: corev1.PodSpec{
			NodeName:           fmt.Sprintf("node%d", i%nPodNodes),
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "main", Image: kubetest.PauseImage}},
		},
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %d: %w", i, err)
	}
	ip := fmt.Sprintf("10.%d.%d.%d", 10+i/65536, (i/256)%256, i%256)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set status of pod %d: %w", i, err)
	}
	return nil
}

// gnpManifest writes n GlobalNetworkPolicies as one multi-document file.
func gnpManifest(b *testing.B, n int) string {
	b.Helper()
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, `---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: gnp-%04[1]d
spec:
  order: %[1]d
  selector: app == 'web%[1]d'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'frontend'
    destination:
      ports: [80, 443]
`, i)
	}
	path := filepath.Join(b.TempDir(), "gnps.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// benchmarkKDDGet times `calicoctl args...` and checks that the table has
// at least want data rows.
func benchmarkKDDGet(b *testing.B, kubeconfig string, want int, args ...string) {
	b.Helper()
	measure(b, func() (string, float64) { return kddCalicoctl(b, kubeconfig, args...) }, func(out string) {
		// Header and the trailing empty line are not rows.
		if rows := strings.Count(out, "\n") - 2; rows < want {
			b.Fatalf("calicoctl %s: %d rows, want %d", strings.Join(args, " "), rows, want)
		}
	})
}

// BenchmarkKDDGetWEPsAllNamespaces: `calicoctl get wep -A` over 10,000 pods.
func BenchmarkKDDGetWEPsAllNamespaces(b *testing.B) {
	srv := startKDD(b)
	createPods(b, srv, nPods)
	benchmarkKDDGet(b, srv.Kubeconfig, nPods, "get", "wep", "-A")
}

// BenchmarkKDDGetGNPs: `calicoctl get gnp` over 1,000 GlobalNetworkPolicies.
func BenchmarkKDDGetGNPs(b *testing.B) {
	srv := startKDD(b)
	out, _ := kddCalicoctl(b, srv.Kubeconfig, "apply", "-f", gnpManifest(b, nGNPs))
	if !strings.Contains(out, fmt.Sprintf("Successfully applied %d 'GlobalNetworkPolicy' resource(s)", nGNPs)) {
		b.Fatalf("apply: %q", out)
	}
	benchmarkKDDGet(b, srv.Kubeconfig, nGNPs, "get", "gnp")
}
