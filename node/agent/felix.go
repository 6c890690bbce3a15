package agent

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/opencalico/calicoctl/node/plan"
	"github.com/opencalico/calicoctl/resources"
)

// FelixSettings are the FelixConfiguration parameters the dataplane uses.
// Zero means "derive / default".
type FelixSettings = plan.FelixSettings

// EffectiveFelix applies Felix's precedence for the parameters we use:
// environment (FELIX_<PARAM>, case-insensitive) > FelixConfiguration
// node.<name> > FelixConfiguration default > built-in. env is keyed by the
// lower-cased parameter name (node/config.Config.Felix).
func EffectiveFelix(env map[string]string, global, node *resources.FelixConfigurationSpec) (FelixSettings, error) {
	var s FelixSettings
	fields := []struct {
		name string
		dst  *int
		get  func(*resources.FelixConfigurationSpec) *int
	}{
		{"vxlanmtu", &s.VXLANMTU, func(f *resources.FelixConfigurationSpec) *int { return f.VXLANMTU }},
		{"ipipmtu", &s.IPIPMTU, func(f *resources.FelixConfigurationSpec) *int { return f.IPIPMTU }},
		{"vxlanport", &s.VXLANPort, func(f *resources.FelixConfigurationSpec) *int { return f.VXLANPort }},
		{"vxlanvni", &s.VXLANVNI, func(f *resources.FelixConfigurationSpec) *int { return f.VXLANVNI }},
	}
	for _, f := range fields {
		for _, spec := range []*resources.FelixConfigurationSpec{global, node} {
			if spec != nil {
				if v := f.get(spec); v != nil {
					*f.dst = *v
				}
			}
		}
		if v, ok := env[f.name]; ok && strings.TrimSpace(v) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return s, fmt.Errorf("FELIX_%s=%q: not a non-negative number", strings.ToUpper(f.name), v)
			}
			*f.dst = n
		}
	}
	return s, nil
}
