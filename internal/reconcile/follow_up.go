package reconcile

import (
	"maps"
	"slices"
)

// FollowUp returns the change that sets the reference values this plan left out
// (Change.DeferUnresolved, listed in Unresolved), and false when it left none out. Plan it once
// the referenced objects exist, in order with the object's later events, with DeferUnresolved off:
// a value still missing then fails with *UnresolvedReferenceError and is retried like any other.
//
// The follow-up names the same object, by its new key when this plan renamed it (Rekey). It
// carries only the left-out values (and, for a multivalue group such as emails[].value +
// emails[].type, their siblings at the same positions), with the event's actions for them. Its
// operation uses the same task mappings as this plan, so every value gets the same action (an add
// of members stays an add and never duplicates one):
//
//   - mappings of Create (a Create, an Upsert or onMissing create that created the object, a
//     Create converging it): Create with ResolveFirst, which converges the existing object;
//   - otherwise the operation whose mappings applied: Update (also for an Upsert that updated),
//     AddAssignment, RemoveAssignment, Delete (a soft delete).
//
// NoCreate is set: if the object is gone by then, planning fails with ErrObjectNotFound instead
// of creating it from the follow-up's few attributes. An object written by whole-object PUT
// without reconciliation would lose everything a partial body leaves out, so there the follow-up
// repeats the change's attributes in full.
func (p *Plan) FollowUp() (Change, bool) {
	if p.followUp == nil {
		return Change{}, false
	}
	ch := *p.followUp
	ch.Key, ch.Attributes, ch.Actions = maps.Clone(ch.Key), maps.Clone(ch.Attributes), maps.Clone(ch.Actions)
	return ch, true
}

// deferReference leaves value i of r out of the plan (Change.DeferUnresolved) and records it.
func (run *planRun) deferReference(r *rule, i int, lookup string, ms []Match) {
	if run.deferred == nil {
		run.deferred = map[string][]int{}
	}
	run.deferred[r.prop.name] = append(run.deferred[r.prop.name], i)
	u := UnresolvedReference{Property: r.prop.name, Resource: r.prop.refObject, Match: ms, Value: lookup}
	if slices.ContainsFunc(run.plan.Unresolved, func(have UnresolvedReference) bool {
		return have.Property == u.Property && have.Value == u.Value
	}) {
		return
	}
	run.plan.Unresolved = append(run.plan.Unresolved, u)
	run.note("reference %q: no %s where %s yet: left out (DeferUnresolved); Plan.FollowUp sets it once it exists",
		r.prop.name, r.prop.refObject, describeMatch(ms))
}

// followUp builds the change behind Plan.FollowUp.
func (run *planRun) followUp() *Change {
	ch, obj := run.ch, run.obj
	fu := &Change{Object: ch.Object, Operation: run.mapOp, Key: maps.Clone(ch.Key), ResolveFirst: run.mapOp == OpCreate, NoCreate: true}
	if rk := run.plan.Rekey; rk != nil {
		for i, k := range obj.keys {
			if rk.New[i].Value != rk.Old[i].Value {
				fu.Key[k.name] = ch.Attributes[k.name]
			}
		}
	}
	if run.followUpRepeatsAll() {
		fu.Attributes, fu.Actions = maps.Clone(ch.Attributes), maps.Clone(ch.Actions)
		return fu
	}
	// Positions to carry, per rule: a multivalue group's elements are zipped by position, so
	// every rule of the group carries the positions any of them left out.
	positions := map[*rule][]int{}
	for _, r := range run.mapped {
		idx := run.deferred[r.prop.name]
		if len(idx) == 0 {
			continue
		}
		group := slices.DeleteFunc(slices.Clone(run.mapped), func(s *rule) bool { return s != r && !sameGroup(s, r) })
		if n := maxValues(group); len(r.values) == 1 && n > 1 {
			// One value applies to every element of the group: all of them were left out.
			idx = make([]int, n)
			for i := range idx {
				idx[i] = i
			}
		}
		for _, s := range group {
			positions[s] = append(positions[s], idx...)
		}
	}
	fu.Attributes = map[string]any{}
	for _, r := range run.mapped {
		idx := positions[r]
		raw, inEvent := ch.Attributes[r.prop.name]
		if len(idx) == 0 || !inEvent {
			continue // a mapping constant applies again by itself
		}
		slices.Sort(idx)
		fu.Attributes[r.prop.name] = elementsAt(raw, r.prop, slices.Compact(idx))
		if a, ok := ch.Actions[r.prop.name]; ok {
			if fu.Actions == nil {
				fu.Actions = map[string]string{}
			}
			fu.Actions[r.prop.name] = a
		}
	}
	return fu
}

// followUpRepeatsAll: the follow-up's operation writes the object with a non-reconciled PUT, which
// replaces the whole object with what the change carries.
func (run *planRun) followUpRepeatsAll() bool {
	o := run.obj
	switch run.mapOp {
	case OpAddAssignment, OpRemoveAssignment:
		return false // PATCH, or a reconciled PUT
	case OpDelete:
		return o.updateMethod == updatePut && !o.reconcileOnDelete
	}
	return o.updateMethod == updatePut && !o.reconcileOnUpdate
}

func maxValues(rules []*rule) int {
	n := 0
	for _, r := range rules {
		n = max(n, len(r.values))
	}
	return n
}

// sameGroup: a and b are multivalue rules zipped into the same array elements (groupSteps).
func sameGroup(a, b *rule) bool {
	grouped := func(r *rule) bool { return r.multivalue && r.prop.path.isArray() && !r.prop.path.primitive() }
	return grouped(a) && grouped(b) && a.action == b.action && a.prop.path.groupKey() == b.prop.path.groupKey()
}

// elementsAt picks the event value's elements at the given positions. A single-valued property's
// value, and a multi-valued one given as one value (which applies to every element of its group),
// are kept whole.
func elementsAt(raw any, p *Property, idx []int) any {
	list, ok := raw.([]any)
	if !p.MultiValued() || !ok || len(list) <= 1 {
		return raw
	}
	out := make([]any, 0, len(idx))
	for _, i := range idx {
		if i < len(list) {
			out = append(out, list[i])
		}
	}
	return out
}
