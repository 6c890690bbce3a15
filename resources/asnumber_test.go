package resources

import (
	"encoding/json"
	"testing"
)

func TestASNumberJSON(t *testing.T) {
	cases := []struct {
		in      string
		want    ASNumber
		wantErr bool
	}{
		{in: `64512`, want: 64512},
		{in: `"64512"`, want: 64512},
		{in: `"1.10"`, want: 1<<16 + 10},
		{in: `"0.0"`, want: 0},
		{in: `4294967295`, want: 4294967295},
		{in: `"65535.65535"`, want: 4294967295},
		{in: `4294967296`, wantErr: true},
		{in: `-1`, wantErr: true},
		{in: `1.1`, wantErr: true}, // unquoted asdot arrives as a float
		{in: `"65536.1"`, wantErr: true},
		{in: `"1.65536"`, wantErr: true},
		{in: `"abc"`, wantErr: true},
		{in: `true`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			var a ASNumber
			err := json.Unmarshal([]byte(tc.in), &a)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %d", a)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if a != tc.want {
				t.Fatalf("got %d, want %d", a, tc.want)
			}
			out, _ := json.Marshal(a)
			if string(out) != a.String() {
				t.Fatalf("marshal gave %s, want plain number %s", out, a.String())
			}
		})
	}
}

func TestASNumberNullKeepsValue(t *testing.T) {
	var s struct {
		A ASNumber  `json:"a"`
		P *ASNumber `json:"p"`
	}
	s.A = 7
	if err := json.Unmarshal([]byte(`{"a":null,"p":null}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.A != 7 || s.P != nil {
		t.Fatalf("null changed values: %+v", s)
	}
}
