package reconcile

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ohler55/ojg/jp"
)

// JSONPath properties ("$." names) are applied last, on top of the prepared request: "The JSONPath
// can't create new fields", so every path must match at least one existing location.

// jsonPathValue converts an event value for a JSONPath property: text stays a string, JSON (an
// object or list in the event, or a string holding JSON object or array text) becomes structure,
// and a multiValued property collects its values into an array.
func jsonPathValue(p *Property, raw any, numeric bool) (any, error) {
	if p.multiValued {
		list, ok := raw.([]any)
		if !ok {
			list = []any{raw}
			if raw == nil {
				list = nil
			}
		}
		out := make([]any, 0, len(list))
		for i, e := range list {
			v, err := jsonPathScalar(p, e, numeric)
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out = append(out, v)
		}
		return out, nil
	}
	return jsonPathScalar(p, raw, numeric)
}

func jsonPathScalar(p *Property, raw any, numeric bool) (any, error) {
	if s, ok := raw.(string); ok {
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			v, err := decodeJSON([]byte(t))
			if err != nil {
				return nil, fmt.Errorf("the value starts like JSON but is not valid JSON: %w", err)
			}
			return v, nil
		}
	}
	switch raw.(type) {
	case map[string]any, []any:
		return normalizeJSON(raw)
	}
	if p.typ == TypeString {
		if raw == nil {
			return nil, nil
		}
		if _, ok := raw.(string); ok {
			return raw, nil
		}
		return normalizeJSON(raw) // a JSON number or boolean goes in as it is
	}
	return p.coerceOne(raw, numeric)
}

// setJSONPath writes v at every location p's path matches in d. where names the request's base
// (template UpdateRequest, no template, current object) for the error message.
func setJSONPath(d *document, p *Property, v any, object, where string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: JSONPath property %q of object %s failed on the prepared request (%s): %v", ErrModel, p.name, object, where, r)
		}
	}()
	locs := p.expr.Locate(d.root, 0)
	if len(locs) == 0 {
		return fmt.Errorf("%w: JSONPath property %q of object %s matches no field of the prepared request (%s): the JSONPath can't create new fields; add the field to the template or map a property that creates it",
			ErrModel, p.name, object, where)
	}
	origin := fmt.Sprintf("JSONPath property %q", p.name)
	for _, loc := range locs {
		ptr, ok := locPointer(loc, d.root)
		if !ok {
			return fmt.Errorf("%w: JSONPath property %q of object %s names %s, which is not a field of the prepared request (%s)", ErrModel, p.name, object, loc.String(), where)
		}
		if err := loc.SetOne(d.root, cloneJSON(v)); err != nil {
			return fmt.Errorf("%w: JSONPath property %q of object %s: set %s: %v", ErrModel, p.name, object, loc.String(), err)
		}
		d.provSet(ptr, origin)
	}
	return nil
}

// locPointer turns a normalized location from jp.Locate into JSON pointer tokens, following the
// data to resolve negative indexes.
func locPointer(loc jp.Expr, root any) ([]string, bool) {
	var ptr []string
	cur := root
	for i, f := range loc {
		switch f := f.(type) {
		case jp.Root:
			if i != 0 {
				return nil, false
			}
		case jp.Child:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			ptr = append(ptr, string(f))
			cur = m[string(f)]
		case jp.Nth:
			a, ok := cur.([]any)
			if !ok {
				return nil, false
			}
			n := int(f)
			if n < 0 {
				n += len(a)
			}
			if n < 0 || n >= len(a) {
				return nil, false
			}
			ptr = append(ptr, strconv.Itoa(n))
			cur = a[n]
		default:
			return nil, false
		}
	}
	return ptr, len(ptr) > 0
}
