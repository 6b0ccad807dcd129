package reconcile

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 7 item 2: "the object is created at once without the unresolved reference, and the
// reference is set as soon as its target exists"; "The same holds for a group membership naming a
// user created in the same batch."

const managerPath = enterpriseURN + ":manager.value"

// deferred is ch with DeferUnresolved set.
func deferred(ch Change) Change {
	ch.DeferUnresolved = true
	return ch
}

// planOK plans ch and requires success.
func planOK(t *testing.T, m *Model, r Reader, ch Change) *Plan {
	t.Helper()
	p, err := NewPlanner(m, Options{}).Plan(context.Background(), r, ch)
	require.NoError(t, err)
	for _, req := range p.Requests {
		assertSourcesResolve(t, req)
	}
	return p
}

func requireUnresolvedError(t *testing.T, err error, value string) {
	t.Helper()
	var ure *UnresolvedReferenceError
	require.True(t, errors.As(err, &ure), "want *UnresolvedReferenceError, got %v", err)
	assert.Equal(t, value, ure.Match[0].Value)
}

// TestFollowUpSetsAMissingManager: a new hire whose manager is hired later in the same feed.
func TestFollowUpSetsAMissingManager(t *testing.T) {
	t.Parallel()
	for _, model := range []string{"cyberark.yaml", "scim-generic.yaml"} {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			m := loadExample(t, model)
			r := newMemoryReader()
			hire := change(OpCreate, "new.hire@example.com", map[string]any{"title": "Engineer", managerPath: "new.boss@example.com"})

			// DeferUnresolved off: unchanged, the whole Create waits.
			_, err := NewPlanner(m, Options{}).Plan(context.Background(), r, hire)
			requireUnresolvedError(t, err, "new.boss@example.com")

			p := planOK(t, m, r, deferred(hire))
			require.Len(t, p.Requests, 1)
			assert.Equal(t, "POST", p.Requests[0].Method)
			assert.NotContains(t, string(p.Requests[0].Body), "manager", "the user is created without the manager")
			assert.Contains(t, string(p.Requests[0].Body), `"title":"Engineer"`)
			assert.Equal(t, []UnresolvedReference{{Property: managerPath, Resource: "Users",
				Match: []Match{{Attr: "userName", Value: "new.boss@example.com"}}, Value: "new.boss@example.com"}}, p.Unresolved)
			assert.True(t, containsNote(p.Notes, `reference "`+managerPath+`": no Users where userName eq "new.boss@example.com" yet: left out`), "%q", p.Notes)
			r.apply(t, p.Requests[0])

			fu, ok := p.FollowUp()
			require.True(t, ok)
			assert.Equal(t, Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "new.hire@example.com"},
				Attributes: map[string]any{managerPath: "new.boss@example.com"}, ResolveFirst: true, NoCreate: true}, fu)

			// Planned before the manager exists, the follow-up waits (DeferUnresolved is off).
			_, err = NewPlanner(m, Options{}).Plan(context.Background(), r, fu)
			requireUnresolvedError(t, err, "new.boss@example.com")

			bossID := r.add(t, "Users", `{"userName":"new.boss@example.com"}`)
			fp := planOK(t, m, r, fu)
			hireID := fp.ObjectID
			require.NotEmpty(t, hireID)
			assertRequests(t, []wantRequest{{"PATCH", "Users/" + hireID,
				patchBody(`{"op":"replace","path":"` + managerPath + `","value":"` + bossID + `"}`)}}, fp)
			_, more := fp.FollowUp()
			assert.False(t, more)
			r.apply(t, fp.Requests[0])
			got := r.object(t, "Users", hireID)
			assert.Equal(t, map[string]any{"value": bossID}, got[enterpriseURN].(map[string]any)["manager"])
			assert.Equal(t, "Engineer", got["title"])
		})
	}
}

