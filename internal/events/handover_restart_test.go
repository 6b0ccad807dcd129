package events

import (
	"context"
	"os"
	"path/filepath"
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
	r := newRestartRig(t, nil) // the consumer's state before anything was delivered
	other := takerFrom(t, "worker-a")

	// reconnect is how soon a worker's connection comes back after the restart: worker-a's late,
	// so that worker-b is the one the restarted server pins the partition to.
	a := r.start("worker-a", 3*time.Second, 10*time.Second, r.slowFirst("worker-a"))
	r.runK1AndHoldK2(a)

	// worker-b joins and takes the partition; worker-a hands it over, but k-1 still runs there.
	b := r.start(other, 50*time.Millisecond, 10*time.Second, r.logged(other))
	require.Eventually(t, func() bool { return handingOver(a, 0) && b.recoverWaits.Load() > 0 }, 10*time.Second, 20*time.Millisecond,
		"worker-a hands the partition over and worker-b waits for the events worker-a holds")

	// The broker is killed and comes back with the consumer state from before k-1 was delivered.
	r.killAndSetBack(0)
	require.Eventually(t, func() bool { return b.Stats().Received >= 2 }, 10*time.Second, 20*time.Millisecond,
		"the restarted server delivers k-1 and k-2 again, to worker-b")
	// k-3 is stored after: worker-a, cut off from the server, never gets it.
	publishUser(t, r.s.JS, "k-3", "k")
	require.Eventually(t, func() bool { return b.Stats().Received >= 3 }, 10*time.Second, 20*time.Millisecond)
	waits := b.recoverWaits.Load()
	require.Eventually(t, func() bool { return b.recoverWaits.Load() >= waits+5 || len(r.runs.snapshot()) > 0 }, 10*time.Second, 20*time.Millisecond,
		"worker-b neither looks at the partition again nor runs it")
	assert.Empty(t, r.runs.snapshot(), "nothing of the partition runs on worker-b while worker-a still runs k-1")

	r.letFinish()
	got := r.endsWith(a, b, "k-3")
	for _, x := range got {
		if x.worker == other {
			// worker-b holds copies of events worker-a may have run: it must treat them as
			// delivered before, so that the pipeline checks what was last applied to the key;
			// not k-3, which worker-a was never delivered (a redelivery costs a lookup).
			assert.Equal(t, x.id != "k-3", x.redelivered, "worker-b ran %s, redelivered %v", x.id, x.redelivered)
		}
	}
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
	// The partition ran before: another key's event was delivered and acknowledged. Its consumer's
	// state now is what the server comes back with after the kill -9 below.
	r := newRestartRig(t, func(s *natstest.Server, cons jetstream.Consumer) {
		publishUser(t, s.JS, "j-1", "j")
		require.NoError(t, fetchPinned(t, cons).DoubleAck(context.Background()))
		st, err := s.JS.Stream(context.Background(), EventsStream)
		require.NoError(t, err)
		require.NoError(t, st.UnpinConsumer(context.Background(), cons.CachedInfo().Name, PriorityGroup))
	})

	// worker-a runs k-1, which takes long; k-2 waits behind it.
	a := r.start("worker-a", time.Second, ttl, r.slowFirst("worker-a"))
	r.runK1AndHoldK2(a)

	// The server is killed, stays down longer than the TTL (worker-a's entry expires), and comes
	// back with the consumer state from before k-1 was delivered. worker-a reconnects 1 s later.
	r.killAndSetBack(ttl + 500*time.Millisecond)
	kv, err := r.s.JS.KeyValue(context.Background(), PoolBucket)
	require.NoError(t, err)
	_, err = kv.Get(context.Background(), "worker-a")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "worker-a's entry outlived the outage")

	// worker-b starts now, finds nobody, takes the partition and is delivered k-1 and k-2 again.
	other := takerFrom(t, "worker-a")
	b := r.start(other, 50*time.Millisecond, ttl, r.logged(other))
	require.Eventually(t, func() bool { return b.Stats().Received >= 2 || a.Stats().Received > 2 }, 10*time.Second, 20*time.Millisecond,
		"the restarted server delivers k-1 and k-2 again")
	time.Sleep(ttl + time.Second) // worker-b would run them now, were it not waiting
	assert.Empty(t, r.runs.snapshot(), "a worker ran the partition while worker-a still ran k-1")

	r.letFinish()
	r.endsWith(a, b, "k-2")
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

// restartRig is an embedded JetStream server with a one-partition events stream, whose
// partition's consumer state can be set back at a restart to what it was when the rig was made,
// as a kill -9 leaves it; the workers it starts log the events they run.
type restartRig struct {
	t                *testing.T
	s                *natstest.Server
	topo             Topology
	stateDir, before string
	runs             runLog
	// started is closed when k-1 starts on a slowFirst worker, which runs it until finish is
	// closed (letFinish).
	started, finish chan struct{}
	once            sync.Once
}

