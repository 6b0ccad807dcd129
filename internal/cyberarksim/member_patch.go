package cyberarksim

import "strings"

// patchMembersFast applies a Group PATCH made only of membership changes (add to "members",
// remove from "members" by value or by a members[value eq "..."] filter) directly on the
// member list, in time proportional to the members named rather than the group's size. Any
// other PATCH reports done=false and takes the general path, which gives the same results.
func (s *Server) patchMembersFast(c *collection, rec *record, ops []patchOp) (done bool, err error) {
	if c.rt != groupType {
		return false, nil
	}
	membersAttr := groupSchema.attr("members")
	type change struct {
		add  bool
		refs []memberRef
	}
	changes := make([]change, 0, len(ops))
	for _, op := range ops {
		var value any
		switch {
		case op.path == nil && op.op == "add":
			obj, ok := op.value.(map[string]any)
			if !ok || len(obj) != 1 {
				return false, nil
			}
			for k, v := range obj {
				if !strings.EqualFold(k, "members") {
					return false, nil
				}
				value = v
			}
		case op.path == nil || op.path.extOnly != nil || op.path.target.name != "members" || op.path.elemSub != nil:
			return false, nil
		case op.path.filter != nil:
			id, ok := memberValueFilter(op.path.filter)
			if op.op != "remove" || !ok {
				return false, nil
			}
			changes = append(changes, change{refs: []memberRef{{value: id}}})
			continue
		case op.op == "add" || op.op == "remove" && op.hasValue:
			value = op.value
		default:
			return false, nil
		}
		v, err := preNormalize(membersAttr, value, "members", true)
		if err != nil {
			return true, err
		}
		refs, err := normalizeMembers(v)
		if err != nil {
			return true, err
		}
		changes = append(changes, change{add: op.op == "add", refs: refs})
	}
	// Work out the net effect first, so nothing changes when a member to add does not exist.
	before := map[string]bool{} // membership of each named id before the PATCH
	after := map[string]bool{}
	var types map[string]string
	for _, ch := range changes {
		for _, ref := range ch.refs {
			if _, seen := before[ref.value]; !seen {
				before[ref.value] = rec.members.has(ref.value)
				after[ref.value] = before[ref.value]
			}
			after[ref.value] = ch.add
			if ch.add && ref.typ != "" {
				if types == nil {
					types = map[string]string{}
				}
				types[ref.value] = ref.typ
			}
		}
	}
	var added, removed []string
	listed := make(map[string]bool, len(after))
	for _, ch := range changes { // in request order, for a deterministic member order
		for _, ref := range ch.refs {
			id := ref.value
			if after[id] == before[id] || listed[id] {
				continue
			}
			listed[id] = true
			if after[id] {
				added = append(added, id)
			} else {
				removed = append(removed, id)
			}
		}
	}
	refs := make([]memberRef, len(added))
	for i, id := range added {
		refs[i] = memberRef{value: id, typ: types[id]}
	}
	if _, err := s.prepareGroupMembers(rec.id, refs); err != nil {
		return true, err
	}
	for _, id := range added {
		rec.members.add(id)
		s.db.linkMember(rec.id, id)
	}
	for _, id := range removed {
		rec.members.remove(id)
		s.db.unlinkMember(rec.id, id)
	}
	if len(added)+len(removed) > 0 {
		s.touch(rec)
		s.logMembers(c, rec, "PATCH", added, removed)
	}
	return true, nil
}

// memberValueFilter recognises the filter value eq "<id>" and returns the id.
func memberValueFilter(f *compiledFilter) (string, bool) {
	if len(f.terms) != 1 {
		return "", false
	}
	t := f.terms[0]
	if t.path.name != "value" || t.op != opEq || t.kind != kindString {
		return "", false
	}
	return t.needle, true
}
