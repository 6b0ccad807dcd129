package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
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
	"pgregory.net/rapid"

	"github.com/scimflow/scimflow/internal/natstest"
)

// Every partition has exactly one owner, every member owns ⌊n/m⌋ or ⌈n/m⌉ of them, and the
// assignment is the same whatever the order of the members.
func TestAssignProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 128).Draw(t, "partitions")
		members := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z]{1,8}`), 1, 12, rapid.ID[string]).Draw(t, "members")
		a := Assign(members, n)
		var all []int
		for _, ps := range a {
			all = append(all, ps...)
		}
		slices.Sort(all)
		if len(all) != n {
			t.Fatalf("%d partitions assigned, want %d: %v", len(all), n, a)
		}
		for i, p := range all {
			if p != i {
				t.Fatalf("partition %d assigned twice or not at all: %v", i, all)
			}
		}
		lo, hi := n/len(members), (n+len(members)-1)/len(members)
		for _, m := range members {
			if got := len(a[m]); got < lo || got > hi {
				t.Fatalf("%s owns %d of %d partitions, want %d..%d: %v", m, got, n, lo, hi, a)
			}
		}
		shuffled := slices.Clone(members)
		slices.Reverse(shuffled)
		if fmt.Sprint(Assign(shuffled, n)) != fmt.Sprint(a) {
			t.Fatalf("the assignment depends on the order of the members")
		}
	})
}

// A member joining moves few partitions besides the ones it takes: plain rendezvous hashing moves
// none, and the bound on loads costs at most half as many again on average, with 32 partitions and
// up to seven members (pools of names drawn from a fixed seed).
func TestAssignMovesLittle(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	name := func() string { return fmt.Sprintf("worker-%x", rng.Uint64()) }
	const n, pools = 32, 300
	for m := 1; m <= 6; m++ {
		moved, taken := 0, 0
		for range pools {
			var members []string
			for range m {
				members = append(members, name())
			}
			newcomer := name()
			before, after := owners(Assign(members, n)), owners(Assign(append(members, newcomer), n))
			for p := range n {
				if before[p] != after[p] {
					moved++
				}
				if after[p] == newcomer {
					taken++
				}
			}
		}
		assert.LessOrEqual(t, float64(moved), 1.5*float64(taken), "%d → %d members: %d partitions moved for %d the newcomers took", m, m+1, moved, taken)
	}
}

// owners is the owner of each partition of an assignment.
func owners(a map[string][]int) map[int]string {
	out := map[int]string{}
	for m, ps := range a {
		for _, p := range ps {
			out[p] = m
		}
	}
	return out
}

// poolWorker is one worker of a pool: its own NATS connection, pool membership and consume loop.
type poolWorker struct {
	name   string
	c      *Consumer
	cancel context.CancelFunc
	done   chan error
}

// handled is one event a worker ran: which partition, which worker, when.
type handled struct {
	partition  int
	worker     string
	start, end time.Time
	key, id    string
}

// handledLog is the events the pool's workers handled.
type handledLog = syncList[handled]

func startPoolWorker(t *testing.T, url string, topo Topology, name string, log *handledLog) *poolWorker {
	t.Helper()
	return startPoolWorkerTTL(t, url, topo, name, log, 2*time.Second)
}

// startPoolWorkerTTL is startPoolWorker with the pool's member TTL given.
func startPoolWorkerTTL(t *testing.T, url string, topo Topology, name string, log *handledLog, ttl time.Duration) *poolWorker {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := JoinPool(ctx, js, name, PoolConfig{Member: name, Heartbeat: 200 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
	require.NoError(t, err)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		start := time.Now()
		time.Sleep(2 * time.Millisecond)
		log.add(handled{partition: d.Partition, worker: name, start: start, end: time.Now(),
			key: d.Event.Data.Key["userName"].(string), id: d.Event.ID})
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c := NewConsumer(js, topo, ConsumerConfig{Pool: pool, Worker: name, DrainTimeout: 5 * time.Second, Logger: zerolog.Nop()}, h)
	w := &poolWorker{name: name, c: c, cancel: cancel, done: make(chan error, 1)}
	go func() { w.done <- c.Run(ctx) }()
	t.Cleanup(w.stop)
	return w
}

// runsAll says whether c runs each of partitions (bound, and not waiting for the events delivered
// before: recover).
func runsAll(c *Consumer, partitions []int) bool {
	c.keys.mu.Lock()
	defer c.keys.mu.Unlock()
	for _, p := range partitions {
		if c.keys.gated[p] {
			return false
		}
	}
	return true
}

func (w *poolWorker) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	<-w.done
}

// Workers share the partitions with no configuration: each takes its share, one that stops hands
// its partitions over, one that joins takes some; no partition is ever consumed by two workers at
// once, every event runs once, and each key's events run in publish order.
func TestPoolSharesPartitionsExclusively(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 8}
	s := natstest.MustStart(t)
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes := collectOutcomes(t, s.JS)
	log := &handledLog{}

	a := startPoolWorker(t, s.URL, topo, "worker-a", log)
	b := startPoolWorker(t, s.URL, topo, "worker-b", log)
	require.Eventually(t, func() bool {
		pa, pb := a.c.Stats().Partitions, b.c.Stats().Partitions
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == 8 && runsAll(a.c, pa) && runsAll(b.c, pb)
	}, 10*time.Second, 20*time.Millisecond, "two workers did not split the partitions")

	const keys, perKey = 40, 15
	pub := NewPublisher(s.JS)
	publish := func(round int) {
		for k := range keys {
			id := fmt.Sprintf("k%02d-%02d", k, round)
			_, err := pub.PublishEvent(context.Background(), NewEvent(id, "/t",
				Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": fmt.Sprintf("k%02d", k)}}))
			require.NoError(t, err)
		}
	}
	for round := range 5 {
		publish(round)
	}
	// Both run events before the membership changes (a partition let run on trust waits for
	// proof of its pin at its first delivery, up to a recovery tick).
	require.Eventually(t, func() bool {
		ran := map[string]bool{}
		for _, h := range log.snapshot() {
			ran[h.worker] = true
		}
		return ran["worker-a"] && ran["worker-b"]
	}, 10*time.Second, 10*time.Millisecond, "both workers run events")
	c := startPoolWorker(t, s.URL, topo, "worker-c", log) // joins mid-stream
	for round := 5; round < 10; round++ {
		publish(round)
	}
	a.stop() // leaves mid-stream
	for round := 10; round < perKey; round++ {
		publish(round)
	}
	got := outcomes(keys*perKey, 30*time.Second)
	require.Len(t, got, keys*perKey)
	require.Eventually(t, func() bool {
		pb, pc := b.c.Stats().Partitions, c.c.Stats().Partitions
		return len(pb)+len(pc) == 8 && len(pc) > 0
	}, 10*time.Second, 20*time.Millisecond)

	all := log.snapshot()
	seen := map[string]int{}
	byKey := map[string][]string{}
	workers := map[string]bool{}
	for _, h := range all {
		seen[h.id]++
		byKey[h.key] = append(byKey[h.key], h.id)
		workers[h.worker] = true
	}
	assert.Len(t, workers, 3, "every worker took part")
	for id, n := range seen {
		assert.Equal(t, 1, n, "%s ran %d times", id, n)
	}
	for k, ids := range byKey {
		assert.True(t, slices.IsSorted(ids), "key %s ran out of order: %v", k, ids)
	}
	// Exclusive: two workers never ran events of one partition at overlapping times.
	for i, x := range all {
		for _, y := range all[i+1:] {
			if x.partition == y.partition && x.worker != y.worker && x.start.Before(y.end) && y.start.Before(x.end) {
				t.Errorf("partition %d ran on %s and %s at once", x.partition, x.worker, y.worker)
			}
		}
	}
	assert.Positive(t, b.c.Stats().OwnershipMoves+c.c.Stats().OwnershipMoves, "ownership moved")
}

// takerFrom is a member name that, joining a pool of one partition with member, takes it.
func takerFrom(t *testing.T, member string) string {
	t.Helper()
	for i := range 100 {
		name := fmt.Sprintf("worker-b%d", i)
		if owned := Assign([]string{member, name}, 1)[name]; len(owned) == 1 {
			return name
		}
	}
	t.Fatalf("no name of 100 takes the partition from %s", member)
	return ""
}

// A worker handing a partition over keeps its pin while an event of the partition still runs
// there, past its drain deadline: the pin is what keeps the next owner from running the key's
// successors when the server's count of unacknowledged events can't be trusted (a JetStream server
// restarted from an older consumer state no longer counts the events the old owner holds).
func TestHandoverKeepsThePinWhileAnEventStillRuns(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	s := natstest.MustStart(t)
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	other := takerFrom(t, "worker-a")

	started, finish := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	start := func(name string, h Handler) (*Consumer, func()) {
		nc, err := nats.Connect(s.URL)
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		pool, err := JoinPool(ctx, js, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: 2 * time.Second, Logger: zerolog.Nop()})
		require.NoError(t, err)
		c := NewConsumer(js, topo, ConsumerConfig{Pool: pool, Worker: name, DrainTimeout: 200 * time.Millisecond, AckWait: 5 * time.Second, Logger: zerolog.Nop()}, h)
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		stop := func() { cancel(); <-done }
		t.Cleanup(func() {
			select {
			case <-finish:
			default:
				close(finish)
			}
			stop()
		})
		return c, stop
	}
	a, _ := start("worker-a", HandlerFunc(func(context.Context, *Delivery) Result {
		close(started)
		<-finish
		finished.Store(true)
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	}))
	require.Eventually(t, func() bool { return len(a.Stats().Partitions) == 1 }, 10*time.Second, 20*time.Millisecond)
	publishUser(t, s.JS, "slow-1", "slow")
	<-started
	ci, err := a.js.Consumer(context.Background(), EventsStream, a.ConsumerName(0))
	require.NoError(t, err)
	info, err := ci.Info(context.Background())
	require.NoError(t, err)
	mine := pinnedID(info)
	require.NotEmpty(t, mine, "worker-a holds the pin")

	start(other, HandlerFunc(func(context.Context, *Delivery) Result { return Result{Outcome: Outcome{Status: StatusSucceeded}} }))
	// worker-a hands the partition over now; its event runs on for 1.5 s, past its 200 ms drain deadline.
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		info, err := ci.Info(context.Background())
		require.NoError(t, err)
		require.Equal(t, mine, pinnedID(info), "the pin left worker-a while its event still ran")
		time.Sleep(50 * time.Millisecond)
	}
	close(finish)
	require.Eventually(t, func() bool {
		info, err := ci.Info(context.Background())
		return err == nil && finished.Load() && pinnedID(info) != mine
	}, 10*time.Second, 20*time.Millisecond, "worker-a lets go once its event finished")
}

// A worker's pool entry says which partitions it holds; one that leaves is left out of the
// assignment at once but keeps its claims until it is gone, and an entry that is not a member's
// is ignored by the workers and named by `worker pool`.
func TestPoolEntriesCarryClaims(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	join := func(name string) *Pool {
		p, err := JoinPool(ctx, s.JS, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: 5 * time.Second, Logger: zerolog.Nop()})
		require.NoError(t, err)
		return p
	}
	a, b := join("worker-a"), join("worker-b")
	holds, delivered := []int{3}, map[int]uint64{3: 40, 5: 17}
	var mu sync.Mutex
	a.Track(func() ([]int, map[int]uint64) { mu.Lock(); defer mu.Unlock(); return holds, delivered })
	require.NoError(t, a.Announce(ctx))
	holder, seq, err := b.HeldElsewhere(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, "worker-a", holder)
	assert.Equal(t, uint64(40), seq)
	holder, seq, err = a.HeldElsewhere(ctx, 3)
	require.NoError(t, err)
	assert.Empty(t, holder, "a worker's own claim is not another's")
	assert.Zero(t, seq)
	holder, seq, err = b.HeldElsewhere(ctx, 5)
	require.NoError(t, err)
	assert.Empty(t, holder, "let go of, not held")
	assert.Equal(t, uint64(17), seq, "what it was delivered there is still said")

	kv, err := s.JS.KeyValue(ctx, PoolBucket)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "garbage", []byte("not json"))
	require.NoError(t, err)

	gone := a.Leave(ctx)
	require.NoError(t, b.refresh(ctx))
	assert.Equal(t, []string{"worker-b"}, b.Members(), "a leaving worker and a foreign entry own nothing")
	time.Sleep(300 * time.Millisecond) // heartbeats while leaving renew the claim
	holder, _, err = b.HeldElsewhere(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, "worker-a", holder, "a leaving worker keeps its claims")
	members, err := ReadPool(ctx, s.JS)
	require.ErrorContains(t, err, `entry "garbage" is not a member's`)
	require.Len(t, members, 2)
	assert.True(t, members[0].Leaving)
	assert.Equal(t, []int{3}, members[0].Holds)

	gone()
	holder, _, err = b.HeldElsewhere(ctx, 3)
	require.NoError(t, err)
	assert.Empty(t, holder, "gone, the worker holds nothing")
}

