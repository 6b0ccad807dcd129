package reconcile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// rule is one task-mapping rule of a change, ready to merge into a document or to become PATCH
// operations: "Each task mapping rule is converted to a JSON property (or array entry)."
type rule struct {
	prop       *Property
	action     Action
	multivalue bool
	values     []any  // canonical values; single-valued properties have exactly one (nil: no value)
	origin     string // e.g. task mapping "name.givenName" (modify, Update)
}

// droppedValue marks a reference value that was dropped: a remove of a member that doesn't exist,
// or a value left out for a follow-up (Change.DeferUnresolved).
type droppedValue struct{}

// applies: the rule has something to write (not every value dropped).
func (r *rule) applies() bool {
	if len(r.values) == 0 {
		return true
	}
	return slices.ContainsFunc(r.values, func(v any) bool { _, dropped := v.(droppedValue); return !dropped })
}

// step is a unit of the merge: one rule, or the multivalue rules of one parent array grouped into
// elements ("they create an entry based on all the multivalue fields that have the same parent path").
type step struct {
	action Action
	rules  []*rule
}

func (s step) path() attrPath { return s.rules[0].prop.path }

func (s step) origins() []string {
	out := make([]string, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.origin
	}
	return out
}

func (s step) origin() string {
	if len(s.rules) == 1 {
		return s.rules[0].origin
	}
	parts := make([]string, len(s.rules))
	for i, r := range s.rules {
		parts[i] = r.origin
	}
	return strings.Join(parts, " + ")
}

// groupSteps puts multivalue rules with the same parent array and action together, at the position
// of the first of them; every other rule is its own step.
func groupSteps(rules []*rule) []step {
	var steps []step
	index := map[string]int{}
	for _, r := range rules {
		if r.multivalue && r.prop.path.isArray() && !r.prop.path.primitive() {
			k := string(r.action) + "\x01" + r.prop.path.groupKey()
			if i, ok := index[k]; ok {
				steps[i].rules = append(steps[i].rules, r)
				continue
			}
			index[k] = len(steps)
		}
		steps = append(steps, step{action: r.action, rules: []*rule{r}})
	}
	return steps
}

// element is one array element a step adds or removes, with the rule behind each of its fields.
type element struct {
	value   any
	sources []provEntry // pointers relative to the element
}

// elements builds the array elements of an array step. A group zips its rules' values by index; a
// rule with a single value applies it to every element.
func (s step) elements() ([]element, error) {
	p := s.path()
	n := 0
	for _, r := range s.rules {
		n = max(n, len(r.values))
	}
	for _, r := range s.rules {
		if len(r.values) != n && len(r.values) > 1 {
			return nil, fmt.Errorf("%w: multivalue properties of %s have different numbers of values (%s)", ErrInvalidChange, p.scimArray(), countValues(s.rules))
		}
	}
	out := make([]element, 0, n)
next:
	for i := range n {
		var el element
		fields := map[string]any{}
		for _, r := range s.rules {
			if len(r.values) == 0 {
				continue
			}
			v := r.values[min(i, len(r.values)-1)]
			switch v.(type) {
			case droppedValue:
				continue next
			case nil:
				if s.action == ActionRemove {
					return nil, fmt.Errorf("%w: remove on %q needs a value to match array elements", ErrInvalidChange, r.prop.name)
				}
				continue
			}
			rel := r.prop.path.elemSegs()
			if len(rel) == 0 {
				el.value = cloneJSON(v)
				el.sources = append(el.sources, provEntry{rule: r.origin})
				continue
			}
			setNested(fields, rel, cloneJSON(v))
			el.sources = append(el.sources, provEntry{ptr: rel, rule: r.origin})
		}
		if !p.primitive() {
			if len(fields) == 0 {
				continue
			}
			el.value = fields
		}
		out = append(out, el)
	}
	return out, nil
}

func countValues(rules []*rule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = fmt.Sprintf("%s has %d", r.prop.name, len(r.values))
	}
	return strings.Join(parts, ", ")
}

