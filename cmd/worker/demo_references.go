package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// demoReferences is what a demo's events say the references should be once every event is done:
// each remaining user's manager (named by userName) and each remaining group's members. The demo
// checks the simulator against it, so that a run whose events all succeeded but left a manager or
// a membership unset fails (issue 7: references all set at the end).
type demoReferences struct {
	users    map[string]bool            // userName → present at the end
	managers map[string]managerRef      // userName → the manager its last event named
	groups   map[string]map[string]bool // displayName → member userNames, for groups present at the end
}

// managerRef is a manager named by an event, and where the SCIM resource keeps it: under the
// extension schema ext ("" for a core attribute).
type managerRef struct {
	ext, userName string
}

const (
	managerSuffix = "manager.value"
	membersAttr   = "members[].value"
)

// expectedReferences replays the valid events of items in file order. It knows the shape of the
// example models: users keyed by userName with a manager.value attribute (core or in an extension
// schema), groups keyed by displayName with members[].value naming users.
func expectedReferences(items []publish.Item) *demoReferences {
	r := &demoReferences{users: map[string]bool{}, managers: map[string]managerRef{}, groups: map[string]map[string]bool{}}
	for _, it := range items {
		if it.Invalid != nil {
			continue
		}
		ev, err := events.Decode(it.Raw)
		if err != nil {
			continue
		}
		d := ev.Data
		switch d.Object {
		case "User":
			r.user(d)
		case "Group":
			r.group(d)
		}
	}
	return r
}

func (r *demoReferences) user(d events.Change) {
	name, _ := d.Key["userName"].(string)
	if name == "" {
		return
	}
	switch d.Operation {
	case events.OpDelete:
		delete(r.users, name)
		delete(r.managers, name)
		for _, members := range r.groups {
			delete(members, name)
		}
		return
	case events.OpCreate, events.OpUpsert:
		r.users[name] = true
	}
	for attr, v := range d.Attributes {
		if !strings.HasSuffix(attr, managerSuffix) {
			continue
		}
		ext := strings.TrimSuffix(strings.TrimSuffix(attr, managerSuffix), ":")
		if m, ok := v.(string); ok && m != "" && d.Actions[attr] != "remove" {
			r.managers[name] = managerRef{ext: ext, userName: m}
		} else {
			delete(r.managers, name)
		}
	}
}

func (r *demoReferences) group(d events.Change) {
	name, _ := d.Key["displayName"].(string)
	if name == "" {
		return
	}
	switch d.Operation {
	case events.OpDelete:
		delete(r.groups, name)
		return
	case events.OpCreate, events.OpUpsert:
		if r.groups[name] == nil {
			r.groups[name] = map[string]bool{}
		}
	}
	members := r.groups[name]
	if members == nil {
		return
	}
	values, _ := d.Attributes[membersAttr].([]any)
	remove := d.Operation == events.OpRemoveAssignment || d.Actions[membersAttr] == "remove"
	for _, v := range values {
		if m, ok := v.(string); ok {
			if remove {
				delete(members, m)
			} else {
				members[m] = true
			}
		}
	}
}

// check compares the simulator's state with the expectation. It returns how many references it
// checked and one line per reference that is not as the events say: a manager that is unset or
// names another user, a membership missing or left over. A manager or member whose own user is
// not in the target at the end (never created, or deleted) is not expected.
func (r *demoReferences) check(st cyberarksim.State) (checked int, problems []string) {
	byName := map[string]map[string]any{}
	nameOf := map[string]string{}
	for _, u := range st.Users {
		name, id := str(u["userName"]), str(u["id"])
		byName[name] = u
		nameOf[id] = name
	}
	var users []string
	for u := range r.managers {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		want := r.managers[u]
		user, mgr := byName[u], byName[want.userName]
		if user == nil || mgr == nil || !r.users[want.userName] {
			continue
		}
		checked++
		got := managerOf(user, want.ext)
		if got != str(mgr["id"]) {
			problems = append(problems, fmt.Sprintf("User %s: manager %s, want %s", u, describeID(got, nameOf), want.userName))
		}
	}
	groups := map[string]map[string]any{}
	for _, g := range st.Groups {
		groups[str(g["displayName"])] = g
	}
	var names []string
	for g := range r.groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		grp := groups[g]
		if grp == nil {
			problems = append(problems, fmt.Sprintf("Group %s: not in the target", g))
			continue
		}
		got := map[string]bool{}
		if ms, ok := grp["members"].([]any); ok {
			for _, m := range ms {
				if mm, ok := m.(map[string]any); ok {
					if name, ok := nameOf[str(mm["value"])]; ok {
						got[name] = true
					}
				}
			}
		}
		var missing, extra []string
		for m := range r.groups[g] {
			if byName[m] == nil {
				continue
			}
			checked++
			if !got[m] {
				missing = append(missing, m)
			}
		}
		for m := range got {
			if !r.groups[g][m] {
				extra = append(extra, m)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing) > 0 {
			problems = append(problems, fmt.Sprintf("Group %s: %d member(s) missing: %s", g, len(missing), abbreviate(missing)))
		}
		if len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("Group %s: %d member(s) no event asked for: %s", g, len(extra), abbreviate(extra)))
		}
	}
	return checked, problems
}

// managerOf reads the manager's id from a SCIM user, core or under the extension schema ext.
func managerOf(u map[string]any, ext string) string {
	holder := u
	if ext != "" {
		holder, _ = u[ext].(map[string]any)
	}
	m, _ := holder["manager"].(map[string]any)
	return str(m["value"])
}

func describeID(id string, nameOf map[string]string) string {
	switch name, ok := nameOf[id]; {
	case id == "":
		return "unset"
	case ok:
		return name
	default:
		return fmt.Sprintf("%s (no such user)", id)
	}
}

// abbreviate lists up to three names and how many more there are.
func abbreviate(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:3], ", "), len(names)-3)
}
