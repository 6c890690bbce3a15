package selector

import (
	"errors"
	"strings"
	"testing"
)

// labelSets are the label maps the evaluation table refers to by name.
var labelSets = map[string]map[string]string{
	"none":  nil,
	"empty": {},
	"web":   {"app": "web", "tier": "frontend", "env": "prod"},
	"db":    {"app": "db", "tier": "backend", "env": "prod", "backup": ""},
	"dev":   {"app": "web", "tier": "frontend", "env": "dev"},
	"odd":   {"k8s.io/name": "my-app", "a_b-c.d/e": "x", "q": `say "hi"`, "s": "it's", "e": ""},
	"has":   {"has": "yes", "all": "a", "global": "g"},
	"many":  {"n": "v7"},
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		sel    string
		labels string
		want   bool
	}{
		// all(), global() and the empty selector match everything.
		{"", "none", true},
		{"   \t\n", "web", true},
		{"all()", "empty", true},
		{"all( )", "db", true},
		{"global()", "none", true},
		{"!all()", "web", false},
		{"!global()", "web", false},

		// ==
		{`app == "web"`, "web", true},
		{`app == "web"`, "db", false},
		{`app == "web"`, "none", false},
		{`app == 'web'`, "web", true},
		{`app=="web"`, "web", true},
		{`e == ""`, "odd", true},
		{`e == ""`, "web", false},
		{`app == ""`, "web", false},
		{`q == 'say "hi"'`, "odd", true},
		{`s == "it's"`, "odd", true},
		{`k8s.io/name == "my-app"`, "odd", true},
		{`a_b-c.d/e == "x"`, "odd", true},
		{`app == "WEB"`, "web", false},

		// != is true when the label is absent.
		{`app != "web"`, "web", false},
		{`app != "web"`, "db", true},
		{`app != "web"`, "none", true},
		{`app != "web"`, "empty", true},
		{`backup != ""`, "db", false},

		// has / !has
		{"has(backup)", "db", true},
		{"has(backup)", "web", false},
		{"has( backup )", "db", true},
		{"has (backup)", "db", true},
		{"!has(backup)", "web", true},
		{"!has(backup)", "db", false},
		{"! has(backup)", "none", true},
		{"has(k8s.io/name)", "odd", true},

		// in / not in / notin
		{`app in {"web", "db"}`, "web", true},
		{`app in {"web", "db"}`, "db", true},
		{`app in {"api"}`, "web", false},
		{`app in {"web"}`, "none", false},
		{`app in {}`, "web", false},
		{`app in {}`, "none", false},
		{`app in{'web',}`, "web", true},
		{`app in {"db", "db", "web"}`, "web", true},
		{`app not in {"web", "db"}`, "web", false},
		{`app not in {"api"}`, "web", true},
		{`app not in {"api"}`, "none", true},
		{`app not in {}`, "web", true},
		{`app not in {}`, "none", true},
		{`app notin {"web"}`, "web", false},
		{`app notin {"web"}`, "db", true},
		{`app   not   in   {"db"}`, "db", false},
		// A set big enough to be indexed by a map.
		{`n in {"v1","v2","v3","v4","v5","v6","v7","v8","v9"}`, "many", true},
		{`n in {"v1","v2","v3","v4","v5","v6","v8","v9","v10"}`, "many", false},
		{`n not in {"v1","v2","v3","v4","v5","v6","v7","v8","v9"}`, "many", false},
		{`n not in {"v1","v2","v3","v4","v5","v6","v7","v8","v9"}`, "none", true},

		// contains / starts with / ends with need the label.
		{`tier contains "end"`, "web", true},
		{`tier contains "end"`, "db", true},
		{`tier contains "mid"`, "web", false},
		{`tier contains ""`, "web", true},
		{`tier contains ""`, "none", false},
		{`tier starts with "front"`, "web", true},
		{`tier starts with "back"`, "web", false},
		{`tier startswith "back"`, "db", true},
		{`tier starts   with "front"`, "none", false},
		{`tier ends with "end"`, "db", true},
		{`tier ends with "front"`, "web", false},
		{`tier endswith 'end'`, "web", true},
		{`tier ends with "end"`, "none", false},
		{`!(tier contains "end")`, "none", true},

		// Labels spelled like keywords and functions.
		{`has == "yes"`, "has", true},
		{`all == "a"`, "has", true},
		{`global != "g"`, "has", false},
		{`has(has) && has(all) && has(global)`, "has", true},
		{`in == "x"`, "has", false},
		{`contains in {"x"}`, "none", false},

		// Precedence: && binds tighter than ||.
		{`app == "db" || app == "web" && env == "dev"`, "web", false},
		{`app == "db" || app == "web" && env == "dev"`, "dev", true},
		{`app == "db" || app == "web" && env == "dev"`, "db", true},
		{`(app == "db" || app == "web") && env == "dev"`, "db", false},
		{`(app == "db" || app == "web") && env == "prod"`, "web", true},
		{`app == "web" && env == "dev" || app == "db"`, "db", true},
		{`app == "web" && (env == "dev" || app == "db")`, "web", false},
		{`has(a) || has(b) || has(app)`, "web", true},
		{`has(app) && has(tier) && !has(backup)`, "web", true},
		{`has(app) && has(tier) && !has(backup)`, "db", false},

		// Negation of terms and groups; ! binds tighter than && and ||.
		{`!app == "web"`, "web", false},
		{`!app == "web"`, "db", true},
		{`!!app == "web"`, "web", true},
		{`!!!app == "web"`, "web", false},
		{`!(app == "web" && env == "prod")`, "web", false},
		{`!(app == "web" && env == "prod")`, "dev", true},
		{`!has(backup) && env == "prod"`, "web", true},
		{`!(!(has(backup)))`, "db", true},
		{`!app in {"web"}`, "none", true},
		{`!app == "x" || has(backup)`, "db", true},

		// Whitespace and parentheses.
		{"\tapp\n==\r\n'web'\t&&\n(\ttier == 'frontend' )", "web", true},
		{`((((app == "web"))))`, "web", true},
		{`(app=="web")&&(env=="prod")`, "web", true},
		{`app=="web"||app=="db"`, "db", true},
		{`(all())`, "none", true},
		{`global() && app == "web"`, "web", true},
		{`global() && app == "web"`, "db", false},
	}
	for _, tt := range tests {
		labels, ok := labelSets[tt.labels]
		if !ok {
			t.Fatalf("unknown label set %q", tt.labels)
		}
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := sel.Evaluate(labels); got != tt.want {
			t.Errorf("Parse(%q).Evaluate(%s %v) = %v, want %v", tt.sel, tt.labels, labels, got, tt.want)
		}
		if got := sel.EvaluateLabels(Map(labels)); got != tt.want {
			t.Errorf("Parse(%q).EvaluateLabels(%s) = %v, want %v", tt.sel, tt.labels, got, tt.want)
		}
		// The canonical form must select exactly the same objects.
		again, err := Parse(sel.String())
		if err != nil {
			t.Errorf("Parse(%q) of String() of %q: %v", sel.String(), tt.sel, err)
			continue
		}
		if got := again.Evaluate(labels); got != tt.want {
			t.Errorf("Parse(%q).Evaluate(%s) = %v, want %v (canonical of %q)", sel.String(), tt.labels, got, tt.want, tt.sel)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		sel  string
		pos  int
		want string // substring of the message
	}{
		{`app ==`, 6, "expected a quoted string after '=='"},
		{`app == web`, 7, "expected a quoted string after '=='"},
		{`a == "b" && c == x`, 17, "expected a quoted string after '=='"},
		{`app != `, 7, "expected a quoted string after '!='"},
		{`app = "web"`, 4, "expected '==' after label \"app\", found a single '='"},
		{`app`, 3, "expected an operator"},
		{`app "web"`, 4, "expected an operator"},
		{`app is "web"`, 4, "expected an operator"},
		{`app inn {"x"}`, 4, "expected an operator"},
		{`app == "web`, 7, "unterminated string"},
		{`app == 'web"`, 7, "unterminated string"},
		{`app in {"a", "b}`, 13, "unterminated string"},
		{`app == "web" x`, 13, "expected '&&', '||' or end of selector, found 'x'"},
		{`app == "web")`, 12, "expected '&&', '||' or end of selector, found ')'"},
		{`all() all()`, 6, "expected '&&', '||' or end of selector"},
		{`app == "web" &`, 13, "expected '&&', found '&'"},
		{`app == "web" & has(x)`, 13, "expected '&&'"},
		{`app == "web" | has(x)`, 13, "expected '||', found '|'"},
		{`app == "web" &&`, 15, "expected a label, has(...), all(), global(), '!' or '(', found end of selector"},
		{`app == "web" || `, 16, "found end of selector"},
		{`&& app == "web"`, 0, "expected a label"},
		{`|| has(a)`, 0, "expected a label"},
		{`(app == "web"`, 13, "expected '&&', '||' or ')' to close '(' at position 0"},
		{`has(a) && ((has(b))`, 19, "to close '(' at position 10"},
		{`()`, 1, "expected a label"},
		{`!`, 1, "expected a label"},
		{`!= "x"`, 0, "expected a label before '!='"},
		{`has()`, 4, "expected a label name after 'has('"},
		{`has("a")`, 4, "expected a label name after 'has('"},
		{`has(a`, 5, "expected ')' to close 'has('"},
		{`has(a b)`, 6, "expected ')' to close 'has('"},
		{`all(x)`, 4, "expected ')' to close 'all('"},
		{`global(`, 7, "expected ')' to close 'global('"},
		{`app in "web"`, 7, "expected '{' after 'in'"},
		{`app notin ("web")`, 10, "expected '{' after 'notin'"},
		{`app not in "web"`, 11, "expected '{' after 'not in'"},
		{`app not "web"`, 8, "expected 'in' after 'not'"},
		{`app in {"a" "b"}`, 12, "expected ',' or '}' in set"},
		{`app in {"a",,}`, 12, "expected a quoted string or '}' in set"},
		{`app in {,}`, 8, "expected a quoted string or '}' in set"},
		{`app in {a}`, 8, "expected a quoted string or '}' in set"},
		{`app in {"a"`, 11, "expected ',' or '}' in set, found end of selector"},
		{`tier starts "x"`, 12, "expected 'with' after 'starts'"},
		{`tier ends wit "x"`, 10, "expected 'with' after 'ends'"},
		{`tier contains x`, 14, "expected a quoted string after 'contains'"},
		{`tier starts with`, 16, "expected a quoted string after 'starts with'"},
		{`tier ends with 5`, 15, "expected a quoted string after 'ends with'"},
		{`app == "é" && ü`, 15, "expected a label"},
		{`app == "web" && 💥`, 16, "found byte 0xf0"},
		{`#app == "web"`, 0, "found '#'"},
		{strings.Repeat("(", maxDepth+1) + "all()" + strings.Repeat(")", maxDepth+1), maxDepth, "nested more than"},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", tt.sel, sel)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q) error %v is %T, want *ParseError", tt.sel, err, err)
			continue
		}
		if pe.Pos != tt.pos || !strings.Contains(pe.Msg, tt.want) || pe.Input != tt.sel {
			t.Errorf("Parse(%q) = pos %d %q, want pos %d containing %q", tt.sel, pe.Pos, pe.Msg, tt.pos, tt.want)
		}
		if want := "error parsing selector at position "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) error text %q does not start with %q", tt.sel, err, want)
		}
		if verr := Validate(tt.sel); verr == nil || verr.Error() != err.Error() {
			t.Errorf("Validate(%q) = %v, want %v", tt.sel, verr, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	_, err := Parse(`app == "web" && tier == db`)
	want := "error parsing selector at position 24: expected a quoted string after '==', found 'd'"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestString(t *testing.T) {
	tests := []struct{ sel, want string }{
		{"", "all()"},
		{"  ", "all()"},
		{"all()", "all()"},
		{" global ( ) ", "global()"},
		{"has( a )", "has(a)"},
		{"!has(a)", "!has(a)"},
		{"!!has(a)", "has(a)"},
		{"!(!has(a))", "has(a)"},
		{"!(!(!has(a)))", "!has(a)"},
		{`a=='b'`, `a == "b"`},
		{`a != "b"`, `a != "b"`},
		{`a == 'say "hi"'`, `a == 'say "hi"'`},
		{`a == "it's"`, `a == "it's"`},
		{`a contains 'x'`, `a contains "x"`},
		{`a startswith 'x'`, `a starts with "x"`},
		{`a   ends   with 'x'`, `a ends with "x"`},
		{`a in {}`, `a in {}`},
		{`a notin {}`, `a not in {}`},
		{`a in {'y','x','y',}`, `a in {"x", "y"}`},
		{`a not in {"b", '"q"'}`, `a not in {'"q"', "b"}`}, // sorted by bytes: '"' < 'b'
		{`a in {"b", "B", "a"}`, `a in {"B", "a", "b"}`},
		{`(a == "b")`, `a == "b"`},
		{`a == "b" && (has(c) || d in {"y", "x"})`, `(a == "b" && (has(c) || d in {"x", "y"}))`},
		{`a == "b" && b == "c" && c == "d"`, `(a == "b" && b == "c" && c == "d")`},
		{`(a == "b" && b == "c") && c == "d"`, `((a == "b" && b == "c") && c == "d")`},
		{`a == "b" || b == "c" && c == "d"`, `(a == "b" || (b == "c" && c == "d"))`},
		{`!(a == "b" || has(c))`, `!(a == "b" || has(c))`},
		{`!a == "b"`, `!a == "b"`},
		{`!(a == "b")`, `!a == "b"`},
		{`k8s.io/app in {"x"}`, `k8s.io/app in {"x"}`},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.sel, err)
			continue
		}
		if got := sel.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.sel, got, tt.want)
		}
		again, err := Parse(sel.String())
		if err != nil {
			t.Errorf("Parse(%q) of canonical form: %v", sel.String(), err)
			continue
		}
		if again.String() != sel.String() {
			t.Errorf("String() not stable: %q -> %q", sel.String(), again.String())
		}
	}
}

