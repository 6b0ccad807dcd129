package events

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// applyLog records the events a handler applied successfully, per key, and every attempt.
type applyLog struct {
	mu       sync.Mutex
	applied  map[string][]string
	attempts map[string]int
	order    []string
}

func newApplyLog() *applyLog {
	return &applyLog{applied: map[string][]string{}, attempts: map[string]int{}}
}

func parkingConsumer(t *testing.T, s *natstest.Server, topo Topology, cfg ConsumerConfig, h Handler) (*Consumer, func()) {
	t.Helper()
	park, err := OpenParkStore(context.Background(), s.JS, 1)
	require.NoError(t, err)
	cfg.Park = park
	cfg.Logger = zerolog.Nop()
	c := NewConsumer(s.JS, topo, cfg, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(15 * time.Second):
				t.Error("consumer did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// A key whose first update fails for two windows, with three later updates arriving meanwhile,
// ends with the last value, applied in order, while a thousand other keys go through untouched:
// the parked key leaves MaxAckPending (here 20) free for them (issue 8, "Parking").
func TestParkingKeepsOrderAndFreesIntake(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	s := natstest.MustStart(t)
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes := collectOutcomes(t, s.JS)
	log := newApplyLog()
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		k := d.Event.Data.Key["userName"].(string)
		log.mu.Lock()
		defer log.mu.Unlock()
		log.attempts[d.Event.ID]++
		if d.Event.ID == "p-1" && d.Attempt <= 2 {
			return Result{
				Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "HTTP 503"}, Reason: "HTTP 503"},
				RetryAt: time.Now().Add(time.Hour), // windows are opened by the test (worker parked retry)
			}
		}
		log.applied[k] = append(log.applied[k], d.Event.ID)
		log.order = append(log.order, d.Event.ID)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _ := parkingConsumer(t, s, topo, ConsumerConfig{MaxAckPending: 20, Lanes: 8}, h)
	publishUser(t, s.JS, "p-1", "p")
	require.Eventually(t, func() bool { return c.ParkedKeys() == 1 }, 10*time.Second, 5*time.Millisecond, "p was not parked")
	for i := 2; i <= 4; i++ {
		publishUser(t, s.JS, fmt.Sprintf("p-%d", i), "p")
	}
	const others = 1000
	for i := range others {
		publishUser(t, s.JS, fmt.Sprintf("o-%d", i), fmt.Sprintf("o%d", i))
	}
	// While p is parked: p-1's deferral, 3 parked progress outcomes, and every other key's final.
	got := outcomes(1+3+others, 60*time.Second)
	require.Equal(t, 1+3+others, len(got), "the other keys must go through while p is parked")
	log.mu.Lock()
	assert.Equal(t, []string(nil), log.applied["p"], "nothing of p was applied before its window")
	log.mu.Unlock()
	// Two windows: p-1 fails again in the first, succeeds in the second, then its followers run.
	for _, want := range []int{1 + 3 + others + 1, 4 + 2 + 3 + others} {
		require.NotEmpty(t, requestControl(t, s.Conn, Control{Op: "retry", All: true}))
		got = outcomes(want, 30*time.Second)
		require.Equal(t, want, len(got), "outcomes")
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	assert.Equal(t, []string{"p-1", "p-2", "p-3", "p-4"}, log.applied["p"], "the parked key applied out of order")
	assert.Equal(t, 3, log.attempts["p-1"], "p-1: tried, then in two windows")
	for i := 2; i <= 4; i++ {
		assert.Equal(t, 1, log.attempts[fmt.Sprintf("p-%d", i)], "p-%d ran before its turn", i)
	}
	final := map[string]*Outcome{}
	for _, o := range got {
		if o.Final {
			require.NotContains(t, final, o.InputID, "two final outcomes for %s", o.InputID)
			final[o.InputID] = o
		}
	}
	assert.Equal(t, 3, final["p-1"].Attempt)
	for i := range others {
		assert.Equal(t, StatusSucceeded, final[fmt.Sprintf("o-%d", i)].Status)
	}
	// Nothing stays parked, nothing is left in IDM_PARKED.
	require.Eventually(t, func() bool { return c.ParkedKeys() == 0 }, 5*time.Second, 10*time.Millisecond)
	st, err := s.JS.Stream(context.Background(), ParkedStream)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	assert.Zero(t, info.State.Msgs, "parked events left behind")
}

// A parked key survives a restart of the worker: the next one replays it at its window, in order.
func TestParkedKeySurvivesARestart(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStart(t)
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes, h, applied := parkedByAFirstWorker(t, s, topo)

	// A second worker: the key is still parked (its window is an hour away) until an operator asks.
	second, _ := parkingConsumer(t, s, topo, ConsumerConfig{}, h)
	require.Eventually(t, func() bool { return second.ParkedKeys() == 1 }, 10*time.Second, 10*time.Millisecond)
	publishUser(t, s.JS, "r-3", "r")
	require.Equal(t, 3, len(outcomes(3, 10*time.Second)), "r-3 parked behind the others")
	assert.Empty(t, applied(), "nothing of the parked key ran before its window")

	nc := s.Conn
	replies := requestControl(t, nc, Control{Op: "retry", All: true})
	require.Len(t, replies, 1)
	assert.Len(t, replies[0].Keys, 1)
	got := outcomes(6, 10*time.Second)
	require.Equal(t, 6, len(got))
	assert.Equal(t, []string{"r-1", "r-2", "r-3"}, applied())
	require.Eventually(t, func() bool { return second.ParkedKeys() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// parkedByAFirstWorker has a first worker park key r: its handler defers r-1 (its window an hour
// away) and r-2 is parked behind it; then the worker stops. The handler it returns applies every
// event from then on; applied lists what it applied, in order.
func parkedByAFirstWorker(t *testing.T, s *natstest.Server, topo Topology) (outcomes func(int, time.Duration) []*Outcome, h Handler, applied func() []string) {
	t.Helper()
	outcomes = collectOutcomes(t, s.JS)
	var mu sync.Mutex
	var ids []string
	failing := true
	h = HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		mu.Lock()
		defer mu.Unlock()
		if d.Event.ID == "r-1" && failing {
			return Result{Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "timeout"}},
				RetryAt: time.Now().Add(time.Hour)}
		}
		ids = append(ids, d.Event.ID)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	first, stopFirst := parkingConsumer(t, s, topo, ConsumerConfig{}, h)
	publishUser(t, s.JS, "r-1", "r")
	publishUser(t, s.JS, "r-2", "r")
	require.Equal(t, 2, len(outcomes(2, 10*time.Second)), "r-1 deferred, r-2 parked behind it")
	require.Equal(t, 1, first.ParkedKeys())
	stopFirst()
	mu.Lock()
	failing = false
	mu.Unlock()
	return outcomes, h, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(ids)
	}
}

func requestControl(t *testing.T, nc *nats.Conn, c Control) []ControlReply {
	t.Helper()
	replies, err := RequestControl(context.Background(), nc, c, 500*time.Millisecond)
	require.NoError(t, err)
	return replies
}

// adaSubject is the stored subject of the user ada@example.com in partition p.
func adaSubject(p int) string {
	return fmt.Sprintf("%s.%d.User.%s", PartitionedPrefix, p, KeyToken(map[string]any{"userName": "ada@example.com"}))
}

// startParkStore starts a JetStream server and opens the park store on it.
func startParkStore(t *testing.T) (*natstest.Server, *ParkStore) {
	t.Helper()
	s := natstest.MustStart(t)
	store, err := OpenParkStore(context.Background(), s.JS, 1)
	require.NoError(t, err)
	return s, store
}

// A parked event removed already (by a run of it that another worker finished) is removed: the
// acknowledgement of a second run succeeds instead of holding its key forever.
func TestRemovingAParkedEventTwiceSucceeds(t *testing.T) {
	t.Parallel()
	_, park := startParkStore(t)
	ctx := context.Background()
	subject := PartitionedPrefix + ".3.User.abc"
	require.NoError(t, park.Park(ctx, subject, 41, time.Now(), "e-41", []byte(`{}`), nats.Header{}))
	evs, err := park.Parked(ctx, subject)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.NoError(t, park.Remove(ctx, evs[0].Seq))
	require.NoError(t, park.Remove(ctx, evs[0].Seq), "removed already")
	evs, err = park.Parked(ctx, subject)
	require.NoError(t, err)
	assert.Empty(t, evs)
	// A sequence past the store's end was never there: still nothing to remove.
	require.NoError(t, park.Remove(ctx, 1000))
}

// States fails rather than leave out a parked key whose state it could not read: a worker that
// opened a partition without knowing the key was parked would run the key's next event ahead of
// its parked ones (a superseded skip then drops the parked events). The reader here may list the
// bucket but not read its entries (a permission the server enforces), as a JetStream server that
// restarts between the listing and the reads answers neither.
func TestParkedKeyStatesFailRatherThanLeaveAKeyOut(t *testing.T) {
	t.Parallel()
	s, _ := serverDenyingKeyStateReads(t, "lister", "l")
	ctx := context.Background()
	admin, err := OpenParkStore(ctx, s.JS, 1)
	require.NoError(t, err)
	subject := adaSubject(3)
	require.NoError(t, admin.SetState(ctx, &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 7, HeadEvent: "e-7"}))
	states, err := admin.States(ctx, 3)
	require.NoError(t, err)
	require.Len(t, states, 1)
	assert.Equal(t, "e-7", states[0].HeadEvent)

	nc, err := nats.Connect(s.URL, nats.UserInfo("lister", "l"))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	lister, err := OpenParkStore(ctx, js, 0)
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	states, err = lister.States(rctx, 3)
	require.Error(t, err, "the key's state could not be read, yet it was left out: %v", states)
	assert.Contains(t, err.Error(), "read parked key k.3.User.")

	// A listing cut short by its context is an error too, never a shorter list.
	done, stop := context.WithCancel(ctx)
	stop()
	_, err = admin.States(done, 3)
	assert.Error(t, err)

	// A state no worker wrote keeps its key parked (replayed at the next window), not forgotten.
	kv, err := s.JS.KeyValue(ctx, KeyStateBucket)
	require.NoError(t, err)
	_, err = kv.Put(ctx, stateKey(subject), []byte("not json"))
	require.NoError(t, err)
	states, err = admin.States(ctx, 3)
	require.NoError(t, err)
	require.Len(t, states, 1)
	assert.Equal(t, subject, states[0].Subject)
	assert.Equal(t, HoldWindow, states[0].Hold)
	assert.Contains(t, states[0].Reason, "could not be read")
}

// serverDenyingKeyStateReads starts a server on which user may list IDM_KEYSTATE but not read its
// entries (its connection's own user is an admin); opts are its options, to reload.
func serverDenyingKeyStateReads(t *testing.T, user, password string) (*natstest.Server, *server.Options) {
	t.Helper()
	stream := "KV_" + KeyStateBucket
	var opts *server.Options
	s := natstest.MustStartWith(t, t.TempDir(), func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "a"},
			{Username: user, Password: password, Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{
					"$JS.API.DIRECT.GET." + stream + ".>", "$JS.API.DIRECT.GET." + stream, "$JS.API.STREAM.MSG.GET." + stream,
				}},
			}},
		}
		o.NoAuthUser = "admin"
		opts = o
	})
	return s, opts
}

