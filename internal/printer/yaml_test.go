package printer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// emitYAML runs the streaming emitter over v's JSON.
func emitYAML(t testing.TB, v any) string {
	t.Helper()
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	if err := newYAMLEmitter(bw).document(js); err != nil {
		t.Fatalf("emit %s: %v", js, err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// checkYAML asserts that the emitter prints v exactly as sigs.k8s.io/yaml
// does and that the text reads back to the same JSON value.
func checkYAML(t *testing.T, v any) {
	t.Helper()
	got := emitYAML(t, v)
	js, _ := json.Marshal(v)
	// sigs.k8s.io/yaml cannot marshal some strings at all (raw DEL, U+FFFE),
	// and writes NEL/LS/PS and a "<<" key so that they do not read back; for
	// those only the round trip is checked.
	exact := !bytes.Contains(js, []byte(`"\u003c\u003c":`)) && !strings.Contains(string(js), "\u0085") &&
		!strings.Contains(string(js), `\u2028`) && !strings.Contains(string(js), `\u2029`)
	if want, err := yaml.Marshal(v); err == nil && exact && got != string(want) {
		t.Errorf("emitter differs from sigs.k8s.io/yaml\n--- got\n%s--- want\n%s", got, want)
	}
	back, err := yaml.YAMLToJSON([]byte(got))
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, got)
	}
	var a, b any
	if err := json.Unmarshal(js, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip changed the value\n--- yaml\n%s--- original %s\n--- read back %s", got, js, back)
	}
}

var trickyStrings = []string{
	"", " ", "  ", "a", "plain text", "true", "True", "TRUE", "false", "yes", "no", "on", "Off", "y", "N",
	"null", "Null", "~", "<<", ".inf", "-.Inf", ".nan", "+.INF",
	"0", "1", "-1", "+1", "007", "0x1F", "0o17", "0b101", "-0b11", "1_000", "1e3", "1.5", ".5", "5.", "-.5e-3",
	"1e", "e1", "1.2.3", "10.0.0.1", "192.168.0.0/16", "fd00::/64", "2001:db8::1", "::1", "1:20", "1:69", "-1:30:00.5",
	"190:20:30", "12:34:56:78", "2024-01-02", "2024-01-02T03:04:05Z", "2024-1-2 3:4:5", "2024-13-45", "1234-",
	"- item", "-item", "-", "--", "---", "--- x", "...", "? q", "?q", ": x", ":x", "a: b", "a:b", "a :b", "a #b", "a#b",
	"#comment", ",", "[a]", "{a}", "a,b", "a[0]", "&anchor", "*alias", "!tag", "!has(x)", "|", ">", "'q'", "\"q\"",
	"%", "@", "`", "it's", "say \"hi\"", "back\\slash", "tab\there", "\ttab", "line\nbreak", "trailing\n", "two\n\n",
	"\n", "\nleading", "  indented\nblock", "space \nbreak", "break\n space", "trailing space ", " leading space",
	"cr\rhere", "nul\x00byte", "bell\x07", "esc\x1b", "del\x7f", "é", "naïve café", "日本語", "emoji 😀", "\u00a0nbsp",
	"\u0085nel", "line\u2028sep", "para\u2029sep", "bom\ufeff", "\ufffe", "<script>&amp;</script>",
	"app == 'web' && has(role)", "!(app in {'a', 'b'})", "projectcalico.org/orchestrator", "k8s", "ns.default",
	"all()", "global()", "a  double  spaced", strings.Repeat("word ", 30), strings.Repeat("x", 100),
	strings.Repeat("ab ", 40) + "end", strings.Repeat("'quote' ", 15), "- " + strings.Repeat("long ", 25),
	strings.Repeat("tab\t", 25) + "  two  spaces " + strings.Repeat("z ", 20),
	strings.Repeat("multi line ", 10) + "\n" + strings.Repeat("more ", 20) + "\n",
	"a\n\n\nb", "x\n  y\n", "ends with two\n\n", strings.Repeat("k", 129), strings.Repeat("key ", 40),
}

func TestYAMLMatchesSigsYAMLOnTrickyStrings(t *testing.T) {
	for _, s := range trickyStrings {
		t.Run(s, func(t *testing.T) {
			checkYAML(t, map[string]any{"value": s})
			checkYAML(t, map[string]any{s: "key"})
			checkYAML(t, map[string]any{"list": []any{s, map[string]any{"inner": s, s: []any{s}}}})
			checkYAML(t, []any{s, []any{s, s}})
		})
	}
}

func TestYAMLStructures(t *testing.T) {
	cases := map[string]any{
		"empty map":        map[string]any{},
		"empty list":       []any{},
		"nested empties":   map[string]any{"a": map[string]any{}, "b": []any{}, "c": []any{map[string]any{}, []any{}}},
		"list of lists":    []any{[]any{1, 2}, []any{[]any{"x"}}, []any{}},
		"numbers":          map[string]any{"i": 42, "neg": -7, "f": 1.5, "big": 1e21, "small": 1e-7, "max": uint64(1<<64 - 1), "zero": 0, "order": 1000000.0, "huge": 1e20},
		"bools and null":   map[string]any{"t": true, "f": false, "n": nil},
		"key order":        map[string]any{"b": 1, "a": 2, "a10": 3, "a9": 4, "A": 5, "_x": 6, "1": 7, "10": 8, "2": 9, "a01": 10, "a001": 11, "a1": 12, "ä": 13, "a-b": 14, "ab": 15, "a.b": 16, "a0": 17, "a00": 18, "x10y": 19, "x010y": 20, "x9y": 21},
		"seq of maps":      map[string]any{"items": []any{map[string]any{"a": 1, "b": map[string]any{"c": []any{"d"}}}, map[string]any{"z": nil}}},
		"deep":             map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": []any{map[string]any{"e": "f"}}}}}},
		"long key complex": map[string]any{strings.Repeat("k", 130): map[string]any{"x": 1, "y": []any{1}}, strings.Repeat("j", 130): []any{"a"}, strings.Repeat("m", 129) + "\n": "v"},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) { checkYAML(t, v) })
	}
}

