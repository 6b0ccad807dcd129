package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// orderLog records, per key, the ids of the events the handler applied, in order.
type orderLog struct {
	mu  sync.Mutex
	by  map[string][]string
	all []string
}

func newOrderLog() *orderLog { return &orderLog{by: map[string][]string{}} }

func (l *orderLog) add(d *Delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := d.Event.Data.Key["userName"].(string)
	l.by[k] = append(l.by[k], d.Event.ID)
	l.all = append(l.all, d.Event.ID)
}

func (l *orderLog) key(k string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.by[k]...)
}

func (l *orderLog) sequence() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

func publishUser(t *testing.T, js jetstream.JetStream, id, user string) {
	t.Helper()
	_, err := NewPublisher(js).PublishEvent(context.Background(),
		NewEvent(id, "/t", Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": user}}))
	require.NoError(t, err)
}

// Events queued behind a slow one outlive AckWait without being redelivered behind their
// successors (issue 8: with one lane, AckWait 1 s and a 700 ms handler the applied order was
// k-1#1 k-2#1 k-3#1 k-4#1 k-3#2 k-4#2 k-4#3).
func TestConsumerQueuedEventsOutliveAckWait(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	log := newOrderLog()
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		log.add(d)
		time.Sleep(700 * time.Millisecond)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _, _ := runConsumer(t, js, topo, ConsumerConfig{Lanes: 1, AckWait: time.Second}, h)
	var want []string
	for k := 1; k <= 3; k++ {
		for i := 1; i <= k; i++ {
			id := fmt.Sprintf("k-%d#%d", k, i)
			want = append(want, id)
			publishUser(t, js, id, fmt.Sprintf("k-%d", k))
		}
	}
	got := outcomes(len(want), 30*time.Second)
	require.Len(t, got, len(want))
	waitAllAcked(t, js, c, topo)
	for k := 1; k <= 3; k++ {
		var exp []string
		for i := 1; i <= k; i++ {
			exp = append(exp, fmt.Sprintf("k-%d#%d", k, i))
		}
		assert.Equal(t, exp, log.key(fmt.Sprintf("k-%d", k)), "key k-%d applied out of order or twice", k)
	}
	assert.Len(t, log.sequence(), len(want), "an event was handled twice: %v", log.sequence())
	// Kept alive, none was even delivered again: every delivery of the consumer was a first one.
	cons, err := js.Consumer(context.Background(), EventsStream, c.ConsumerName(0))
	require.NoError(t, err)
	ci, err := cons.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(len(want)), ci.Delivered.Consumer, "deliveries, %d of them first ones", len(want))
}

// A deferred event holds its key: the key's later events wait behind it (in order), while other
// keys go on (issue 8: "a Create answered 503 is deferred, the Update of the same key runs next").
func TestConsumerDeferralHoldsItsKeyOnly(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	log := newOrderLog()
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		log.add(d)
		if d.Event.ID == "a-1" && d.Attempt == 1 {
			return Result{
				Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "503"}},
				RetryAt: time.Now().Add(1500 * time.Millisecond),
			}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	runConsumer(t, js, topo, ConsumerConfig{Lanes: 1}, h)
	publishUser(t, js, "a-1", "a")
	publishUser(t, js, "a-2", "a")
	publishUser(t, js, "a-3", "a")
	for i := range 20 {
		publishUser(t, js, fmt.Sprintf("b-%d", i), fmt.Sprintf("b%d", i))
	}
	got := outcomes(24, 20*time.Second)
	require.Len(t, got, 24)
	assert.Equal(t, []string{"a-1", "a-1", "a-2", "a-3"}, log.key("a"), "the deferred event's successors must wait behind it")
	// The other keys did not wait for the window: all of them finished before a-1's retry.
	seq := log.sequence()
	retry := -1
	for i, id := range seq {
		if id == "a-1" && i > 0 {
			retry = i
		}
	}
	require.Positive(t, retry)
	for _, id := range seq[retry:] {
		assert.NotContains(t, id, "b-", "key b waited for a's window: %v", seq)
	}
	byID := map[string]*Outcome{}
	for _, o := range got {
		byID[o.ID] = o
	}
	require.Contains(t, byID, "a-1/deferred/1")
	assert.Equal(t, 2, byID["a-1"].Attempt)
}

