package crds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// fakeCRDServer is the slice of the API server Install talks to: apply
// patches and reads of customresourcedefinitions.
type fakeCRDServer struct {
	fakeBehaviour

	mu      sync.Mutex
	objects map[string]map[string]any
	reads   map[string]int
	patches []patchRequest
}

// fakeBehaviour is how a fakeCRDServer answers.
type fakeBehaviour struct {
	// establishAfter is how many reads of a CRD report it not yet
	// established; negative never establishes it.
	establishAfter int
	// rejectNames reports NamesAccepted=False.
	rejectNames bool
	// forbid answers every patch with 403.
	forbid bool
}

type patchRequest struct {
	name, contentType, fieldManager, force string
}

const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"

func (s *fakeCRDServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := strings.CutPrefix(r.URL.Path, crdPath)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch r.Method {
	case http.MethodPatch:
		s.patches = append(s.patches, patchRequest{
			name:         name,
			contentType:  r.Header.Get("Content-Type"),
			fieldManager: r.URL.Query().Get("fieldManager"),
			force:        r.URL.Query().Get("force"),
		})
		if s.forbid {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"customresourcedefinitions is forbidden"}`)
			return
		}
		var obj map[string]any
		if err := json.NewDecoder(r.Body).Decode(&obj); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.objects[name] = obj
		json.NewEncoder(w).Encode(obj)
	case http.MethodGet:
		obj, ok := s.objects[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
			return
		}
		s.reads[name]++
		conds := []any{}
		switch {
		case s.rejectNames:
			conds = append(conds, map[string]any{"type": "NamesAccepted", "status": "False", "message": "plural is already in use"})
		case s.establishAfter >= 0 && s.reads[name] > s.establishAfter:
			conds = append(conds,
				map[string]any{"type": "NamesAccepted", "status": "True"},
				map[string]any{"type": "Established", "status": "True"})
		default:
			conds = append(conds, map[string]any{"type": "Established", "status": "False"})
		}
		out := map[string]any{}
		for k, v := range obj {
			out[k] = v
		}
		out["status"] = map[string]any{"conditions": conds}
		json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func TestInstall(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	two := all[:2]
	tests := []struct {
		name        string
		server      fakeBehaviour
		timeout     time.Duration
		wantApplied int
		wantErr     string
		wantNotEst  bool
		wantReads   int // minimum reads per CRD
	}{
		{name: "applies and waits until established", server: fakeBehaviour{establishAfter: 2}, wantApplied: 2, wantReads: 3},
		{name: "already established", server: fakeBehaviour{establishAfter: 0}, wantApplied: 2, wantReads: 1},
		{name: "no wait when timeout is negative", server: fakeBehaviour{establishAfter: -1}, timeout: -1, wantApplied: 2},
		{name: "names rejected fail at once", server: fakeBehaviour{rejectNames: true}, wantApplied: 2,
			wantErr: "plural is already in use", wantNotEst: true},
		{name: "never established times out", server: fakeBehaviour{establishAfter: -1}, timeout: 20 * time.Millisecond,
			wantApplied: 2, wantErr: "2 not ready", wantNotEst: true},
		{name: "forbidden", server: fakeBehaviour{forbid: true}, wantApplied: 0,
			wantErr: "applying CustomResourceDefinition " + two[0].Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeCRDServer{fakeBehaviour: tt.server, objects: map[string]map[string]any{}, reads: map[string]int{}}
			srv := httptest.NewServer(fake)
			defer srv.Close()

			n, err := Install(context.Background(), &rest.Config{Host: srv.URL}, InstallOptions{
				CRDs: two, EstablishTimeout: tt.timeout, PollInterval: time.Millisecond,
			})
			if n != tt.wantApplied {
				t.Errorf("applied %d, want %d", n, tt.wantApplied)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("Install: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Install error = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrNotEstablished); got != tt.wantNotEst {
				t.Errorf("errors.Is(err, ErrNotEstablished) = %v, want %v", got, tt.wantNotEst)
			}

			fake.mu.Lock()
			defer fake.mu.Unlock()
			for _, p := range fake.patches {
				if p.contentType != "application/apply-patch+yaml" || p.fieldManager != "calicoctl" || p.force != "true" {
					t.Errorf("patch %s: content-type=%q fieldManager=%q force=%q, want a forced server-side apply by calicoctl",
						p.name, p.contentType, p.fieldManager, p.force)
				}
			}
			for _, c := range two[:tt.wantApplied] {
				if fake.objects[c.Name]["spec"] == nil {
					t.Errorf("%s was not applied with a spec", c.Name)
				}
				if tt.wantReads > 0 && fake.reads[c.Name] < tt.wantReads {
					t.Errorf("%s read %d times, want at least %d", c.Name, fake.reads[c.Name], tt.wantReads)
				}
			}
			if tt.timeout < 0 && len(fake.reads) != 0 {
				t.Errorf("read CRDs %v with the wait disabled", fake.reads)
			}
		})
	}
}

func TestEstablishedConditions(t *testing.T) {
	cond := func(typ, status string) map[string]any { return map[string]any{"type": typ, "status": status} }
	for _, tc := range []struct {
		name    string
		status  any
		want    bool
		wantErr bool
	}{
		{name: "no status", status: nil},
		{name: "null conditions", status: map[string]any{"conditions": nil}},
		{name: "empty conditions", status: map[string]any{"conditions": []any{}}},
		{name: "names accepted only", status: map[string]any{"conditions": []any{cond("NamesAccepted", "True")}}},
		{name: "established", status: map[string]any{"conditions": []any{cond("NamesAccepted", "True"), cond("Established", "True")}}, want: true},
		{name: "names rejected", status: map[string]any{"conditions": []any{cond("NamesAccepted", "False")}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj := &unstructured.Unstructured{Object: map[string]any{"kind": "CustomResourceDefinition"}}
			if tc.status != nil {
				obj.Object["status"] = tc.status
			}
			got, err := established(obj)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("established = %v, %v; want %v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
