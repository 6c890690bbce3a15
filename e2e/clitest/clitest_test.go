package clitest

import (
	"slices"
	"testing"
)

func TestBaseEnv(t *testing.T) {
	t.Setenv("PATH", "/bin")
	tests := []struct {
		name  string
		extra Env
		want  []string
	}{
		{"nothing extra", nil, []string{"HOME=/h", "PATH=/bin"}},
		{"added and sorted", Env{"KUBECONFIG": "/k", "DATASTORE_TYPE": "kubernetes"}, []string{"DATASTORE_TYPE=kubernetes", "HOME=/h", "KUBECONFIG=/k", "PATH=/bin"}},
		{"empty removes", Env{"KUBECONFIG": "", "HOME": ""}, []string{"PATH=/bin"}},
	}
	for _, tt := range tests {
		if got := BaseEnv("/h", tt.extra); !slices.Equal(got, tt.want) {
			t.Errorf("%s: BaseEnv = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestObjectPaths(t *testing.T) {
	o := ParseObject(t, "metadata:\n  name: a\nspec:\n  ports:\n  - port: 80\n")
	o.Set(t, "spec.ports.0.port", 81)
	o.Set(t, "metadata.labels", map[string]any{"x": "y"})
	tests := []struct{ path, want string }{
		{"metadata.name", `"a"`},
		{"spec.ports.0.port", `81`},
		{"metadata.labels", `{"x":"y"}`},
		{"spec.nope", "<absent>"},
		{"spec.ports.3", "<absent>"},
	}
	for _, tt := range tests {
		if got := o.Str(tt.path); got != tt.want {
			t.Errorf("Str(%s) = %s, want %s", tt.path, got, tt.want)
		}
	}
	if s, ok := MustString(ParseObject(t, o.YAML(t)), "metadata.name"); !ok || s != "a" {
		t.Errorf("YAML round trip: metadata.name = %q, %v", s, ok)
	}
}