func setNested(m map[string]any, segs []string, v any) {
	for _, s := range segs[:len(segs)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[segs[len(segs)-1]] = v
}

// provEntry says which rule produced the value at ptr.
type provEntry struct {
	ptr  []string
	rule string
}

// document is a request body (or the current object) being built, with the rule behind each part.
type document struct {
	root    map[string]any
	prov    []provEntry // what produced each part of root (pointers into root as it is now)
	touched []provEntry // every effective change, removals included (for PATCH diff sources)
	removed []string    // what remove rules took out, for plan notes
}

func newDocument(root map[string]any, origin string) *document {
	d := &document{root: root}
	if origin != "" {
		d.prov = append(d.prov, provEntry{rule: origin})
	}
	return d
}

func hasPrefix(ptr, prefix []string) bool {
	return len(ptr) >= len(prefix) && slices.Equal(ptr[:len(prefix)], prefix)
}

func (d *document) provSet(ptr []string, rule string) {
	d.provDrop(ptr)
	d.prov = append(d.prov, provEntry{ptr: slices.Clone(ptr), rule: rule})
	d.touched = append(d.touched, provEntry{ptr: slices.Clone(ptr), rule: rule})
}

func (d *document) provDrop(ptr []string) {
	if len(ptr) == 0 {
		return
	}
	d.prov = slices.DeleteFunc(d.prov, func(e provEntry) bool { return hasPrefix(e.ptr, ptr) })
}

// provRemoveIndex follows the removal of element i of the array at arr.
func (d *document) provRemoveIndex(arr []string, i int) {
	d.provDrop(append(slices.Clone(arr), strconv.Itoa(i)))
	for k, e := range d.prov {
		if len(e.ptr) > len(arr) && hasPrefix(e.ptr, arr) {
			if j, err := strconv.Atoi(e.ptr[len(arr)]); err == nil && j > i {
				np := slices.Clone(e.ptr)
				np[len(arr)] = strconv.Itoa(j - 1)
				d.prov[k].ptr = np
			}
		}
	}
}

// object walks segs from the root and returns the object there; with create, missing objects are
// created. A non-object in the way is a model error: the path contradicts the request's shape.
func (d *document) object(segs []string, create bool, prop string) (map[string]any, error) {
	m := d.root
	for i, s := range segs {
		v, ok := m[s]
		if !ok || v == nil {
			if !create {
				return nil, nil
			}
			next := map[string]any{}
			m[s] = next
			m = next
			continue
		}
		next, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: property %q needs an object at %s, the request has %s there", ErrModel, prop, pointer(segs[:i+1]), describe(v))
		}
		m = next
	}
	return m, nil
}

// array returns the array at segs (creating it, and its parents, with create).
func (d *document) array(segs []string, create bool, prop string) (arr []any, parent map[string]any, err error) {
	parent, err = d.object(segs[:len(segs)-1], create, prop)
	if err != nil || parent == nil {
		return nil, nil, err
	}
	key := segs[len(segs)-1]
	v, ok := parent[key]
	if !ok || v == nil {
		if !create {
			return nil, nil, nil
		}
		arr = []any{}
		parent[key] = arr
		return arr, parent, nil
	}
	arr, ok = v.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("%w: property %q needs an array at %s, the request has %s there", ErrModel, prop, pointer(segs), describe(v))
	}
	return arr, parent, nil
}

// set writes v at segs (creating parent objects), replacing what was there.
func (d *document) set(segs []string, v any, origin, prop string) error {
	parent, err := d.object(segs[:len(segs)-1], true, prop)
	if err != nil {
		return err
	}
	parent[segs[len(segs)-1]] = cloneJSON(v)
	d.provSet(segs, origin)
	return nil
}

// ensureSchema adds an extension's schema URN to "schemas" when the body has a schemas list.
func (d *document) ensureSchema(urn, origin string) {
	if urn == "" {
		return
	}
	list, ok := d.root["schemas"].([]any)
	if !ok || slices.ContainsFunc(list, func(v any) bool { s, _ := v.(string); return strings.EqualFold(s, urn) }) {
		return
	}
	d.root["schemas"] = append(list, urn)
	d.provSet([]string{"schemas", strconv.Itoa(len(list))}, "extension schema used by "+origin)
}

