package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
)

// outcomes collects the outcomes published on a real JetStream server, by input id.
type outcomes struct {
	mu  sync.Mutex
	got map[string]outcome
}

func watchOutcomes(t *testing.T, nc *nats.Conn) *outcomes {
	t.Helper()
	o := &outcomes{got: map[string]outcome{}}
	sub, err := nc.Subscribe(events.OutcomesPrefix+".>", func(m *nats.Msg) {
		var x outcome
		if json.Unmarshal(m.Data, &x) == nil {
			o.mu.Lock()
			o.got[x.InputID] = x
			o.mu.Unlock()
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return o
}

func (o *outcomes) wait(t *testing.T, n int) map[string]outcome {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o.mu.Lock()
		got := len(o.got)
		o.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d outcomes within 30 s", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]outcome, len(o.got))
	for k, v := range o.got {
		out[k] = v
	}
	return out
}

// setup starts JetStream with scimflow's streams, the simulator, and the loop; the loop stops when
// the test ends, and the test fails if Run returned an error.
func setup(t *testing.T, cfg Config) (*natstest.Server, *cyberarksim.Server, *outcomes) {
	t.Helper()
	ns := natstest.MustStart(t)
	require.NoError(t, (events.Topology{}).Ensure(context.Background(), ns.JS))
	sim, ts := simtest.MustStart(t, cyberarksim.Config{})
	cfg.NATS, cfg.Target = ns.URL, ts.URL
	cfg.ClientID, cfg.ClientSecret = cyberarksim.DefaultClientID, cyberarksim.DefaultClientSecret
	cfg.Name, cfg.Partitions = "bareloop", 32
	cfg.Concurrency = max(cfg.Concurrency, 8)
	l, err := NewLoop(cfg)
	require.NoError(t, err)
	o := watchOutcomes(t, ns.Conn)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- l.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	return ns, sim, o
}

func publish(t *testing.T, ns *natstest.Server, id string, ch events.Change) {
	t.Helper()
	_, err := events.NewPublisher(ns.JS).PublishEvent(context.Background(), events.NewEvent(id, "/test", ch))
	require.NoError(t, err)
}

// The benchmark's workload reaches the simulator as the worker would leave it: users created and
// updated in order, group memberships resolved from userNames to ids, one succeeded outcome each.
func TestLoopAppliesTheMixedWorkload(t *testing.T) {
	ns, sim, o := setup(t, Config{MaxInFlight: 4})
	publish(t, ns, "g-1", events.Change{Object: "Group", Operation: events.OpCreate, Key: map[string]any{"displayName": "Bench Group"}})
	for u := range 10 {
		name := fmt.Sprintf("user%02d@example.com", u)
		publish(t, ns, name+"-1", events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": name},
			Attributes: map[string]any{"name.givenName": "Ada", "title": "v1", "emails[].value": []any{name}, "active": true}})
		publish(t, ns, name+"-2", events.Change{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": name},
			Attributes: map[string]any{"title": "v2"}})
		publish(t, ns, name+"-add", events.Change{Object: "Group", Operation: events.OpAddAssignment, Key: map[string]any{"displayName": "Bench Group"},
			Attributes: map[string]any{"members[].value": []any{name}}})
	}
	got := o.wait(t, 31)
	for id, x := range got {
		assert.Equal(t, "succeeded", x.Status, "%s: %s", id, x.Reason)
		assert.NotEmpty(t, x.TargetID, id)
	}
	st := sim.Snapshot()
	require.Len(t, st.Users, 10)
	ids := map[string]bool{}
	for _, u := range st.Users {
		assert.Equal(t, "v2", u["title"], u["userName"])
		assert.Equal(t, "Ada", u["name"].(map[string]any)["givenName"], u["userName"])
		ids[u["id"].(string)] = true
	}
	require.Len(t, st.Groups, 1)
	members, _ := st.Groups[0]["members"].([]any)
	require.Len(t, members, 10)
	for _, m := range members {
		assert.True(t, ids[m.(map[string]any)["value"].(string)], "member %v is one of the users", m)
	}
	stats := sim.Stats()
	assert.LessOrEqual(t, stats.MaxInFlight, 4, "-max-in-flight bounds the requests at the target")
}

// What the loop does not handle is dead-lettered with a reason naming it, never dropped.
func TestLoopDeadLettersWhatItDoesNotHandle(t *testing.T) {
	ns, _, o := setup(t, Config{})
	publish(t, ns, "del-1", events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": "x@example.com"}})
	publish(t, ns, "upd-1", events.Change{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": "nobody@example.com"},
		Attributes: map[string]any{"title": "v2"}})
	got := o.wait(t, 2)
	assert.Equal(t, "dead_lettered", got["del-1"].Status)
	assert.Equal(t, "User Delete: the bare loop does not handle it", got["del-1"].Reason)
	assert.Equal(t, "dead_lettered", got["upd-1"].Status)
	assert.True(t, strings.HasPrefix(got["upd-1"].Reason, `Users userName "nobody@example.com": not found`), got["upd-1"].Reason)
}

func TestNewLoopNamesTheBadFlag(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Target: "http://x", Partitions: 1, Concurrency: 1}, "-nats: the NATS URL is required"},
		{Config{NATS: "nats://x", Partitions: 1, Concurrency: 1}, "-target: the simulator's base URL is required"},
		{Config{NATS: "nats://x", Target: "http://x", Concurrency: 1}, "-partitions 0: must be at least 1"},
		{Config{NATS: "nats://x", Target: "http://x", Partitions: 1}, "-concurrency 0: must be at least 1"},
		{Config{NATS: "nats://x", Target: "http://x", Partitions: 1, Concurrency: 1, MaxInFlight: -1}, "-max-in-flight -1: must not be negative"},
	} {
		_, err := NewLoop(tc.cfg)
		assert.EqualError(t, err, tc.want)
	}
}
