package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/provision"
)

// approvals is what an operator approved with `worker deletes approve`, by event id: the consume
// loop's flag on the delivery, as the processor reads it (Config.Approved).
type approvals struct{ ids sync.Map }

func (a *approvals) approve(d *events.Delivery)       { a.ids.Store(d.Event.ID, true) }
func (a *approvals) approved(d *events.Delivery) bool { _, ok := a.ids.Load(d.Event.ID); return ok }

// guarded is the simulator fixture with a deletion guard counting on the real connector.
func guarded(t *testing.T, cfg guard.Config) (*fixture, *approvals) {
	t.Helper()
	f := setup(t, Config{})
	g, err := guard.New(cfg, guard.Options{Counter: guard.QueryCounter{Target: f.proc.target.(*provision.Client)}})
	require.NoError(t, err)
	a := &approvals{}
	f.proc.cfg.Guard, f.proc.cfg.Approved = g, a.approved
	return f, a
}

func event(id, op, object string, key, attrs map[string]any) *events.Delivery {
	return &events.Delivery{Attempt: 1, Event: events.NewEvent(id, "/test",
		events.Change{Object: object, Operation: op, Key: key, Attributes: attrs})}
}

func seedUsers(t *testing.T, f *fixture, n int) {
	t.Helper()
	users := make([]map[string]any, n)
	for i := range users {
		users[i] = map[string]any{"userName": fmt.Sprintf("u%03d@x", i), "active": true}
	}
	require.NoError(t, f.sim.Seed("Users", users...))
}

