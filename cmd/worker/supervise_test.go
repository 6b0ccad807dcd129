package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
)

// A consume loop that can't start makes `worker run` exit with the error, instead of leaving a
// process that answers /healthz and consumes nothing (issue 7 item 13: "deliver policy can not be
// updated" left a zombie).
func TestRunExitsWhenItCannotConsume(t *testing.T) {
	t.Parallel()
	ns := natstest.MustStart(t)
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := events.Topology{Partitions: 4}
	require.NoError(t, topo.Ensure(ctx, ns.JS))
	// A durable of the worker's name with another deliver policy: the worker can't take it over.
	_, err := ns.JS.CreateConsumer(ctx, events.EventsStream, jetstream.ConsumerConfig{
		Durable: "scimflow-p2", FilterSubject: events.PartitionSubject(2),
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	require.NoError(t, err)

	dir := t.TempDir()
	httpAddr := freePort(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\n  partitions: 4\ntarget:\n%s\nmodel: %s\nhttp:\n  listen: %s\n",
		ns.URL, indent(cyberarkTarget(srv.URL), "  "), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), httpAddr)
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", file}, &logs, &logs) }()
	select {
	case err := <-done:
		require.Error(t, err, logs.String())
		assert.Contains(t, err.Error(), "partition 2")
	case <-time.After(20 * time.Second):
		t.Fatalf("worker run kept running without consuming:\n%s", logs.String())
	}
	_, err = http.Get("http://" + httpAddr + "/healthz")
	assert.Error(t, err, "nothing answers /healthz once the worker exited")
}

// `worker demo` on a file of one to three events passes: its outcomes can arrive before every
// partition's consumer exists, and stopping then is not an error (issue 7 item 6: "create consumer
// for partition 3: context canceled" in 4 of 4 runs).
func TestDemoOnSmallFiles(t *testing.T) {
	lines, err := os.ReadFile(filepath.Join(repo(t), "deploy/examples/events.jsonl"))
	require.NoError(t, err)
	var valid []string
	for _, l := range strings.Split(string(lines), "\n") {
		if strings.HasPrefix(l, "{") && strings.Contains(l, `"Create"`) {
			valid = append(valid, l)
		}
	}
	require.GreaterOrEqual(t, len(valid), 3)
	for n := 1; n <= 3; n++ {
		file := filepath.Join(t.TempDir(), "events.jsonl")
		require.NoError(t, os.WriteFile(file, []byte(strings.Join(valid[:n], "\n")+"\n"), 0o600))
		var out, errOut syncBuffer
		err := run(context.Background(), []string{"demo",
			"--config", filepath.Join(repo(t), "deploy/examples/config.yaml"), "--events", file}, &out, &errOut)
		require.NoError(t, err, "%d events:\n%s\n%s", n, out.String(), errOut.String())
		assert.Contains(t, out.String(), "DEMO PASSED", "%d events", n)
	}
}
