package reconcile

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 7 item 1: "A rename leaves the old key pointing at the renamed object; a later delete
// removes the wrong user." The plan reports the key change so that the pipeline can move the
// key → id cache entry.

const renOld = `{"id":"u7","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ren.old@example.com","title":"Clerk"}`

func rekey(oldName, newName string) *Rekey {
	return &Rekey{Resource: "Users", Old: []Match{{Attr: "userName", Value: oldName}}, New: []Match{{Attr: "userName", Value: newName}}}
}

func assertRekey(want *Rekey) func(t *testing.T, p *Plan, _ *memoryReader) {
	return func(t *testing.T, p *Plan, _ *memoryReader) {
		t.Helper()
		assert.Equal(t, want, p.Rekey)
	}
}

func TestPlanReportsRekey(t *testing.T) {
	t.Parallel()
	cyberark := exampleSource(t, "cyberark.yaml")
	store := map[string][]string{"Users": {renOld}}
	renameTo := func(op Operation, name string, attrs map[string]any) Change {
		if attrs == nil {
			attrs = map[string]any{}
		}
		attrs["userName"] = name
		return change(op, "ren.old@example.com", attrs)
	}
	reconciledPut := plannerModel("{ReconcileOnUpdate: true, UpdateMethod: put}", "")
	cases := []planCase{
		{
			name:   "an Update of userName renames: PATCH replace, and the plan reports old and new key",
			model:  cyberark,
			store:  store,
			change: renameTo(OpUpdate, "ren.new@example.com", nil),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"userName","value":"ren.new@example.com"}`)}},
			notes:  []string{`rename: the key changes from userName eq "ren.old@example.com" to userName eq "ren.new@example.com"`},
			check: func(t *testing.T, p *Plan, r *memoryReader) {
				require.Equal(t, rekey("ren.old@example.com", "ren.new@example.com"), p.Rekey)
				// Old and New are the lookups that find the object before and after the requests.
				r.apply(t, p.Requests[0])
				id, found, err := r.Resolve(context.Background(), p.Rekey.Resource, p.Rekey.New)
				require.NoError(t, err)
				assert.True(t, found)
				assert.Equal(t, p.ObjectID, id)
				_, found, err = r.Resolve(context.Background(), p.Rekey.Resource, p.Rekey.Old)
				require.NoError(t, err)
				assert.False(t, found)
			},
		},
		{
			name:   "an Update that doesn't touch userName has no Rekey",
			model:  cyberark,
			store:  store,
			change: change(OpUpdate, "ren.old@example.com", map[string]any{"title": "Manager"}),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"title","value":"Manager"}`)}},
			check:  assertRekey(nil),
		},
		{
			name:   "userName equal to the key is no rename",
			model:  cyberark,
			store:  store,
			change: renameTo(OpUpdate, "ren.old@example.com", map[string]any{"title": "Manager"}),
			want: []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"userName","value":"ren.old@example.com"},
				{"op":"replace","path":"title","value":"Manager"}`)}},
			check: assertRekey(nil),
		},
		{
			name:   "a change of case only is reported too (the comparison is exact)",
			model:  cyberark,
			store:  store,
			change: renameTo(OpUpdate, "Ren.Old@example.com", nil),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"userName","value":"Ren.Old@example.com"}`)}},
			check:  assertRekey(rekey("ren.old@example.com", "Ren.Old@example.com")),
		},
		{
			name:   "an Upsert of an existing user renames",
			model:  cyberark,
			store:  store,
			change: renameTo(OpUpsert, "ren.new@example.com", nil),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"userName","value":"ren.new@example.com"}`)}},
			check:  assertRekey(rekey("ren.old@example.com", "ren.new@example.com")),
		},
		{
			name:    "a Create whose userName differs from its key is still refused",
			model:   cyberark,
			store:   store,
			change:  renameTo(OpCreate, "ren.new@example.com", nil),
			wantErr: ErrInvalidChange,
			errText: []string{`key "userName" is "ren.old@example.com" but attribute "userName" is "ren.new@example.com"`},
		},
		{
			name:   "a Create converging an existing user renames when its mappings carry userName (default mappings)",
			model:  plannerModel("", ""),
			store:  store,
			change: func() Change { c := renameTo(OpCreate, "ren.new@example.com", nil); c.ResolveFirst = true; return c }(),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"replace","path":"userName","value":"ren.new@example.com"}`)}},
			check:  assertRekey(rekey("ren.old@example.com", "ren.new@example.com")),
		},
		{
			name:   "an AddAssignment whose default add PATCHes userName renames (add replaces a single value)",
			model:  plannerModel("", ""),
			store:  store,
			change: renameTo(OpAddAssignment, "ren.new@example.com", nil),
			want:   []wantRequest{{"PATCH", "Users/u7", patchBody(`{"op":"add","path":"userName","value":"ren.new@example.com"}`)}},
			check:  assertRekey(rekey("ren.old@example.com", "ren.new@example.com")),
		},
		{
			name:   "a reconciled PUT with modify renames",
			model:  reconciledPut,
			store:  store,
			change: renameTo(OpUpdate, "ren.new@example.com", nil),
			want: []wantRequest{{"PUT", "Users/u7", `{"id":"u7","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
				"userName":"ren.new@example.com","title":"Clerk"}`}},
			check: assertRekey(rekey("ren.old@example.com", "ren.new@example.com")),
		},
		{
			name:  "add merged into the current object keeps the existing userName: no rename",
			model: reconciledPut,
			store: store,
			change: func() Change {
				c := renameTo(OpUpdate, "ren.new@example.com", map[string]any{"title": "Manager"})
				c.Actions = map[string]string{"userName": "add"}
				return c
			}(),
			want: []wantRequest{{"PUT", "Users/u7", `{"id":"u7","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
				"userName":"ren.old@example.com","title":"Manager"}`}},
			check: assertRekey(nil),
		},
		{
			name: "several keys: the renamed one changes, the others are kept",
			model: `objects:
  - name: Member
    resource: Members
    properties:
      - {name: container.name, isKey: true}
      - {name: user.display, isKey: true}
      - {name: note}
`,
			store: map[string][]string{"Members": {`{"id":"m1","container":{"name":"Payroll"},"user":{"display":"ren.old"}}`}},
			change: Change{Object: "Member", Operation: OpUpdate, Key: map[string]any{"container.name": "Payroll", "user.display": "ren.old"},
				Attributes: map[string]any{"user.display": "ren.new"}},
			want: []wantRequest{{"PATCH", "Members/m1", patchBody(`{"op":"replace","path":"user.display","value":"ren.new"}`)}},
			check: assertRekey(&Rekey{Resource: "Members",
				Old: []Match{{Attr: "container.name", Value: "Payroll"}, {Attr: "user.display", Value: "ren.old"}},
				New: []Match{{Attr: "container.name", Value: "Payroll"}, {Attr: "user.display", Value: "ren.new"}}}),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			runPlanCase(t, c)
		})
	}
}

