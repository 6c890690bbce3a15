package cli

import (
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var metaTimeZero = metav1.Time{}

// yamlOrJSON decodes a small JSON or YAML document into v.
func yamlOrJSON(data []byte, v any) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, v)
}
