package guard

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

var window0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// target is a real connector talking to a simulator in its generic profile.
func target(t *testing.T) (*cyberarksim.Server, *provision.Client) {
	t.Helper()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{Generic: true, StaticToken: "guard-token"})
	client, err := provision.New(provision.Config{
		BaseURI: srv.URL + "/scim/v2",
		Auth:    auth.Config{Mode: auth.ModeBearer, Bearer: auth.BearerConfig{Token: "guard-token"}},
		Retry:   provision.RetryConfig{Attempts: 1},
		Logger:  zerolog.Nop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	return sim, client
}

func seedUsers(t *testing.T, sim *cyberarksim.Server, n int) {
	t.Helper()
	users := make([]map[string]any, n)
	for i := range users {
		users[i] = map[string]any{"userName": fmt.Sprintf("u%04d@x", i)}
	}
	require.NoError(t, sim.Seed("Users", users...))
}

func deleteOf(name string, window time.Time) Change {
	return Change{Object: "User", Operation: reconcile.OpDelete, Key: map[string]any{"userName": name},
		Plan: plan(reconcile.OpDelete, reconcile.Request{Method: "DELETE", Path: "Users/" + name}), Window: window}
}

func disableOf(name string, window time.Time) Change {
	return Change{Object: "User", Operation: reconcile.OpUpdate, Key: map[string]any{"userName": name},
		Attributes: map[string]any{"active": false},
		Plan:       plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"active","value":false}]}`)), Window: window}
}

func mustGuard(t *testing.T, cfg Config, opt Options) *Guard {
	t.Helper()
	g, err := New(cfg, opt)
	require.NoError(t, err)
	return g
}

func check(t *testing.T, g *Guard, ch Change) Decision {
	t.Helper()
	d, err := g.Check(context.Background(), ch)
	require.NoError(t, err)
	return d
}

func TestCountLimitHoldsBeyondMaxDeletesPerWindow(t *testing.T) {
	t.Parallel()
	tally := NewMemoryTally()
	g := mustGuard(t, Config{MaxDeletes: 50, MaxPercent: NoLimit}, Options{Tally: tally})
	for i := range 50 {
		d := check(t, g, deleteOf(fmt.Sprint("u", i), window0))
		require.Equal(t, Allow, d.Verdict, "delete %d", i+1)
		assert.Equal(t, KindDelete, d.Kind)
	}
	d := check(t, g, deleteOf("u50", window0))
	assert.Equal(t, Hold, d.Verdict)
	assert.Equal(t, "deletion guard: 51st delete in this window exceeds maxDeletes 50", d.Reason)
	d = check(t, g, disableOf("u51", window0))
	assert.Equal(t, Hold, d.Verdict, "disables share the count")
	assert.Equal(t, "deletion guard: 51st delete or disable (this one a disable) in this window exceeds maxDeletes 50", d.Reason)
	total, _ := tally.Counts(window0)
	assert.Equal(t, 50, total, "held changes are not counted")

	// A change that neither deletes nor disables is neither held nor counted.
	upd := Change{Object: "User", Operation: reconcile.OpUpdate, Key: map[string]any{"userName": "u1"}, Window: window0,
		Plan: plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"title","value":"CTO"}]}`))}
	assert.Equal(t, Decision{Verdict: Allow}, check(t, g, upd))

	// The next window starts from zero.
	next := window0.Add(15 * time.Minute)
	assert.Equal(t, Allow, check(t, g, deleteOf("u52", next)).Verdict)
	total, _ = tally.Counts(next)
	assert.Equal(t, 1, total)

	// A straggler that read the clock before the window turned still counts in its own window.
	assert.Equal(t, Hold, check(t, g, deleteOf("u53", window0)).Verdict)
}

func TestReleaseGivesTheSlotBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := mustGuard(t, Config{MaxDeletes: 2, MaxPercent: NoLimit}, Options{})
	a := check(t, g, deleteOf("a", window0))
	b := check(t, g, deleteOf("b", window0))
	require.Equal(t, Allow, a.Verdict)
	require.Equal(t, Allow, b.Verdict)
	require.Equal(t, Hold, check(t, g, deleteOf("c", window0)).Verdict)
	// b's DELETE failed: its slot comes back, once however often it is released.
	require.NoError(t, b.Release(ctx))
	require.NoError(t, b.Release(ctx))
	assert.Equal(t, Allow, check(t, g, deleteOf("c", window0)).Verdict)
	assert.Equal(t, Hold, check(t, g, deleteOf("d", window0)).Verdict)
	// Releasing what holds no slot is harmless.
	require.NoError(t, Decision{}.Release(ctx))
	require.NoError(t, check(t, g, deleteOf("d", window0)).Release(ctx))
}

func TestApprovedChangesAreNeverHeldButCount(t *testing.T) {
	t.Parallel()
	tally := NewMemoryTally()
	g := mustGuard(t, Config{MaxDeletes: 1, MaxPercent: NoLimit}, Options{Tally: tally})
	require.Equal(t, Allow, check(t, g, deleteOf("a", window0)).Verdict)
	for _, name := range []string{"b", "c", "d"} {
		ch := deleteOf(name, window0)
		require.Equal(t, Hold, check(t, g, ch).Verdict)
		ch.Approved = true
		assert.Equal(t, Allow, check(t, g, ch).Verdict, name)
	}
	total, per := tally.Counts(window0)
	assert.Equal(t, 4, total)
	assert.Equal(t, map[string]int{"Users": 4}, per)
	assert.Equal(t, Hold, check(t, g, deleteOf("e", window0)).Verdict, "the approved deletes used up the window")
}

func TestProtectedObjectsAreRejected(t *testing.T) {
	t.Parallel()
	g := mustGuard(t, Config{MaxPercent: NoLimit, Protected: []Pattern{
		{Object: "User", Property: "userName", Pattern: "breakglass-*"},
		{Object: "Group", Property: "displayName", Pattern: "Domain Admins"},
	}}, Options{})
	for _, ch := range []Change{deleteOf("breakglass-01", window0), disableOf("BREAKGLASS-02", window0)} {
		ch.Approved = true // not even an approval deletes it
		d := check(t, g, ch)
		assert.Equal(t, Reject, d.Verdict)
		assert.Contains(t, d.Reason, `matches protected pattern "breakglass-*"`)
		reason, ok := g.Protected(ch)
		assert.True(t, ok)
		assert.Equal(t, d.Reason, reason)
	}
	d := check(t, g, deleteOf("breakglass-01", window0))
	assert.Equal(t, `deletion guard: User userName "breakglass-01" matches protected pattern "breakglass-*": never deleted`, d.Reason)

	// On intent alone, before any plan.
	reason, ok := g.Protected(Change{Object: "Group", Operation: reconcile.OpDelete, Key: map[string]any{"displayName": "domain admins"}})
	assert.True(t, ok)
	assert.Contains(t, reason, "never deleted")
	_, ok = g.Protected(Change{Object: "User", Operation: reconcile.OpUpdate, Key: map[string]any{"userName": "breakglass-01"},
		Attributes: map[string]any{"title": "on call"}})
	assert.False(t, ok, "other changes of a protected object go through")
	_, ok = g.Protected(Change{Object: "User", Operation: reconcile.OpDelete, Key: map[string]any{"userName": "ada"}})
	assert.False(t, ok)
}

func TestNoLimitsNeverHold(t *testing.T) {
	t.Parallel()
	g := mustGuard(t, Config{MaxDeletes: NoLimit, MaxPercent: NoLimit}, Options{})
	for i := range 1000 {
		require.Equal(t, Allow, check(t, g, deleteOf(fmt.Sprint("u", i), window0)).Verdict)
	}
}