// A worker that cannot read a partition's parked keys when it opens the partition runs nothing of
// it until it can: before, a state it could not read was left out, and the key's next event ran
// ahead of its parked ones (the chaos suite: a user's updates #5–#7 parked, #8 applied by a worker
// that had just opened the partition after a JetStream restart, #5–#7 then skipped as superseded).
// The server here refuses the second worker's reads of IDM_KEYSTATE until its permissions are
// reloaded.
func TestAPartitionWaitsUntilItsParkedKeysCanBeRead(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s, opts := serverDenyingKeyStateReads(t, "worker", "w")
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes, h, applied := parkedByAFirstWorker(t, s, topo)

	nc, err := nats.Connect(s.URL, nats.UserInfo("worker", "w"), nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	denied := *s
	denied.JS = js
	second, _ := parkingConsumer(t, &denied, topo, ConsumerConfig{}, h)
	publishUser(t, s.JS, "r-3", "r")
	// Longer than a read's own timeout (5 s), after which the key used to be left out.
	time.Sleep(6 * time.Second)
	assert.Empty(t, applied(), "the partition ran while its parked keys could not be read")

	granted := opts.Clone()
	granted.Users[1].Permissions = nil
	require.NoError(t, s.Server.ReloadOptions(granted))
	require.Equal(t, 3, len(outcomes(3, 30*time.Second)), "r-3 parked behind the others")
	assert.Equal(t, 1, second.ParkedKeys())
	require.Len(t, requestControl(t, s.Conn, Control{Op: "retry", All: true}), 1)
	outcomes(6, 10*time.Second)
	assert.Equal(t, []string{"r-1", "r-2", "r-3"}, applied(), "the parked key's events, in order")
}

// A worker unparks a key only at the revision of the state it knows: a state written since (the
// key parked anew by the partition's next owner) stays, or that owner's parked events would have
// no state to be found by.
func TestUnparkKeepsAStateWrittenSince(t *testing.T) {
	t.Parallel()
	_, store := startParkStore(t)
	ctx := context.Background()
	subject := adaSubject(5)
	mine := &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 3, HeadEvent: "e-3"}
	require.NoError(t, store.SetState(ctx, mine))
	require.NotZero(t, mine.Revision)
	theirs := &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 9, HeadEvent: "e-9"}
	require.NoError(t, store.SetState(ctx, theirs))

	err := store.Unpark(ctx, subject, mine.Revision)
	require.ErrorIs(t, err, ErrParkedAgain)
	st, err := store.State(ctx, subject)
	require.NoError(t, err)
	require.NotNil(t, st, "the newer state was deleted")
	assert.Equal(t, "e-9", st.HeadEvent)
	assert.Equal(t, theirs.Revision, st.Revision)
	states, err := store.States(ctx, 5)
	require.NoError(t, err)
	require.Len(t, states, 1)
	assert.Equal(t, theirs.Revision, states[0].Revision)

	require.NoError(t, store.Unpark(ctx, subject, theirs.Revision))
	st, err = store.State(ctx, subject)
	require.NoError(t, err)
	assert.Nil(t, st)
	require.NoError(t, store.Unpark(ctx, subject, theirs.Revision), "unparking a key that is not parked")
}

