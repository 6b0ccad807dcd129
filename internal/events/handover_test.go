package events

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncList is a list that goroutines append to and tests read a copy of.
type syncList[T any] struct {
	mu  sync.Mutex
	all []T
}

func (l *syncList[T]) add(v T) {
	l.mu.Lock()
	l.all = append(l.all, v)
	l.mu.Unlock()
}

func (l *syncList[T]) snapshot() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.all)
}

// appliedLog is the order in which events reached "the target", whoever applied them.
type appliedLog = syncList[string]

// runReady runs c, waits until it is ready, and returns what stops it: stop cancels the run and
// returns Run's error (or that it did not stop); the test's end stops it too.
func runReady(t *testing.T, c *Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("the consumer did not stop")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	require.Eventually(t, func() bool { return c.Ready() == nil }, 5*time.Second, 10*time.Millisecond)
	return stop
}

// A new owner must not run a key's newer event while the previous owner still holds an older one,
// even when everything delivered before the bind has been acknowledged since: the previous owner,
// still pinned, took more events after the bind (found by the chaos suite: a partition handed over
// while its old owner ran an event longer than its drain deadline, and the new owner ran the
// key's successor first).
func TestNewOwnerWaitsForEventsThePreviousOwnerTookAfterTheBind(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	applied := &appliedLog{}

	h := HandlerFunc(func(_ context.Context, d *Delivery) Result {
		applied.add(d.Event.ID)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	b := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "b", Logger: zerolog.Nop()}, h)

	// The previous owner, a client of the same durable consumer, takes k-1 and so holds the pin.
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, b.consumerConfig(0))
	require.NoError(t, err)
	publishUser(t, js, "k-1", "k")
	m1 := fetchPinned(t, cons)

	// The new owner binds now, while k-1 is the only event not acknowledged.
	runReady(t, b)

	// Still pinned, the previous owner takes k-2, then finishes k-1: everything delivered before the
	// bind is acknowledged, but k-2 is not.
	publishUser(t, js, "k-2", "k")
	m2 := fetchPinned(t, cons)
	applied.add("k-1")
	require.NoError(t, m1.DoubleAck(ctx))

	// It lets go of the pin while k-2 still runs (a drain deadline passed), and k-3 arrives.
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, b.ConsumerName(0), PriorityGroup))
	publishUser(t, js, "k-3", "k")
	require.Eventually(t, func() bool { return b.Stats().Received > 0 }, 10*time.Second, 10*time.Millisecond,
		"the new owner never got k-3")
	time.Sleep(500 * time.Millisecond) // the new owner would run k-3 now, were it not waiting
	applied.add("k-2")
	require.NoError(t, m2.DoubleAck(ctx))

	require.Eventually(t, func() bool { return len(applied.snapshot()) == 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"k-1", "k-2", "k-3"}, applied.snapshot())
}

// A partition with nothing unacknowledged and no pin proves nothing: the previous owner may still
// be pulling, and JetStream pins a partition only when it delivers a message, so the previous
// owner can take the next event after the new owner bound the partition, hand it back and unpin.
// The new owner must then wait for it before running the key's successor (found by
// TestPoolSharesPartitionsExclusively: k12-01 run before k12-00, handed back by the worker that
// gave the partition up).
func TestNewOwnerOfAnIdlePartitionWaitsForAnEventThePreviousOwnerTookLater(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	applied := &appliedLog{}
	b := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "b", Logger: zerolog.Nop()},
		HandlerFunc(func(_ context.Context, d *Delivery) Result {
			applied.add(d.Event.ID)
			return Result{Outcome: Outcome{Status: StatusSucceeded}}
		}))

	// The previous owner, a client of the same durable consumer, is waiting for the next event of
	// the idle partition: nobody holds the pin.
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, b.consumerConfig(0))
	require.NoError(t, err)
	fetched := make(chan jetstream.Msg, 1)
	go func() {
		defer close(fetched)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second), jetstream.FetchPriorityGroup(PriorityGroup))
		if err != nil {
			return
		}
		for m := range batch.Messages() {
			fetched <- m
		}
	}()
	waiting := func(n int) func() bool {
		return func() bool {
			ci, err := cons.Info(ctx)
			return err == nil && ci.NumWaiting >= n
		}
	}
	require.Eventually(t, waiting(1), 5*time.Second, 10*time.Millisecond)

	// The new owner binds the partition: nothing is unacknowledged, nobody is pinned.
	runReady(t, b)
	require.Eventually(t, waiting(2), 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the new owner looks at the partition meanwhile

	// The previous owner's request was first: it takes k-1 and the pin, hands k-1 back (a handover)
	// and lets go of the pin; k-2 arrives and goes to the new owner.
	publishUser(t, js, "k-1", "k")
	m1, ok := <-fetched
	require.True(t, ok, "the previous owner got no message")
	require.NoError(t, m1.NakWithDelay(time.Second))
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, b.ConsumerName(0), PriorityGroup))
	publishUser(t, js, "k-2", "k")

	require.Eventually(t, func() bool { return len(applied.snapshot()) == 2 }, 10*time.Second, 10*time.Millisecond,
		"applied %v", applied.snapshot())
	assert.Equal(t, []string{"k-1", "k-2"}, applied.snapshot())
}