func TestPercentLimitIsCountedOncePerWindowOnTheTarget(t *testing.T) {
	t.Parallel()
	sim, client := target(t)
	seedUsers(t, sim, 200)
	sim.ResetStats()
	g := mustGuard(t, Config{MaxDeletes: NoLimit, MaxPercent: 10}, Options{Counter: QueryCounter{Target: client}})
	for i := range 20 {
		require.Equal(t, Allow, check(t, g, deleteOf(fmt.Sprint("u", i), window0)).Verdict, "delete %d", i+1)
	}
	d := check(t, g, disableOf("u20", window0))
	assert.Equal(t, Hold, d.Verdict)
	assert.Equal(t, "deletion guard: 21st delete or disable (this one a disable) of Users in this window exceeds maxPercent 10% of the 200 Users the target holds (20 per window)", d.Reason)
	assert.Equal(t, 1, sim.Stats().Requests["GET /scim/v2/Users"], "one count query for the window")

	// The base stays what the target held when the window began, however much is deleted in it;
	// the next window counts again.
	next := window0.Add(time.Hour)
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "late@x"}))
	for i := range 21 {
		require.Equal(t, Allow, check(t, g, deleteOf(fmt.Sprint("v", i), next)).Verdict, "201 users: 10%% rounds up to 21")
	}
	assert.Equal(t, Hold, check(t, g, deleteOf("v21", next)).Verdict)
	assert.Equal(t, 2, sim.Stats().Requests["GET /scim/v2/Users"])
}

func TestPercentLimitAllowsOnePerWindowInASmallDirectory(t *testing.T) {
	t.Parallel()
	sim, client := target(t)
	seedUsers(t, sim, 3)
	g := mustGuard(t, Config{MaxDeletes: NoLimit, MaxPercent: 10}, Options{Counter: QueryCounter{Target: client}})
	assert.Equal(t, Allow, check(t, g, deleteOf("a", window0)).Verdict)
	assert.Equal(t, Hold, check(t, g, deleteOf("b", window0)).Verdict)
}

func TestPercentIsPerObjectTypeAndTheCountIsShared(t *testing.T) {
	t.Parallel()
	counts := map[string]int{"Users": 100, "Groups": 20}
	g := mustGuard(t, Config{MaxDeletes: 12, MaxPercent: 10}, Options{Counter: CounterFunc(func(_ context.Context, r string) (int, error) {
		return counts[r], nil
	})})
	group := func(name string) Change {
		return Change{Object: "Group", Operation: reconcile.OpDelete, Key: map[string]any{"displayName": name}, Window: window0,
			Plan: &reconcile.Plan{Object: "Group", Resource: "Groups", Operation: reconcile.OpDelete, Requests: []reconcile.Request{{Method: "DELETE", Path: "Groups/" + name}}}}
	}
	assert.Equal(t, Allow, check(t, g, group("g1")).Verdict)
	assert.Equal(t, Allow, check(t, g, group("g2")).Verdict)
	d := check(t, g, group("g3"))
	assert.Equal(t, Hold, d.Verdict, "10%% of 20 groups")
	assert.Contains(t, d.Reason, "3rd delete of Groups")
	for i := range 10 {
		assert.Equal(t, Allow, check(t, g, deleteOf(fmt.Sprint("u", i), window0)).Verdict, "users have their own share")
	}
	d = check(t, g, deleteOf("u10", window0))
	assert.Equal(t, Hold, d.Verdict)
	assert.Equal(t, "deletion guard: 13th delete in this window exceeds maxDeletes 12", d.Reason, "maxDeletes counts every type together")
}

func TestCounterFallsBackAndFailuresDecideNothing(t *testing.T) {
	t.Parallel()
	sim, client := target(t)
	seedUsers(t, sim, 10)
	var inventoryAsked atomic.Int32
	noInventory := CounterFunc(func(context.Context, string) (int, error) {
		inventoryAsked.Add(1)
		return 0, ErrCountUnknown
	})
	n, err := Counters{noInventory, QueryCounter{Target: client}}.CountObjects(context.Background(), "Users")
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	assert.EqualValues(t, 1, inventoryAsked.Load())
	_, err = Counters{noInventory}.CountObjects(context.Background(), "Users")
	require.ErrorIs(t, err, ErrCountUnknown)

	// The target is down: the guard cannot decide, says so, and asks again next time.
	sim.SetFaults(cyberarksim.Faults{OutageUntil: time.Now().Add(time.Hour)})
	g := mustGuard(t, Config{}, Options{Counter: QueryCounter{Target: client}})
	_, err = g.Check(context.Background(), deleteOf("a", window0))
	require.Error(t, err)
	var pe *provision.Error
	require.ErrorAs(t, err, &pe, "the connector's error, classified as usual")
	sim.SetFaults(cyberarksim.Faults{})
	assert.Equal(t, Allow, check(t, g, deleteOf("a", window0)).Verdict)
}