// Reads of the pool bucket are shared but never older than the ask: 32 partitions asking at once
// (a worker joining a pool, every partition waiting for the old owner's claim) share a few reads,
// and a read under way when a claim is written is not given to a caller that asked after it.
func TestPoolReadsAreSharedButNeverOlderThanTheAsk(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	join := func(name string) *Pool {
		p, err := JoinPool(ctx, s.JS, name, PoolConfig{Member: name, TTL: 5 * time.Second, Logger: zerolog.Nop()})
		require.NoError(t, err)
		return p
	}
	a, b := join("worker-a"), join("worker-b")

	before := b.reads.Load()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 32 {
		wg.Go(func() {
			<-start
			holder, _, err := b.HeldElsewhere(ctx, p)
			assert.NoError(t, err)
			assert.Empty(t, holder)
		})
	}
	close(start)
	wg.Wait()
	reads := b.reads.Load() - before
	t.Logf("32 callers at once: %d reads of the bucket", reads)
	assert.LessOrEqual(t, reads, int64(8), "32 callers at once each read the bucket")

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b.afterRead = func() { once.Do(func() { close(entered); <-release }) }
	type answer struct {
		holder string
		err    error
	}
	first, second := make(chan answer, 1), make(chan answer, 1)
	ask := func(to chan answer) {
		holder, _, err := b.HeldElsewhere(ctx, 7)
		to <- answer{holder, err}
	}
	go ask(first)
	select { // first's read is done, before the claim below, and not yet given
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first caller was given an older read than its own")
	}
	a.Track(func() ([]int, map[int]uint64) { return []int{7}, nil })
	require.NoError(t, a.Announce(ctx))
	go ask(second)
	time.Sleep(50 * time.Millisecond) // second asks while first's read is under way
	close(release)
	got := <-first
	require.NoError(t, got.err)
	assert.Empty(t, got.holder, "the first read began before the claim")
	got = <-second
	require.NoError(t, got.err)
	assert.Equal(t, "worker-a", got.holder, "given a read that began before it asked")
}

