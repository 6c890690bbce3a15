package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/e2e/clitest"
)

// cniAssign runs the binary as the calico-ipam CNI plugin (ADD) for pod
// default/<pod> on node, as a container runtime would, and returns the
// address it assigned (under handle k8s-pod-network.<containerID>).
func cniAssign(t *testing.T, c *cluster, node, pod, containerID string) string {
	t.Helper()
	dir := t.TempDir()
	plugin := filepath.Join(dir, "calico-ipam")
	if err := os.Symlink(binPath, plugin); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico","datastore_type":"etcdv3",` +
		`"etcd_endpoints":"` + c.Endpoint + `","nodename":"` + node + `","ipam":{"type":"calico-ipam"}}`
	cmd := exec.Command(plugin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CNI_COMMAND=ADD", "CNI_CONTAINERID=" + containerID,
		"CNI_NETNS=/var/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=" + dir,
		"CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + pod}
	cmd.Stdin = strings.NewReader(conf)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("calico-ipam ADD %s: %v\n%s", pod, err, out)
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) != 1 {
		t.Fatalf("calico-ipam ADD %s: result %s (%v)", pod, out, err)
	}
	ip, _, _ := strings.Cut(res.IPs[0].Address, "/")
	return ip
}

// readLeakReport reads an `ipam check -o` report as generic JSON.
func readLeakReport(t *testing.T, path string) map[string]any {
	t.Helper()
	var rep map[string]any
	if err := json.Unmarshal([]byte(clitest.ReadFile(t, path)), &rep); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	return rep
}

// reportEntry is the (single) report entry of ip.
func reportEntry(t *testing.T, rep map[string]any, ip string) map[string]any {
	t.Helper()
	allocs, _ := rep["allocations"].(map[string]any)
	list, _ := allocs[ip].([]any)
	if len(list) != 1 {
		t.Fatalf("report has %d entries for %s", len(list), ip)
	}
	e, _ := list[0].(map[string]any)
	return e
}

// Addresses assigned on purpose are never leaks; a report says why each
// address is listed; release --from-report checks each address again and
// frees only those that are still the same leak.
func TestIPAMLeaksOnlyWhatNobodyMeantToKeep(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.mustRun(t, "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.244.0.0/16}\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\n", "create", "-f", "-")
	out := c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=H", "--num=5")
	var assigned []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 4 {
			assigned = append(assigned, f[4])
		}
	}
	if len(assigned) != 5 {
		t.Fatalf("assign --num=5:\n%s", out)
	}
	// Four pods whose workload endpoints never appeared: leaks.
	pods := map[string]string{}
	for i, name := range []string{"gone", "back", "reused", "changed"} {
		pods[name] = cniAssign(t, c, "n1", name, strings.Repeat(string(rune('a'+i)), 64))
	}

	out = c.mustRun(t, "", "ipam", "check", "--show-problem-ips")
	clitest.WantContains(t, "check", out,
		"Found 4 IPs that are allocated in IPAM but not actually in use.",
		"Found 5 IPs assigned on purpose",
		pods["gone"]+" leaked: no workload endpoint uses it (pod default/gone, handle \"k8s-pod-network.aaaa",
		"Check complete; found 4 problems.")
	for _, ip := range assigned {
		if strings.Contains(out, ip+" leaked") {
			t.Errorf("check lists %s, assigned on purpose, as leaked:\n%s", ip, out)
		}
	}
	out = c.mustRun(t, "", "ipam", "check", "--show-all-ips")
	clitest.WantContains(t, "check --show-all-ips", out,
		assigned[0]+` handle="H" node="n1" assigned on purpose by calicoctl ipam assign; never a leak`)

	c.mustRun(t, "", "datastore", "migrate", "lock")
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	c.mustRun(t, "", "ipam", "check", "-o", report)
	rep := readLeakReport(t, report)
	for _, ip := range assigned {
		e := reportEntry(t, rep, ip)
		if e["inUse"] != true || e["leakRule"] != nil || !strings.Contains(e["reason"].(string), "assigned on purpose") {
			t.Errorf("report entry of %s: %v", ip, e)
		}
	}
	e := reportEntry(t, rep, pods["gone"])
	if e["inUse"] != false || e["leakRule"] != "workload-gone" || !strings.Contains(e["reason"].(string), "no workload endpoint uses it") ||
		e["handle"] != "k8s-pod-network."+strings.Repeat("a", 64) || e["pod"] != "gone" {
		t.Errorf("report entry of a leak: %v", e)
	}

	// Since the report: one pod's endpoint appears, one address is freed
	// and handed to another pod, one allocation's owner changes.
	c.mustRun(t, wepYAML("n1", "back", pods["back"]), "create", "-f", "-")
	c.mustRun(t, "", "ipam", "release", "--ip="+pods["reused"])
	c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=k8s-pod-network."+strings.Repeat("e", 64), "--ip="+pods["reused"])
	c.mustRun(t, "", "ipam", "release", "--ip="+pods["changed"])
	c.mustRun(t, "", "ipam", "assign", "--node=n1", "--handle=k8s-pod-network."+strings.Repeat("d", 64), "--ip="+pods["changed"])

	r := c.runEnv(t, nil, "", "ipam", "release", "--from-report", report)
	if r.Code != 0 {
		t.Fatalf("release --from-report: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	clitest.WantContains(t, "release stdout", r.Stdout, "Releasing 4 old IPs...", "Released 1 IPs successfully", "You may now unlock the data store.")
	clitest.WantContains(t, "release stderr", r.Stderr,
		"not releasing "+pods["back"]+": it is now in use by workloadEndpoint default/n1-k8s-back-eth0",
		"not releasing "+pods["reused"]+": it now belongs to handle \"k8s-pod-network.eeee",
		"not releasing "+pods["changed"]+": ")
	clitest.WantExact(t, "the leak is gone", c.mustRun(t, "", "ipam", "show", "--ip="+pods["gone"]), pods["gone"]+" is not assigned\n")
	for _, ip := range append(assigned, pods["back"], pods["reused"], pods["changed"]) {
		if out := c.mustRun(t, "", "ipam", "show", "--ip="+ip); !strings.Contains(out, "is in use") {
			t.Errorf("%s was freed: %s", ip, out)
		}
	}

	// A report without reasons (upstream's format, or the old one that
	// listed assigned addresses as not in use) frees nothing assigned on
	// purpose either.
	report2 := filepath.Join(dir, "report2.json")
	c.mustRun(t, "", "ipam", "check", "-o", report2)
	rep = readLeakReport(t, report2)
	for _, list := range rep["allocations"].(map[string]any) {
		for _, x := range list.([]any) {
			e := x.(map[string]any)
			delete(e, "reason")
			delete(e, "leakRule")
			delete(e, "attributes")
			e["inUse"] = false
		}
	}
	data, _ := json.Marshal(rep)
	r = c.runEnv(t, nil, "", "ipam", "release", "--from-report", clitest.WriteFile(t, "upstream-report.json", string(data)))
	if r.Code != 0 {
		t.Fatalf("release --from-report (upstream format): exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	clitest.WantContains(t, "release upstream-format report", r.Stdout, "Released 0 IPs successfully")
	clitest.WantContains(t, "release upstream-format report", r.Stderr, "not releasing "+assigned[0]+": assigned on purpose")
	for _, ip := range assigned {
		if out := c.mustRun(t, "", "ipam", "show", "--ip="+ip); !strings.Contains(out, "is in use") {
			t.Errorf("%s was freed from an upstream-format report: %s", ip, out)
		}
	}
}
