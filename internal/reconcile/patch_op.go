package reconcile

import (
	"fmt"
	"slices"
	"strings"
)

// patchOpSchema is the schema of an RFC 7644 PATCH message.
const patchOpSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// patchOp is one RFC 7644 §3.5.2 operation with the rules that produced it.
type patchOp struct {
	op    map[string]any
	rules []string
}

func newPatchOp(op, path string, value any, hasValue bool, rules ...string) patchOp {
	m := map[string]any{"op": op, "path": path}
	if hasValue {
		m["value"] = cloneJSON(value)
	}
	return patchOp{op: m, rules: rules}
}

// derivePatchOps turns the rules of a non-reconciled update into PATCH operations: modify becomes
// replace (remove for a null value), add on an object property becomes add, add on an array
// becomes one add of the new elements, remove on an array becomes one remove per element selected
// by a value filter, remove on an object property becomes remove of the path.
func derivePatchOps(steps []step) ([]patchOp, error) {
	var ops []patchOp
	for _, s := range steps {
		p := s.path()
		if !p.isArray() {
			r := s.rules[0]
			v := r.values[0]
			if _, dropped := v.(droppedValue); dropped {
				continue
			}
			switch {
			case r.action == ActionAdd && v != nil:
				ops = append(ops, newPatchOp("add", p.scim(), v, true, r.origin))
			case r.action == ActionModify && v != nil:
				ops = append(ops, newPatchOp("replace", p.scim(), v, true, r.origin))
			case r.action == ActionModify, r.action == ActionRemove:
				ops = append(ops, newPatchOp("remove", p.scim(), nil, false, r.origin))
			}
			continue
		}
		if s.action == ActionModify {
			return nil, fmt.Errorf("%w: modify on %q: modification works only on objects, not on the array", ErrInvalidChange, s.rules[0].prop.name)
		}
		els, err := s.elements()
		if err != nil {
			return nil, err
		}
		switch s.action {
		case ActionAdd:
			var values []any
			for _, el := range els {
				if !slices.ContainsFunc(values, func(have any) bool { return contains(have, el.value) }) {
					values = append(values, el.value)
				}
			}
			if len(values) > 0 {
				ops = append(ops, newPatchOp("add", p.scimArray(), values, true, s.origins()...))
			}
		case ActionRemove:
			for _, el := range els {
				filter, err := valueFilter(el.value, p.primitive())
				if err != nil {
					return nil, fmt.Errorf("%w: remove on %q: %v", ErrModel, s.rules[0].prop.name, err)
				}
				ops = append(ops, newPatchOp("remove", p.scimArray()+"["+filter+"]", nil, false, s.origins()...))
			}
		}
	}
	return ops, nil
}

// valueFilter selects an array element equal to el: "value eq ..." for a simple value (RFC 7643
// §2.4: simple multi-valued attributes are compared through their implicit "value"), a conjunction
// of its fields for an object.
func valueFilter(el any, primitive bool) (string, error) {
	if primitive {
		if _, ok := el.(map[string]any); !ok {
			return "value eq " + filterValue(el), nil
		}
	}
	m, ok := el.(map[string]any)
	if !ok {
		return "value eq " + filterValue(el), nil
	}
	var parts []string
	var walk func(prefix string, m map[string]any) error
	walk = func(prefix string, m map[string]any) error {
		for _, k := range sortedKeys(m) {
			switch v := m[k].(type) {
			case map[string]any:
				if err := walk(prefix+k+".", v); err != nil {
					return err
				}
			case []any:
				return fmt.Errorf("a list inside an array element (%s%s) can't be selected by a filter", prefix, k)
			default:
				parts = append(parts, prefix+k+" eq "+filterValue(v))
			}
		}
		return nil
	}
	if err := walk("", m); err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("an empty element can't be selected by a filter")
	}
	return strings.Join(parts, " and "), nil
}

// filterValue renders an RFC 7644 compValue: a JSON string (quoted and escaped as JSON), number,
// true, false or null.
func filterValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case string:
		return compactJSON(v)
	}
	if s, ok := numberText(v); ok {
		return s
	}
	return compactJSON(v)
}

// reservedAttributes are never diffed: the server owns them.
var reservedAttributes = []string{"id", "meta", "schemas"}

// diffPatchOps compares the current object with the merged one: replace for every top-level
// attribute that differs (one level deeper inside an extension schema, whose URN is not an
// attribute path), remove for every attribute the merge took away.
func diffPatchOps(cur, merged map[string]any, touched []provEntry) []patchOp {
	var ops []patchOp
	keys := map[string]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range merged {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		if slices.Contains(reservedAttributes, k) {
			continue
		}
		cm, cIsMap := cur[k].(map[string]any)
		mm, mIsMap := merged[k].(map[string]any)
		if strings.HasPrefix(strings.ToLower(k), "urn:") && (cIsMap || mIsMap) {
			sub := map[string]bool{}
			for s := range cm {
				sub[s] = true
			}
			for s := range mm {
				sub[s] = true
			}
			for _, s := range sortedKeys(sub) {
				ops = appendDiff(ops, k+":"+s, cm, mm, s, sourcesUnder(touched, []string{k, s}))
			}
			continue
		}
		ops = appendDiff(ops, k, cur, merged, k, sourcesUnder(touched, []string{k}))
	}
	return ops
}

func appendDiff(ops []patchOp, path string, cur, merged map[string]any, key string, rules []string) []patchOp {
	cv, inCur := cur[key]
	mv, inMerged := merged[key]
	switch {
	case inCur && inMerged && jsonEqual(cv, mv):
		return ops
	case !inCur && !inMerged:
		return ops
	case !inMerged:
		return append(ops, newPatchOp("remove", path, nil, false, rules...))
	default:
		return append(ops, newPatchOp("replace", path, mv, true, rules...))
	}
}

func sourcesUnder(touched []provEntry, prefix []string) []string {
	var out []string
	for _, t := range touched {
		if hasPrefix(t.ptr, prefix) && !slices.Contains(out, t.rule) {
			out = append(out, t.rule)
		}
	}
	if len(out) == 0 {
		out = append(out, "reconciled from current object")
	}
	return out
}