// A key is not unparked while an event is being parked behind it, and an event of a key being
// unparked waits: the chaos suite had a window find a key's parked events gone (its head replayed
// by an earlier owner) and delete its state 1.4 ms after an event of the key was parked behind it,
// which was then never replayed, and the key's next events ran ahead of it.
func TestUnparkingWaitsForAnEventBeingParkedBehind(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	topo := Topology{Partitions: 1}
	require.NoError(t, topo.Ensure(ctx, s.JS))
	park, err := OpenParkStore(ctx, s.JS, 1)
	require.NoError(t, err)
	c := NewConsumer(s.JS, topo, ConsumerConfig{Partitions: []int{0}, Park: park, Logger: zerolog.Nop()},
		HandlerFunc(func(context.Context, *Delivery) Result { return Result{Outcome: Outcome{Status: StatusSucceeded}} }))
	subject := adaSubject(0)
	// Parked with head e-7, whose replay has run already: nothing is left under it.
	require.NoError(t, park.SetState(ctx, &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 7, HeadEvent: "e-7"}))
	require.NoError(t, c.reloadParked(ctx, 0))

	// e-10 is being parked behind it when the window comes.
	pk, busy := c.follow(subject)
	require.NotNil(t, pk)
	require.False(t, busy)
	c.startReplay(ctx, subject, false)
	st, err := park.State(ctx, subject)
	require.NoError(t, err)
	require.NotNil(t, st, "unparked while an event was being parked behind it")
	require.NoError(t, park.Park(ctx, subject, 10, time.Now(), "e-10", []byte(`{}`), nats.Header{}))
	c.unfollow(pk)

	// The next window replays e-10 instead of unparking the key.
	c.startReplay(ctx, subject, false)
	st, err = park.State(ctx, subject)
	require.NoError(t, err)
	assert.NotNil(t, st, "unparked with e-10 parked under it")
	assert.NotNil(t, c.parkedState(subject))
	assert.Equal(t, 1, c.keys.heldIn(0), "e-10 queued to run")

	// While a key is being unparked, its events wait.
	pk = c.parkedState(subject)
	c.parking.mu.Lock()
	pk.unparking = true
	c.parking.mu.Unlock()
	_, busy = c.follow(subject)
	assert.True(t, busy)
}

