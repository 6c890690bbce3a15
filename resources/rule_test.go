package resources

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// decodeStrictYAML decodes YAML (or JSON) into out, rejecting unknown fields,
// the way the CLI reads manifests.
func decodeStrictYAML(t *testing.T, doc string, out any) {
	t.Helper()
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("YAMLToJSON: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		t.Fatalf("strict decode: %v\n%s", err, js)
	}
}

// assertJSONRoundTrip checks that marshalling r, decoding the result strictly
// into a fresh value of the same kind and marshalling again is lossless.
func assertJSONRoundTrip(t *testing.T, r Resource) []byte {
	t.Helper()
	first, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	again := KindOf(r).New()
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.DisallowUnknownFields()
	if err := dec.Decode(again); err != nil {
		t.Fatalf("re-decode: %v\n%s", err, first)
	}
	second, err := json.Marshal(again)
	if err != nil {
		t.Fatalf("re-marshal: %v", err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the object:\n first %s\nsecond %s", first, second)
	}
	return first
}

// assertValidation checks err against a wanted substring ("" = no error).
func assertValidation(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestPortJSON(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		out     string
		wantErr bool
	}{
		{in: `80`, want: SinglePort(80), out: `80`},
		{in: `"443"`, want: SinglePort(443), out: `443`},
		{in: `"8000:8080"`, want: Port{MinPort: 8000, MaxPort: 8080}, out: `"8000:8080"`},
		{in: `"53:53"`, want: SinglePort(53), out: `53`},
		{in: `"http"`, want: NamedPort("http"), out: `"http"`},
		{in: `"dns-tcp"`, want: NamedPort("dns-tcp"), out: `"dns-tcp"`},
		{in: `0`, want: SinglePort(0), out: `0`},
		{in: `65536`, wantErr: true},
		{in: `-1`, wantErr: true},
		{in: `1.5`, wantErr: true},
		{in: `"9000:8000"`, wantErr: true},
		{in: `"70000"`, wantErr: true},
		{in: `"1:70000"`, wantErr: true},
		{in: `"bad name"`, wantErr: true},
		{in: `""`, wantErr: true},
		{in: `true`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p Port
			err := json.Unmarshal([]byte(tt.in), &p)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %+v, want error", tt.in, p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if p != tt.want {
				t.Fatalf("Unmarshal(%s) = %+v, want %+v", tt.in, p, tt.want)
			}
			out, err := json.Marshal(p)
			if err != nil || string(out) != tt.out {
				t.Fatalf("Marshal = %s, %v; want %s", out, err, tt.out)
			}
		})
	}
}

func TestPortRangeAndString(t *testing.T) {
	if _, err := PortRange(10, 9); err == nil {
		t.Error("PortRange(10, 9) succeeded, want error")
	}
	p, err := PortRange(1, 1024)
	if err != nil || p.String() != "1:1024" || p.IsNamed() {
		t.Errorf("PortRange(1, 1024) = %v (%q), %v", p, p.String(), err)
	}
	if s := NamedPort("metrics").String(); s != "metrics" {
		t.Errorf("NamedPort String = %q", s)
	}
}

func TestProtocolJSON(t *testing.T) {
	tests := []struct {
		in        string
		out       string
		str       string
		num       uint8
		known     bool
		ports     bool
		valid     bool
		wantError bool
	}{
		{in: `"TCP"`, out: `"TCP"`, str: "TCP", num: 6, known: true, ports: true, valid: true},
		{in: `"tcp"`, out: `"tcp"`, str: "tcp", num: 6, known: true, ports: true, valid: true},
		{in: `"UDP"`, out: `"UDP"`, str: "UDP", num: 17, known: true, ports: true, valid: true},
		{in: `"SCTP"`, out: `"SCTP"`, str: "SCTP", num: 132, known: true, ports: true, valid: true},
		{in: `"ICMPv6"`, out: `"ICMPv6"`, str: "ICMPv6", num: 58, known: true, valid: true},
		{in: `"icmp"`, out: `"icmp"`, str: "icmp", num: 1, known: true, valid: true},
		{in: `"UDPLite"`, out: `"UDPLite"`, str: "UDPLite", num: 136, known: true, valid: true},
		{in: `6`, out: `6`, str: "6", num: 6, known: true, ports: true, valid: true},
		{in: `"17"`, out: `17`, str: "17", num: 17, known: true, ports: true, valid: true},
		{in: `47`, out: `47`, str: "47", num: 47, known: true, valid: true},
		{in: `255`, out: `255`, str: "255", num: 255, known: true, valid: true},
		{in: `0`, out: `0`, str: "0", num: 0, known: true},
		{in: `"GRE"`, out: `"GRE"`, str: "GRE"},
		{in: `"300"`, out: `"300"`, str: "300"},
		{in: `256`, wantError: true},
		{in: `-6`, wantError: true},
		{in: `{}`, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var p Protocol
			err := json.Unmarshal([]byte(tt.in), &p)
			if tt.wantError {
				if err == nil {
					t.Fatalf("Unmarshal(%s) succeeded, want error", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if p.String() != tt.str {
				t.Errorf("String = %q, want %q", p.String(), tt.str)
			}
			if n, ok := p.Number(); ok != tt.known || n != tt.num {
				t.Errorf("Number = %d, %v; want %d, %v", n, ok, tt.num, tt.known)
			}
			if p.SupportsPorts() != tt.ports {
				t.Errorf("SupportsPorts = %v, want %v", p.SupportsPorts(), tt.ports)
			}
			if (p.Validate() == nil) != tt.valid {
				t.Errorf("Validate = %v, want valid=%v", p.Validate(), tt.valid)
			}
			out, err := json.Marshal(p)
			if err != nil || string(out) != tt.out {
				t.Errorf("Marshal = %s, %v; want %s", out, err, tt.out)
			}
		})
	}
}

func TestProtocolConstructors(t *testing.T) {
	if p := ProtocolFromString("TCP"); !p.Is(ProtocolTCP) || p.IsNumeric() {
		t.Errorf("ProtocolFromString(TCP) = %+v", p)
	}
	if p := ProtocolFromInt(58); !p.Is(ProtocolICMPv6) || !p.IsNumeric() || p.Is(ProtocolICMP) {
		t.Errorf("ProtocolFromInt(58) = %+v", p)
	}
	if ProtocolFromString("6") != ProtocolFromInt(6) {
		t.Error(`ProtocolFromString("6") != ProtocolFromInt(6)`)
	}
}

func TestRuleJSONShape(t *testing.T) {
	// An empty source/destination is left out; ports and protocols keep
	// their number-or-string form.
	tcp := ProtocolFromString("TCP")
	r := Rule{
		Action:      ActionAllow,
		Protocol:    &tcp,
		Destination: EntityRule{Ports: []Port{SinglePort(80), NamedPort("http"), {MinPort: 1000, MaxPort: 2000}}},
	}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"Allow","protocol":"TCP","destination":{"ports":[80,"http","1000:2000"]}}`
	if string(got) != want {
		t.Fatalf("Marshal = %s\nwant      %s", got, want)
	}
	var back Rule
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if back.Protocol == nil || *back.Protocol != tcp || len(back.Destination.Ports) != 3 || back.Destination.Ports[2] != r.Destination.Ports[2] {
		t.Fatalf("Unmarshal = %+v", back)
	}
}
