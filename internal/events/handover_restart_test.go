package events

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// A JetStream server killed with -9 comes back with its streams (every write fsynced before it
// was acknowledged) but with an older state of its consumers, and without any pin: it delivers
// again what a worker still holds, and its count of events delivered elsewhere no longer includes
// them. A new owner must then not run a key's successor while the previous owner, handing the
// partition over, still runs the key's older event: the pool entry in which the previous owner
// says it still holds the partition is what stops it (found by the chaos suite after a JetStream
// restart: two workers ran one partition at once and four keys were applied out of order).
//
// The test restarts an embedded server with the partition's consumer state put back to what it
// was before anything was delivered, as a kill -9 leaves it.
func TestNewOwnerWaitsForAPreviousOwnerTheRestartedBrokerForgot(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStartIn(t, t.TempDir())
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, s.JS))
	other := takerFrom(t, "worker-a")

	// The consumer's state before anything was delivered, as the server writes it down.
	probe := NewConsumer(s.JS, topo, ConsumerConfig{}, nil)
	_, err := s.JS.CreateOrUpdateConsumer(ctx, EventsStream, probe.consumerConfig(0))
	require.NoError(t, err)
	stateDir := filepath.Join(s.StoreDir(), "jetstream", "$G", "streams", EventsStream, "obs", probe.ConsumerName(0))
	before := t.TempDir()
	s.Restart(t, func() { copyDir(t, stateDir, before) })

	// run is one event a worker ran.
	type run struct {
		worker, id  string
		redelivered bool
		start, end  time.Time
	}
	var mu sync.Mutex
	var runs []run
	ran := func(worker string, d *Delivery, start time.Time) {
		mu.Lock()
		runs = append(runs, run{worker: worker, id: d.Event.ID, redelivered: d.Redelivered, start: start, end: time.Now()})
		mu.Unlock()
	}
	snapshot := func() []run {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(runs)
	}
	started, finish := make(chan struct{}), make(chan struct{})
	letFinish := func() {
		select {
		case <-finish:
		default:
			close(finish)
		}
	}
	// reconnect is how soon a worker's connection comes back after the restart: worker-a's late,
	// so that worker-b is the one the restarted server pins the partition to.
	start := func(name string, reconnect time.Duration, h Handler) *Consumer {
		nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(reconnect), nats.ReconnectJitter(0, 0))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		runCtx, cancel := context.WithCancel(ctx)
		pool, err := JoinPool(runCtx, js, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: 10 * time.Second, Logger: zerolog.Nop()})
		require.NoError(t, err)
		c := NewConsumer(js, topo, ConsumerConfig{Pool: pool, Worker: name, DrainTimeout: 20 * time.Second, AckWait: 20 * time.Second, Logger: zerolog.Nop()}, h)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		t.Cleanup(func() { letFinish(); cancel(); <-done })
		return c
	}
	a := start("worker-a", 3*time.Second, HandlerFunc(func(_ context.Context, d *Delivery) Result {
		begin := time.Now()
		if d.Event.ID == "k-1" {
			close(started)
			<-finish
		}
		ran("worker-a", d, begin)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	require.Eventually(t, func() bool { return len(a.Stats().Partitions) == 1 }, 10*time.Second, 20*time.Millisecond)
	publishUser(t, s.JS, "k-1", "k")
	<-started
	publishUser(t, s.JS, "k-2", "k")
	require.Eventually(t, func() bool { return a.Stats().Held == 2 }, 10*time.Second, 20*time.Millisecond, "worker-a holds k-2 behind k-1")

	// worker-b joins and takes the partition; worker-a hands it over, but k-1 still runs there.
	b := start(other, 50*time.Millisecond, HandlerFunc(func(_ context.Context, d *Delivery) Result {
		ran(other, d, time.Now())
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	require.Eventually(t, func() bool { return handingOver(a, 0) && b.recoverWaits.Load() > 0 }, 10*time.Second, 20*time.Millisecond,
		"worker-a hands the partition over and worker-b waits for the events worker-a holds")

	// The broker is killed and comes back with the consumer state from before k-1 was delivered.
	s.Restart(t, func() {
		require.NoError(t, os.RemoveAll(stateDir))
		copyDir(t, before, stateDir)
	})
	require.Eventually(t, func() bool { return b.Stats().Received >= 2 }, 10*time.Second, 20*time.Millisecond,
		"the restarted server delivers k-1 and k-2 again, to worker-b")
	// k-3 is stored after: worker-a, cut off from the server, never gets it.
	publishUser(t, s.JS, "k-3", "k")
	require.Eventually(t, func() bool { return b.Stats().Received >= 3 }, 10*time.Second, 20*time.Millisecond)
	waits := b.recoverWaits.Load()
	require.Eventually(t, func() bool { return b.recoverWaits.Load() >= waits+5 || len(snapshot()) > 0 }, 10*time.Second, 20*time.Millisecond,
		"worker-b neither looks at the partition again nor runs it")
	assert.Empty(t, snapshot(), "nothing of the partition runs on worker-b while worker-a still runs k-1")

	letFinish()
	require.Eventually(t, func() bool { return a.Stats().Held == 0 && b.Stats().Held == 0 && len(b.Stats().Partitions) == 1 },
		30*time.Second, 20*time.Millisecond, "worker-b runs the partition in the end")
	got := snapshot()
	require.NotEmpty(t, got)
	for i, x := range got {
		for _, y := range got[i+1:] {
			if x.worker != y.worker && x.start.Before(y.end) && y.start.Before(x.end) {
				t.Errorf("%s ran %s while %s ran %s", x.worker, x.id, y.worker, y.id)
			}
		}
		if x.worker == other {
			// worker-b holds copies of events worker-a may have run: it must treat them as
			// delivered before, so that the pipeline checks what was last applied to the key;
			// not k-3, which worker-a was never delivered (a redelivery costs a lookup).
			assert.Equal(t, x.id != "k-3", x.redelivered, "worker-b ran %s, redelivered %v", x.id, x.redelivered)
		}
	}
	var order []string
	for _, r := range got {
		order = append(order, r.worker+":"+r.id)
	}
	assert.Equal(t, "k-3", got[len(got)-1].id, "the key ends as its last event left it: %v", order)
	t.Logf("ran %v", order)
}

// handingOver says whether c is handing partition p over.
func handingOver(c *Consumer, p int) bool {
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	return c.keys.handover[p]
}

// copyDir copies the regular files of directory from into directory to.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), raw, 0o644))
	}
}

// A worker whose partition stays open through a JetStream restart must not run a key's event
// delivered under the new pin before the key's older event the server delivered to another worker
// in between: the restarted server forgot the pin, so another client's pull was pinned first,
// took k-2 and handed it back with a delay, and then this worker was pinned and delivered k-3
// (found by the chaos suite with -broker-down 15s: the pool's entries had expired, another worker
// took the partition for a moment, and a user's update was skipped as superseded by its
// successor, run first).
func TestAPartitionWhosePinMovedWaitsForTheEventsDeliveredElsewhere(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStartIn(t, t.TempDir())
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, s.JS))
	applied := &appliedLog{}

	// The worker's connection comes back 3 s after the restart: the other client pulls first.
	nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(3*time.Second), nats.ReconnectJitter(0, 0))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	a := NewConsumer(js, topo, ConsumerConfig{Partitions: []int{0}, Worker: "a", Logger: zerolog.Nop()},
		HandlerFunc(func(_ context.Context, d *Delivery) Result {
			applied.add(d.Event.ID)
			return Result{Outcome: Outcome{Status: StatusSucceeded}}
		}))
	runReady(t, a)
	publishUser(t, s.JS, "k-1", "k")
	require.Eventually(t, func() bool { return len(applied.snapshot()) == 1 }, 10*time.Second, 10*time.Millisecond,
		"the worker never ran k-1")
	regates := a.regates.Load()

	s.Restart(t, nil)

	// Another client, back first, is pinned and takes k-2, then hands it back with a delay and lets
	// go of the pin; k-3 arrives.
	other, err := nats.Connect(s.URL)
	require.NoError(t, err)
	t.Cleanup(other.Close)
	ojs, err := jetstream.New(other)
	require.NoError(t, err)
	cons, err := ojs.Consumer(ctx, EventsStream, a.ConsumerName(0))
	require.NoError(t, err)
	publishUser(t, s.JS, "k-2", "k")
	m2 := fetchPinned(t, cons)
	require.NoError(t, m2.NakWithDelay(6*time.Second))
	st, err := s.JS.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, a.ConsumerName(0), PriorityGroup))
	publishUser(t, s.JS, "k-3", "k")

	require.Eventually(t, func() bool { return len(applied.snapshot()) == 3 }, 20*time.Second, 10*time.Millisecond,
		"applied %v", applied.snapshot())
	assert.Equal(t, []string{"k-1", "k-2", "k-3"}, applied.snapshot())
	assert.Greater(t, a.regates.Load(), regates, "the partition was not shut when its pin moved")
}

