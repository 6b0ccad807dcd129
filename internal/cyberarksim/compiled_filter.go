package cyberarksim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// compiledTerm is a comparison resolved against a resource type: it knows the attribute's type
// and case sensitivity and holds the value prepared for comparing.
type compiledTerm struct {
	path      attrPath
	implied   bool // complex attribute compared through its "value" sub-attribute
	op        filterOp
	leaf      *attribute
	caseExact bool
	needle    string // string comparisons: the value, lower-cased unless caseExact
	num       float64
	b         bool
	kind      valueKind
	when      time.Time
}

// compiledFilter is a Filter ready to match resource maps.
type compiledFilter struct {
	terms []compiledTerm
}

// compileFilter resolves f against rt. Errors name the attribute or value that is wrong.
func compileFilter(rt *resourceType, f Filter) (*compiledFilter, error) {
	cf := &compiledFilter{terms: make([]compiledTerm, 0, len(f.terms))}
	for _, t := range f.terms {
		p, err := resolvePath(rt, t.path)
		if err != nil {
			return nil, err
		}
		ct, err := compileTerm(p, t)
		if err != nil {
			return nil, err
		}
		cf.terms = append(cf.terms, ct)
	}
	return cf, nil
}

// compileElementFilter resolves f against the sub-attributes of the multi-valued complex
// attribute parent, for PATCH value paths such as members[value eq "x"].
func compileElementFilter(parent attrPath, f Filter) (*compiledFilter, error) {
	cf := &compiledFilter{}
	for _, t := range f.terms {
		if t.path.urn != "" || t.path.sub != "" {
			return nil, fmt.Errorf("value filter of %q may only name its sub-attributes, not %q", parent.String(), t.path.String())
		}
		var p attrPath
		if parent.attr == schemalessAttr {
			p = attrPath{attr: schemalessAttr, name: t.path.attr}
		} else {
			sub := parent.attr.sub(t.path.attr)
			if sub == nil {
				return nil, fmt.Errorf("unknown sub-attribute %q of %q", t.path.attr, parent.String())
			}
			p = attrPath{attr: sub, name: sub.name}
		}
		ct, err := compileTerm(p, t)
		if err != nil {
			return nil, err
		}
		cf.terms = append(cf.terms, ct)
	}
	return cf, nil
}

func compileTerm(p attrPath, t filterTerm) (compiledTerm, error) {
	ct := compiledTerm{path: p, op: t.op, kind: t.value.kind}
	leaf := p.leaf()
	if leaf.typ == typeComplex {
		v := leaf.sub("value")
		if v == nil {
			return ct, fmt.Errorf("complex attribute %q can only be filtered through a sub-attribute", p.String())
		}
		leaf, ct.implied = v, true
	}
	if leaf.returned == retNever {
		return ct, fmt.Errorf("attribute %q cannot be used in a filter", p.String())
	}
	ct.leaf, ct.caseExact = leaf, leaf.caseExact
	stringOp := t.op != opEq
	switch {
	case leaf == schemalessAttr:
		if stringOp && t.value.kind != kindString {
			return ct, fmt.Errorf("operator %q needs a string value, got %s", t.op, t.value)
		}
	case leaf.isString():
		if t.value.kind != kindString {
			return ct, fmt.Errorf("attribute %q is a %s; compare it with a JSON string, not %s", p.String(), leaf.typ, t.value)
		}
	case leaf.typ == typeBoolean:
		if t.value.kind != kindBool || stringOp {
			return ct, fmt.Errorf("attribute %q is a boolean; only \"eq true\" or \"eq false\" apply", p.String())
		}
	case leaf.typ == typeInteger || leaf.typ == typeDecimal:
		if t.value.kind != kindNumber || stringOp {
			return ct, fmt.Errorf("attribute %q is a number; only \"eq\" with a JSON number applies", p.String())
		}
	case leaf.typ == typeDateTime:
		if t.value.kind != kindString || stringOp {
			return ct, fmt.Errorf("attribute %q is a dateTime; only \"eq\" with an RFC 3339 string applies", p.String())
		}
		when, err := time.Parse(time.RFC3339Nano, t.value.str)
		if err != nil {
			return ct, fmt.Errorf("attribute %q is a dateTime and %s is not RFC 3339", p.String(), t.value)
		}
		ct.when = when
	}
	switch t.value.kind {
	case kindString:
		ct.needle = t.value.str
		if !ct.caseExact {
			ct.needle = foldCase(ct.needle)
		}
	case kindBool:
		ct.b = t.value.b
		ct.needle = strconv.FormatBool(t.value.b)
	case kindNumber:
		f, err := strconv.ParseFloat(t.value.str, 64)
		if err != nil {
			return ct, fmt.Errorf("number %s is out of range", t.value.str)
		}
		ct.num = f
		ct.needle = t.value.str
	}
	return ct, nil
}

// matches reports whether every term matches res (a resource map, or an element of a
// multi-valued attribute for element filters).
func (f *compiledFilter) matches(res map[string]any) bool {
	for i := range f.terms {
		if !f.terms[i].matches(res) {
			return false
		}
	}
	return true
}

// matches reports whether any value the term's path selects in res satisfies the comparison.
func (t *compiledTerm) matches(res map[string]any) bool {
	for _, v := range t.path.values(res, t.implied) {
		if t.matchValue(v) {
			return true
		}
	}
	return false
}

func (t *compiledTerm) matchValue(v any) bool {
	if t.leaf == schemalessAttr {
		return t.matchString(scalarText(v))
	}
	switch t.leaf.typ {
	case typeBoolean:
		b, ok := v.(bool)
		return ok && b == t.b
	case typeInteger, typeDecimal:
		f, ok := toFloat(v)
		return ok && f == t.num
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return false
		}
		when, err := time.Parse(time.RFC3339Nano, s)
		return err == nil && when.Equal(t.when)
	}
	s, ok := v.(string)
	return ok && t.matchString(s)
}

// matchString compares a stored string with the needle.
func (t *compiledTerm) matchString(s string) bool {
	if !t.caseExact {
		s = foldCase(s)
	}
	return stringOpMatches(t.op, s, t.needle)
}

// foldCase is the one case normalisation used for case-insensitive comparisons, index keys and
// uniqueness, so an index lookup and a scan always agree.
func foldCase(s string) string { return strings.ToLower(s) }

// stringOpMatches applies op to already case-normalised strings.
func stringOpMatches(op filterOp, s, needle string) bool {
	switch op {
	case opEq:
		return s == needle
	case opSw:
		return strings.HasPrefix(s, needle)
	case opCo:
		return strings.Contains(s, needle)
	case opEw:
		return strings.HasSuffix(s, needle)
	}
	return false
}

// scalarText renders a scalar JSON value as text for schemaless comparisons.
func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}
