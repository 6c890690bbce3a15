package prefixes

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestOutermost(t *testing.T) {
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		in   []netip.Prefix
		v6   bool
		want string
	}{
		{"empty", nil, false, "[]"},
		{"covered and duplicate removed, sorted by address",
			[]netip.Prefix{p("10.1.0.0/16"), p("10.0.0.0/8"), p("192.168.0.1/32"), p("192.168.0.1/32"), p("10.2.3.4/32")}, false,
			"[10.0.0.0/8 192.168.0.1/32]"},
		{"host bits masked", []netip.Prefix{p("10.0.0.5/24")}, false, "[10.0.0.0/24]"},
		{"one family only", []netip.Prefix{p("fd00::/64"), p("10.0.0.0/8")}, true, "[fd00::/64]"},
		{"mapped v4 is v4", []netip.Prefix{p("::ffff:10.0.0.1/128")}, false, "[10.0.0.1/32]"},
		{"invalid skipped", []netip.Prefix{{}, p("10.0.0.0/8")}, false, "[10.0.0.0/8]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(Outermost(tt.in, tt.v6)); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}
