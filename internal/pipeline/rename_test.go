package pipeline

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// A rename moves the key → id mapping: a later event of the old key never reaches the renamed user
// (issue 7 item 1: "a later delete removes the wrong user"), on the simulator in both profiles.
func TestRenameNeverLeavesTheOldKeyOnTheRenamedUser(t *testing.T) {
	t.Parallel()
	for _, cyberark := range []bool{false, true} {
		name := map[bool]string{false: "generic", true: "cyberark"}[cyberark]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setupProfile(t, Config{}, kvCache(t), cyberark)
			ctx := context.Background()
			ok := func(res events.Result, what string) {
				t.Helper()
				require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%s: %s %+v", what, res.Outcome.Reason, res.Outcome.Error)
			}
			ok(f.handle(ctx, delivery(1, "Create", "User", user("ren.old@example.com"), map[string]any{"title": "A"})), "create")
			ok(f.handle(ctx, delivery(1, "Update", "User", user("ren.old@example.com"), map[string]any{"title": "B"})), "update") // the id is cached
			ok(f.handle(ctx, delivery(1, "Update", "User", user("ren.old@example.com"), map[string]any{"userName": "ren.new@example.com"})), "rename")
			require.Len(t, f.users(), 1)
			renamed := f.users()[0]
			require.Equal(t, "ren.new@example.com", renamed["userName"])
			writesBefore := f.writes()

			// An update of the old key finds nothing: the renamed user is not touched.
			res := f.handle(ctx, delivery(1, "Update", "User", user("ren.old@example.com"), map[string]any{"title": "C"}))
			assert.Equal(t, events.StatusDeadLettered, res.Outcome.Status, "%+v", res.Outcome)
			if assert.NotNil(t, res.Outcome.Error) {
				assert.Equal(t, "not_found", res.Outcome.Error.Class)
			}
			// A delete of the old key finds nothing either: the renamed user survives.
			res = f.handle(ctx, delivery(1, "Delete", "User", user("ren.old@example.com"), nil))
			assert.Contains(t, []events.Status{events.StatusSkipped, events.StatusDeadLettered}, res.Outcome.Status, "%+v", res.Outcome)
			for _, c := range res.Outcome.Requests {
				assert.NotEqual(t, "DELETE", c.Method, "a delete of the old key reached the target: %+v", c)
			}
			require.Len(t, f.users(), 1, "the renamed user was deleted")
			assert.Equal(t, "B", f.users()[0]["title"], "the renamed user was changed through its old key")
			assert.Equal(t, writesBefore, f.writes(), "no write reached the target for the old key")

			// The new key reaches the user straight from the cache (no lookup).
			res = f.handle(ctx, delivery(1, "Update", "User", user("ren.new@example.com"), map[string]any{"title": "D"}))
			ok(res, "update of the new key")
			assert.Equal(t, renamed["id"], res.Outcome.TargetID)
			for _, c := range res.Outcome.Requests {
				assert.NotEqual(t, "GET", c.Method, "the rename recorded the new key → id: %+v", c)
			}
			assert.Equal(t, "D", f.users()[0]["title"])
		})
	}
}

// A create records its new id, so the next update goes straight to it: no 404 on the old id of a
// user deleted and created again, no lookup (issue 7 item 1, "same family, minor").
func TestCreateRemembersItsNewID(t *testing.T) {
	t.Parallel()
	f := setupWithCache(t, Config{}, kvCache(t))
	ctx := context.Background()
	for _, step := range []struct{ op, title string }{{"Create", ""}, {"Update", "A"}, {"Delete", ""}, {"Create", ""}} {
		var attrs map[string]any
		if step.title != "" {
			attrs = map[string]any{"title": step.title}
		}
		res := f.handle(ctx, delivery(1, step.op, "User", user("ada@x"), attrs))
		require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%s: %+v", step.op, res.Outcome)
	}
	res := f.handle(ctx, delivery(1, "Update", "User", user("ada@x"), map[string]any{"title": "B"}))
	require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome)
	require.Len(t, res.Outcome.Requests, 1, "one PATCH, no lookup, no 404: %+v", res.Outcome.Requests)
	assert.Equal(t, "PATCH", res.Outcome.Requests[0].Method)
	assert.Equal(t, f.users()[0]["id"], res.Outcome.TargetID)
}