// A member whose entry vanished without a delete (expired: a worker killed, or a JetStream server
// down longer than the TTL, which comes back without any entry) stays in the pool, owning its
// partitions and holding what it last said it held, for a grace long enough for a live worker to
// write its entry again; and when the one who reads found it gone just after its own view of the
// bucket was interrupted, for a whole TTL after that read, since the other had no more time to
// renew than the reader. One that left (its entry deleted) goes at once.
func TestAVanishedMemberStaysInThePoolForAGrace(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	const ttl = 5 * time.Second
	join := func(name string, holds ...int) *Pool {
		p, err := JoinPool(ctx, s.JS, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
		require.NoError(t, err)
		p.Track(func() ([]int, map[int]uint64) { return holds, map[int]uint64{holds[0]: 40} })
		require.NoError(t, p.Announce(ctx))
		return p
	}
	a, c := join("worker-a", 3), join("worker-c", 5)
	b := join("worker-b", 7)
	require.NoError(t, b.refresh(ctx))
	require.Equal(t, []string{"worker-a", "worker-b", "worker-c"}, b.Members())
	assert.False(t, b.Settled(), "settled as it joined")
	kv, err := s.JS.KeyValue(ctx, PoolBucket)
	require.NoError(t, err)
	expired := func(name string) func() bool {
		return func() bool {
			_, err := kv.Get(ctx, name)
			return errors.Is(err, jetstream.ErrKeyNotFound)
		}
	}
	// held reads the pool as b's heartbeat does, and says whether worker-a is in it. The
	// assignment and HeldElsewhere are two reads, a moment apart: when worker-a's grace ends
	// between them, the first still has it and the second does not, and the next pair of reads
	// must agree that it is gone. Any other disagreement fails.
	held := func() bool {
		for try := 0; ; try++ {
			require.NoError(t, b.refresh(ctx))
			holder, seq, err := b.HeldElsewhere(ctx, 3)
			require.NoError(t, err)
			in := slices.Contains(b.Members(), "worker-a")
			if in != (holder == "worker-a") {
				require.True(t, try == 0 && in && holder == "", "worker-a in the assignment %v, holding %q (try %d)", in, holder, try+1)
				continue // its grace ended between the two reads
			}
			if in {
				require.Equal(t, uint64(40), seq)
			}
			return in
		}
	}

	c.Leave(ctx)() // c leaves: its entry is deleted
	holder, _, err := b.HeldElsewhere(ctx, 5)
	require.NoError(t, err)
	assert.Empty(t, holder, "a member that left holds nothing")
	require.NoError(t, b.refresh(ctx))
	assert.NotContains(t, b.Members(), "worker-c", "a member that left is in the assignment")

	// a stops renewing (nothing runs its heartbeat here) while b reads every heartbeat: its entry
	// expires, and it stays for the grace (2 heartbeats + 2 s).
	for !expired("worker-a")() {
		require.True(t, held())
		time.Sleep(100 * time.Millisecond)
	}
	require.True(t, held(), "a vanished member was dropped at once")
	assert.Equal(t, []string{"worker-a"}, b.Vanished())
	gone := vanishedAt(b, "worker-a")
	require.False(t, gone.IsZero())
	for held() {
		time.Sleep(100 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, time.Since(gone), b.vanishGrace(), "dropped before the grace ended")
	assert.Less(t, time.Since(gone), ttl, "kept past the grace while b's view was whole")
	assert.Empty(t, b.Vanished())
	assert.True(t, b.Settled(), "not settled after a whole TTL of uninterrupted reads")

	// a is back, and expires again while b does not read the bucket (as while a JetStream server
	// is down): found gone by b's first read after, it stays a whole TTL after that read.
	require.NoError(t, a.Announce(ctx))
	require.True(t, held())
	require.Eventually(t, expired("worker-a"), 2*ttl, 50*time.Millisecond)
	require.True(t, held(), "a vanished member was dropped at once")
	assert.False(t, b.Settled(), "settled right after its view was interrupted")
	b.vmu.Lock()
	resumed := b.resumed
	b.vmu.Unlock()
	require.Equal(t, resumed, vanishedAt(b, "worker-a"), "found gone by the first read after the interruption")
	for held() {
		time.Sleep(100 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, time.Since(resumed), ttl, "dropped before a whole TTL after b's view was interrupted")
}

// vanishedAt is when p first found member's entry gone (zero: not found gone).
func vanishedAt(p *Pool, member string) time.Time {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	return p.known[member].vanished
}

// A worker that joins a pool in which another member says it is settled trusts the absence of
// claims at once; one that finds only members still settling, or an entry that does not say
// (a worker older than the field), waits its TTL. The trust lasts while its own view does: a
// failed read, or reads further apart than the grace, end it until a read finds a settled member
// again, and a vouch read before the interruption does not count after it.
func TestASettledMemberVouchesForAWorkerThatJoins(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	const ttl = 3 * time.Second
	join := func(name string) *Pool {
		p, err := JoinPool(ctx, s.JS, name, PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
		require.NoError(t, err)
		return p
	}
	a := join("worker-a")
	b := join("worker-b") // a is not settled yet: it joined a moment ago
	assert.False(t, b.Settled(), "vouched for by a member that is settling")

	actx, stopA := context.WithCancel(ctx)
	ranA := make(chan struct{})
	go func() { defer close(ranA); a.Run(actx, 4, func([]int) {}) }()
	require.Eventually(t, a.Settled, 2*ttl, 50*time.Millisecond, "a running member never settled")
	kv, err := s.JS.KeyValue(ctx, PoolBucket)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		e, err := kv.Get(ctx, "worker-a")
		require.NoError(t, err)
		var m Member
		require.NoError(t, json.Unmarshal(e.Value(), &m))
		return m.Settled
	}, time.Second, 20*time.Millisecond, "a settled member's entry does not say so")

	c := join("worker-c")
	assert.True(t, c.Settled(), "a worker joining a settled pool waits its TTL")
	require.NoError(t, c.Announce(ctx))
	e, err := kv.Get(ctx, "worker-c")
	require.NoError(t, err)
	assert.Contains(t, string(e.Value()), `"settled":true`, "a vouched-for member does not say it is settled")

	// c's view is interrupted: until its next read it trusts nothing, and that read finds a
	// settled, so c is vouched for again.
	c.noteFailure()
	assert.False(t, c.Settled(), "settled through a failed read")
	require.NoError(t, c.refresh(ctx))
	assert.True(t, c.Settled())
	// Reads further apart than the grace: not settled until the next read.
	time.Sleep(c.vanishGrace() + 100*time.Millisecond)
	assert.False(t, c.Settled(), "settled on a read older than the grace")
	require.NoError(t, c.refresh(ctx))
	assert.True(t, c.Settled())

	// a stops and its entry expires; c's view is interrupted; nobody settled is left (b never
	// renewed since it joined), so the vouch from before the interruption no longer counts.
	stopA()
	<-ranA
	require.Eventually(t, func() bool {
		_, err := kv.Get(ctx, "worker-a")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	}, 2*ttl, 50*time.Millisecond, "a's entry did not expire")
	c.noteFailure()
	require.NoError(t, c.refresh(ctx))
	assert.False(t, c.Settled(), "vouched for by a read from before its view was interrupted")
	c.Leave(ctx)()

	// An entry that does not say whether its worker is settled (an older worker) vouches for nobody.
	old, err := json.Marshal(map[string]any{"worker": "old", "started": time.Now().UTC(), "seen": time.Now().UTC()})
	require.NoError(t, err)
	_, err = kv.Put(ctx, "worker-old", old)
	require.NoError(t, err)
	d := join("worker-d")
	assert.False(t, d.Settled(), "vouched for by an entry that does not say")
}

// A worker that joins a pool whose member is settled runs the partitions it is given, which ran
// on that member before, as soon as the member has handed them over: it trusts the absence of
// claims at once (a settled member vouches for it) instead of after a whole TTL of its own reads.
func TestAWorkerJoiningASettledPoolRunsAtOnce(t *testing.T) {
	t.Parallel()
	const ttl = 8 * time.Second
	topo := Topology{Partitions: 4}
	s := natstest.MustStart(t)
	require.NoError(t, topo.Ensure(context.Background(), s.JS))
	outcomes := collectOutcomes(t, s.JS)
	log := &handledLog{}
	a := startPoolWorkerTTL(t, s.URL, topo, "worker-a", log, ttl)
	pub := NewPublisher(s.JS)
	for k := range 20 { // every partition runs on a before b joins
		_, err := pub.PublishEvent(context.Background(), NewEvent(fmt.Sprintf("j%02d", k), "/t",
			Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": fmt.Sprintf("j%02d", k)}}))
		require.NoError(t, err)
	}
	require.Len(t, outcomes(20, 20*time.Second), 20)
	ran := map[int]bool{}
	for _, h := range log.snapshot() {
		ran[h.partition] = true
	}
	require.Len(t, ran, 4, "a partition never ran before the join")
	require.Eventually(t, a.c.cfg.Pool.Settled, 2*ttl, 50*time.Millisecond, "worker-a never settled")

	joined := time.Now()
	b := startPoolWorkerTTL(t, s.URL, topo, "worker-b", log, ttl)
	require.Eventually(t, func() bool {
		pb := b.c.Stats().Partitions
		return len(pb) > 0 && runsAll(b.c, pb)
	}, ttl-2*time.Second, 20*time.Millisecond, "worker-b waited for its own TTL to run the partitions that ran on worker-a")
	t.Logf("worker-b ran its partitions %v after it joined (its TTL: %v)", time.Since(joined).Round(time.Millisecond), ttl)
}
