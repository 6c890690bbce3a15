package cni

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/opencalico/calicoctl/internal/kubetest"
)

// TestMain stops the kube-apiserver the Kubernetes-datastore tests
// (kdd_test.go) share, started on first use.
func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

func TestProtocol(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16")
	good := h.conf("", "")
	withVersion := func(v string) string { return strings.Replace(good, `"cniVersion":"1.0.0"`, `"cniVersion":"`+v+`"`, 1) }
	tests := []struct {
		name     string
		inv      invocation
		wantCode int
		wantOut  []string // substrings of stdout
		wantJSON map[string]any
	}{
		{name: "version", inv: invocation{command: CmdVersion, conf: good}, wantOut: []string{`"supportedVersions"`, `"0.3.1"`, `"1.0.0"`}},
		{name: "unsupported cniVersion", inv: invocation{command: CmdAdd, id: "x", netns: "/n", conf: withVersion("9.9.9")}, wantCode: 1,
			wantJSON: map[string]any{"code": 1.0, "cniVersion": "9.9.9"}},
		{name: "bad config", inv: invocation{command: CmdAdd, id: "x", netns: "/n", conf: `{"cniVersion":"1.0.0","name":"n","mtu":-5,"ipam":{"type":"calico-ipam"}}`}, wantCode: 1,
			wantJSON: map[string]any{"code": 7.0}, wantOut: []string{`mtu`}},
		{name: "undecodable config", inv: invocation{command: CmdAdd, id: "x", netns: "/n", conf: `{"cniVersion":"1.0.0",`}, wantCode: 1, wantOut: []string{`"code"`}},
		{name: "missing netns", inv: invocation{command: CmdAdd, id: "x", conf: good}, wantCode: 1,
			wantJSON: map[string]any{"code": 4.0}, wantOut: []string{"CNI_NETNS"}},
		{name: "status ok", inv: invocation{command: CmdStatus, conf: good}},
		{name: "status without datastore", inv: invocation{command: CmdStatus, conf: strings.Replace(good, h.endpoints, "http://127.0.0.1:1", 1)}, wantCode: 1,
			wantJSON: map[string]any{"code": 50.0}},
		{name: "gc", inv: invocation{command: CmdGC, conf: good}},
		{name: "ADD as 0.3.1", inv: invocation{command: CmdAdd, id: "v031", netns: "/n1", conf: withVersion("0.3.1")}, wantOut: []string{`"cniVersion": "0.3.1"`, `"version": "4"`}},
		{name: "ADD as 0.2.0", inv: invocation{command: CmdAdd, id: "v020", netns: "/n2", conf: withVersion("0.2.0")}, wantOut: []string{`"cniVersion": "0.2.0"`, `"ip4"`}},
		{name: "CHECK without prevResult", inv: invocation{command: CmdCheck, id: "v031", netns: "/n1", conf: good}, wantCode: 1, wantJSON: map[string]any{"code": 7.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := h.run(Options{Dataplane: &fakeDataplane{}, Pods: fakePods{pods: map[string]*corev1.Pod{}}}, tt.inv)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %s", code, tt.wantCode, out)
			}
			for _, s := range tt.wantOut {
				if !strings.Contains(out, s) {
					t.Errorf("stdout %s lacks %s", out, s)
				}
			}
			if tt.wantJSON != nil {
				var got map[string]any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("stdout is not JSON: %v: %s", err, out)
				}
				for k, v := range tt.wantJSON {
					if got[k] != v {
						t.Errorf("%s = %v, want %v (stdout %s)", k, got[k], v, out)
					}
				}
				if got["msg"] == "" {
					t.Errorf("error without msg: %s", out)
				}
			}
			if tt.wantCode == 0 && strings.Contains(out, "level=") {
				t.Errorf("logs leaked to stdout: %s", out)
			}
		})
	}
}

func TestCheckWithPrevResult(t *testing.T) {
	h := newHarness(t, "10.65.0.0/16")
	dp := &fakeDataplane{}
	o := Options{Dataplane: dp}
	inv := invocation{command: CmdAdd, id: "chk", netns: "/run/netns/chk", conf: h.conf("", "")}
	out, code := h.run(o, inv)
	if code != 0 {
		t.Fatal(out)
	}
	var prev map[string]any
	if err := json.Unmarshal([]byte(out), &prev); err != nil {
		t.Fatal(err)
	}
	inv.command = CmdCheck
	inv.conf = strings.TrimSuffix(strings.TrimSpace(inv.conf), "}") + `,"prevResult":` + mustJSON(prev) + "}"
	if out, code := h.run(o, inv); code != 0 {
		t.Fatalf("CHECK after ADD: exit %d %s", code, out)
	}
	dp.eps = nil // the interface vanished
	if out, code := h.run(o, inv); code == 0 || !strings.Contains(out, "missing") {
		t.Fatalf("CHECK with the interface gone: exit %d %s", code, out)
	}
}

func TestErrorJSON(t *testing.T) {
	tests := []struct {
		err  error
		code uint
	}{
		{&EnvError{Var: "CNI_IFNAME", Reason: "is not set"}, 4},
		{&ConfError{Field: "mtu", Value: -1, Reason: "bad"}, 7},
		{errPlain("boom"), 999},
	}
	for _, tt := range tests {
		var got errorJSON
		if err := json.Unmarshal(ErrorJSON("1.0.0", tt.err), &got); err != nil {
			t.Fatal(err)
		}
		if got.Code != tt.code || got.Msg != tt.err.Error() || got.CNIVersion != "1.0.0" {
			t.Errorf("ErrorJSON(%v) = %+v, want code %d", tt.err, got, tt.code)
		}
	}
}

type errPlain string

func (e errPlain) Error() string { return string(e) }
