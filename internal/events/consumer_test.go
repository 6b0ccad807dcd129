package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

func setup(t *testing.T, topo Topology) jetstream.JetStream {
	t.Helper()
	s := natstest.MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, topo.Ensure(ctx, s.JS))
	return s.JS
}

func TestTopologyEnsure(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 8}
	js := setup(t, topo)
	ctx := context.Background()
	require.NoError(t, topo.Ensure(ctx, js), "Ensure must be idempotent")

	err := Topology{Partitions: 16}.Ensure(ctx, js)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "partitions are fixed at creation")

	// Events are stored under their partition; the same key always lands in the same one.
	pub := NewPublisher(js)
	parts := map[string]int{}
	for i := range 40 {
		key := map[string]any{"userName": fmt.Sprintf("u%d", i%10)}
		ev := NewEvent(fmt.Sprintf("e%d", i), "/test", Change{Object: "User", Operation: OpUpdate, Key: key})
		_, err := pub.PublishEvent(ctx, ev)
		require.NoError(t, err)
	}
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	used := map[int]bool{}
	for seq := uint64(1); seq <= 40; seq++ {
		m, err := st.GetMsg(ctx, seq)
		require.NoError(t, err)
		p, obj, tok, err := ParsePartitioned(m.Subject)
		require.NoError(t, err, m.Subject)
		assert.Equal(t, "User", obj)
		assert.Less(t, p, 8)
		if prev, ok := parts[tok]; ok {
			assert.Equal(t, prev, p, "key token %s moved partition", tok)
		}
		parts[tok] = p
		used[p] = true
	}
	assert.Len(t, parts, 10)
	assert.Greater(t, len(used), 1, "ten keys should spread over more than one of eight partitions")

	// A subject of the wrong shape is refused by the stream, not stored somewhere else.
	_, err = pub.PublishRaw(ctx, "idm.events.User.a.b", "bad", []byte("{}"))
	assert.Error(t, err)
}

