package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
)

// poolMember is a `worker run` in process on a shared NATS server, with no partition configuration.
type poolMember struct {
	httpURL string
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    chan error
}

func startPoolMember(t *testing.T, natsURL, simURL, name string) *poolMember {
	t.Helper()
	dir := t.TempDir()
	httpAddr := freePort(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\n  partitions: 8\ntarget:\n%s\nmodel: %s\nworker:\n  name: %s\n  drainTimeout: 5s\nhttp:\n  listen: %s\n",
		natsURL, indent(cyberarkTarget(simURL), "  "), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), name, httpAddr)
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	m := &poolMember{httpURL: "http://" + httpAddr, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- run(ctx, []string{"run", "--config", file}, m.logs, m.logs) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

func (m *poolMember) stop(t *testing.T) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		assert.NoError(t, err, m.logs.String())
	case <-time.After(20 * time.Second):
		t.Error("worker did not stop")
	}
}

func (m *poolMember) partitions() []int {
	resp, err := http.Get(m.httpURL + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st struct {
		Consumer events.ConsumerStats `json:"consumer"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return st.Consumer.Partitions
}

// Two `worker run` with no partition configuration share the partitions; `worker pool` shows who
// owns what; when one stops, the other takes everything.
func TestRunWorkersSharePartitions(t *testing.T) {
	t.Parallel()
	ns := natstest.MustStart(t)
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	a := startPoolMember(t, ns.URL, srv.URL, "alpha")
	b := startPoolMember(t, ns.URL, srv.URL, "beta")
	require.Eventually(t, func() bool {
		pa, pb := a.partitions(), b.partitions()
		return len(pa) > 0 && len(pb) > 0 && len(pa)+len(pb) == 8
	}, 20*time.Second, 50*time.Millisecond, "the two workers did not split 8 partitions:\n%s\n%s", a.logs, b.logs)

	var out, errOut syncBuffer
	require.NoError(t, run(context.Background(), []string{"pool", "--nats", ns.URL}, &out, &errOut), errOut.String())
	text := out.String()
	assert.Contains(t, text, "alpha-")
	assert.Contains(t, text, "beta-")
	lines := strings.Split(text, "\n")
	owners := 0
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] != "PARTITION" && (strings.HasPrefix(f[1], "alpha-") || strings.HasPrefix(f[1], "beta-")) {
			owners++
		}
	}
	assert.Equal(t, 8, owners, "every partition has an owner:\n%s", text)
	// Settled, each member holds (consumes) the partitions it owns.
	require.True(t, strings.HasPrefix(lines[0], "MEMBER") && strings.HasSuffix(strings.TrimSpace(lines[0]), "PARTITIONS  HOLDS"), "header: %q", lines[0])
	for _, l := range lines[1:3] {
		f := strings.Fields(l)
		require.GreaterOrEqual(t, len(f), 2, "member line %q", l)
		assert.Equal(t, f[len(f)-2], f[len(f)-1], "a member holds other partitions than it owns:\n%s", text)
	}

	a.stop(t)
	require.Eventually(t, func() bool { return len(b.partitions()) == 8 }, 20*time.Second, 50*time.Millisecond,
		"the remaining worker did not take the partitions of the one that stopped:\n%s", b.logs)
}

// `worker pool` gives each member's state from the member's own entry: leaving while it shuts
// down, settling until it has read the pool uninterrupted for a whole TTL, live after; and it names
// the workers that still count in a member whose entry vanished without a delete.
func TestPoolShowsEachMembersState(t *testing.T) {
	t.Parallel()
	ns := natstest.MustStart(t)
	ctx := context.Background()
	require.NoError(t, events.Topology{Partitions: 4}.Ensure(ctx, ns.JS))
	const ttl = 3 * time.Second
	join := func(name string) *events.Pool {
		p, err := events.JoinPool(ctx, ns.JS, name, events.PoolConfig{Member: name, Heartbeat: 100 * time.Millisecond, TTL: ttl, Logger: zerolog.Nop()})
		require.NoError(t, err)
		return p
	}
	a, b := join("worker-a"), join("worker-b")
	join("worker-c") // never renews: its entry expires after ttl
	// render runs `worker pool` and returns each member's STATE and the lines below the members.
	render := func() (map[string]string, []string) {
		var out, errOut syncBuffer
		require.NoError(t, run(ctx, []string{"pool", "--nats", ns.URL}, &out, &errOut), errOut.String())
		lines := strings.Split(out.String(), "\n")
		require.Equal(t, []string{"MEMBER", "STATE", "WORKER"}, strings.Fields(lines[0])[:3], out.String())
		states := map[string]string{}
		i := 1
		for ; i < len(lines) && lines[i] != ""; i++ {
			if f := strings.Fields(lines[i]); strings.HasPrefix(f[0], "worker-") && len(f) > 1 {
				states[f[0]] = f[1]
			}
		}
		var notes []string
		for _, l := range lines[1:i] {
			if !strings.HasPrefix(l, "worker-") || strings.Contains(l, "still counts in") {
				notes = append(notes, l)
			}
		}
		return states, notes
	}

	gone := a.Leave(ctx)
	states, notes := render()
	assert.Equal(t, map[string]string{"worker-a": "leaving", "worker-b": "settling", "worker-c": "settling"}, states)
	assert.Empty(t, notes)
	gone() // a's entry is deleted: it left, and nobody counts it in

	rctx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); b.Run(rctx, 4, func([]int) {}) }()
	t.Cleanup(func() { stop(); <-ran })
	var live, counted bool
	require.Eventually(t, func() bool {
		states, notes := render()
		require.NotContains(t, states, "worker-a", "a member that left is listed")
		live = live || states["worker-b"] == "live"
		for _, n := range notes {
			require.Equal(t, "worker-b still counts in worker-c: the entry vanished without a delete; its partitions stay with it for a grace", n)
			require.NotContains(t, states, "worker-c", "a member whose entry vanished is listed with it")
			counted = true
		}
		return live && counted
	}, 4*ttl, 50*time.Millisecond, "worker-b live %v, counting in worker-c %v", live, counted)
}