// flakyAck is a delivered message whose first acknowledgements fail as they do while the server
// restarts (no responders), then reach the server.
type flakyAck struct {
	jetstream.Msg
	fails atomic.Int32
}

func (m *flakyAck) DoubleAck(ctx context.Context) error {
	if m.fails.Add(-1) >= 0 {
		return nats.ErrNoResponders
	}
	return m.Msg.DoubleAck(ctx)
}

// An event whose outcome is published but whose ack fails keeps its key, and is acknowledged again
// rather than run again: were its key to go on, the event would come back after AckWait and run
// after its successors (found by the chaos suite around a JetStream restart: an update applied
// again after four newer ones, leaving the user with an old title).
func TestAFailedAckHoldsTheKeyAndIsRetried(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	outcomes := collectOutcomes(t, js)
	var runs atomic.Int32
	c := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Logger: zerolog.Nop()}, HandlerFunc(func(context.Context, *Delivery) Result {
		runs.Add(1)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, c.consumerConfig(0))
	require.NoError(t, err)
	publishUser(t, js, "k-1", "k")
	m := fetchPinned(t, cons)
	msg := &flakyAck{Msg: m}
	msg.fails.Store(2)
	md, err := m.Metadata()
	require.NoError(t, err)
	tk := &task{msg: msg, d: &Delivery{Subject: m.Subject(), StreamSeq: md.Sequence.Stream, Attempt: 1}}

	for i := range 2 {
		disp, until := c.process(ctx, tk)
		require.Equal(t, wait, disp, "ack attempt %d failed: the key waits", i+1)
		assert.WithinDuration(t, time.Now().Add(time.Second), until, 500*time.Millisecond)
		assert.True(t, tk.acking)
	}
	disp, _ := c.process(ctx, tk)
	require.Equal(t, done, disp)
	assert.Equal(t, int32(1), runs.Load(), "the handler ran once")
	assert.Len(t, outcomes(1, 5*time.Second), 1, "one outcome")
	ci, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Zero(t, ci.NumAckPending, "acknowledged in the end")
	assert.Equal(t, duplicateFinished, c.keys.add(&task{msg: m, d: &Delivery{Subject: m.Subject(), StreamSeq: md.Sequence.Stream}}),
		"delivered again, it is recognised as done")
}

// A new owner reads the partition's parked keys when it starts running it, not when it binds:
// the previous owner, still pinned, parks a key after the bind, and the new owner must run that
// key's next event behind the parked one, not before it. Nor may it replay a parked key while the
// previous owner still holds the pin (that owner may be replaying it too). Found by the chaos
// suite: an Update run ahead of its parked Create (dead-lettered not_found), and a parked key
// replayed by two workers at once.
func TestNewOwnerReadsParkedKeysOnlyOnceThePreviousOwnerLetsGo(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	park, err := OpenParkStore(ctx, js, 1)
	require.NoError(t, err)
	applied := &appliedLog{}
	b := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "b", Park: park, Logger: zerolog.Nop()},
		HandlerFunc(func(_ context.Context, d *Delivery) Result {
			applied.add(d.Event.ID)
			return Result{Outcome: Outcome{Status: StatusSucceeded}}
		}))

	// The previous owner holds the pin with an event of another key, and key "old" was parked
	// before anyone bound (its window is due).
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, b.consumerConfig(0))
	require.NoError(t, err)
	parkIt := func(m jetstream.Msg, id string) string {
		t.Helper()
		md, err := m.Metadata()
		require.NoError(t, err)
		require.NoError(t, park.SetState(ctx, &KeyState{Subject: m.Subject(), Object: "User", Hold: HoldWindow,
			HeadSeq: md.Sequence.Stream, HeadEvent: id, Windows: 1, Since: time.Now(), NextWindow: time.Now()}))
		require.NoError(t, park.Park(ctx, m.Subject(), md.Sequence.Stream, md.Timestamp, id, m.Data(), m.Headers()))
		require.NoError(t, m.DoubleAck(ctx))
		return m.Subject()
	}
	publishUser(t, js, "old-1", "old")
	oldSubject := parkIt(fetchPinned(t, cons), "old-1")
	publishUser(t, js, "other-1", "other")
	held := fetchPinned(t, cons)

	runReady(t, b)

	// Still pinned, the previous owner takes new-1 and parks it (its send was deferred).
	publishUser(t, js, "new-1", "new")
	newSubject := parkIt(fetchPinned(t, cons), "new-1")
	publishUser(t, js, "new-2", "new")
	// The new owner would replay old-1 now, were it not waiting for the pin: once it has looked at
	// the partition after new-2 and decided to keep waiting, nothing may have run.
	waits := b.recoverWaits.Load()
	require.Eventually(t, func() bool { return b.recoverWaits.Load() >= waits+3 }, 5*time.Second, 10*time.Millisecond,
		"the new owner keeps asking the server whether the partition is its own")
	assert.Empty(t, applied.snapshot(), "nothing runs while the previous owner holds the pin")

	// The previous owner replays old-1 (its window came) and unparks it, finishes other-1 and lets go.
	applied.add("old-1")
	evs, err := park.Parked(ctx, oldSubject)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.NoError(t, park.Remove(ctx, evs[0].Seq))
	require.NoError(t, park.Unpark(ctx, evs[0].Subject, 0))
	applied.add("other-1")
	require.NoError(t, held.DoubleAck(ctx))
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, b.ConsumerName(0), PriorityGroup))

	require.Eventually(t, func() bool { return len(applied.snapshot()) == 4 }, 15*time.Second, 20*time.Millisecond,
		"applied %v", applied.snapshot())
	got := applied.snapshot()
	assert.Less(t, slices.Index(got, "new-1"), slices.Index(got, "new-2"), "new-2 waits behind the parked new-1: %v", got)
	// Nothing is left to run: every event acknowledged, none parked. Then nothing ran twice.
	waitAllAcked(t, js, b, topo)
	for _, subject := range []string{oldSubject, newSubject} {
		left, err := park.Parked(ctx, subject)
		require.NoError(t, err)
		assert.Empty(t, left, "still parked under %s", subject)
	}
	assert.Equal(t, []string{"old-1", "other-1", "new-1", "new-2"}, applied.snapshot(), "nothing ran twice")
}