// TestRekeyWhenTheObjectAlreadyHasTheNewKey: a redelivered rename whose old key still resolves
// (from the pipeline's cache) to an object that already carries the new name sends nothing and
// still reports the Rekey, so the stale cache entry is moved.
func TestRekeyWhenTheObjectAlreadyHasTheNewKey(t *testing.T) {
	t.Parallel()
	m, err := ParseModel("m.yaml", []byte(plannerModel("{ReconcileOnUpdate: true, UpdateMethod: put}", "")))
	require.NoError(t, err)
	r := craftedReader{
		resolve: func(_ string, match []Match) (string, bool, error) {
			return "u7", match[0].Value == "ren.old@example.com", nil
		},
		get: func(string, string) (map[string]any, error) {
			return map[string]any{"id": "u7", "userName": "ren.new@example.com", "meta": map[string]any{"version": "2"}}, nil
		},
	}
	p, err := NewPlanner(m, Options{}).Plan(context.Background(), r,
		change(OpUpdate, "ren.old@example.com", map[string]any{"userName": "ren.new@example.com"}))
	require.NoError(t, err)
	assert.Empty(t, p.Requests)
	assert.Equal(t, "already in the desired state", p.Skipped)
	assert.Equal(t, rekey("ren.old@example.com", "ren.new@example.com"), p.Rekey)
}
