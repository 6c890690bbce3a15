package printer

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func TestTemplatePrinter(t *testing.T) {
	pools := samplePools()
	listRes := Result{Kind: mustKind(t, "ippool"), Items: pools, IsList: true, Revision: "9"}
	namedRes := Result{Kind: mustKind(t, "ippool"), Items: pools[:2]}
	gns := named("", "g", func(g *resources.GlobalNetworkSet) {
		g.Spec.Nets = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	})
	cases := []struct {
		name    string
		tpl     string
		opts    Options
		res     Result
		want    string
		wantErr string
	}{
		{name: "list fields", tpl: "{{.Kind}} {{.ResourceVersion}}:{{range .Items}} {{.Name}}={{.Spec.CIDR}}{{end}}", res: listRes,
			want: "IPPoolList 9: pool-0=192.168.0.0/16 pool-1=fd00::/108 pool-2=10.0.0.0/8"},
		{name: "named runs once per object", tpl: "{{.ObjectMeta.Name}};", res: namedRes, want: "pool-0;pool-1;"},
		{name: "join", tpl: `{{join .Spec.Nets ","}}`, res: Result{Items: []resources.Resource{gns}}, want: "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"},
		{name: "join nil", tpl: `[{{join .Spec.Nets ","}}]`, res: Result{Items: []resources.Resource{&resources.GlobalNetworkSet{}}}, want: "[]"},
		{name: "joinAndTruncate", tpl: `{{joinAndTruncate .Spec.Nets "," 20}}`, res: Result{Items: []resources.Resource{gns}}, want: "10.0.0.0/8,172.16..."},
		{name: "config asnumber default", tpl: `{{config "asnumber"}}`, res: namedRes, want: "6451264512"},
		{name: "config asnumber set", tpl: `{{config "asnumber"}}`, opts: Options{GlobalASNumber: func() string { return "65010" }}, res: namedRes, want: "6501065010"},
		{name: "unknown config key", tpl: `{{config "colour"}}`, res: namedRes, wantErr: `unknown config key "colour"`},
		{name: "missing field is an error", tpl: "{{.Spec.Nope}}", res: namedRes, wantErr: "failed to execute template"},
		{name: "index out of range is an error", tpl: "{{index .Items 7}}", res: listRes, wantErr: "failed to execute template"},
		{name: "join of a non-slice is an error", tpl: `{{join .Name ","}}`, res: namedRes, wantErr: "cannot join a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New("go-template="+c.tpl, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = p.Print(&out, c.res)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != c.want {
				t.Errorf("got %q, want %q", out.String(), c.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 80, "short"},
		{"exactly", 7, "exactly"},
		{"abcdefghij", 8, "abcde..."},
		{"abcdef", 0, "abcdef"},
		{"abcdef", 2, "ab"},
	}
	for _, c := range cases {
		if got := truncate(c.in, c.max); got != c.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
