package k8s

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// install applies the committed manifests as a user would, plus the
// ConfigMap that points in-cluster clients at the API server directly (no
// kube-proxy runs here), and waits until calico-node is Ready on both nodes.
func (c *cluster) install(t *testing.T) {
	t.Helper()
	begin := time.Now()
	c.mustKubectl(t, "apply", "--server-side", "-f", filepath.Join(c.moduleRoot, "manifests/crds.yaml"))
	cm := filepath.Join(c.dir, "kubernetes-services-endpoint.yaml")
	host, port, _ := strings.Cut(strings.TrimPrefix(c.api.URL, "https://"), ":")
	must(t, os.WriteFile(cm, []byte(fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: kubernetes-services-endpoint
  namespace: kube-system
data:
  KUBERNETES_SERVICE_HOST: %q
  KUBERNETES_SERVICE_PORT: %q
`, host, port)), 0o644))
	c.mustKubectl(t, "apply", "-f", cm)
	c.mustKubectl(t, "apply", "-f", filepath.Join(c.moduleRoot, "manifests/calico-node.yaml"))
	waitFor(t, "calico-node Ready on both nodes", 3*time.Minute, func() error {
		out, err := c.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node", "-o",
			`jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return err
		}
		if strings.Count(out, " True") != 2 {
			return fmt.Errorf("%q", out)
		}
		return nil
	})
	t.Logf("calico-node Ready on both nodes %s after kubectl apply", time.Since(begin).Round(time.Millisecond))
}

// pod is a test workload: a busybox TCP echo server on port 8080.
type pod struct {
	name, node string
	ip         string
	annotation string
}

