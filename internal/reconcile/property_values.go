package reconcile

import "strings"

// ValuesIn returns the values a SCIM resource holds at the property's target path, in document
// order: nothing when the attribute is absent, one value for a single-valued attribute, one per
// array element (or per element's sub-attribute) for a multi-valued one. Attribute names match
// case-insensitively (RFC 7643 §2.1). JSONPath properties have no target path: they return nil.
// The inventory reads what the target holds with it (docs/inventory.md).
func (p *Property) ValuesIn(res map[string]any) []any {
	if p.IsJSONPath() || len(p.path.segs) == 0 {
		return nil
	}
	var out []any
	collect(res, p.path.segs, &out)
	return out
}

// Segments is the path ValuesIn walks: the member names from the resource's top, arrays crossed
// implicitly (nil for JSONPath properties).
func (p *Property) Segments() []string {
	if p.IsJSONPath() {
		return nil
	}
	return p.path.segs
}

// collect walks segs into v, flattening every array it crosses.
func collect(v any, segs []string, out *[]any) {
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			collect(e, segs, out)
		}
		return
	case nil:
		return
	}
	if len(segs) == 0 {
		*out = append(*out, v)
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	next, ok := m[segs[0]]
	if !ok {
		for k, x := range m {
			if strings.EqualFold(k, segs[0]) {
				next, ok = x, true
				break
			}
		}
	}
	if ok {
		collect(next, segs[1:], out)
	}
}
