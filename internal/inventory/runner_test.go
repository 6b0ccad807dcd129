package inventory

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func user(name string) map[string]any { return map[string]any{"userName": name} }

// Drift created out of band is reported once per change and classified against what the worker
// applied; the worker's own writes are not drift.
func TestDriftIsClassifiedAndReportedOnce(t *testing.T) {
	t.Parallel()
	f := setup(t, Config{})
	for _, n := range []string{"alice@x", "bob@x", "carol@x"} {
		require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": n, "title": "Engineer"}))
	}
	f.apply("Create", "User", user("dave@x"), map[string]any{"title": "Analyst"})
	f.apply("Update", "User", user("bob@x"), map[string]any{"title": "Lead"})
	f.apply("Create", "Group", map[string]any{"displayName": "staff"}, map[string]any{"members[].value": []any{"alice@x"}})

	j := f.run()
	assert.Equal(t, StatusBaseline, j.Status)
	assert.Equal(t, map[string]int{"User": 4, "Group": 1}, j.Objects)
	assert.Zero(t, j.Published, "the first run records, it reports nothing")
	assert.Empty(t, f.drift())

	// Out of band: a hand edit of a user we wrote, a user nobody told us of, a seeded user gone,
	// a user we created gone, a member added by hand.
	f.do("PATCH", "Users/"+f.userID("bob@x"), map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "title", "value": "Boss"}},
	})
	f.do("POST", "Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "erin@x", "password": "Secret-Pass-123!"})
	f.do("DELETE", "Users/"+f.userID("carol@x"), nil)
	f.do("DELETE", "Users/"+f.userID("dave@x"), nil)
	// Ours: an update of a seeded user (adopting it) and a new member of our group.
	f.apply("Update", "User", user("alice@x"), map[string]any{"title": "Director"})
	f.apply("AddAssignment", "Group", map[string]any{"displayName": "staff"}, map[string]any{"members[].value": []any{"bob@x"}})

	j = f.run()
	require.Equal(t, StatusSucceeded, j.Status, "%v", j.Errors)
	assert.Equal(t, map[string]int{"User": 3, "Group": 1}, j.Objects)
	assert.Equal(t, map[string]int{ClassExternalChange: 1, ClassUnmanaged: 2, ClassMissing: 1, ClassOurs: 2}, j.Drift)
	assert.Equal(t, map[string]int{ChangeCreated: 1, ChangeUpdated: 3, ChangeDeleted: 2}, j.Changes)
	assert.Equal(t, 4, j.Published)

	got := f.drift()
	require.Len(t, got, 4)
	byKey := map[string]Drift{}
	for _, d := range got {
		byKey[d.Key["userName"].(string)] = d
	}
	bob := byKey["bob@x"]
	assert.Equal(t, ChangeUpdated, bob.Change)
	assert.Equal(t, ClassExternalChange, bob.Class)
	assert.Equal(t, []string{"title"}, bob.Changed)
	assert.Equal(t, map[string]any{"title": "Boss"}, bob.Attributes)
	require.NotNil(t, bob.LastApplied)
	assert.Equal(t, "Update", bob.LastApplied.Operation)
	assert.Equal(t, ClassUnmanaged, byKey["erin@x"].Class)
	assert.Equal(t, ChangeCreated, byKey["erin@x"].Change)
	assert.Equal(t, ClassUnmanaged, byKey["carol@x"].Class)
	assert.Equal(t, ChangeDeleted, byKey["carol@x"].Change)
	assert.Equal(t, ClassMissing, byKey["dave@x"].Class)
	assert.Equal(t, ChangeDeleted, byKey["dave@x"].Change)

	// Nothing changed since: nothing more is reported.
	j = f.run()
	assert.Equal(t, StatusSucceeded, j.Status)
	assert.Zero(t, j.Published)
	assert.Empty(t, j.Changes)
	assert.Len(t, f.drift(), 4, "each change is reported once")

	jobs, err := f.store.Jobs(f.ctx, 0)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.Equal(t, uint64(3), jobs[0].Run, "newest first")
}