// newRestartRig starts the server, creates the partition's consumer, lets prepare act on it, and
// keeps the consumer's state as the server then writes it down.
func newRestartRig(t *testing.T, prepare func(s *natstest.Server, cons jetstream.Consumer)) *restartRig {
	t.Helper()
	r := &restartRig{t: t, topo: Topology{Partitions: 1}, s: natstest.MustStartIn(t, t.TempDir()),
		started: make(chan struct{}), finish: make(chan struct{})}
	ctx := context.Background()
	require.NoError(t, r.topo.Ensure(ctx, r.s.JS))
	probe := NewConsumer(r.s.JS, r.topo, ConsumerConfig{}, nil)
	cons, err := r.s.JS.CreateOrUpdateConsumer(ctx, EventsStream, probe.consumerConfig(0))
	require.NoError(t, err)
	if prepare != nil {
		prepare(r.s, cons)
	}
	r.stateDir = filepath.Join(r.s.StoreDir(), "jetstream", "$G", "streams", EventsStream, "obs", probe.ConsumerName(0))
	r.before = t.TempDir()
	r.s.Restart(t, func() { copyDir(t, r.stateDir, r.before) })
	return r
}

// killAndSetBack stops the server, keeps it down for down, and starts it with the partition's
// consumer state set back.
func (r *restartRig) killAndSetBack(down time.Duration) {
	r.s.Restart(r.t, func() {
		time.Sleep(down)
		require.NoError(r.t, os.RemoveAll(r.stateDir))
		copyDir(r.t, r.before, r.stateDir)
	})
}

// start runs a pool worker whose connection comes back reconnect after the server does.
func (r *restartRig) start(name string, reconnect, ttl time.Duration, h Handler) *Consumer {
	t := r.t
	nc, err := nats.Connect(r.s.URL, nats.MaxReconnects(-1), nats.ReconnectWait(reconnect), nats.ReconnectJitter(0, 0))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	pool, err := JoinPool(runCtx, js, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
	require.NoError(t, err)
	c := NewConsumer(js, r.topo, ConsumerConfig{Pool: pool, Worker: name, DrainTimeout: 20 * time.Second, AckWait: 20 * time.Second, Logger: zerolog.Nop()}, h)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() { r.letFinish(); cancel(); <-done })
	return c
}

// logged is a handler that logs each event as run by worker.
func (r *restartRig) logged(worker string) Handler {
	return HandlerFunc(func(_ context.Context, d *Delivery) Result {
		r.runs.ran(worker, d, time.Now())
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
}

// slowFirst is logged, but k-1 runs until letFinish.
func (r *restartRig) slowFirst(worker string) Handler {
	return HandlerFunc(func(_ context.Context, d *Delivery) Result {
		begin := time.Now()
		if d.Event.ID == "k-1" {
			close(r.started)
			<-r.finish
		}
		r.runs.ran(worker, d, begin)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
}

func (r *restartRig) letFinish() { r.once.Do(func() { close(r.finish) }) }

// runK1AndHoldK2 publishes k-1, which a (a slowFirst worker) runs until letFinish, and k-2, which
// a holds behind it.
func (r *restartRig) runK1AndHoldK2(a *Consumer) {
	t := r.t
	require.Eventually(t, func() bool { return len(a.Stats().Partitions) == 1 }, 10*time.Second, 20*time.Millisecond)
	publishUser(t, r.s.JS, "k-1", "k")
	<-r.started
	publishUser(t, r.s.JS, "k-2", "k")
	require.Eventually(t, func() bool { return a.Stats().Held == 2 }, 10*time.Second, 20*time.Millisecond, "worker-a holds k-2 behind k-1")
}

// endsWith waits until b runs the partition and neither worker holds anything, then checks that
// no two workers ran events at once and that the key's last run was of event last; it returns the
// runs.
func (r *restartRig) endsWith(a, b *Consumer, last string) []workerRun {
	t := r.t
	require.Eventually(t, func() bool { return a.Stats().Held == 0 && b.Stats().Held == 0 && len(b.Stats().Partitions) == 1 },
		30*time.Second, 20*time.Millisecond, "the second worker runs the partition in the end")
	got := r.runs.snapshot()
	require.NotEmpty(t, got)
	var order []string
	for i, x := range got {
		for _, y := range got[i+1:] {
			if x.worker != y.worker && x.start.Before(y.end) && y.start.Before(x.end) {
				t.Errorf("%s ran %s while %s ran %s", x.worker, x.id, y.worker, y.id)
			}
		}
		order = append(order, x.worker+":"+x.id)
	}
	assert.Equal(t, last, got[len(got)-1].id, "the key ends as its last event left it: %v", order)
	t.Logf("ran %v", order)
	return got
}

// workerRun is one event a worker ran.
type workerRun struct {
	worker, id  string
	redelivered bool
	start, end  time.Time
}

// runLog is the events the workers of a test ran, in the order they finished.
type runLog struct{ syncList[workerRun] }

func (l *runLog) ran(worker string, d *Delivery, start time.Time) {
	l.add(workerRun{worker: worker, id: d.Event.ID, redelivered: d.Redelivered, start: start, end: time.Now()})
}
