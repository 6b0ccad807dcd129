package cyberarksim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// maxPatchOperations bounds the Operations of one PATCH request.
const maxPatchOperations = 10000

// patchOp is one validated operation of an RFC 7644 §3.5.2 PatchOp request.
type patchOp struct {
	op       string // "add", "remove" or "replace"
	path     *patchPath
	value    any
	hasValue bool
}

// patchPath is a parsed PATCH path: attrPath, or valuePath [ "." subAttr ], or an extension URN.
type patchPath struct {
	text    string
	extOnly *schema         // the path is an extension URN: the target is its whole object
	target  attrPath        // attribute, possibly with a sub-attribute (when no filter)
	filter  *compiledFilter // value filter selecting elements of a multi-valued complex attribute
	elemSub *attribute      // sub-attribute after the filter: emails[type eq "work"].value
}

// parsePatchRequest validates a PatchOp body against rt.
func parsePatchRequest(rt *resourceType, body map[string]any) ([]patchOp, error) {
	var rawOps any
	var haveSchemas, haveOps bool
	for k, v := range body {
		switch foldCase(k) {
		case "schemas":
			haveSchemas = true
			arr, _ := v.([]any)
			found := false
			for _, e := range arr {
				if s, _ := e.(string); strings.EqualFold(s, patchOpURN) {
					found = true
				}
			}
			if !found {
				return nil, badRequest(scimInvalidSyntax, "schemas must be [%q]", patchOpURN)
			}
		case "operations":
			rawOps, haveOps = v, true
		default:
			return nil, badRequest(scimInvalidSyntax, "unknown PatchOp member %q (expected schemas and Operations)", k)
		}
	}
	if !haveSchemas {
		return nil, badRequest(scimInvalidSyntax, "schemas must be [%q]", patchOpURN)
	}
	arr, ok := rawOps.([]any)
	if !haveOps || !ok || len(arr) == 0 {
		return nil, badRequest(scimInvalidSyntax, "Operations must be a non-empty array")
	}
	if len(arr) > maxPatchOperations {
		return nil, badRequest(scimInvalidValue, "a PATCH may carry at most %d operations, not %d", maxPatchOperations, len(arr))
	}
	ops := make([]patchOp, 0, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, badRequest(scimInvalidSyntax, "Operations[%d] must be an object", i)
		}
		op, err := parseOperation(rt, m)
		if err != nil {
			var se *scimError
			if errors.As(err, &se) {
				se.detail = fmt.Sprintf("Operations[%d]: %s", i, se.detail)
			}
			return nil, err
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func parseOperation(rt *resourceType, m map[string]any) (patchOp, error) {
	var op patchOp
	var path string
	var havePath bool
	for k, v := range m {
		switch foldCase(k) {
		case "op":
			s, _ := v.(string)
			op.op = foldCase(s)
		case "path":
			s, ok := v.(string)
			if !ok {
				return op, badRequest(scimInvalidPath, "path must be a string")
			}
			path, havePath = s, true
		case "value":
			op.value, op.hasValue = v, true
		default:
			return op, badRequest(scimInvalidSyntax, "unknown operation member %q (expected op, path, value)", k)
		}
	}
	switch op.op {
	case "add", "replace":
		if !op.hasValue {
			return op, badRequest(scimInvalidValue, "%s needs a value", op.op)
		}
		if op.value == nil && op.op == "add" {
			return op, badRequest(scimInvalidValue, "add needs a non-null value")
		}
	case "remove":
		if !havePath {
			return op, badRequest(scimNoTarget, "remove needs a path")
		}
	case "":
		return op, badRequest(scimInvalidSyntax, "op is required (add, remove or replace)")
	default:
		return op, badRequest(scimInvalidSyntax, "unknown op %q (expected add, remove or replace)", op.op)
	}
	if havePath {
		pp, err := parsePatchPath(rt, path)
		if err != nil {
			return op, err
		}
		op.path = pp
	}
	return op, nil
}

// parsePatchPath parses and resolves a PATCH path.
func parsePatchPath(rt *resourceType, text string) (*patchPath, error) {
	s := strings.TrimSpace(text)
	pp := &patchPath{text: s}
	if s == "" {
		return nil, badRequest(scimInvalidPath, "path is empty")
	}
	if _, ext := rt.extension(s); ext != nil {
		pp.extOnly = ext
		return pp, nil
	}
	p := &filterParser{in: s}
	tok := p.pathToken()
	raw, err := parseRawPath(tok)
	if err != nil {
		return nil, badRequest(scimInvalidPath, "path %q: %v", s, err)
	}
	target, err := resolvePath(rt, raw)
	if err != nil {
		return nil, badRequest(scimInvalidPath, "path %q: %v", s, err)
	}
	pp.target = target
	if p.pos < len(s) && s[p.pos] == '[' {
		if raw.sub != "" || !target.attr.multi || target.attr.typ != typeComplex {
			return nil, badRequest(scimInvalidPath, "path %q: value filters apply to multi-valued complex attributes only", s)
		}
		p.pos++
		f, err := p.parse(true)
		if err != nil {
			return nil, badRequest(scimInvalidFilter, "path %q: %v", s, err)
		}
		if p.pos >= len(s) || s[p.pos] != ']' {
			return nil, badRequest(scimInvalidPath, "path %q: missing ']'", s)
		}
		p.pos++
		cf, err := compileElementFilter(target, f)
		if err != nil {
			return nil, badRequest(scimInvalidFilter, "path %q: %v", s, err)
		}
		pp.filter = cf
		if p.pos < len(s) && s[p.pos] == '.' {
			p.pos++
			name := p.pathToken()
			pp.elemSub = target.attr.sub(name)
			if pp.elemSub == nil {
				return nil, badRequest(scimInvalidPath, "path %q: unknown sub-attribute %q of %s", s, name, target.name)
			}
		}
	}
	if p.pos != len(s) {
		return nil, badRequest(scimInvalidPath, "path %q: unexpected %q", s, s[p.pos:])
	}
	return pp, nil
}

// leaf is the attribute definition an operation on pp changes.
func (pp *patchPath) leaf() *attribute {
	switch {
	case pp.elemSub != nil:
		return pp.elemSub
	case pp.extOnly != nil:
		return nil
	}
	return pp.target.leaf()
}

// applyPatch applies ops to the resource map res in order. The result still has to pass
// normalizeResource; applyPatch checks paths, mutability and value shapes.
func applyPatch(rt *resourceType, res map[string]any, ops []patchOp) error {
	for i, op := range ops {
		if err := applyOne(rt, res, op); err != nil {
			var se *scimError
			if errors.As(err, &se) {
				se.detail = fmt.Sprintf("Operations[%d]: %s", i, se.detail)
			}
			return err
		}
	}
	return nil
}

func applyOne(rt *resourceType, res map[string]any, op patchOp) error {
	if op.path == nil { // add or replace with an object of attributes
		obj, ok := op.value.(map[string]any)
		if !ok {
			return badRequest(scimInvalidValue, "%s without a path needs an object of attributes as value", op.op)
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) { // sorted: deterministic errors
			v := obj[k]
			if strings.EqualFold(k, "schemas") {
				continue
			}
			o := op.op
			if v == nil {
				o = "remove" // null means unassigned (RFC 7643 §2.5)
			}
			if _, ext := rt.extension(k); ext != nil {
				if err := applyOne(rt, res, patchOp{op: o, path: &patchPath{text: ext.id, extOnly: ext}, value: v, hasValue: v != nil}); err != nil {
					return err
				}
				continue
			}
			raw, err := parseRawPath(k)
			if err != nil {
				return badRequest(scimInvalidSyntax, "value: %v", err)
			}
			target, err := resolvePath(rt, raw)
			if err != nil {
				return badRequest(scimInvalidSyntax, "value: %v", err)
			}
			if err := applyOne(rt, res, patchOp{op: o, path: &patchPath{text: k, target: target}, value: v, hasValue: v != nil}); err != nil {
				return err
			}
		}
		return nil
	}
	pp := op.path
	if pp.extOnly != nil {
		return applyExtension(rt, res, op)
	}
	if err := checkMutability(pp, op, res); err != nil {
		return err
	}
	if op.op == "replace" && op.value == nil { // null: unassign (RFC 7643 §2.5)
		op = patchOp{op: "remove", path: pp}
	}
	t := pp.target
	holder := t.container(res, op.op != "remove")
	if holder == nil {
		return nil // removing from an absent extension
	}
	key, exists := lookupKey(holder, t.name, t.attr == schemalessAttr)
	if !exists {
		key = t.name
	}
	switch {
	case pp.filter != nil:
		return applyFiltered(holder, key, pp, op)
	case t.sub != nil:
		return applySub(holder, key, pp, op)
	}
	switch op.op {
	case "remove":
		if !op.hasValue || !t.attr.multi {
			delete(holder, key)
			break
		}
		vals, err := preNormalize(t.attr, op.value, pp.text, true)
		if err != nil {
			return err
		}
		removeValues(holder, key, t.attr, vals.([]any))
	case "add", "replace":
		v, err := preNormalize(t.attr, op.value, pp.text, true)
		if err != nil {
			return err
		}
		switch {
		case t.attr.multi && op.op == "add":
			holder[key] = mergeValues(t.attr, holder[key], v.([]any))
		case t.attr.multi:
			holder[key] = v
		case t.attr.typ == typeComplex && exists: // merge sub-attributes (RFC 7644 §3.5.2.1, §3.5.2.3)
			cur, _ := holder[key].(map[string]any)
			if cur == nil {
				cur = map[string]any{}
			}
			for sk, sv := range v.(map[string]any) {
				cur[sk] = sv
			}
			holder[key] = cur
		default:
			holder[key] = v
		}
	}
	dropEmptyExtension(res, t)
	return nil
}

// applyExtension handles a path that is an extension URN: add and replace set each attribute of
// the value object, remove deletes the whole extension object.
func applyExtension(rt *resourceType, res map[string]any, op patchOp) error {
	ext := op.path.extOnly
	if op.op == "remove" || op.value == nil {
		delete(res, ext.id)
		return nil
	}
	obj, ok := op.value.(map[string]any)
	if !ok {
		return badRequest(scimInvalidValue, "the value for extension %q must be an object", ext.id)
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		o := op.op
		if v == nil {
			o = "remove"
		}
		var target attrPath
		if ext.schemaless {
			if !isAttrName(k) {
				return badRequest(scimInvalidSyntax, "invalid attribute name %q in %s", k, ext.id)
			}
			target = attrPath{ext: ext, attr: schemalessAttr, name: k}
		} else {
			a := ext.attr(k)
			if a == nil {
				return badRequest(scimInvalidSyntax, "unknown attribute %q of %s", k, ext.id)
			}
			target = attrPath{ext: ext, attr: a, name: a.name}
		}
		if err := applyOne(rt, res, patchOp{op: o, path: &patchPath{text: ext.id + ":" + k, target: target}, value: v, hasValue: v != nil}); err != nil {
			return err
		}
	}
	return nil
}

// checkMutability rejects operations on readOnly attributes, and operations that would change
// an immutable attribute that already has a value; adding elements to a multi-valued attribute
// whose sub-attributes are immutable (Group members) is allowed (RFC 7644 §3.5.2).
func checkMutability(pp *patchPath, op patchOp, res map[string]any) error {
	leaf, top := pp.leaf(), pp.target.attr
	if top.mutability == mutReadOnly || leaf.mutability == mutReadOnly {
		return badRequest(scimMutability, "attribute %q is readOnly", pp.text)
	}
	if _, exists := pp.target.topValue(res); !exists {
		return nil
	}
	if top.mutability == mutImmutable && !(op.op == "add" && top.multi) {
		return badRequest(scimMutability, "attribute %q is immutable", pp.text)
	}
	if leaf != top && leaf.mutability == mutImmutable {
		return badRequest(scimMutability, "attribute %q is immutable", pp.text)
	}
	return nil
}

// applySub handles attr.sub without a filter: only single-valued complex attributes, except
// that remove may strip a sub-attribute from every element.
func applySub(holder map[string]any, key string, pp *patchPath, op patchOp) error {
	t := pp.target
	if t.attr.multi && op.op != "remove" {
		return badRequest(scimInvalidPath, "path %q: select elements of %s with a value filter, e.g. %s[type eq \"work\"].%s", pp.text, t.name, t.name, t.subName)
	}
	if op.op == "remove" {
		if v, ok := holder[key]; ok {
			if kept := dropSubs(v, []string{t.subName}); kept == nil {
				delete(holder, key)
			} else {
				holder[key] = kept
			}
		}
		return nil
	}
	v, err := preNormalize(t.sub, op.value, pp.text, false)
	if err != nil {
		return err
	}
	cur, _ := holder[key].(map[string]any)
	if cur == nil {
		cur = map[string]any{}
		holder[key] = cur
	}
	cur[t.subName] = v
	return nil
}

// applyFiltered handles attr[filter] and attr[filter].sub.
func applyFiltered(holder map[string]any, key string, pp *patchPath, op patchOp) error {
	t := pp.target
	arr, _ := holder[key].([]any)
	var matched []int
	for i, e := range arr {
		if m, ok := e.(map[string]any); ok && pp.filter.matches(m) {
			matched = append(matched, i)
		}
	}
	if op.op == "remove" {
		if len(matched) == 0 {
			return nil // nothing to remove: a no-op keeps retries idempotent
		}
		kept := arr[:0:0]
		for i, e := range arr {
			if !containsInt(matched, i) {
				kept = append(kept, e)
				continue
			}
			if pp.elemSub != nil {
				if rest := dropSubs(e, []string{pp.elemSub.name}); rest != nil {
					kept = append(kept, rest)
				}
			}
		}
		if len(kept) == 0 {
			delete(holder, key)
		} else {
			holder[key] = kept
		}
		return nil
	}
	if len(matched) == 0 {
		return newSCIMError(400, scimNoTarget, "path %q matches no value of %s", pp.text, t.name)
	}
	if pp.elemSub != nil {
		v, err := preNormalize(pp.elemSub, op.value, pp.text, false)
		if err != nil {
			return err
		}
		for _, i := range matched {
			elem := arr[i].(map[string]any)
			elem[pp.elemSub.name] = v
			if pp.elemSub.name == "primary" && v == true {
				clearOtherPrimaries(arr, i)
			}
		}
		return nil
	}
	v, err := preNormalize(t.attr, op.value, pp.text, false)
	if err != nil {
		return err
	}
	obj := v.(map[string]any)
	for _, i := range matched {
		elem := arr[i].(map[string]any)
		if op.op == "replace" {
			arr[i] = cloneMap(obj)
		} else {
			for sk, sv := range obj {
				elem[sk] = sv
			}
		}
		if obj["primary"] == true {
			clearOtherPrimaries(arr, i)
		}
	}
	return nil
}

// preNormalize validates an operation value for attribute a. With asArray, values of a
// multi-valued attribute come back as a []any (a single value is wrapped); otherwise one value
// (an element of a multi-valued attribute) is expected.
func preNormalize(a *attribute, v any, path string, asArray bool) (any, error) {
	if a == schemalessAttr {
		return v, nil
	}
	if a.multi && asArray {
		if _, ok := v.([]any); !ok {
			v = []any{v}
		}
		nv, present, err := normalizeValue(a, v, path, modePatched)
		if err != nil {
			return nil, err
		}
		if !present {
			return []any{}, nil
		}
		return nv, nil
	}
	nv, present, err := normalizeSingle(a, v, path, modePatched)
	if err != nil {
		return nil, err
	}
	if !present {
		return nil, badRequest(scimInvalidValue, "%s: value is empty", path)
	}
	return nv, nil
}

// mergeValues appends the values of add to cur that are not already present (RFC 7644
// §3.5.2.1: adding a value that exists is a no-op). A new primary value clears the others.
func mergeValues(a *attribute, cur any, add []any) []any {
	arr, _ := cur.([]any)
	for _, v := range add {
		if containsValue(a, arr, v) {
			continue
		}
		arr = append(arr, v)
		if m, ok := v.(map[string]any); ok && m["primary"] == true {
			clearOtherPrimaries(arr, len(arr)-1)
		}
	}
	return arr
}

// removeValues removes from a multi-valued attribute the elements equal to the given values
// (remove with a value, as many clients send for group members).
func removeValues(holder map[string]any, key string, a *attribute, vals []any) {
	arr, _ := holder[key].([]any)
	kept := arr[:0:0]
	for _, e := range arr {
		if !containsValue(a, vals, e) {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		delete(holder, key)
	} else {
		holder[key] = kept
	}
}

// containsValue reports whether arr holds a value equal to v.
func containsValue(a *attribute, arr []any, v any) bool {
	for _, e := range arr {
		if valuesEqual(a, e, v) {
			return true
		}
	}
	return false
}

// valuesEqual compares two values of attribute a. Complex values with a "value" sub-attribute
// are equal when their value (and type, when both have one) are; Group members by value alone.
// Other complex values compare all sub-attributes but display and primary.
func valuesEqual(a *attribute, x, y any) bool {
	mx, okx := x.(map[string]any)
	my, oky := y.(map[string]any)
	if !okx || !oky {
		return scalarEqual(a, x, y)
	}
	if vs := a.sub("value"); vs != nil {
		if _, ok := mx["value"]; ok {
			if !scalarEqual(vs, mx["value"], lookupAny(my, "value")) {
				return false
			}
			if a.name == "members" {
				return true
			}
			tx, hx := mx["type"]
			ty, hy := lookupAnyOK(my, "type")
			return !hx || !hy || scalarEqual(a.sub("type"), tx, ty)
		}
	}
	keys := map[string]bool{}
	for k := range mx {
		keys[k] = true
	}
	for k := range my {
		keys[k] = true
	}
	for k := range keys {
		if k == "display" || k == "primary" {
			continue
		}
		sub := a.sub(k)
		if sub == nil || !scalarEqual(sub, mx[k], lookupAny(my, k)) {
			return false
		}
	}
	return true
}

func lookupAny(m map[string]any, k string) any {
	v, _ := lookupAnyOK(m, k)
	return v
}

func lookupAnyOK(m map[string]any, k string) (any, bool) {
	if key, ok := lookupKey(m, k, true); ok {
		return m[key], true
	}
	return nil, false
}

func scalarEqual(a *attribute, x, y any) bool {
	sx, okx := x.(string)
	sy, oky := y.(string)
	if okx && oky {
		if a != nil && a.caseExact {
			return sx == sy
		}
		return foldCase(sx) == foldCase(sy)
	}
	return scalarText(x) == scalarText(y) && jsonKind(x) == jsonKind(y)
}

func clearOtherPrimaries(arr []any, keep int) {
	for i, e := range arr {
		if m, ok := e.(map[string]any); ok && i != keep && m["primary"] == true {
			m["primary"] = false
		}
	}
}

func dropEmptyExtension(res map[string]any, t attrPath) {
	if t.ext == nil {
		return
	}
	if m, ok := res[t.ext.id].(map[string]any); ok && len(m) == 0 {
		delete(res, t.ext.id)
	}
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