// A worker that hands a partition over lets go of the pin only if the pin is its own: another
// worker may hold it by then (after a broker restart forgot the pins, the first pull took it), and
// unpinning that worker would hand the partition to whoever pulls next while it still runs events.
func TestHandingOverLeavesAnotherWorkersPinAlone(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	a := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "a", Logger: zerolog.Nop()},
		HandlerFunc(func(context.Context, *Delivery) Result { return Result{Outcome: Outcome{Status: StatusSucceeded}} }))

	// Another worker holds the pin, with an event in hand.
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, a.consumerConfig(0))
	require.NoError(t, err)
	publishUser(t, js, "k-1", "k")
	m := fetchPinned(t, cons)
	theirs := m.Headers().Get("Nats-Pin-Id")
	require.NotEmpty(t, theirs, "JetStream names the pin in every message")

	stop := runReady(t, a)
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, stop())

	ci, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, theirs, ci.PriorityGroups[0].PinnedClientID, "the other worker keeps its pin")
	require.NoError(t, m.DoubleAck(ctx))
}

// A worker that shuts down while a partition is still shut (its recovery gate waits for events
// held elsewhere) hands that partition's events back without running any: the gate used to open
// as the shutdown began, to let the hand-back through, and the lanes ran what it held before the
// shutdown marked it for the hand-back. Found by the chaos suite: a worker removed by SIGTERM ran
// two keys' events while their earlier events were parked by another worker (its gate had not
// read the parked keys yet), and the parked events were then skipped as superseded.
func TestShutdownRunsNothingOfAPartitionStillShut(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	ctx := context.Background()
	applied := &appliedLog{}
	b := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "b", Logger: zerolog.Nop(), DrainTimeout: 2 * time.Second},
		HandlerFunc(func(_ context.Context, d *Delivery) Result {
			applied.add(d.Event.ID)
			return Result{Outcome: Outcome{Status: StatusSucceeded}}
		}))

	// The previous owner holds k-1 (and the pin), then lets go of the pin but not of k-1.
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, b.consumerConfig(0))
	require.NoError(t, err)
	publishUser(t, js, "k-1", "k")
	m1 := fetchPinned(t, cons)

	stop := runReady(t, b)
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, b.ConsumerName(0), PriorityGroup))
	for _, id := range []string{"k-2", "j-1", "j-2"} {
		publishUser(t, js, id, id[:1])
	}
	require.Eventually(t, func() bool { return b.Stats().Received >= 3 }, 10*time.Second, 10*time.Millisecond,
		"the new owner never got the events")

	// Shut down while k-1 is still elsewhere: nothing of the partition has run, nor may run now.
	require.NoError(t, stop())
	assert.Empty(t, applied.snapshot(), "events of a partition still shut ran during the shutdown")
	ci, err := cons.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, 4, ci.NumAckPending+int(ci.NumPending), "k-1 held elsewhere and the three handed back, none acknowledged: %+v", ci)
	require.NoError(t, m1.DoubleAck(ctx))
}

// fetchPinned fetches one message of cons as a client of the partition's priority group (so the
// fetching client holds the pin), failing the test when none comes within 5 s.
func fetchPinned(t *testing.T, cons jetstream.Consumer) jetstream.Msg {
	t.Helper()
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second), jetstream.FetchPriorityGroup(PriorityGroup))
	require.NoError(t, err)
	for m := range batch.Messages() {
		return m
	}
	require.NoError(t, batch.Error())
	t.Fatal("the previous owner got no message")
	return nil
}