func TestUsesGlobalAndIsAll(t *testing.T) {
	tests := []struct {
		sel           string
		global, isAll bool
	}{
		{"", false, true},
		{"all()", false, true},
		{"(all())", false, true},
		{"!all()", false, false},
		{"global()", true, false},
		{`has(a) && !(b == "c" || global())`, true, false},
		{`global == "x"`, false, false},
		{`has(global)`, false, false},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.sel, err)
		}
		if got := sel.UsesGlobal(); got != tt.global {
			t.Errorf("Parse(%q).UsesGlobal() = %v, want %v", tt.sel, got, tt.global)
		}
		if got := sel.IsAll(); got != tt.isAll {
			t.Errorf("Parse(%q).IsAll() = %v, want %v", tt.sel, got, tt.isAll)
		}
	}
}

func TestNilAndZeroSelector(t *testing.T) {
	for name, sel := range map[string]*Selector{"nil": nil, "zero": {}} {
		if !sel.Evaluate(map[string]string{"a": "b"}) || !sel.EvaluateLabels(nil) {
			t.Errorf("%s selector does not match everything", name)
		}
		if sel.String() != "all()" || sel.UsesGlobal() || !sel.IsAll() {
			t.Errorf("%s selector: String %q UsesGlobal %v IsAll %v", name, sel.String(), sel.UsesGlobal(), sel.IsAll())
		}
	}
}