// A parked event runs again as the event IDM_EVENTS stored, not as one stored when it was parked:
// the pipeline stops a redelivery older than what was last applied to its key only when the record
// is newer than the event (Processor.superseded). A chaos run had an event applied, its
// acknowledgement lost with a JetStream server killed, and the event delivered again and parked
// behind its key: replayed as stored at its parking, it was sent again over its successor.
func TestAParkedEventRunsAgainAsStoredInTheEventsStream(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStart(t)
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, s.JS))
	outcomes := collectOutcomes(t, s.JS)
	var mu sync.Mutex
	runs := map[string][]Delivery{}
	h := HandlerFunc(func(_ context.Context, d *Delivery) Result {
		mu.Lock()
		defer mu.Unlock()
		runs[d.Event.ID] = append(runs[d.Event.ID], *d)
		if d.Event.ID == "q-1" && len(runs["q-1"]) == 1 {
			return Result{Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "HTTP 503"}, Reason: "HTTP 503"},
				RetryAt: time.Now().Add(time.Hour)}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _ := parkingConsumer(t, s, topo, ConsumerConfig{}, h)
	publishUser(t, s.JS, "q-1", "q")
	require.Eventually(t, func() bool { return c.ParkedKeys() == 1 }, 10*time.Second, 5*time.Millisecond, "q was not parked")
	publishUser(t, s.JS, "q-2", "q")
	require.Len(t, outcomes(2, 10*time.Second), 2, "q-1 deferred, q-2 parked behind it")
	time.Sleep(20 * time.Millisecond) // parked well after it was stored
	require.NotEmpty(t, requestControl(t, s.Conn, Control{Op: "retry", All: true}))
	require.Len(t, outcomes(4, 10*time.Second), 4, "both replayed")

	events, err := s.JS.Stream(ctx, EventsStream)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs["q-2"], 1, "q-2 ran before its window")
	for _, id := range []string{"q-1", "q-2"} {
		replay := runs[id][len(runs[id])-1]
		stored, err := events.GetMsg(ctx, replay.StreamSeq)
		require.NoError(t, err)
		assert.True(t, replay.Stored.Equal(stored.Time), "%s replayed as stored at %s; IDM_EVENTS stored it at %s", id, replay.Stored, stored.Time)
		assert.True(t, replay.Redelivered, id)
	}
}