// TestFollowUpAddsAMissingMember: a group naming three members, one of them created later.
func TestFollowUpAddsAMissingMember(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		model string
		op    Operation
	}{{"cyberark.yaml", OpCreate}, {"cyberark.yaml", OpAddAssignment}, {"scim-generic.yaml", OpCreate}, {"scim-generic.yaml", OpAddAssignment}} {
		op := tc.op
		t.Run(tc.model+"/"+string(op), func(t *testing.T) {
			t.Parallel()
			m := loadExample(t, tc.model)
			r := newMemoryReader()
			u1 := r.add(t, "Users", `{"userName":"ann@example.com"}`)
			u2 := r.add(t, "Users", `{"userName":"bob@example.com"}`)
			var gid string
			if op == OpAddAssignment {
				gid = r.add(t, "Groups", `{"displayName":"Admins","members":[]}`)
			}
			ch := groupChange(op, "ann@example.com", "cid@example.com", "bob@example.com")

			_, err := NewPlanner(m, Options{}).Plan(context.Background(), r, ch)
			requireUnresolvedError(t, err, "cid@example.com")

			p := planOK(t, m, r, deferred(ch))
			want := wantRequest{"POST", "Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Admins",
				"members":[{"value":"` + u1 + `"},{"value":"` + u2 + `"}]}`}
			if op == OpAddAssignment {
				want = wantRequest{"PATCH", "Groups/" + gid, patchBody(`{"op":"add","path":"members","value":[{"value":"` + u1 + `"},{"value":"` + u2 + `"}]}`)}
			}
			assertRequests(t, []wantRequest{want}, p)
			assert.Equal(t, []UnresolvedReference{{Property: "members[].value", Resource: "Users",
				Match: []Match{{Attr: "userName", Value: "cid@example.com"}}, Value: "cid@example.com"}}, p.Unresolved)
			r.apply(t, p.Requests[0])
			if gid == "" {
				gid = r.objects["Groups"][0]["id"].(string)
			}

			fu, ok := p.FollowUp()
			require.True(t, ok)
			assert.Equal(t, op, fu.Operation, "the follow-up uses the mappings the first plan used")
			assert.Equal(t, op == OpCreate, fu.ResolveFirst)
			assert.Equal(t, map[string]any{"members[].value": []any{"cid@example.com"}}, fu.Attributes)

			u3 := r.add(t, "Users", `{"userName":"cid@example.com"}`)
			fp := planOK(t, m, r, fu)
			assertRequests(t, []wantRequest{{"PATCH", "Groups/" + gid, patchBody(`{"op":"add","path":"members","value":[{"value":"` + u3 + `"}]}`)}}, fp)
			r.apply(t, fp.Requests[0])
			assert.Equal(t, []any{map[string]any{"value": u1}, map[string]any{"value": u2}, map[string]any{"value": u3}},
				r.object(t, "Groups", gid)["members"], "three members, none twice")
		})
	}
}

func TestDeferUnresolved(t *testing.T) {
	t.Parallel()
	cyberark := exampleSource(t, "cyberark.yaml")
	people := map[string][]string{
		"Users":  {`{"id":"u1","userName":"ann@example.com","title":"Clerk"}`, `{"id":"u2","userName":"bob@example.com"}`},
		"Groups": {`{"id":"g1","displayName":"Admins","members":[{"value":"u2"}]}`},
	}
	followUp := func(want Change) func(t *testing.T, p *Plan, _ *memoryReader) {
		return func(t *testing.T, p *Plan, _ *memoryReader) {
			t.Helper()
			got, ok := p.FollowUp()
			require.True(t, ok)
			assert.Equal(t, want, got)
		}
	}
	cases := []planCase{
		{
			name:    "every member unresolved: no request, the skip says why, and Unresolved lists them",
			model:   cyberark,
			store:   people,
			change:  deferred(groupChange(OpAddAssignment, "cid@example.com", "dan@example.com")),
			skipped: `nothing to send until the referenced objects exist: members[].value "cid@example.com" (no Users where userName eq "cid@example.com"); members[].value "dan@example.com" (no Users where userName eq "dan@example.com") (Plan.FollowUp sets them)`,
			check: func(t *testing.T, p *Plan, r *memoryReader) {
				assert.Len(t, p.Unresolved, 2)
				followUp(Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
					Attributes: map[string]any{"members[].value": []any{"cid@example.com", "dan@example.com"}}, NoCreate: true})(t, p, r)
			},
		},
		{
			name:   "an Update sends what resolves; the follow-up is an Update with the manager alone",
			model:  cyberark,
			store:  people,
			change: deferred(change(OpUpdate, "ann@example.com", map[string]any{"title": "Lead", managerPath: "new.boss@example.com"})),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"title","value":"Lead"}`)}},
			check: followUp(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann@example.com"},
				Attributes: map[string]any{managerPath: "new.boss@example.com"}, NoCreate: true}),
		},
		{
			name:    "an Update of the manager alone: nothing to send yet",
			model:   cyberark,
			store:   people,
			change:  deferred(change(OpUpdate, "ann@example.com", map[string]any{managerPath: "new.boss@example.com"})),
			skipped: `nothing to send until the referenced objects exist: ` + managerPath + ` "new.boss@example.com"`,
		},
		{
			name:   "an Upsert that creates: the follow-up converges with Create's mappings",
			model:  cyberark,
			store:  people,
			change: deferred(change(OpUpsert, "new@example.com", map[string]any{managerPath: "new.boss@example.com"})),
			want: []wantRequest{{"POST", "Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
				"urn:scim:schemas:extension:custom:2.0"],"userName":"new@example.com"}`}},
			check: followUp(Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "new@example.com"},
				Attributes: map[string]any{managerPath: "new.boss@example.com"}, ResolveFirst: true, NoCreate: true}),
		},
		{
			name:   "a rename: the follow-up names the object by its new key",
			model:  cyberark,
			store:  people,
			change: deferred(change(OpUpdate, "ann@example.com", map[string]any{"userName": "ann.b@example.com", managerPath: "new.boss@example.com"})),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"userName","value":"ann.b@example.com"}`)}},
			check: followUp(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann.b@example.com"},
				Attributes: map[string]any{managerPath: "new.boss@example.com"}, NoCreate: true}),
		},
		{
			name:   "a repeated missing member is listed once and carried twice (add never duplicates)",
			model:  cyberark,
			store:  people,
			change: deferred(groupChange(OpAddAssignment, "cid@example.com", "ann@example.com", "cid@example.com")),
			want:   []wantRequest{{"PATCH", "Groups/g1", patchBody(`{"op":"add","path":"members","value":[{"value":"u1"}]}`)}},
			check: func(t *testing.T, p *Plan, r *memoryReader) {
				assert.Len(t, p.Unresolved, 1)
				followUp(Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
					Attributes: map[string]any{"members[].value": []any{"cid@example.com", "cid@example.com"}}, NoCreate: true})(t, p, r)
			},
		},
		{
			name:    "remove is unaffected: a member that names nothing is already absent, no follow-up",
			model:   cyberark,
			store:   people,
			change:  deferred(groupChange(OpRemoveAssignment, "cid@example.com")),
			skipped: `nothing to change: members[].value "cid@example.com" is already absent`,
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Empty(t, p.Unresolved)
				_, ok := p.FollowUp()
				assert.False(t, ok)
			},
		},
		{
			name:   "nothing unresolved: no follow-up",
			model:  cyberark,
			store:  people,
			change: deferred(change(OpUpdate, "ann@example.com", map[string]any{managerPath: "bob@example.com"})),
			want:   []wantRequest{{"PATCH", "Users/u1", patchBody(`{"op":"replace","path":"` + managerPath + `","value":"u2"}`)}},
			check: func(t *testing.T, p *Plan, _ *memoryReader) {
				assert.Empty(t, p.Unresolved)
				_, ok := p.FollowUp()
				assert.False(t, ok)
			},
		},
		{
			name:  "an object written by whole PUT: the follow-up repeats the change in full",
			model: plannerModel("{UpdateMethod: put}", ""),
			store: map[string][]string{"Users": {`{"id":"u1","userName":"ann"}`}},
			change: deferred(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann"},
				Attributes: map[string]any{"title": "Lead", "manager": "nobody"}, Actions: map[string]string{"title": "modify"}}),
			want: []wantRequest{{"PUT", "Users/u1", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann","title":"Lead"}`}},
			check: followUp(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann"},
				Attributes: map[string]any{"title": "Lead", "manager": "nobody"}, Actions: map[string]string{"title": "modify"}, NoCreate: true}),
		},
		{
			name:  "an object written by whole PUT, every value unresolved: no keys-only PUT",
			model: plannerModel("{UpdateMethod: put}", ""),
			store: map[string][]string{"Users": {`{"id":"u1","userName":"ann","title":"Clerk"}`}},
			change: deferred(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann"},
				Attributes: map[string]any{"manager": "nobody"}}),
			skipped: `nothing to send until the referenced objects exist: manager "nobody"`,
			check: followUp(Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ann"},
				Attributes: map[string]any{"manager": "nobody"}, NoCreate: true}),
		},
		{
			name: "a multivalue group: the follow-up carries the left-out element's siblings",
			model: `objects:
  - name: Group
    resource: Groups
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value", referenceObject: Users, referenceLookupProperty: userName}
      - {name: "members[].display"}
    taskMappings:
      AddAssignment:
        - {name: "members[].value", action: add, multivalue: true}
        - {name: "members[].display", action: add, multivalue: true}
`,
			store: people,
			change: deferred(Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"cid@example.com", "ann@example.com", "dan@example.com"}, "members[].display": []any{"Cid", "Ann", "Dan"}}}),
			want: []wantRequest{{"PATCH", "Groups/g1", patchBody(`{"op":"add","path":"members","value":[{"value":"u1","display":"Ann"}]}`)}},
			check: followUp(Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"},
				Attributes: map[string]any{"members[].value": []any{"cid@example.com", "dan@example.com"}, "members[].display": []any{"Cid", "Dan"}}, NoCreate: true}),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

