package selector

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"all()",
		"global()",
		`a == "b" && (has(c) || d in {"x", "y"})`,
		`!(a != 'b') || c not in {} && d notin {"q",}`,
		`a contains "x" && b starts with 'y' || c ends with "z"`,
		`!!!has(k8s.io/name)`,
		`a == 'say "hi"'`,
		`((a == "b")`,
		`a in {"a" "b"}`,
		"\ta\n==\r'b'",
	} {
		f.Add(seed, "b", "x")
	}
	f.Fuzz(func(t *testing.T, s, v1, v2 string) {
		sel, err := Parse(s)
		if verr := Validate(s); (err == nil) != (verr == nil) {
			t.Fatalf("Parse(%q) error %v but Validate error %v", s, err, verr)
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Pos < 0 || pe.Pos > len(s) {
				t.Fatalf("Parse(%q): bad error %#v", s, err)
			}
			return
		}
		canon := sel.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) -> %q does not re-parse: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("Parse(%q): String %q re-parses to %q", s, canon, again.String())
		}
		if again.UsesGlobal() != sel.UsesGlobal() {
			t.Fatalf("Parse(%q): UsesGlobal changed on round trip", s)
		}
		for _, labels := range []map[string]string{
			nil,
			{"a": v1, "b": v2, "c": v1 + v2},
			{"a": "b", "d": "x", "k8s.io/name": v2},
		} {
			want := sel.Evaluate(labels)
			if got := again.Evaluate(labels); got != want {
				t.Fatalf("Parse(%q) and its canonical %q disagree on %v", s, canon, labels)
			}
			if got := sel.EvaluateLabels(Map(labels)); got != want {
				t.Fatalf("Parse(%q): Evaluate and EvaluateLabels disagree on %v", s, labels)
			}
		}
	})
}
