package k8s

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// install applies the committed manifests as a user would (plus the
// kubernetes-services-endpoint ConfigMap) and waits until calico-node is
// Ready on both nodes.
func (c *cluster) install(t *testing.T) {
	t.Helper()
	begin := time.Now()
	c.mustKubectl(t, "apply", "--server-side", "-f", filepath.Join(c.moduleRoot, "manifests/crds.yaml"))
	c.applyServicesEndpoint(t)
	c.mustKubectl(t, "apply", "-f", filepath.Join(c.moduleRoot, "manifests/calico-node.yaml"))
	c.waitCalicoNodeReady(t, begin, "kubectl apply")
}

// applyServicesEndpoint creates the ConfigMap that points in-cluster clients
// at the API server itself: no kube-proxy runs here.
func (c *cluster) applyServicesEndpoint(t *testing.T) {
	t.Helper()
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
}

// waitCalicoNodeReady waits for calico-node Ready (its readiness probe) on
// both nodes, then checks what install-cni left on each node.
func (c *cluster) waitCalicoNodeReady(t *testing.T, begin time.Time, how string) {
	t.Helper()
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
	t.Logf("calico-node Ready on both nodes %s after %s", time.Since(begin).Round(time.Millisecond), how)

	// The plugin acts as calico-cni, not with the agent's own token.
	for _, n := range c.nodes {
		kc, err := os.ReadFile(filepath.Join(n.dir, "root/etc/cni/net.d/calico-kubeconfig"))
		must(t, err)
		if sub := tokenSubject(t, string(kc)); sub != "system:serviceaccount:kube-system:calico-cni" {
			t.Errorf("%s: the CNI kubeconfig's token is for %q", n.name, sub)
		}
		for _, f := range []string{"root/opt/cni/bin/calico", "root/opt/cni/bin/calico-ipam", "root/etc/cni/net.d/10-calico.conflist"} {
			if _, err := os.Stat(filepath.Join(n.dir, f)); err != nil {
				t.Errorf("%s: %v", n.name, err)
			}
		}
	}
}