// TestYAMLRandomDocuments compares the emitter with sigs.k8s.io/yaml on
// pseudo-random documents built from awkward characters.
func TestYAMLRandomDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "Z", "0", "1", "9", " ", " ", "-", ":", "#", "'", "\"", "\\", ",", "[", "}", "&", "*",
		"!", "|", ">", "?", "%", "@", "`", ".", "\n", "\t", "é", "日", "😀", "_", "/", "=", "(", ")", "~"}
	randString := func() string {
		n := rng.IntN(12)
		if rng.IntN(10) == 0 {
			n = 60 + rng.IntN(60)
		}
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	var randValue func(depth int) any
	randValue = func(depth int) any {
		switch k := rng.IntN(10); {
		case depth < 4 && k < 3:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[randString()] = randValue(depth + 1)
			}
			return m
		case depth < 4 && k < 5:
			l := []any{}
			for range rng.IntN(4) {
				l = append(l, randValue(depth+1))
			}
			return l
		case k == 5:
			return rng.IntN(1000) - 500
		case k == 6:
			return rng.IntN(2) == 0
		default:
			return randString()
		}
	}
	for i := range 2000 {
		v := map[string]any{"doc": randValue(0), "n": i}
		checkYAML(t, v)
		if t.Failed() {
			return
		}
	}
}

func TestYAMLKeyLess(t *testing.T) {
	cases := []struct {
		a, b string
		less bool
	}{
		{"a", "b", true},
		{"b", "a", false},
		{"a", "ab", true},
		{"a9", "a10", true},
		{"a10", "a9", false},
		{"_x", "a", true},
		{"a", "_x", false},
		{"1", "a", true},
		{"2", "10", true},
		{"a01", "a1", false},
		{"a1", "a01", true},
		{"same", "same", false},
	}
	for _, c := range cases {
		if got := yamlKeyLess([]byte(c.a), []byte(c.b)); got != c.less {
			t.Errorf("yamlKeyLess(%q, %q) = %v, want %v", c.a, c.b, got, c.less)
		}
	}
}

func TestPlainIsString(t *testing.T) {
	cases := map[string]bool{
		"": false, "abc": true, "true": false, "yes": false, "Yes": false, "YeS": true, "null": false,
		"123": false, "12a": true, "1.5": false, "1.2.3": true, "0x1f": false, "0xg": true, "1:20": false,
		"1:69": true, "2024-01-02": false, "2024-01-02T03:04:05Z": false, "2024-99-99": true, ".5": false,
		".": true, "-": true, "+": true, "1_0": false, "0b102": true, "-0b101": false, "<<": true,
	}
	for s, want := range cases {
		if got := plainIsString([]byte(s)); got != want {
			t.Errorf("plainIsString(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestYAMLEmitterRejectsMalformedJSON(t *testing.T) {
	for _, js := range []string{`{"a":`, `{"a" 1}`, `[1,`, `"unterminated`, `{"a":1,}`, ``, `{"a":1 "b":2}`} {
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		if err := newYAMLEmitter(bw).document([]byte(js)); err == nil {
			t.Errorf("document(%q) succeeded, want error", js)
		}
	}
}