// writes counts the write requests (POST, PUT, PATCH, DELETE) the simulator received.
func (f *fixture) writes() int {
	n := 0
	for k, v := range f.sim.Stats().Requests {
		for _, m := range []string{"POST /scim", "PUT ", "PATCH ", "DELETE "} {
			if len(k) >= len(m) && k[:len(m)] == m {
				n += v
			}
		}
	}
	return n
}

// Credentials the target refuses (a rotated client secret) are no fault of the event: the result
// pauses intake instead of dead-lettering it (issue 8: "with a rotated client secret every event
// ended dead_lettered").
func TestRefusedCredentialsPauseInsteadOfDeadLettering(t *testing.T) {
	t.Parallel()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{Generic: true, ClientSecret: "rotated"})
	client, err := provision.New(provision.Config{
		BaseURI: srv.URL + "/scim/v2",
		Auth: auth.Config{Mode: auth.ModeOAuth2, OAuth2: auth.OAuth2Config{
			TokenURL: srv.URL + "/oauth2/token/scimflow", ClientID: "scimflow-client",
			ClientSecret: "scimflow-secret", Scopes: []string{"scim"},
		}},
		Logger: zerolog.Nop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	model, err := reconcile.LoadModel(filepath.Join("..", "..", "deploy", "examples", "models", "scim-generic.yaml"))
	require.NoError(t, err)
	proc := New(reconcile.NewPlanner(model, reconcile.Options{}), client, Config{})
	res := proc.Handle(context.Background(), delivery(1, "Create", "User", user("ada@x"), nil))
	assert.True(t, res.Pause, "%+v", res)
	assert.Empty(t, res.Outcome.Status, "no outcome while paused")
	require.NotNil(t, res.Outcome.Error)
	assert.Equal(t, "systemic", res.Outcome.Error.Class)
	assert.False(t, res.RetryAt.IsZero(), "a probe time")
	assert.Empty(t, sim.Snapshot().Users)
}

// A user renamed behind the worker's back (in the target, by someone else: the key → id cache
// still maps the old key to the renamed user) is never deleted or disabled through the old key: a
// destructive write resolves the key in the target, not the cache (issue 7 item 1: "a cached id
// must never be trusted for a destructive write without evidence it still belongs to the key").
// An ordinary update may still use the cached id; a delete or a disable may not.
func TestDestructiveWriteNeverTrustsACachedID(t *testing.T) {
	t.Parallel()
	for _, cyberark := range []bool{false, true} {
		name := map[bool]string{false: "generic", true: "cyberark"}[cyberark]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setupProfile(t, Config{}, kvCache(t), cyberark)
			ctx := context.Background()
			res := f.handle(ctx, delivery(1, "Create", "User", user("ext.old@example.com"), map[string]any{"title": "A"}))
			require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%+v", res.Outcome)
			id := res.Outcome.TargetID
			require.NotEmpty(t, id)

			// Renamed in the target directly: the worker's cache is not told.
			body := []byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"ext.new@example.com"}]}`)
			_, err := f.proc.target.Do(ctx, provision.Request{Method: "PATCH", Path: "Users/" + id, Body: body})
			require.NoError(t, err)
			require.Equal(t, "ext.new@example.com", f.users()[0]["userName"])
			writesBefore := f.writes()

			for _, step := range []struct {
				op    string
				attrs map[string]any
			}{{"Update", map[string]any{"active": false}}, {"Delete", nil}} {
				res := f.handle(ctx, delivery(1, step.op, "User", user("ext.old@example.com"), step.attrs))
				assert.Contains(t, []events.Status{events.StatusSkipped, events.StatusDeadLettered}, res.Outcome.Status, "%s: %+v", step.op, res.Outcome)
				for _, c := range res.Outcome.Requests {
					assert.Contains(t, []string{"GET"}, c.Method, "%s of the old key wrote to the target: %+v", step.op, c)
				}
			}
			require.Len(t, f.users(), 1, "the renamed user was deleted through its old key")
			assert.NotEqual(t, false, f.users()[0]["active"], "the renamed user was disabled through its old key")
			assert.Equal(t, writesBefore, f.writes(), "no write reached the target for the old key")
		})
	}
}
