// Package printer renders the results of `calicoctl get` in the formats of
// its -o flag: ps and wide tables, custom-columns, yaml, json and Go
// templates. New picks the printer; each printer writes a Result.
package printer

import (
	"fmt"
	"io"
	"os"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/opencalico/calicoctl/resources"
)

// DefaultASNumber is the cluster-wide AS number when none is configured.
const DefaultASNumber = "64512"

// Printer writes one Result.
type Printer interface {
	Print(w io.Writer, res Result) error
}

// Options tune a printer.
type Options struct {
	// ShowNamespace prepends a NAMESPACE column for namespaced kinds (set
	// when -n or -A was given).
	ShowNamespace bool
	// GlobalASNumber returns the cluster-wide AS number, shown for Nodes
	// that inherit it and offered to templates as `config "asnumber"`.
	// Nil means DefaultASNumber.
	GlobalASNumber func() string
}

// Result is what one `get` query returned.
type Result struct {
	// Kind is the kind of every item.
	Kind *resources.Kind
	// Items are the objects found.
	Items []resources.Resource
	// IsList is set for a list query (no names given); such a result prints
	// as one <Kind>List object or one table.
	IsList bool
	// Revision is the datastore revision of a list, printed as the list's
	// metadata.resourceVersion.
	Revision string
}

// List is the object a list query prints as in yaml, json and templates:
// a <Kind>List with the items. Templates reach items as .Items.
type List struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []resources.Resource `json:"items"`
}

// NewList wraps the items of a list result into a List.
func NewList(res Result) *List {
	l := &List{Items: res.Items}
	if l.Items == nil {
		l.Items = []resources.Resource{}
	}
	l.APIVersion = resources.APIVersion
	if res.Kind != nil {
		l.Kind = res.Kind.ListKind()
	}
	l.ResourceVersion = res.Revision
	return l
}

const (
	customColumnsPrefix = "custom-columns="
	templatePrefix      = "go-template="
	templateFilePrefix  = "go-template-file="
)

// New returns the printer for the -o value format.
func New(format string, opts Options) (Printer, error) {
	if opts.GlobalASNumber == nil {
		opts.GlobalASNumber = func() string { return DefaultASNumber }
	}
	switch {
	case format == "" || format == "ps":
		return &tablePrinter{opts: opts}, nil
	case format == "wide":
		return &tablePrinter{opts: opts, wide: true}, nil
	case format == "yaml" || format == "yml":
		return yamlPrinter{}, nil
	case format == "json":
		return jsonPrinter{}, nil
	case strings.HasPrefix(format, customColumnsPrefix):
		var headings []string
		for h := range strings.SplitSeq(strings.TrimPrefix(format, customColumnsPrefix), ",") {
			if h = strings.TrimSpace(h); h != "" {
				headings = append(headings, h)
			}
		}
		if len(headings) == 0 {
			return nil, fmt.Errorf("no headings given in output format '%s'", format)
		}
		return &tablePrinter{opts: opts, headings: headings}, nil
	case strings.HasPrefix(format, templatePrefix):
		return newTemplatePrinter(strings.TrimPrefix(format, templatePrefix), opts)
	case strings.HasPrefix(format, templateFilePrefix):
		path := strings.TrimPrefix(format, templateFilePrefix)
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("failed to read template file %s: %w", path, err)
		}
		return newTemplatePrinter(string(text), opts)
	default:
		return nil, fmt.Errorf("unrecognized output format '%s'", format)
	}
}
