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
	for _, ch := range changes { // validate everything before changing anything
		if !ch.add {
			continue
		}
		var fresh []memberRef
		for _, ref := range ch.refs {
			if !rec.members.has(ref.value) {
				fresh = append(fresh, ref)
			}
		}
		if _, err := s.prepareGroupMembers(rec.id, fresh); err != nil {
			return true, err
		}
	}
	changed := false
	for _, ch := range changes {
		for _, ref := range ch.refs {
			switch {
			case ch.add && rec.members.add(ref.value):
				s.db.linkMember(rec.id, ref.value)
				changed = true
			case !ch.add && rec.members.remove(ref.value):
				s.db.unlinkMember(rec.id, ref.value)
				changed = true
			}
		}
	}
	if changed {
		s.touch(rec)
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
