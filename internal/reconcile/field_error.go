package reconcile

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FieldError is one problem in a configuration file, located by file, line and field:
//
//	models/x.yaml:42: objects[0].properties[3].type: must be one of string,int,long,bool,reference,complex
type FieldError struct {
	File    string // as given to the loader
	Line    int    // 1-based; 0 when unknown
	Field   string // e.g. objects[0].properties[3].type; "" for the whole document
	Message string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// joinFieldErrors sorts errs by line then field, drops duplicates and joins them (nil when empty).
func joinFieldErrors(errs []*FieldError) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Field, b.Field))
	})
	out := make([]error, 0, len(errs))
	seen := map[string]bool{}
	for _, e := range errs {
		s := e.Error()
		if seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, e)
	}
	return errors.Join(out...)
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