// tokenSubject is the sub claim of the bearer token in a kubeconfig.
func tokenSubject(t *testing.T, kubeconfig string) string {
	t.Helper()
	_, after, ok := strings.Cut(kubeconfig, "token: ")
	if !ok {
		t.Fatalf("no token in the CNI kubeconfig")
	}
	parts := strings.Split(strings.Fields(after)[0], ".")
	if len(parts) != 3 {
		t.Fatalf("the CNI token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var claims struct {
		Sub string `json:"sub"`
	}
	must(t, json.Unmarshal(payload, &claims))
	return claims.Sub
}

// checkNoForbidden fails if the agents or the CNI plugins were refused
// anything by RBAC: the ClusterRoles must cover what they do.
func (c *cluster) checkNoForbidden(t *testing.T) {
	t.Helper()
	out, err := c.kubectl("logs", "-n", "kube-system", "-l", "k8s-app=calico-node", "--all-containers", "--tail=-1", "--prefix")
	must(t, err)
	logs := map[string]string{"calico-node pods": out}
	for _, n := range c.nodes {
		b, _ := os.ReadFile(filepath.Join(n.dir, "root/var/log/calico/cni/cni.log"))
		logs["CNI plugin on "+n.name] = string(b)
	}
	for what, l := range logs {
		for _, line := range strings.Split(l, "\n") {
			if strings.Contains(strings.ToLower(line), "forbidden") {
				t.Errorf("%s: %s", what, line)
			}
		}
	}
}

// pod is a test workload: a busybox TCP echo server on port 8080.
type pod struct {
	name, node string
	ip         string
	annotation string
	labels     string // "k: v" lines' content, e.g. "app: web"
}

func (c *cluster) createPod(t *testing.T, p *pod) {
	t.Helper()
	ann := ""
	if p.annotation != "" {
		ann = "\n  annotations:\n    " + p.annotation
	}
	if p.labels != "" {
		ann += "\n  labels:\n    " + p.labels
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
	a1 := &pod{name: "a1", node: "node-1", labels: "role: fe"}
	a2 := &pod{name: "a2", node: "node-1"}
	b1 := &pod{name: "b1", node: "node-2", labels: "app: web"}
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
		// As a kubectl plugin (seed 000's `kubectl calico ipam show --show-blocks`):
		// kubectl finds kubectl-calico on PATH, a link to our binary.
		plugins := filepath.Join(c.dir, "plugins")
		must(t, os.MkdirAll(plugins, 0o755))
		must(t, os.Symlink(c.calicoctl, filepath.Join(plugins, "kubectl-calico")))
		cmd := exec.Command(c.bins["kubectl"], "calico", "ipam", "show", "--show-blocks")
		cmd.Env = append(os.Environ(), "PATH="+plugins+":"+os.Getenv("PATH"), "KUBECONFIG="+c.api.Kubeconfig, "DATASTORE_TYPE=kubernetes")
		blocks, err := cmd.CombinedOutput()
		must(t, err)
		t.Logf("kubectl calico ipam show --show-blocks:\n%s", blocks)
		for _, p := range []*pod{a1, b1} {
			ip := netip.MustParseAddr(p.ip)
			block := netip.PrefixFrom(ip, 26).Masked().String() // the manifest's default blockSize
			if !strings.Contains(string(blocks), block) {
				t.Errorf("kubectl calico ipam show --show-blocks lacks %s's block %s", p.name, block)
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
	t.Run("KubernetesNetworkPolicy", func(t *testing.T) {
		c.networkPolicy(t, a1, a2, b1)
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
	t.Run("RBACSufficient", c.checkNoForbidden)
	t.Run("InClusterCalicoctl", func(t *testing.T) {
		// manifests/calicoctl.yaml as documented: kubectl exec into the pod.
		c.mustKubectl(t, "apply", "-f", filepath.Join(c.moduleRoot, "manifests/calicoctl.yaml"))
		c.mustKubectl(t, "wait", "-n", "kube-system", "pod/calicoctl", "--for=condition=Ready", "--timeout=60s")
		out := c.mustKubectl(t, "exec", "-n", "kube-system", "calicoctl", "--", "/calicoctl", "get", "wep", "-A")
		if !strings.Contains(out, a1.ip+"/32") || !strings.Contains(out, b1.ip+"/32") {
			t.Errorf("in-cluster calicoctl get wep -A:\n%s", out)
		}
		out = c.mustKubectl(t, "exec", "-n", "kube-system", "calicoctl", "--", "/calicoctl", "ipam", "show")
		if !strings.Contains(out, "192.168.0.0/16") {
			t.Errorf("in-cluster calicoctl ipam show:\n%s", out)
		}
		t.Logf("kubectl exec calicoctl -- /calicoctl ipam show:\n%s", out)
	})
	t.Run("RollingRestartKeepsTCP", func(t *testing.T) {
		c.rollingRestartUnderStream(t, a1, b1)
	})
	t.Logf("whole test %s", time.Since(begin).Round(time.Millisecond))
}

// rollingRestartUnderStream keeps one TCP connection from one pod to the
// echo server of a pod on the other node busy (a numbered line every 50 ms)
// while calico-node is restarted on every node, and checks that every line
// came back, in order, on the same connection.
func (c *cluster) rollingRestartUnderStream(t *testing.T, from, to *pod) {
	t.Helper()
	cmd := exec.Command(c.bins["kubectl"], "--kubeconfig", c.api.Kubeconfig, "exec", "-i", from.name, "--",
		"/bin/busybox", "nc", to.ip, "8080")
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	type echo struct {
		line string
		at   time.Time
	}
	echoes := make(chan echo, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			echoes <- echo{sc.Text(), time.Now()}
		}
		close(echoes)
	}()
	sent := map[int]time.Time{}
	next, got := 0, 0
	var maxRTT time.Duration
	send := func() {
		sent[next] = time.Now()
		if _, err := fmt.Fprintf(stdin, "seq %d\n", next); err != nil {
			t.Fatalf("stream broke after %d lines: %v (%s)", next, err, stderr.String())
		}
		next++
	}
	drain := func(deadline time.Time) {
		for got < next {
			select {
			case e, ok := <-echoes:
				if !ok {
					t.Fatalf("connection closed after %d of %d lines: %s", got, next, stderr.String())
				}
				if want := fmt.Sprintf("seq %d", got); e.line != want {
					t.Fatalf("echo %q, want %q (a line was lost or reordered)", e.line, want)
				}
				maxRTT = max(maxRTT, e.at.Sub(sent[got]))
				got++
			case <-time.After(time.Until(deadline)):
				return
			}
		}
	}
	// The stream works before the restart.
	for range 5 {
		send()
	}
	drain(time.Now().Add(15 * time.Second))
	if got != next {
		t.Fatalf("no echo through the stream before the restart (%d/%d): %s", got, next, stderr.String())
	}

	before := c.mustKubectl(t, "get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node", "-o", "name")
	c.mustKubectl(t, "rollout", "restart", "ds/calico-node", "-n", "kube-system")
	begin := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := c.kubectl("rollout", "status", "ds/calico-node", "-n", "kube-system", "--timeout=180s")
		done <- err
	}()
	var rolled time.Duration
	for rolled == 0 {
		select {
		case err := <-done:
			must(t, err)
			rolled = time.Since(begin)
		case <-time.After(50 * time.Millisecond):
			send()
			drain(time.Now())
		}
	}
	// A few more seconds on the new agents.
	for range 40 {
		send()
		time.Sleep(50 * time.Millisecond)
	}
	drain(time.Now().Add(30 * time.Second))
	if got != next {
		t.Fatalf("%d of %d lines came back after the restart: %s", got, next, stderr.String())
	}
	after := c.mustKubectl(t, "get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node", "-o", "name")
	for _, old := range strings.Fields(before) {
		if strings.Contains(after, old) {
			t.Errorf("%s was not replaced by the rolling restart", old)
		}
	}
	t.Logf("rolling restart of calico-node on both nodes took %s; %d lines echoed on one connection, none lost, slowest echo %s",
		rolled.Round(time.Millisecond), got, maxRTT.Round(time.Millisecond))
}

// TestPrivilegedK8sHelm installs the chart with `helm install` and values
// other than the defaults: a pool without encapsulation (the two nodes share
// eth0's subnet; routes between them are learned over BGP or written
// directly), addresses from the nodes' InternalIP. Pods on the two nodes
// reach each other without VXLAN; `helm uninstall` removes calico-node.
// Skipped unless Helm was built (make chart-check) or HELM_BIN is set.
func TestPrivilegedK8sHelm(t *testing.T) {
	helm := os.Getenv("HELM_BIN")
	if helm == "" {
		out, err := exec.Command("bash", "../kubeapiserver/build.sh", "--cached", "helm").Output()
		if err != nil {
			t.Skip("no helm: run `make chart-check` once (builds and caches Helm) or set HELM_BIN")
		}
		helm = strings.TrimSpace(string(out))
	}
	begin := time.Now()
	c := newCluster(t)
	c.applyServicesEndpoint(t)
	installed := time.Now()
	out, err := run(helm, "install", "calico", filepath.Join(c.moduleRoot, "charts/calico"), "--namespace", "kube-system",
		"--kubeconfig", c.api.Kubeconfig, "--set", "ipPool.encapsulation=None", "--set", "ipPool.cidr=10.244.0.0/16",
		"--set", "ipAutodetectionMethod=kubernetes-internal-ip")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("helm install:\n%s", out)
	c.waitCalicoNodeReady(t, installed, "helm install")

	a := &pod{name: "a", node: "node-1"}
	b := &pod{name: "b", node: "node-2"}
	c.createPod(t, a)
	c.createPod(t, b)
	c.waitRunning(t, a, b)
	pool := netip.MustParsePrefix("10.244.0.0/16")
	for _, p := range []*pod{a, b} {
		if !pool.Contains(netip.MustParseAddr(p.ip)) {
			t.Errorf("pod %s got %s, outside the chart's pool %s", p.name, p.ip, pool)
		}
	}
	c.ping(t, a, b)
	c.tcpEcho(t, b, a)
	routes, _ := run("ip", "-n", c.nodes[0].netns, "route")
	t.Logf("node-1 routes:\n%s", routes)
	if strings.Contains(routes, "vxlan.calico") {
		t.Errorf("a pool without encapsulation routed through VXLAN:\n%s", routes)
	}
	if !strings.Contains(routes, "via "+c.nodes[1].ip+" dev eth0") {
		t.Errorf("no direct route to node-2's block via %s:\n%s", c.nodes[1].ip, routes)
	}
	// No encapsulation picks the BGP backend: the agents peer in the
	// node-to-node mesh, as `calicoctl node status` in calico-node shows.
	waitFor(t, "node-1's calico-node: node-to-node mesh to node-2 Established", 60*time.Second, func() error {
		name, err := c.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=calico-node",
			"--field-selector", "spec.nodeName=node-1", "-o", "jsonpath={.items[0].metadata.name}")
		if err != nil {
			return err
		}
		out, err := c.kubectl("exec", "-n", "kube-system", strings.TrimSpace(name), "-c", "calico-node", "--", "/calicoctl", "node", "status")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, c.nodes[1].ip) && strings.Contains(l, "node-to-node mesh") && strings.Contains(l, "Established") {
				t.Logf("calicoctl node status in calico-node on node-1:\n%s", out)
				return nil
			}
		}
		return fmt.Errorf("%s", out)
	})
	c.checkNoForbidden(t)

	if out, err := run(helm, "uninstall", "calico", "--namespace", "kube-system", "--kubeconfig", c.api.Kubeconfig); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("helm uninstall: %s", strings.TrimSpace(out))
	}
	waitFor(t, "calico-node gone", 60*time.Second, func() error {
		out, err := c.kubectl("get", "ds,pods", "-n", "kube-system", "-l", "k8s-app=calico-node", "-o", "name")
		if err != nil || strings.TrimSpace(out) != "" {
			return fmt.Errorf("%v %q", err, out)
		}
		return nil
	})
	t.Logf("whole test %s", time.Since(begin).Round(time.Millisecond))
}

