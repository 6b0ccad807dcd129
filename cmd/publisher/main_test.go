package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	assert.Contains(t, out, "Done: 23 events succeeded in this run; 1 invalid event left unpublished.")
	assert.NotContains(t, out, "Every event succeeded", "one event was not published")
}

// TestPublishRerunSaysNothingWasProcessed is the field report's re-run: every event is a duplicate,
// so the summary gives their earlier outcomes, says they were not processed again and how to
// re-apply them, and never claims success for this run.
func TestPublishRerunSaysNothingWasProcessed(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	args := []string{"publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid", "--wait", "--timeout", "30s"}
	_, _, err := runCmd(args...)
	require.NoError(t, err)

	out, _, err := runCmd(args...)
	require.NoError(t, err, "every duplicate's earlier outcome succeeded: exit 0\n%s", out)
	assert.NotContains(t, out, "Every event succeeded")
	assert.Contains(t, out, "Published 0 events (23 duplicates dropped by JetStream, 1 invalid left unpublished)")
	assert.Contains(t, out, "23 duplicates were NOT processed again")
	assert.Regexp(t, `STATUS\s+THIS RUN\s+EARLIER`, out)
	assert.Regexp(t, `succeeded\s+0\s+23\n`, out)
	assert.Contains(t, out, "Done: 0 events succeeded in this run; 23 duplicates were NOT processed again (their earlier outcomes: succeeded 23, skipped 0)")
	assert.Contains(t, out, "publish with --resend")
}

// TestPublishRerunOfADeadLetterFails: a duplicate whose earlier outcome was a dead letter fails the
// re-run (exit 1), shown as an earlier outcome.
func TestPublishRerunOfADeadLetterFails(t *testing.T) {
	t.Parallel()
	url := startWorkerStandIn(t)
	args := []string{"publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--publish-invalid", "--wait", "--timeout", "30s"}
	_, _, err := runCmd(args...)
	require.Equal(t, 1, exitCode(err, &bytes.Buffer{}))

	out, _, err := runCmd(args...)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}), out)
	assert.Contains(t, out, "1 × dead_lettered (earlier outcome, not processed again): invalid: invalid event")
	assert.Regexp(t, `dead_lettered\s+0\s+1\n`, out)
}

// TestPublishResendProcessesEveryEventAgain: --resend republishes under fresh message ids.
func TestPublishResendProcessesEveryEventAgain(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	s := startStandIn(t, func(_ context.Context, d *events.Delivery) events.Result {
		mu.Lock()
		calls[d.Event.ID]++
		mu.Unlock()
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	args := []string{"publish", "--nats", s.URL, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid", "--wait", "--timeout", "30s"}
	_, _, err := runCmd(args...)
	require.NoError(t, err)

	out, _, err := runCmd(append(args, "--resend")...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "Published 23 events (0 duplicates dropped by JetStream, 1 invalid left unpublished)")
	assert.Contains(t, out, "Every event was sent under a fresh message id, to be processed again.")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, calls["demo-01"])
	assert.Equal(t, 2, calls["demo-23"])
}

// TestPublishInterruptedPrintsThePartialSummary: Ctrl-C during --wait prints what was published and
// the outcomes so far, and exits 130.
func TestPublishInterruptedPrintsThePartialSummary(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s := startStandIn(t, func(ctx context.Context, d *events.Delivery) events.Result {
		if d.Event.ID == "slow" {
			once.Do(func() { close(entered) })
			select {
			case <-release:
			case <-ctx.Done():
			}
			return events.Result{Abandon: true}
		}
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	t.Cleanup(func() { close(release) })
	file := filepath.Join(t.TempDir(), "hr.jsonl")
	event := func(id, user string) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/t","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":%q}}}`+"\n", id, user)
	}
	require.NoError(t, os.WriteFile(file, []byte(event("a1", "a1@x")+event("a2", "a2@x")+"#wait\n"+event("slow", "s@x")+"#wait\n"+event("b1", "b1@x")), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-entered; cancel() }() // the first #wait passed: a1 and a2 have their outcomes
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"publish", "--nats", s.URL, "--file", file, "--wait"}, &out, &errOut)
	assert.Equal(t, 130, exitCode(err, &bytes.Buffer{}))
	text := out.String()
	assert.Contains(t, text, "Published 3 events")
	assert.Contains(t, text, "1 event was not published: the run was interrupted first.")
	assert.Contains(t, text, "Interrupted after")
	assert.Regexp(t, `succeeded\s+2\n`, text)
	assert.Regexp(t, `still waiting\s+1\n`, text)
	assert.Contains(t, errOut.String(), "publisher: interrupted; the summary above is partial")
}

// TestPublishDetailsAndTheFullList: a reason longer than a summary line is shortened on screen; the
// full list file (named in the output) and --details have it whole.
func TestPublishDetailsAndTheFullList(t *testing.T) {
	t.Parallel()
	long := `unknown property "titel" of User (properties: ` + strings.Repeat("userName, name.givenName, name.familyName, displayName, ", 12) + `title)`
	url := startStandIn(t, func(_ context.Context, d *events.Delivery) events.Result {
		if d.Event.ID == "demo-12" {
			return events.Result{Outcome: events.Outcome{Status: events.StatusDeadLettered,
				Error: &events.OutcomeError{Class: "permanent", Message: long}}}
		}
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	}).URL
	report := filepath.Join(t.TempDir(), "outcomes.tsv")
	out, _, err := runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid", "--wait", "--report", report)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	assert.NotContains(t, out, long, "shortened on screen")
	assert.Contains(t, out, `1 × dead_lettered: permanent: unknown property "titel" of User (properties: userName`)
	assert.Contains(t, out, "Every event with its status and full reason: "+report)
	full, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(full), "\tdemo-12\tUser\tuserName=alan.turing@example.com\tpublished\tdead_lettered\tthis run\t1\t\tdemo-12\tpermanent: "+long+"\n")
	assert.Equal(t, 25, strings.Count(string(full), "\n"), "a header and every event, the one left out too")

	out, _, err = runCmd("publish", "--nats", url, "--file", repoFile(t, "deploy/examples/events.jsonl"), "--skip-invalid", "--wait", "--resend", "--details")
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, out, "dead_lettered\n      permanent: "+long+"\n")
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