// handleAll runs the deliveries 16 at a time, as the consume loop's lanes do for different keys.
func (f *fixture) handleAll(t *testing.T, ds []*events.Delivery) []events.Result {
	t.Helper()
	out := make([]events.Result, len(ds))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range next {
				out[i] = f.handle(context.Background(), ds[i])
			}
		})
	}
	for i := range ds {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func (f *fixture) deletesSent() int { return f.sim.Stats().Requests["DELETE /scim/v2/Users/{id}"] }

// Issue 8, mass delete: 500 deletes above a guard of 50 send 50 DELETEs and hold 450 with nothing
// sent; once approved, each held one is applied exactly once.
func TestMassDeleteIsHeldBeyondTheGuardUntilApproved(t *testing.T) {
	t.Parallel()
	f, approve := guarded(t, guard.Config{MaxDeletes: 50, MaxPercent: guard.NoLimit})
	seedUsers(t, f, 500)
	ds := make([]*events.Delivery, 500)
	for i := range ds {
		ds[i] = event(fmt.Sprint("del-", i), "Delete", "User", user(fmt.Sprintf("u%03d@x", i)), nil)
	}
	var held []*events.Delivery
	for i, res := range f.handleAll(t, ds) {
		o := res.Outcome
		switch o.Status {
		case events.StatusSucceeded:
		case events.StatusHeld:
			held = append(held, ds[i])
			require.NotNil(t, o.Error)
			assert.Equal(t, ClassHeldDelete, o.Error.Class)
			assert.Regexp(t, `^deletion guard: \d+(st|nd|rd|th) delete in this window exceeds maxDeletes 50$`, o.Reason)
			assert.NotEmpty(t, o.TargetID, "the held object is named")
			for _, c := range o.Requests {
				assert.Equal(t, "GET", c.Method, "a held delete sends nothing; it only looked the user up")
			}
		default:
			t.Fatalf("event %d: %s %s %+v", i, o.Status, o.Reason, o.Error)
		}
	}
	assert.Len(t, held, 450)
	assert.Equal(t, 50, f.deletesSent(), "50 DELETEs, none for the held events")
	assert.Len(t, f.users(), 450)

	// `worker deletes approve --all`: the held events come again, flagged approved.
	again := make([]*events.Delivery, len(held))
	for i, d := range held {
		approve.approve(d)
		again[i] = event(d.Event.ID, "Delete", "User", d.Event.Data.Key, nil)
	}
	for _, res := range f.handleAll(t, again) {
		require.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%s %+v", res.Outcome.Reason, res.Outcome.Error)
	}
	assert.Equal(t, 500, f.deletesSent(), "each approved delete applied once")
	assert.Equal(t, 500, f.sim.Stats().ByEndpointStatus["DELETE /scim/v2/Users/{id}"][204])
	assert.Empty(t, f.users())

	// A later redelivery of an approved event deletes nothing twice.
	res := f.handle(context.Background(), event(held[0].Event.ID, "Delete", "User", held[0].Event.Data.Key, nil))
	assert.Equal(t, events.StatusSkipped, res.Outcome.Status)
	assert.Equal(t, 500, f.deletesSent())
}

// A protected object is rejected at once, with no request at all, approved or not; other changes
// of it go through.
func TestProtectedKeyIsRejectedWithoutARequest(t *testing.T) {
	t.Parallel()
	f, approve := guarded(t, guard.Config{Protected: []guard.Pattern{{Object: "User", Property: "userName", Pattern: "breakglass-*"}}})
	require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": "breakglass-01", "active": true}))
	f.sim.ResetStats()
	del := event("bg-del", "Delete", "User", user("BreakGlass-01"), nil)
	approve.approve(del)
	for _, d := range []*events.Delivery{
		del,
		event("bg-off", "Update", "User", user("breakglass-01"), map[string]any{"active": false}),
	} {
		res := f.handle(context.Background(), d)
		o := res.Outcome
		assert.Equal(t, events.StatusRejected, o.Status)
		assert.True(t, o.Status.Final())
		assert.Contains(t, o.Reason, `matches protected pattern "breakglass-*": never`)
		assert.Empty(t, o.Requests)
	}
	assert.Empty(t, f.sim.Stats().Requests, "not a single request, not even a lookup")
	require.Len(t, f.users(), 1)
	assert.Equal(t, true, f.users()[0]["active"])

	res := f.handle(context.Background(), event("bg-title", "Update", "User", user("breakglass-01"), map[string]any{"title": "on call"}))
	assert.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%s %+v", res.Outcome.Reason, res.Outcome.Error)
}

// Disables (active: false) count with deletes; other updates do not.
func TestDisablesCountWithDeletes(t *testing.T) {
	t.Parallel()
	f, _ := guarded(t, guard.Config{MaxDeletes: 2, MaxPercent: guard.NoLimit})
	seedUsers(t, f, 5)
	ctx := context.Background()
	off := func(id, name string) *events.Delivery {
		return event(id, "Update", "User", user(name), map[string]any{"active": false})
	}
	assert.Equal(t, events.StatusSucceeded, f.handle(ctx, off("1", "u000@x")).Outcome.Status)
	assert.Equal(t, events.StatusSucceeded, f.handle(ctx, event("2", "Update", "User", user("u001@x"), map[string]any{"title": "CTO"})).Outcome.Status, "not a disable")
	assert.Equal(t, events.StatusSucceeded, f.handle(ctx, event("3", "Delete", "User", user("u002@x"), nil)).Outcome.Status)
	res := f.handle(ctx, off("4", "u003@x"))
	assert.Equal(t, events.StatusHeld, res.Outcome.Status)
	assert.Equal(t, "deletion guard: 3rd delete or disable (this one a disable) in this window exceeds maxDeletes 2", res.Outcome.Reason)
	st := f.sim.Stats().Requests
	assert.Equal(t, 2, st["PATCH /scim/v2/Users/{id}"], "the title and the first disable")
	assert.Equal(t, 1, st["DELETE /scim/v2/Users/{id}"])
	for _, u := range f.users() {
		if u["userName"] == "u003@x" {
			assert.Equal(t, true, u["active"], "the held disable was not sent")
		}
	}
}

// A delete or disable whose request fails gives its count back: it does not spend the window.
func TestFailedDisableGivesItsCountBack(t *testing.T) {
	t.Parallel()
	f, _ := guarded(t, guard.Config{MaxDeletes: 1, MaxPercent: guard.NoLimit})
	seedUsers(t, f, 4)
	ctx := context.Background()
	// A rename onto a taken userName, with a disable: the target refuses it (409, uniqueness).
	res := f.handle(ctx, event("1", "Update", "User", user("u000@x"), map[string]any{"userName": "u001@x", "active": false}))
	require.Equal(t, events.StatusDeadLettered, res.Outcome.Status, "%s", res.Outcome.Reason)
	assert.Equal(t, "conflict", res.Outcome.Error.Class)
	assert.Equal(t, events.StatusSucceeded, f.handle(ctx, event("2", "Delete", "User", user("u002@x"), nil)).Outcome.Status,
		"the refused disable left the window's one delete unspent")
	assert.Equal(t, events.StatusHeld, f.handle(ctx, event("3", "Delete", "User", user("u003@x"), nil)).Outcome.Status)
}

// maxPercent counts the target's users once per window: 10% of 30 users is 3 per window; the next
// window allows 3 more.
func TestPercentOfTheTargetHoldsAndTheNextWindowResets(t *testing.T) {
	t.Parallel()
	f, _ := guarded(t, guard.Config{MaxDeletes: guard.NoLimit, MaxPercent: 10})
	seedUsers(t, f, 30)
	ctx := context.Background()
	del := func(i int) events.Result {
		return f.handle(ctx, event(fmt.Sprint("d", i), "Delete", "User", user(fmt.Sprintf("u%03d@x", i)), nil))
	}
	for i := range 3 {
		require.Equal(t, events.StatusSucceeded, del(i).Outcome.Status)
	}
	res := del(3)
	assert.Equal(t, events.StatusHeld, res.Outcome.Status)
	assert.Equal(t, "deletion guard: 4th delete of Users in this window exceeds maxPercent 10% of the 30 Users the target holds (3 per window)", res.Outcome.Reason)
	f.now = f.now.Add(f.proc.cfg.Windows.Next(f.now).Sub(f.now)) // the next sync window
	for i := 3; i < 6; i++ {
		require.Equal(t, events.StatusSucceeded, del(i).Outcome.Status, "27 users now: 3 per window")
	}
	assert.Equal(t, events.StatusHeld, del(6).Outcome.Status)
	assert.Equal(t, 6, f.deletesSent())
}

// Creating a protected account inactive disables nothing; a Create that would converge an existing
// protected account to inactive is a disable, rejected once the plan shows it.
func TestProtectedKeyByPlanNotByEventName(t *testing.T) {
	t.Parallel()
	f, _ := guarded(t, guard.Config{Protected: []guard.Pattern{{Object: "User", Property: "userName", Pattern: "breakglass-*"}}})
	require.NoError(t, f.sim.Seed("Users", map[string]any{"userName": "breakglass-01", "active": true}))
	ctx := context.Background()
	res := f.handle(ctx, event("new", "Create", "User", user("breakglass-02"), map[string]any{"active": false}))
	assert.Equal(t, events.StatusSucceeded, res.Outcome.Status, "%s %+v", res.Outcome.Reason, res.Outcome.Error)

	res = f.handle(ctx, event("converge", "Create", "User", user("breakglass-01"), map[string]any{"active": false}))
	assert.Equal(t, events.StatusRejected, res.Outcome.Status)
	assert.Contains(t, res.Outcome.Reason, "never disabled")
	assert.Zero(t, f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"])
	for _, u := range f.users() {
		if u["userName"] == "breakglass-01" {
			assert.Equal(t, true, u["active"])
		}
	}
}