// tcpBlocked waits until from can no longer reach to's echo server.
func (c *cluster) tcpBlocked(t *testing.T, from, to *pod) {
	t.Helper()
	waitFor(t, fmt.Sprintf("TCP %s -> %s:8080 blocked", from.name, to.name), 30*time.Second, func() error {
		out, err := c.exec(from, "/bin/busybox", "sh", "-c", "echo hello-"+from.name+" | /bin/busybox nc -w 2 "+to.ip+" 8080")
		if err == nil && strings.Contains(out, "hello-"+from.name) {
			return fmt.Errorf("still connects")
		}
		return nil
	})
}

// networkPolicy: a Kubernetes NetworkPolicy admitting only role=fe pods to
// app=web on TCP 8080, enforced by the agents of both nodes (policy is on
// by default): fe (other node) gets through, an unlabelled pod does not,
// nor does a ping; deleting the policy opens the pod again.
func (c *cluster) networkPolicy(t *testing.T, fe, other, web *pod) {
	file := filepath.Join(c.dir, "knp.yaml")
	must(t, os.WriteFile(file, []byte(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-fe, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: fe}}
    ports:
    - {protocol: TCP, port: 8080}
`), 0o644))
	c.mustKubectl(t, "apply", "-f", file)
	c.tcpBlocked(t, other, web)
	c.tcpEcho(t, fe, web)
	if _, err := c.exec(fe, "/bin/busybox", "ping", "-c", "1", "-W", "2", web.ip); err == nil {
		t.Errorf("ping %s -> %s passed; the policy admits TCP 8080 only", fe.name, web.name)
	}
	out, err := c.calicoctlCmd("get", "networkpolicy", "-n", "default")
	must(t, err)
	if !strings.Contains(out, "knp.default.web-from-fe") {
		t.Errorf("calicoctl get networkpolicy lacks the Kubernetes policy:\n%s", out)
	}
	c.mustKubectl(t, "delete", "-f", file)
	c.tcpEcho(t, other, web)
}