// A key that waits (for a reference, Resume) frees its lane: with one lane, other keys run meanwhile,
// and the waiting key's later events stay behind it.
func TestConsumerWaitingKeyFreesItsLane(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	log := newOrderLog()
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		log.add(d)
		if d.Event.ID == "w-1" {
			n, _ := d.State.(int)
			if n < 3 {
				d.State = n + 1
				return Result{Resume: time.Now().Add(300 * time.Millisecond)}
			}
			return Result{Outcome: Outcome{Status: StatusSucceeded, Reason: fmt.Sprintf("resumed %d times", n)}}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	runConsumer(t, js, topo, ConsumerConfig{Lanes: 1}, h)
	publishUser(t, js, "w-1", "w")
	publishUser(t, js, "w-2", "w")
	for i := range 10 {
		publishUser(t, js, fmt.Sprintf("o-%d", i), fmt.Sprintf("o%d", i))
	}
	got := outcomes(12, 20*time.Second)
	require.Len(t, got, 12)
	assert.Equal(t, []string{"w-1", "w-1", "w-1", "w-1", "w-2"}, log.key("w"))
	seq := log.sequence()
	assert.Equal(t, "w-2", seq[len(seq)-1], "the other keys ran while w waited: %v", seq)
	for _, o := range got {
		if o.InputID == "w-1" {
			assert.Equal(t, "resumed 3 times", o.Reason, "the delivery's state is kept across resumptions")
			assert.Equal(t, 1, o.Attempt, "resuming is not a new window")
		}
	}
}

// A shutdown hands every held event back in key order, so that the next worker applies each key's
// events in publish order.
func TestConsumerShutdownHandsBackInKeyOrder(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	log := newOrderLog()
	started := make(chan struct{}, 100)
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		t.Logf("first: %s seq %d redelivered %v", d.Event.ID, d.StreamSeq, d.Redelivered)
		log.add(d)
		started <- struct{}{}
		if d.Event.ID == "s-1" {
			<-release
		}
		if d.Event.ID == "x-1" {
			return Result{
				Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "503"}},
				RetryAt: time.Now().Add(time.Hour),
			}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	first, cancel, done := runConsumer(t, js, topo, ConsumerConfig{Lanes: 2, DrainTimeout: 10 * time.Second}, h)
	publishUser(t, js, "x-1", "x")
	<-started
	publishUser(t, js, "s-1", "s")
	<-started
	for i := 2; i <= 5; i++ {
		publishUser(t, js, fmt.Sprintf("s-%d", i), "s")
		publishUser(t, js, fmt.Sprintf("x-%d", i), "x")
	}
	require.Eventually(t, func() bool { return first.Stats().Held == 10 }, 10*time.Second, 10*time.Millisecond)
	cancel()
	close(release) // s-1 finishes within the drain deadline
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	// A second worker takes over: it must apply s-2..s-5 and x-1..x-5 in order.
	runConsumer(t, js, topo, ConsumerConfig{Lanes: 4}, HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		t.Logf("second: %s seq %d redelivered %v", d.Event.ID, d.StreamSeq, d.Redelivered)
		log.add(d)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	got := outcomes(11, 20*time.Second) // 10 final outcomes and x-1's deferral
	require.Len(t, got, 11)
	assert.Equal(t, []string{"s-1", "s-2", "s-3", "s-4", "s-5"}, log.key("s"))
	assert.Equal(t, []string{"x-1", "x-1", "x-2", "x-3", "x-4", "x-5"}, log.key("x"))
}

// A worker stopped while the JetStream server is down stops within its drain deadline, waiting on
// nothing the server would have to answer, and loses nothing: what it held comes back once the
// server does, and a second worker applies it in key order (found by a CI run: a worker stopped with
// NATS down took 15 to 30 s, ten of them draining each partition's pull).
func TestConsumerStoppedWhileNATSIsDownLosesNothing(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	s := natstest.MustStart(t)
	ctx, cancelSetup := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelSetup()
	require.NoError(t, topo.Ensure(ctx, s.JS))
	outcomes := collectOutcomes(t, s.JS)
	log := newOrderLog()
	release := make(chan struct{})
	first, cancel, done := runConsumer(t, s.JS, topo, ConsumerConfig{Lanes: 2, DrainTimeout: 2 * time.Second, AckWait: 3 * time.Second},
		HandlerFunc(func(ctx context.Context, d *Delivery) Result {
			log.add(d)
			<-release // s-1 and x-1 run until the server is down; the rest wait behind them
			return Result{Outcome: Outcome{Status: StatusSucceeded}}
		}))
	for i := 1; i <= 5; i++ {
		publishUser(t, s.JS, fmt.Sprintf("s-%d", i), "s")
		publishUser(t, s.JS, fmt.Sprintf("x-%d", i), "x")
	}
	require.Eventually(t, func() bool { return first.Stats().Held == 10 && len(log.sequence()) == 2 }, 10*time.Second, 10*time.Millisecond)

	s.Restart(t, func() {
		require.Eventually(t, func() bool { return !s.Conn.IsConnected() }, 5*time.Second, 10*time.Millisecond)
		cancel()
		close(release) // s-1 and x-1 finish, but neither their outcomes nor their acks can be written
		start := time.Now()
		select {
		case err := <-done:
			require.NoError(t, err)
			// The drain deadline, and a little: the events that ran could not be acknowledged.
			assert.Less(t, time.Since(start), 6*time.Second, "stopped %s after its signal with NATS down (DrainTimeout 2s)", time.Since(start))
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return with NATS down")
		}
	})

	// The second worker waits out the pin the first could not let go of (PinnedTTL), and AckWait
	// for the events the first never handed back.
	runConsumer(t, s.JS, topo, ConsumerConfig{Lanes: 4}, HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		log.add(d)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	got := outcomes(10, DefaultPinnedTTL+45*time.Second)
	assert.Len(t, got, 10, "one outcome per event, each from the second worker")
	assert.Equal(t, []string{"s-1", "s-1", "s-2", "s-3", "s-4", "s-5"}, log.key("s"), "s-1 ran again: its first run was never acknowledged")
	assert.Equal(t, []string{"x-1", "x-1", "x-2", "x-3", "x-4", "x-5"}, log.key("x"))
}

// An event whose handler panics is dead-lettered with the panic as its reason, and the worker goes on.
func TestConsumerDeadLettersAPanic(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		if d.Event.ID == "p-1" {
			panic("boom: the handler's bug")
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	publishUser(t, js, "p-1", "p")
	publishUser(t, js, "p-2", "p")
	got := outcomes(2, 10*time.Second)
	require.Len(t, got, 2)
	assert.Equal(t, StatusDeadLettered, got[0].Status)
	require.NotNil(t, got[0].Error)
	assert.Equal(t, "internal", got[0].Error.Class)
	assert.Contains(t, got[0].Reason, "boom: the handler's bug")
	assert.Equal(t, StatusSucceeded, got[1].Status)
}

// A consumer deleted behind the worker's back is recreated, and readiness says so meanwhile
// (issue 7 item 14).
func TestConsumerRecreatesADeletedConsumer(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _, _ := runConsumer(t, js, topo, ConsumerConfig{}, h)
	require.Eventually(t, func() bool { return c.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, js.DeleteConsumer(context.Background(), EventsStream, c.ConsumerName(0)))
	require.NoError(t, js.DeleteConsumer(context.Background(), EventsStream, c.ConsumerName(1)))
	require.Eventually(t, func() bool {
		_, err0 := js.Consumer(context.Background(), EventsStream, c.ConsumerName(0))
		_, err1 := js.Consumer(context.Background(), EventsStream, c.ConsumerName(1))
		return err0 == nil && err1 == nil && c.Ready() == nil
	}, 15*time.Second, 20*time.Millisecond, "the consumers were not recreated")
	for i := range 10 {
		publishUser(t, js, fmt.Sprintf("r-%d", i), fmt.Sprintf("r%d", i))
	}
	assert.Len(t, outcomes(10, 15*time.Second), 10, "events after the recreation are consumed")
}

// Stopping the worker while its consumers are being created is a clean stop, not an error
// (issue 7 item 6: "create consumer for partition 3: context canceled").
func TestConsumerStoppedWhileStartingIsNotAnError(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 32}
	js := setup(t, topo)
	c := NewConsumer(js, topo, ConsumerConfig{}, HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, c.Run(ctx))
	assert.Error(t, c.Ready(), "a stopped loop is not ready")
}

// Consumers that can't be created make Run fail (the worker exits non-zero instead of running
// without consuming; issue 7 item 13).
func TestConsumerFailsWhenAConsumerCantBeCreated(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	topo := Topology{Partitions: 2}
	c := NewConsumer(s.JS, topo, ConsumerConfig{}, HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Run(ctx) // no stream: the topology was never ensured
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partition 0")
}
