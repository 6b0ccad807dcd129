package reconcile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/scimflow/scimflow/internal/yamlschema"
)

// FieldError is one problem in a configuration file, located by file, line and field:
//
//	models/x.yaml:42: objects[0].properties[3].type: must be one of string,int,long,bool,reference,complex
//
// It is the problem type of internal/yamlschema, so that model and configuration errors read alike.
type FieldError = yamlschema.Problem

// joinFieldErrors sorts errs by line then field, drops duplicates and joins them (nil when empty).
func joinFieldErrors(errs []*FieldError) error {
	problems := make([]yamlschema.Problem, len(errs))
	for i, e := range errs {
		problems[i] = *e
	}
	return yamlschema.NewError(problems)
}

// fieldPath locates a value in a document: string tokens are keys, int tokens are array indexes.
type fieldPath []any

func (p fieldPath) with(tokens ...any) fieldPath {
	return append(slices.Clip(p), tokens...)
}

// String renders the path the way people read it: objects[0].properties[3].type.
func (p fieldPath) String() string {
	var b strings.Builder
	for _, t := range p {
		switch t := t.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", t)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, t)
		}
	}
	return b.String()
}

// tokens renders the path as JSON pointer tokens.
func (p fieldPath) tokens() []string {
	out := make([]string, len(p))
	for i, t := range p {
		out[i] = fmt.Sprint(t)
	}
	return out
}