// Many keys run at once: the window never lets more through than the limit, failed deletes give
// their slots back, and the base is counted once.
func TestConcurrentChecksKeepTheLimit(t *testing.T) {
	t.Parallel()
	sim, client := target(t)
	seedUsers(t, sim, 1000)
	sim.ResetStats()
	tally := NewMemoryTally()
	g := mustGuard(t, Config{MaxDeletes: 50, MaxPercent: 10}, Options{Counter: QueryCounter{Target: client}, Tally: tally})
	storm(t, func(int) *Guard { return g }, 500, 50)
	total, _ := tally.Counts(window0)
	assert.Equal(t, 50, total)
	assert.Equal(t, 1, sim.Stats().Requests["GET /scim/v2/Users"], "one count query for 500 concurrent checks")
}

// storm runs n deletes at once, the i-th through guard(i) (on a limit of limit), one in three failing and giving its
// slot back, then fills the window: at no moment are more than limit deletes allowed and not given
// back, and the window ends up full, never beyond.
func storm(t *testing.T, guard func(i int) *Guard, n, limit int) {
	t.Helper()
	ctx := context.Background()
	var outstanding, most, held atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := guard(i).Check(ctx, deleteOf(fmt.Sprint("u", i), window0))
			if !assert.NoError(t, err) {
				return
			}
			if d.Verdict == Hold {
				held.Add(1)
				return
			}
			// Counted before and given back after these, so outstanding never exceeds the tally.
			now := outstanding.Add(1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			if i%3 == 0 { // this DELETE failed
				outstanding.Add(-1)
				assert.NoError(t, d.Release(ctx))
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, int(most.Load()), limit, "never more than the limit at once")
	assert.Positive(t, held.Load())
	// Slots given back after the storm are taken by the next deletes, up to the limit.
	for i := 0; ; i++ {
		d := check(t, guard(i), deleteOf(fmt.Sprint("w", i), window0))
		if d.Verdict == Hold {
			break
		}
		outstanding.Add(1)
	}
	assert.Equal(t, int32(limit), outstanding.Load(), "the window ends full")
}

func TestWindowOf(t *testing.T) {
	t.Parallel()
	every, err := cron.ParseStandard("@every 15m")
	require.NoError(t, err)
	hourly, err := cron.ParseStandard("0 * * * *")
	require.NoError(t, err)
	at := func(h, m, s int) time.Time { return time.Date(2026, 11, 23, h, m, s, 0, time.UTC) }
	cases := []struct {
		name string
		s    Schedule
		t    time.Time
		want time.Time
	}{
		{"@every at the start", every, at(9, 0, 0), at(9, 0, 0)},
		{"@every inside", every, at(9, 14, 59), at(9, 0, 0)},
		{"@every next", every, at(9, 15, 0), at(9, 15, 0)},
		{"@every in another zone", every, at(9, 20, 0).In(time.FixedZone("x", 5*3600+1800)), at(9, 15, 0)},
		{"fixed period", period(time.Hour), at(9, 59, 0), at(9, 0, 0)},
		{"cron: the window's end", hourly, at(9, 0, 0), at(10, 0, 0)},
		{"cron inside", hourly, at(9, 59, 59), at(10, 0, 0)},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, WindowOf(tc.s, tc.t), tc.name)
	}
}

type period time.Duration

func (p period) Next(t time.Time) time.Time { return t.Add(time.Duration(p)) }
func (p period) Period() time.Duration      { return time.Duration(p) }

func TestNewNeedsACounterForThePercentLimit(t *testing.T) {
	t.Parallel()
	_, err := New(Config{}, Options{})
	require.ErrorContains(t, err, "deletionGuard.maxPercent")
	g, err := New(Config{MaxPercent: NoLimit}, Options{})
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxDeletes, g.Config().MaxDeletes)
}

func TestOrdinal(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 11: "11th", 12: "12th", 13: "13th", 21: "21st", 51: "51st", 101: "101st", 111: "111th", 112: "112th"} {
		assert.Equal(t, want, ordinal(n))
	}
}