func (c *cluster) createPod(t *testing.T, p *pod) {
	t.Helper()
	ann := ""
	if p.annotation != "" {
		ann = "\n  annotations:\n    " + p.annotation
	}
	file := filepath.Join(c.dir, p.name+".yaml")
	must(t, os.WriteFile(file, []byte(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: default%s
spec:
  nodeName: %s
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
    - name: echo
      image: %s
      imagePullPolicy: Never
      command: ["/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/busybox", "cat"]
`, p.name, ann, p.node, workloadImage)), 0o644))
	c.mustKubectl(t, "apply", "-f", file)
}

func (c *cluster) waitRunning(t *testing.T, pods ...*pod) {
	t.Helper()
	for _, p := range pods {
		waitFor(t, "pod "+p.name+" Running with an IP", 90*time.Second, func() error {
			out, err := c.kubectl("get", "pod", p.name, "-o", "jsonpath={.status.phase} {.status.podIP}")
			if err != nil {
				return err
			}
			phase, ip, _ := strings.Cut(strings.TrimSpace(out), " ")
			if phase != "Running" || ip == "" {
				return fmt.Errorf("%q", out)
			}
			p.ip = ip
			return nil
		})
	}
}

// exec runs a command in a pod's container.
func (c *cluster) exec(p *pod, args ...string) (string, error) {
	return c.kubectl(append([]string{"exec", p.name, "--"}, args...)...)
}

// ping checks from one pod to another.
func (c *cluster) ping(t *testing.T, from, to *pod) {
	t.Helper()
	waitFor(t, fmt.Sprintf("ping %s (%s) -> %s (%s)", from.name, from.node, to.name, to.node), 30*time.Second, func() error {
		_, err := c.exec(from, "/bin/busybox", "ping", "-c", "1", "-W", "2", to.ip)
		return err
	})
}

// tcpEcho sends a line through a TCP connection to a pod's echo server.
func (c *cluster) tcpEcho(t *testing.T, from, to *pod) {
	t.Helper()
	waitFor(t, fmt.Sprintf("TCP %s -> %s:8080", from.name, to.name), 30*time.Second, func() error {
		out, err := c.exec(from, "/bin/busybox", "sh", "-c", "echo hello-"+from.name+" | /bin/busybox nc -w 2 "+to.ip+" 8080")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "hello-"+from.name) {
			return fmt.Errorf("echo returned %q", out)
		}
		return nil
	})
}

// TestPrivilegedK8sCluster installs Calico into a two-node cluster and checks
// what a user relies on: calico-node Ready through its probes, pods getting
// addresses from our CNI plugin and IPAM and reaching each other across
// nodes, the workload endpoints in calicoctl, a fixed address from the
// ipAddrs annotation, and a deleted pod's address freed.
func TestPrivilegedK8sCluster(t *testing.T) {
	begin := time.Now()
	c := newCluster(t)
	c.install(t)

	pool := netip.MustParsePrefix("192.168.0.0/16") // the manifest's default pool
	a1 := &pod{name: "a1", node: "node-1"}
	a2 := &pod{name: "a2", node: "node-1"}
	b1 := &pod{name: "b1", node: "node-2"}
	t.Run("PodsGetAddresses", func(t *testing.T) {
		for _, p := range []*pod{a1, a2, b1} {
			c.createPod(t, p)
		}
		c.waitRunning(t, a1, a2, b1)
		for _, p := range []*pod{a1, a2, b1} {
			if !pool.Contains(netip.MustParseAddr(p.ip)) {
				t.Errorf("pod %s got %s, outside the pool %s", p.name, p.ip, pool)
			}
		}
		out, err := c.calicoctlCmd("get", "workloadendpoints", "-A", "-o", "wide")
		must(t, err)
		t.Logf("calicoctl get wep -A:\n%s", out)
		for _, p := range []*pod{a1, a2, b1} {
			if !strings.Contains(out, p.ip+"/32") || !strings.Contains(out, p.node) {
				t.Errorf("calicoctl get wep lacks %s (%s on %s)", p.name, p.ip, p.node)
			}
		}
	})
	if t.Failed() {
		return
	}
	t.Run("PodToPod", func(t *testing.T) {
		c.ping(t, a1, a2) // same node
		c.ping(t, a1, b1) // across nodes (VXLAN)
		c.ping(t, b1, a1)
		c.tcpEcho(t, a1, b1)
		c.tcpEcho(t, b1, a2)
	})
	t.Run("FixedIPAnnotation", func(t *testing.T) {
		fixed := &pod{name: "fixed", node: "node-2", annotation: `cni.projectcalico.org/ipAddrs: '["192.168.250.7"]'`}
		c.createPod(t, fixed)
		c.waitRunning(t, fixed)
		if fixed.ip != "192.168.250.7" {
			t.Fatalf("pod with ipAddrs annotation got %s, want 192.168.250.7", fixed.ip)
		}
		c.ping(t, a1, fixed)
	})
	t.Run("DeleteFreesAddress", func(t *testing.T) {
		ip := a2.ip
		before, err := c.calicoctlCmd("ipam", "show", "--ip="+ip)
		must(t, err)
		if !strings.Contains(before, "in use") {
			t.Fatalf("before delete, calicoctl ipam show --ip=%s: %s", ip, before)
		}
		c.mustKubectl(t, "delete", "pod", a2.name, "--wait=true", "--timeout=60s")
		waitFor(t, "address "+ip+" released", 30*time.Second, func() error {
			out, err := c.calicoctlCmd("ipam", "show", "--ip="+ip)
			if err != nil {
				return err
			}
			if !strings.Contains(out, "not assigned") {
				return fmt.Errorf("%s", out)
			}
			return nil
		})
		out, err := c.calicoctlCmd("get", "wep", "-A")
		must(t, err)
		if strings.Contains(out, ip+"/32") {
			t.Errorf("deleted pod's endpoint still listed:\n%s", out)
		}
	})
	t.Logf("whole test %s", time.Since(begin).Round(time.Millisecond))
}

// jsonPath decodes kubectl -o json.
func jsonOf(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}
