package cli

import (
	"encoding/json"
	"errors"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

var metaTimeZero = metav1.Time{}

// yamlOrJSON decodes a small JSON or YAML document into v. A key given twice
// in one mapping is an error (on one line).
func yamlOrJSON(data []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "unmarshal errors:\n", "")
		return errors.New(strings.Join(strings.Fields(msg), " "))
	}
	return json.Unmarshal(js, v)
}