// TestNoCreate: a follow-up whose object is gone fails instead of creating a skeleton.
func TestNoCreate(t *testing.T) {
	t.Parallel()
	m := loadExample(t, "cyberark.yaml")
	r := newMemoryReader()
	gone := Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "gone@example.com"},
		Attributes: map[string]any{managerPath: "boss@example.com"}, NoCreate: true}
	for _, ch := range []Change{gone, func() Change { c := gone; c.ResolveFirst = true; return c }(), func() Change { c := gone; c.Operation = OpUpsert; return c }()} {
		_, err := NewPlanner(m, Options{}).Plan(context.Background(), r, ch)
		require.ErrorIs(t, err, ErrObjectNotFound, "%s", ch.Operation)
		assert.Contains(t, err.Error(), `no Users where userName eq "gone@example.com", and the change may not create it`)
	}
	onMissingCreate, err := ParseModel("m.yaml", []byte(plannerModel("", "    onMissing: {Update: create}\n")))
	require.NoError(t, err)
	_, err = NewPlanner(onMissingCreate, Options{}).Plan(context.Background(), r,
		Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "gone"}, Attributes: map[string]any{"title": "x"}, NoCreate: true})
	require.ErrorIs(t, err, ErrObjectNotFound)
	assert.Contains(t, err.Error(), "may not create it")
	// Without NoCreate the same Create creates.
	p, err := NewPlanner(m, Options{}).Plan(context.Background(), r, func() Change { c := gone; c.NoCreate, c.DeferUnresolved = false, true; return c }())
	require.NoError(t, err)
	assert.Equal(t, "POST", p.Requests[0].Method)
}