// apply merges one step into the document with the seed's semantics (Task Mappings: Addition,
// Modification, Deletion).
func (d *document) apply(s step) error {
	p := s.path()
	r := s.rules[0]
	if !p.isArray() {
		return d.applyObject(r)
	}
	if s.action == ActionModify {
		return fmt.Errorf("%w: modify on %q: modification works only on objects, not on the array", ErrInvalidChange, r.prop.name)
	}
	els, err := s.elements()
	if err != nil {
		return err
	}
	segs := p.arraySegs()
	switch s.action {
	case ActionAdd:
		// "If the parent property is an array, it adds elements to it. ... it does not add duplicates."
		if len(els) == 0 {
			return nil
		}
		arr, parent, err := d.array(segs, true, r.prop.name)
		if err != nil {
			return err
		}
		added := false
		for _, el := range els {
			if slices.ContainsFunc(arr, func(have any) bool { return contains(have, el.value) }) {
				continue
			}
			idx := strconv.Itoa(len(arr))
			arr = append(arr, el.value)
			for _, src := range el.sources {
				d.provSet(append(append(slices.Clone(segs), idx), src.ptr...), src.rule)
			}
			added = true
		}
		parent[segs[len(segs)-1]] = arr
		if added {
			d.ensureSchema(p.urn, s.origin())
		}
	case ActionRemove:
		// "If the parent property is array, it searches for an array element with the property that
		// matches the value. If ... finds the array element, it removes the entire entry."
		arr, parent, err := d.array(segs, false, r.prop.name)
		if err != nil || arr == nil {
			return err
		}
		for _, el := range els {
			for i := 0; i < len(arr); {
				if !contains(arr[i], el.value) {
					i++
					continue
				}
				gone := append(slices.Clone(segs), strconv.Itoa(i))
				d.removed = append(d.removed, fmt.Sprintf("%s removed %s %s", s.origin(), pointer(gone), compactJSON(arr[i])))
				d.touched = append(d.touched, provEntry{ptr: gone, rule: s.origin()})
				arr = slices.Delete(arr, i, i+1)
				d.provRemoveIndex(segs, i)
			}
		}
		parent[segs[len(segs)-1]] = arr
	}
	return nil
}

func (d *document) applyObject(r *rule) error {
	segs := r.prop.path.segs
	key := segs[len(segs)-1]
	v := r.values[0]
	if _, dropped := v.(droppedValue); dropped {
		return nil
	}
	switch r.action {
	case ActionAdd:
		// "If the parent property is an object, it adds the property to this object. The property is
		// only added when there is no property of that name."
		if v == nil {
			return nil
		}
		parent, err := d.object(segs[:len(segs)-1], true, r.prop.name)
		if err != nil {
			return err
		}
		if _, exists := parent[key]; exists {
			return nil
		}
		parent[key] = cloneJSON(v)
		d.provSet(segs, r.origin)
		d.ensureSchema(r.prop.path.urn, r.origin)
	case ActionModify:
		// "searches for a property on the existing structure and modifies it accordingly"; a null
		// value clears the property.
		if v == nil {
			return d.removeProperty(r)
		}
		if err := d.set(segs, v, r.origin, r.prop.name); err != nil {
			return err
		}
		d.ensureSchema(r.prop.path.urn, r.origin)
	case ActionRemove:
		// "If the parent property is an object, it removes the property if it exists in the object."
		return d.removeProperty(r)
	}
	return nil
}

func (d *document) removeProperty(r *rule) error {
	segs := r.prop.path.segs
	parent, err := d.object(segs[:len(segs)-1], false, r.prop.name)
	if err != nil || parent == nil {
		return err
	}
	key := segs[len(segs)-1]
	old, ok := parent[key]
	if !ok {
		return nil
	}
	delete(parent, key)
	d.provDrop(segs)
	d.touched = append(d.touched, provEntry{ptr: slices.Clone(segs), rule: r.origin})
	d.removed = append(d.removed, fmt.Sprintf("%s removed %s %s", r.origin, pointer(segs), compactJSON(old)))
	return nil
}

// sources renders the provenance as JSON pointers into the body.
func (d *document) sources() []Source {
	out := make([]Source, 0, len(d.prov))
	for _, e := range d.prov {
		out = append(out, Source{Pointer: pointer(e.ptr), Rule: e.rule})
	}
	return out
}

// pointer renders tokens as an RFC 6901 JSON pointer.
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
	}
	return b.String()
}

func compactJSON(v any) string {
	b, err := marshalJSON(v)
	if err != nil {
		return describe(v)
	}
	return string(b)
}
