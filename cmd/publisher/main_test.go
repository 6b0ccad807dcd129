package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
	"github.com/scimflow/scimflow/internal/publish"
)

// startWorkerStandIn runs the real consume loop with a handler that succeeds every valid event, so
// that the publisher can be tested without a SCIM target.
func startWorkerStandIn(t *testing.T) string {
	t.Helper()
	return startStandIn(t, nil).URL
}

// startStandIn runs the real consume loop around h (nil: every valid event succeeds).
func startStandIn(t *testing.T, h events.HandlerFunc) *natstest.Server {
	t.Helper()
	s := natstest.MustStart(t)
	ctx, cancel := context.WithCancel(context.Background())
	topo := events.Topology{Partitions: 4}
	require.NoError(t, topo.Ensure(ctx, s.JS))
	if h == nil {
		h = func(context.Context, *events.Delivery) events.Result {
			return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
		}
	}
	c := events.NewConsumer(s.JS, topo, events.ConsumerConfig{Logger: zerolog.Nop()}, h)
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// storedEvents is the number of events in the events stream.
func storedEvents(t *testing.T, s *natstest.Server) uint64 {
	t.Helper()
	st, err := s.JS.Stream(context.Background(), events.EventsStream)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "..", rel))
	require.NoError(t, err)
	return abs
}

func runCmd(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPublishWaitSummarisesAndFailsOnADeadLetter(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	out, errOut, err := runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--publish-invalid", "--wait", "--timeout", "30s")
	require.Error(t, err, "the malformed sample event is dead-lettered, so not every event succeeded")
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "events.jsonl:31: event \"demo-bad-24\": invalid event", "the invalid line is named before publishing")
	assert.Contains(t, errOut, "publishing 1 invalid event(s) anyway (--publish-invalid)")
	assert.Contains(t, out, "Published 24 events")
	assert.Regexp(t, `succeeded\s+23`, out)
	assert.Regexp(t, `dead_lettered\s+1`, out)
	assert.Contains(t, out, "demo-bad-24")
}

// TestPublishRefusesAFileThatIsNotEvents is the field report's wrong file: the worker's YAML
// configuration is refused, naming its first lines and the count, and nothing is published.
func TestPublishRefusesAFileThatIsNotEvents(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	file := repoFile(t, "deploy/examples/config.yaml")
	_, _, err := runCmd("publish", "--nats", s.URL, "--file", file)
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	msg := err.Error()
	assert.Regexp(t, `config\.yaml: (\d+) of (\d+) lines are not valid events \((\d+) of them not JSON at all\); nothing published:`, msg)
	assert.Contains(t, msg, file+":6: not JSON: \"nats:\"")
	assert.Regexp(t, `and \d+ more invalid lines`, msg)
	assert.Contains(t, msg, "--publish-invalid publishes them")
	assert.Zero(t, storedEvents(t, s), "nothing published")
}

// TestPublishRefusesInvalidEventsByDefault: one schema-invalid event refuses the file unless a flag
// says what to do with it.
func TestPublishRefusesInvalidEventsByDefault(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	file := repoFile(t, "deploy/examples/events.jsonl")
	_, _, err := runCmd("publish", "--nats", s.URL, "--file", file)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "events.jsonl: 1 of 24 lines are not valid events; nothing published:")
	assert.Contains(t, err.Error(), file+`:31: event "demo-bad-24": invalid event`)
	assert.Zero(t, storedEvents(t, s), "nothing published")
}

func TestPublishStrictRefusesInvalidFiles(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	_, _, err := runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--strict")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "1 of 24 lines")
	assert.Contains(t, err.Error(), "nothing published")

	_, errOut, err := runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--strict", "--publish-invalid")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "choose one of --strict, --skip-invalid and --publish-invalid")
}

func TestPublishSkipInvalidSucceeds(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	out, _, err := runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Every event succeeded.")
}

func TestPublishCSV(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	file := filepath.Join(t.TempDir(), "hr.csv")
	require.NoError(t, os.WriteFile(file, []byte("userName,title,emails[].value\na@x,CTO,a@x|a2@x\nb@x,Engineer,b@x\n"), 0o600))
	out, _, err := runCmd("publish", "--nats", url, "--file", file, "--object", "User", "--key", "userName", "--multi", "emails[].value", "--wait")
	require.NoError(t, err, out)
	assert.Contains(t, out, "Published 2 events")
}

func TestPublishWithoutAWorkerSaysSo(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t) // no streams
	_, _, err := runCmd("publish", "--nats", s.URL, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "is a worker running?")
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	out, _, err := runCmd("generate", "--users", "40", "--groups", "3", "--seed", "7")
	require.NoError(t, err)
	items, err := publish.ReadJSONL(strings.NewReader(out))
	require.NoError(t, err)
	ops := map[string]int{}
	for _, it := range items {
		require.NoError(t, it.Invalid, "line %d", it.Line)
		ev, _ := events.Decode(it.Raw)
		ops[ev.Data.Object+" "+ev.Data.Operation]++
	}
	assert.Equal(t, 40, ops["User Create"])
	assert.Equal(t, 3, ops["Group Create"])
	assert.Positive(t, ops["Group AddAssignment"])
	assert.Equal(t, 3, items[len(items)-1].Batch, "four phases")
	again, _, err := runCmd("generate", "--users", "40", "--groups", "3", "--seed", "7")
	require.NoError(t, err)
	assert.Equal(t, out, again, "the same seed writes the same file")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	_, errOut, err := runCmd()
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "usage: publisher")
	_, errOut, err = runCmd("publish")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "--file is required")
}