// outcomeCollector reads every outcome from the outcomes stream.
func collectOutcomes(t *testing.T, js jetstream.JetStream) func(n int, within time.Duration) []*Outcome {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, OutcomesStream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	var mu sync.Mutex
	var got []*Outcome
	cc, err := cons.Consume(func(m jetstream.Msg) {
		o, err := DecodeOutcome(m.Data())
		if err != nil {
			t.Errorf("decode outcome: %v", err)
			return
		}
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return func(n int, within time.Duration) []*Outcome {
		deadline := time.Now().Add(within)
		for {
			mu.Lock()
			if len(got) >= n || time.Now().After(deadline) {
				out := append([]*Outcome(nil), got...)
				mu.Unlock()
				return out
			}
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// waitAllAcked waits until every partition's consumer has nothing pending and nothing unacknowledged.
func waitAllAcked(t *testing.T, js jetstream.JetStream, c *Consumer, topo Topology) {
	t.Helper()
	require.Eventually(t, func() bool {
		for p := range topo.PartitionCount() {
			cons, err := js.Consumer(context.Background(), EventsStream, c.ConsumerName(p))
			if err != nil {
				return false
			}
			ci, err := cons.Info(context.Background())
			if err != nil || ci.NumPending > 0 || ci.NumAckPending > 0 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "events still pending or unacknowledged")
}

func runConsumer(t *testing.T, js jetstream.JetStream, topo Topology, cfg ConsumerConfig, h Handler) (*Consumer, context.CancelFunc, <-chan error) {
	t.Helper()
	cfg.Logger = zerolog.Nop()
	c := NewConsumer(js, topo, cfg, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan struct{})
	go func() { done <- c.Run(ctx); close(stopped) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(15 * time.Second):
			t.Error("consumer did not stop")
		}
	})
	return c, cancel, done
}

func TestConsumerOneOutcomePerEventInKeyOrder(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 4}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)

	var mu sync.Mutex
	seen := map[string][]int{} // key → sequence numbers in handling order
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		k := d.Event.Data.Key["userName"].(string)
		var n int
		fmt.Sscanf(d.Event.ID, "e%d", &n)
		mu.Lock()
		seen[k] = append(seen[k], n)
		mu.Unlock()
		time.Sleep(time.Millisecond) // let lanes interleave
		return Result{Outcome: Outcome{Status: StatusSucceeded, TargetID: "id-" + k}}
	})
	c, _, _ := runConsumer(t, js, topo, ConsumerConfig{Lanes: 8}, h)

	ctx := context.Background()
	pub := NewPublisher(js)
	const n = 120
	for i := range n {
		key := map[string]any{"userName": fmt.Sprintf("u%d", i%7)}
		_, err := pub.PublishEvent(ctx, NewEvent(fmt.Sprintf("e%d", i), "/test", Change{Object: "User", Operation: OpUpdate, Key: key}))
		require.NoError(t, err)
	}
	// A duplicate id is dropped by JetStream: no second outcome.
	_, err := pub.PublishEvent(ctx, NewEvent("e0", "/test", Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "u0"}}))
	require.NoError(t, err)
	// A malformed event: dead-lettered with its reason and an outcome.
	_, err = pub.PublishRaw(ctx, "idm.events.User.zzz", "bad-1", []byte(`{"specversion":"1.0","id":"bad-1","source":"/t","type":"identity.user.promote","data":{"object":"User","operation":"Promote","key":{"userName":"x"}}}`))
	require.NoError(t, err)
	// Not JSON at all.
	_, err = pub.PublishRaw(ctx, "idm.events._unknown.zzz", "bad-2", []byte(`not json`))
	require.NoError(t, err)

	got := outcomes(n+2, 20*time.Second)
	require.Len(t, got, n+2)
	// Once every event is acknowledged, the outcomes stream holds exactly one outcome per event.
	waitAllAcked(t, js, c, topo)
	info, err := js.Stream(ctx, OutcomesStream)
	require.NoError(t, err)
	require.EqualValues(t, n+2, info.CachedInfo().State.Msgs, "no outcome beyond one per event")

	byInput := map[string]*Outcome{}
	for _, o := range got {
		require.NotContains(t, byInput, o.InputID, "two outcomes for %s", o.InputID)
		byInput[o.InputID] = o
		assert.True(t, o.Final)
		require.Empty(t, schemaViolations(t, o))
	}
	for i := range n {
		o := byInput[fmt.Sprintf("e%d", i)]
		require.NotNil(t, o)
		assert.Equal(t, StatusSucceeded, o.Status)
		assert.Equal(t, "User", o.Object)
		assert.Equal(t, 1, o.Attempt)
	}
	for _, id := range []string{"bad-1", "bad-2"} {
		o := byInput[id]
		require.NotNil(t, o, id)
		assert.Equal(t, StatusDeadLettered, o.Status)
		require.NotNil(t, o.Error)
		assert.Equal(t, "invalid", o.Error.Class)
	}
	assert.Contains(t, byInput["bad-1"].Error.Message, "/data/operation")
	assert.Contains(t, byInput["bad-2"].Error.Message, "not a JSON document")

	for k, order := range seen {
		for i := 1; i < len(order); i++ {
			assert.Less(t, order[i-1], order[i], "key %s handled out of order: %v", k, order)
		}
	}

	// The dead letters carry the original payload and the reason.
	st, err := js.Stream(ctx, DLQStream)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(ctx, DLQSubject("User"))
	require.NoError(t, err)
	assert.Contains(t, string(m.Data), `"Promote"`)
	assert.Equal(t, "invalid", m.Header.Get(HeaderErrorClass))
	assert.Contains(t, m.Header.Get(HeaderReason), "/data/operation")
	assert.Equal(t, "bad-1", m.Header.Get(HeaderEventID))
	assert.Equal(t, "idm.events.User.zzz", m.Header.Get(HeaderEventSubject))
}

func TestConsumerDefersAndRedelivers(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		if d.Attempt == 1 {
			return Result{
				Outcome: Outcome{Status: StatusDeferred, Error: &OutcomeError{Class: "retryable", Message: "target unavailable"}},
				RetryAt: time.Now().Add(time.Second),
			}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	_, err := NewPublisher(js).PublishEvent(context.Background(),
		NewEvent("d1", "/t", Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "d"}}))
	require.NoError(t, err)

	got := outcomes(2, 15*time.Second)
	require.Len(t, got, 2)
	assert.Equal(t, StatusDeferred, got[0].Status)
	assert.False(t, got[0].Final)
	assert.Equal(t, "d1/deferred/1", got[0].ID)
	assert.Equal(t, StatusSucceeded, got[1].Status)
	assert.Equal(t, 2, got[1].Attempt)
	assert.Equal(t, "d1", got[1].ID)
	assert.GreaterOrEqual(t, got[1].Time.Sub(got[0].Time), 900*time.Millisecond, "redelivered before RetryAt")
}

func TestConsumerDrainsInFlightOnShutdown(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	started := make(chan struct{})
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		close(started)
		<-release
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	_, cancel, done := runConsumer(t, js, topo, ConsumerConfig{DrainTimeout: 10 * time.Second}, h)
	_, err := NewPublisher(js).PublishEvent(context.Background(),
		NewEvent("s1", "/t", Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "s"}}))
	require.NoError(t, err)
	<-started
	cancel()
	select {
	case <-done:
		t.Fatal("Run returned while an event was in flight")
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the in-flight event finished")
	}
	got := outcomes(1, 5*time.Second)
	require.Len(t, got, 1)
	assert.Equal(t, StatusSucceeded, got[0].Status)
}

