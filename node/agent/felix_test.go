package agent

import (
	"strings"
	"testing"

	"github.com/opencalico/calicoctl/resources"
)

func intp(v int) *int { return &v }

func TestEffectiveFelix(t *testing.T) {
	global := &resources.FelixConfigurationSpec{VXLANMTU: intp(1400), VXLANVNI: intp(4097)}
	node := &resources.FelixConfigurationSpec{VXLANMTU: intp(1350), IPIPMTU: intp(1380)}
	for _, tc := range []struct {
		name         string
		env          map[string]string
		global, node *resources.FelixConfigurationSpec
		want         FelixSettings
	}{
		{name: "nothing set", want: FelixSettings{}},
		{name: "global only", global: global, want: FelixSettings{VXLANMTU: 1400, VXLANVNI: 4097}},
		{name: "node beats global", global: global, node: node, want: FelixSettings{VXLANMTU: 1350, IPIPMTU: 1380, VXLANVNI: 4097}},
		{name: "env beats both", env: map[string]string{"vxlanmtu": "1300", "vxlanport": " 8472 "}, global: global, node: node,
			want: FelixSettings{VXLANMTU: 1300, IPIPMTU: 1380, VXLANVNI: 4097, VXLANPort: 8472}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EffectiveFelix(tc.env, tc.global, tc.node)
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	_, err := EffectiveFelix(map[string]string{"ipipmtu": "big"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `FELIX_IPIPMTU="big"`) {
		t.Errorf("bad FELIX_IPIPMTU: %v", err)
	}
}