func TestEvaluateLabelsLayers(t *testing.T) {
	endpoint := Map{"app": "web", "role": "override"}
	profile := Map{"role": "inherited", "team": "blue"}
	tests := []struct {
		sel    string
		labels Labels
		want   bool
	}{
		{`role == "override"`, Overlay{Top: endpoint, Base: profile}, true},
		{`role == "inherited"`, Overlay{Top: endpoint, Base: profile}, false},
		{`app == "web" && team == "blue"`, Overlay{Top: endpoint, Base: profile}, true},
		{`team == "blue"`, Overlay{Top: endpoint}, false},
		{`role == "inherited"`, Overlay{Base: profile}, true},
		{`has(app)`, Overlay{}, false},
		{`!has(app)`, nil, true},
		{`app != "x"`, nil, true},
		{`has(team)`, &Overlay{Top: nil, Base: profile}, true},
	}
	for _, tt := range tests {
		sel, err := Parse(tt.sel)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.sel, err)
		}
		if got := sel.EvaluateLabels(tt.labels); got != tt.want {
			t.Errorf("Parse(%q).EvaluateLabels(%v) = %v, want %v", tt.sel, tt.labels, got, tt.want)
		}
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	sel, err := Parse(benchSelector)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web", "tier": "frontend", "env": "prod", "k8s.io/name": "web-7"}
	var overlay Labels = &Overlay{Top: Map(labels), Base: Map{"team": "blue"}}
	matched := false
	allocs := testing.AllocsPerRun(100, func() {
		matched = sel.Evaluate(labels) && sel.EvaluateLabels(overlay)
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per call", allocs)
	}
	if !matched {
		t.Errorf("benchmark selector does not match its labels")
	}
}

const benchSelector = `app == "web" && tier in {"frontend", "edge", "a", "b", "c", "d", "e", "f", "g"} && ` +
	`!has(quarantine) && (env != "dev" || k8s.io/name starts with "web-") && k8s.io/name contains "-"`

func BenchmarkEvaluate(b *testing.B) {
	sel, err := Parse(benchSelector)
	if err != nil {
		b.Fatal(err)
	}
	labels := map[string]string{"app": "web", "tier": "frontend", "env": "prod", "k8s.io/name": "web-7"}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !sel.Evaluate(labels) {
				b.Fatal("no match")
			}
		}
	})
	var layered Labels = &Overlay{Top: Map(labels), Base: Map{"team": "blue"}}
	b.Run("labels", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !sel.EvaluateLabels(layered) {
				b.Fatal("no match")
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchSelector); err != nil {
			b.Fatal(err)
		}
	}
}