func TestConsumerAbandonsAtDrainDeadline(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		<-ctx.Done()
		return Result{Abandon: true}
	})
	c, cancel, done := runConsumer(t, js, topo, ConsumerConfig{DrainTimeout: 200 * time.Millisecond}, h)
	_, err := NewPublisher(js).PublishEvent(context.Background(),
		NewEvent("a1", "/t", Change{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "a"}}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.Stats().InFlight == 1 }, 5*time.Second, 10*time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not honour the drain deadline")
	}
	assert.EqualValues(t, 1, c.Stats().Abandoned)
	// The abandoned event is still pending for the next worker.
	info, err := js.Consumer(context.Background(), EventsStream, c.ConsumerName(0))
	require.NoError(t, err)
	ci, err := info.Info(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1, ci.NumPending+uint64(ci.NumAckPending)+uint64(ci.NumRedelivered), "the event must not be acknowledged")
}

func TestTopologyEnsureConcurrently(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- (Topology{Partitions: 8}).Ensure(ctx, s.JS) }()
	}
	for range 4 {
		require.NoError(t, <-errs, "replicas starting together must all come up")
	}
	info, err := s.JS.Stream(ctx, EventsStream)
	require.NoError(t, err)
	assert.Contains(t, info.CachedInfo().Config.SubjectTransform.Destination, "partition(8,2)")
}

// The provisioning log is written off the events' path and persisted asynchronously on a single
// server; a log stream created before (with the default persist mode, which JetStream cannot
// change) is left as it is, and Ensure still succeeds (an upgrade must not stop the worker).
func TestTopologyPersistsTheLogAsynchronously(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	ctx := context.Background()
	st, err := js.Stream(ctx, HistoryStream)
	require.NoError(t, err)
	assert.Equal(t, jetstream.AsyncPersistMode, st.CachedInfo().Config.PersistMode)
	for _, name := range []string{EventsStream, OutcomesStream, DLQStream} {
		st, err := js.Stream(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, jetstream.DefaultPersistMode, st.CachedInfo().Config.PersistMode, "%s keeps the server's durability", name)
	}

	// A log stream from before this change.
	require.NoError(t, js.DeleteStream(ctx, HistoryStream))
	old := topo.withDefaults().StreamConfigs()
	for _, cfg := range old {
		if cfg.Name == HistoryStream {
			cfg.PersistMode = jetstream.DefaultPersistMode
			_, err := js.CreateStream(ctx, cfg)
			require.NoError(t, err)
		}
	}
	require.NoError(t, topo.Ensure(ctx, js))
	st, err = js.Stream(ctx, HistoryStream)
	require.NoError(t, err)
	assert.Equal(t, jetstream.DefaultPersistMode, st.CachedInfo().Config.PersistMode)

	assert.Equal(t, jetstream.DefaultPersistMode, Topology{Partitions: 2, Replicas: 3}.historyPersistMode(), "a replicated stream keeps the default")
}

// What a handler still writes in the background (the applied record) runs beside the outcome's
// publication: the outcome is published while it is unfinished, and the event is acknowledged,
// and its key's next event run, only once it is done.
func TestSettleRunsBesideTheOutcomeAndBeforeTheAck(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		mu.Lock()
		order = append(order, "run "+d.Event.ID)
		mu.Unlock()
		res := Result{Outcome: Outcome{Status: StatusSucceeded}}
		if d.Event.ID == "first" {
			var once sync.Once // the loop may call it again (it says so)
			res.Settle = func() {
				once.Do(func() {
					<-release
					mu.Lock()
					order = append(order, "settled first")
					mu.Unlock()
				})
			}
		}
		return res
	})
	runConsumer(t, js, topo, ConsumerConfig{Lanes: 4}, h)
	pub := NewPublisher(js)
	for _, id := range []string{"first", "second"} {
		_, err := pub.PublishEvent(context.Background(), NewEvent(id, "/test", Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "k"}}))
		require.NoError(t, err)
	}
	got := outcomes(1, 10*time.Second)
	require.Len(t, got, 1, "the outcome is published while the background write is unfinished")
	assert.Equal(t, "first", got[0].InputID)
	cons, err := js.Consumer(context.Background(), EventsStream, "scimflow-p0")
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond) // time enough for an ack or the next event, were either let through
	ci, err := cons.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(0), ci.AckFloor.Stream, "not acknowledged before it settles")
	mu.Lock()
	assert.Equal(t, []string{"run first"}, order, "the key's next event waits")
	mu.Unlock()

	close(release)
	require.Len(t, outcomes(2, 10*time.Second), 2)
	require.Eventually(t, func() bool {
		ci, err := cons.Info(context.Background())
		return err == nil && ci.AckFloor.Stream == 2
	}, 10*time.Second, 20*time.Millisecond, "both acknowledged")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"run first", "settled first", "run second"}, order)
}