// A worker that joins the pool just after a JetStream server that was down longer than the pool's
// TTL came back finds no entry: the server dropped them all, and a worker still running events of
// a partition has not reconnected and renewed its entry yet. The joining worker must not take the
// absence of a claim for proof until it has watched the pool for a whole TTL, when every live
// member has renewed (found by the chaos suite with -broker-down 15s: a worker restarted during
// the outage ran a key's delete again after its successor's create, which the old owner had run).
func TestAWorkerJoiningAfterALongOutageWaitsForTheOthersToRenew(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	topo := Topology{Partitions: 1}
	s := natstest.MustStartIn(t, t.TempDir())
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, s.JS))

	// The partition ran before: another key's event was delivered and acknowledged. Its consumer's
	// state now is what the server comes back with after the kill -9 below.
	probe := NewConsumer(s.JS, topo, ConsumerConfig{}, nil)
	cons, err := s.JS.CreateOrUpdateConsumer(ctx, EventsStream, probe.consumerConfig(0))
	require.NoError(t, err)
	publishUser(t, s.JS, "j-1", "j")
	require.NoError(t, fetchPinned(t, cons).DoubleAck(ctx))
	st, err := s.JS.Stream(ctx, EventsStream)
	require.NoError(t, err)
	require.NoError(t, st.UnpinConsumer(ctx, probe.ConsumerName(0), PriorityGroup))
	stateDir := filepath.Join(s.StoreDir(), "jetstream", "$G", "streams", EventsStream, "obs", probe.ConsumerName(0))
	before := t.TempDir()
	s.Restart(t, func() { copyDir(t, stateDir, before) })

	type run struct {
		worker, id string
		start, end time.Time
	}
	var mu sync.Mutex
	var runs []run
	ran := func(worker string, d *Delivery, start time.Time) {
		mu.Lock()
		runs = append(runs, run{worker: worker, id: d.Event.ID, start: start, end: time.Now()})
		mu.Unlock()
	}
	snapshot := func() []run {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(runs)
	}
	started, finish := make(chan struct{}), make(chan struct{})
	var once sync.Once
	letFinish := func() { once.Do(func() { close(finish) }) }
	start := func(name string, reconnect time.Duration, h Handler) *Consumer {
		nc, err := nats.Connect(s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(reconnect), nats.ReconnectJitter(0, 0))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		runCtx, cancel := context.WithCancel(ctx)
		pool, err := JoinPool(runCtx, js, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
		require.NoError(t, err)
		c := NewConsumer(js, topo, ConsumerConfig{Pool: pool, Worker: name, DrainTimeout: 20 * time.Second, AckWait: 20 * time.Second, Logger: zerolog.Nop()}, h)
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		t.Cleanup(func() { letFinish(); cancel(); <-done })
		return c
	}

	// worker-a runs k-1, which takes long; k-2 waits behind it.
	a := start("worker-a", time.Second, HandlerFunc(func(_ context.Context, d *Delivery) Result {
		begin := time.Now()
		if d.Event.ID == "k-1" {
			close(started)
			<-finish
		}
		ran("worker-a", d, begin)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	require.Eventually(t, func() bool { return len(a.Stats().Partitions) == 1 }, 10*time.Second, 20*time.Millisecond)
	publishUser(t, s.JS, "k-1", "k")
	<-started
	publishUser(t, s.JS, "k-2", "k")
	require.Eventually(t, func() bool { return a.Stats().Held == 2 }, 10*time.Second, 20*time.Millisecond)

	// The server is killed, stays down longer than the TTL (worker-a's entry expires), and comes
	// back with the consumer state from before k-1 was delivered. worker-a reconnects 1 s later.
	s.Restart(t, func() {
		time.Sleep(ttl + 500*time.Millisecond)
		require.NoError(t, os.RemoveAll(stateDir))
		copyDir(t, before, stateDir)
	})
	kv, err := s.JS.KeyValue(ctx, PoolBucket)
	require.NoError(t, err)
	_, err = kv.Get(ctx, "worker-a")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "worker-a's entry outlived the outage")

	// worker-b starts now, finds nobody, takes the partition and is delivered k-1 and k-2 again.
	other := takerFrom(t, "worker-a")
	b := start(other, 50*time.Millisecond, HandlerFunc(func(_ context.Context, d *Delivery) Result {
		ran(other, d, time.Now())
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	require.Eventually(t, func() bool { return b.Stats().Received >= 2 || a.Stats().Received > 2 }, 10*time.Second, 20*time.Millisecond,
		"the restarted server delivers k-1 and k-2 again")
	time.Sleep(ttl + time.Second) // worker-b would run them now, were it not waiting
	assert.Empty(t, snapshot(), "a worker ran the partition while worker-a still ran k-1")

	letFinish()
	require.Eventually(t, func() bool { return a.Stats().Held == 0 && b.Stats().Held == 0 && len(b.Stats().Partitions) == 1 },
		30*time.Second, 20*time.Millisecond, "worker-b runs the partition in the end")
	got := snapshot()
	require.NotEmpty(t, got)
	for i, x := range got {
		for _, y := range got[i+1:] {
			if x.worker != y.worker && x.start.Before(y.end) && y.start.Before(x.end) {
				t.Errorf("%s ran %s while %s ran %s", x.worker, x.id, y.worker, y.id)
			}
		}
	}
	var order []string
	for _, r := range got {
		order = append(order, r.worker+":"+r.id)
	}
	assert.Equal(t, "k-2", got[len(got)-1].id, "the key ends as its last event left it: %v", order)
	t.Logf("ran %v", order)
}
