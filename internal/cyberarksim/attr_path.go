package cyberarksim

import (
	"fmt"
	"strings"
)

// attrPath is an attribute path resolved against a resource type's schemas: where the attribute
// lives in a stored resource and how its values compare.
type attrPath struct {
	ext     *schema    // extension holding the attribute; nil for the core schema and common attributes
	attr    *attribute // definition; schemalessAttr inside a schemaless extension
	name    string     // canonical attribute name (as written for schemaless extensions)
	sub     *attribute // sub-attribute definition, nil when none
	subName string
}

// String renders the path in canonical form.
func (p attrPath) String() string {
	var b strings.Builder
	if p.ext != nil {
		b.WriteString(p.ext.id)
		b.WriteByte(':')
	}
	b.WriteString(p.name)
	if p.subName != "" {
		b.WriteByte('.')
		b.WriteString(p.subName)
	}
	return b.String()
}

// key identifies the path for index lookups: the canonical, case-sensitive path.
func (p attrPath) key() string { return p.String() }

// leaf is the definition of the attribute whose values the path selects.
func (p attrPath) leaf() *attribute {
	if p.sub != nil {
		return p.sub
	}
	return p.attr
}

// resolvePath resolves a written path against rt: the URN must name rt's core schema or one of its
// extensions, the attribute must exist (any name is accepted in a schemaless extension) and so
// must the sub-attribute.
func resolvePath(rt *resourceType, raw rawPath) (attrPath, error) {
	var p attrPath
	sch := rt.core
	if raw.urn != "" {
		sch = rt.schemaByURN(raw.urn)
		if sch == nil {
			return attrPath{}, fmt.Errorf("unknown schema %q for resource type %s", raw.urn, rt.name)
		}
	}
	switch {
	case sch.schemaless:
		p.ext, p.attr, p.name = sch, schemalessAttr, raw.attr
	case sch == rt.core:
		p.attr = sch.attr(raw.attr)
		if p.attr == nil {
			p.attr = commonAttr(raw.attr)
		}
	default:
		p.ext = sch
		p.attr = sch.attr(raw.attr)
	}
	if p.attr == nil {
		return attrPath{}, fmt.Errorf("unknown attribute %q for resource type %s", raw.String(), rt.name)
	}
	if p.name == "" {
		p.name = p.attr.name
	}
	if raw.sub == "" {
		return p, nil
	}
	if p.attr == schemalessAttr {
		p.sub, p.subName = schemalessAttr, raw.sub
		return p, nil
	}
	if p.attr.typ != typeComplex {
		return attrPath{}, fmt.Errorf("attribute %q has no sub-attributes", p.String())
	}
	p.sub = p.attr.sub(raw.sub)
	if p.sub == nil {
		return attrPath{}, fmt.Errorf("unknown sub-attribute %q of %q", raw.sub, p.String())
	}
	p.subName = p.sub.name
	return p, nil
}

// container returns the map that holds the path's top-level attribute inside a resource map:
// the resource itself, or the extension object (created when create is true).
func (p attrPath) container(res map[string]any, create bool) map[string]any {
	if p.ext == nil {
		return res
	}
	m, ok := res[p.ext.id].(map[string]any)
	if !ok && create {
		m = map[string]any{}
		res[p.ext.id] = m
	}
	return m
}

// lookupKey finds the key of name in m: exact for schema attributes (stored canonically),
// case-insensitive for schemaless ones.
func lookupKey(m map[string]any, name string, schemaless bool) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	if !schemaless {
		return "", false
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return "", false
}

// topValue returns the value of the path's top-level attribute in res.
func (p attrPath) topValue(res map[string]any) (any, bool) {
	c := p.container(res, false)
	if c == nil {
		return nil, false
	}
	k, ok := lookupKey(c, p.name, p.attr == schemalessAttr)
	if !ok {
		return nil, false
	}
	return c[k], true
}

// values returns every scalar value the path selects in res, flattening multi-valued attributes.
// With implyValue, a complex attribute without sub-attribute selects its "value" sub-attribute
// (RFC 7644 §3.4.2.2 filters on "emails" compare emails.value).
func (p attrPath) values(res map[string]any, implyValue bool) []any {
	v, ok := p.topValue(res)
	if !ok {
		return nil
	}
	sub := p.subName
	if sub == "" && implyValue && p.attr.typ == typeComplex {
		sub = "value"
	}
	var out []any
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if sub == "" {
				return
			}
			if k, ok := lookupKey(x, sub, p.attr == schemalessAttr); ok {
				walkScalar(x[k], &out)
			}
		default:
			if sub == "" {
				out = append(out, x)
			}
		}
	}
	walk(v)
	return out
}

func walkScalar(v any, out *[]any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			walkScalar(e, out)
		}
	case map[string]any:
	default:
		*out = append(*out, x)
	}
}