// TestFollowUpOfAReconciledObject: a safe (read, merge, PUT) whose owner is created later. The
// follow-up merges the owner into the current safe and keeps everything else.
func TestFollowUpOfAReconciledObject(t *testing.T) {
	t.Parallel()
	m := loadExample(t, "cyberark.yaml")
	r := newMemoryReader()
	ch := Change{Object: "Container", Operation: OpCreate, Key: map[string]any{"name": "Payroll"},
		Attributes: map[string]any{"description": "Payroll accounts", "owner.value": "owner@example.com"}, DeferUnresolved: true}
	p := planOK(t, m, r, ch)
	require.Len(t, p.Requests, 1)
	assert.NotContains(t, string(p.Requests[0].Body), "owner")
	r.apply(t, p.Requests[0])
	fu, ok := p.FollowUp()
	require.True(t, ok)
	assert.Equal(t, map[string]any{"owner.value": "owner@example.com"}, fu.Attributes)

	owner := r.add(t, "Users", `{"userName":"owner@example.com"}`)
	fp := planOK(t, m, r, fu)
	require.Len(t, fp.Requests, 1)
	assert.Equal(t, "PUT", fp.Requests[0].Method)
	r.apply(t, fp.Requests[0])
	safe := r.object(t, "Containers", fp.ObjectID)
	assert.Equal(t, map[string]any{"value": owner}, safe["owner"])
	assert.Equal(t, "Payroll accounts", safe["description"])
	assert.Equal(t, "safe", safe["type"], "the template's field survives the follow-up")
}
