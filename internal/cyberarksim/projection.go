package cyberarksim

import (
	"strings"
)

// projection is the effect of the attributes or excludedAttributes query parameter
// (RFC 7644 §3.4.2.5, §3.9) on a rendered resource.
type projection struct {
	include bool // attributes=...: only these (plus id and schemas); else excludedAttributes=...
	sels    []*projSel
}

// projSel selects one top-level attribute, in the core schema or an extension, whole or by
// sub-attributes.
type projSel struct {
	ext        string // extension URN, "" for the core schema
	name       string // attribute name; "" selects the whole extension
	schemaless bool
	subs       []string // nil: the whole attribute
}

// parseProjection parses the attributes and excludedAttributes parameters. Names are resolved
// against rt like filter paths, so a misspelt attribute is an error instead of an empty result.
func parseProjection(rt *resourceType, attributes, excluded string) (*projection, error) {
	attributes, excluded = strings.TrimSpace(attributes), strings.TrimSpace(excluded)
	if attributes == "" && excluded == "" {
		return nil, nil
	}
	if attributes != "" && excluded != "" {
		return nil, badRequest(scimInvalidValue, "use attributes or excludedAttributes, not both")
	}
	p := &projection{include: attributes != ""}
	list, param := attributes, "attributes"
	if !p.include {
		list, param = excluded, "excludedAttributes"
	}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if _, ext := rt.extension(name); ext != nil {
			p.add(&projSel{ext: ext.id})
			continue
		}
		raw, err := parseRawPath(name)
		if err != nil {
			return nil, badRequest(scimInvalidValue, "%s: %v", param, err)
		}
		ap, err := resolvePath(rt, raw)
		if err != nil {
			return nil, badRequest(scimInvalidValue, "%s: %v", param, err)
		}
		if !p.include && ap.attr == idAttr {
			continue // id is always returned (RFC 7643 §3.1)
		}
		sel := &projSel{name: ap.name, schemaless: ap.attr == schemalessAttr}
		if ap.ext != nil {
			sel.ext = ap.ext.id
		}
		if ap.subName != "" {
			sel.subs = []string{ap.subName}
		}
		p.add(sel)
	}
	return p, nil
}

// add merges sel into the selections: sub-attribute selections of one attribute combine, and a
// whole-attribute selection wins.
func (p *projection) add(sel *projSel) {
	for _, old := range p.sels {
		if old.ext != sel.ext || !strings.EqualFold(old.name, sel.name) {
			continue
		}
		switch {
		case old.subs == nil:
		case sel.subs == nil:
			old.subs = nil
		default:
			for _, s := range sel.subs {
				if !containsString(old.subs, s) {
					old.subs = append(old.subs, s)
				}
			}
		}
		return
	}
	p.sels = append(p.sels, sel)
}

// apply returns the projected resource. m is modified or reused.
func (p *projection) apply(m map[string]any) map[string]any {
	if !p.include {
		for _, sel := range p.sels {
			sel.remove(m)
		}
		return m
	}
	out := map[string]any{"schemas": m["schemas"], "id": m["id"]}
	for _, sel := range p.sels {
		sel.copy(m, out)
	}
	return out
}

// holder returns the map holding sel's attribute in m: m itself or the extension object.
func (sel *projSel) holder(m map[string]any, create bool) map[string]any {
	if sel.ext == "" {
		return m
	}
	h, ok := m[sel.ext].(map[string]any)
	if !ok && create {
		h = map[string]any{}
		m[sel.ext] = h
	}
	return h
}

func (sel *projSel) copy(from, to map[string]any) {
	if sel.name == "" {
		if v, ok := from[sel.ext]; ok {
			to[sel.ext] = v
		}
		return
	}
	src := sel.holder(from, false)
	if src == nil {
		return
	}
	key, ok := lookupKey(src, sel.name, sel.schemaless)
	if !ok {
		return
	}
	v := src[key]
	if sel.subs != nil {
		v = keepSubs(v, sel.subs)
		if v == nil {
			return
		}
	}
	sel.holder(to, true)[key] = v
}

// keepSubs keeps only the named sub-attributes of a complex value or of each element of a
// multi-valued one; it returns nil when nothing is left.
func keepSubs(v any, subs []string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for _, s := range subs {
			if sv, ok := x[s]; ok {
				out[s] = sv
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		var out []any
		for _, e := range x {
			if kept := keepSubs(e, subs); kept != nil {
				out = append(out, kept)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return nil
}

func (sel *projSel) remove(m map[string]any) {
	if sel.name == "" {
		delete(m, sel.ext)
		return
	}
	h := sel.holder(m, false)
	if h == nil {
		return
	}
	key, ok := lookupKey(h, sel.name, sel.schemaless)
	if !ok {
		return
	}
	if sel.subs == nil {
		delete(h, key)
	} else if v := dropSubs(h[key], sel.subs); v == nil {
		delete(h, key)
	} else {
		h[key] = v
	}
	if sel.ext != "" && len(h) == 0 {
		delete(m, sel.ext)
	}
}

// dropSubs removes the named sub-attributes; it returns nil when nothing is left.
func dropSubs(v any, subs []string) any {
	switch x := v.(type) {
	case map[string]any:
		for _, s := range subs {
			delete(x, s)
		}
		if len(x) == 0 {
			return nil
		}
		return x
	case []any:
		var out []any
		for _, e := range x {
			if kept := dropSubs(e, subs); kept != nil {
				out = append(out, kept)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}
