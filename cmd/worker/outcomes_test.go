package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
)

var outcomeAt = time.Date(2026, 11, 23, 9, 30, 1, 120_000_000, time.UTC)

// sampleOutcomes are what a worker publishes for a day of events: successes, a skip, a deferral
// and a dead letter.
func sampleOutcomes() []*events.Outcome {
	return []*events.Outcome{
		{ID: "e1", InputID: "e1", Time: outcomeAt, Object: "User", Key: map[string]any{"userName": "ada@example.com"},
			Operation: "Create", Status: events.StatusSucceeded, Final: true, TargetID: "u-1", Attempt: 1},
		{ID: "e2", InputID: "e2", Time: outcomeAt.Add(time.Second), Object: "Group", Key: map[string]any{"displayName": "Engineering"},
			Operation: "AddAssignment", Status: events.StatusSucceeded, Final: true, TargetID: "g-1", Attempt: 1},
		{ID: "e3", InputID: "e3", Time: outcomeAt.Add(2 * time.Second), Object: "User", Key: map[string]any{"userName": "bob@example.com"},
			Operation: "Delete", Status: events.StatusSkipped, Final: true, Reason: "already absent", Attempt: 1},
		{ID: "e4/deferred/1", InputID: "e4", Time: outcomeAt.Add(3 * time.Second), Object: "User", Key: map[string]any{"userName": "ADA@example.com"},
			Operation: "Update", Status: events.StatusDeferred, Attempt: 2, NextAttemptAt: outcomeAt.Add(15 * time.Minute),
			Error: &events.OutcomeError{Class: "retryable", Message: "HTTP 503 Service Unavailable", Status: 503}},
		{ID: "e5", InputID: "e5", Time: outcomeAt.Add(4 * time.Second), Object: "User", Key: map[string]any{"userName": "x@example.com"},
			Status: events.StatusDeadLettered, Final: true, Attempt: 1,
			Error: &events.OutcomeError{Class: "invalid", Message: "invalid event: /data/operation: must be one of 'Create', 'Update'"}},
	}
}

// outcomesServer is an embedded JetStream with the worker's streams and the sample outcomes,
// published the way the worker publishes them.
func outcomesServer(t *testing.T) *natstest.Server {
	t.Helper()
	ns := natstest.MustStart(t)
	require.NoError(t, events.Topology{Partitions: 4}.Ensure(context.Background(), ns.JS))
	pub := events.NewPublisher(ns.JS)
	for _, o := range sampleOutcomes() {
		require.NoError(t, pub.Outcome(context.Background(), o))
	}
	return ns
}

func outcomeLines(t *testing.T, args ...string) []string {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"outcomes"}, args...)...)
	require.NoError(t, err, errOut)
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// TestOutcomesPrintsWhatIsRetained: without --follow the command prints every retained outcome,
// one readable line each, in publish order, and exits.
func TestOutcomesPrintsWhatIsRetained(t *testing.T) {
	t.Parallel()
	ns := outcomesServer(t)
	lines := outcomeLines(t, "--nats", ns.URL)
	require.Len(t, lines, 5, strings.Join(lines, "\n"))
	assert.Equal(t, "2026-11-23T09:30:01.120Z  succeeded      User Create userName=ada@example.com  event=e1 target=u-1", lines[0])
	assert.Equal(t, "2026-11-23T09:30:03.120Z  skipped        User Delete userName=bob@example.com  event=e3  already absent", lines[2])
	assert.Equal(t, "2026-11-23T09:30:04.120Z  deferred       User Update userName=ADA@example.com  event=e4 attempt=2"+
		"  retryable: HTTP 503 Service Unavailable  next attempt 2026-11-23T09:45:01Z", lines[3])
	assert.Equal(t, "2026-11-23T09:30:05.120Z  dead_lettered  User - userName=x@example.com  event=e5"+
		"  invalid: invalid event: /data/operation: must be one of 'Create', 'Update'", lines[4])
}

func TestOutcomesFilters(t *testing.T) {
	t.Parallel()
	ns := outcomesServer(t)
	ids := func(args ...string) []string {
		t.Helper()
		var out []string
		for _, l := range outcomeLines(t, append([]string{"--nats", ns.URL}, args...)...) {
			if i := strings.Index(l, "event="); i >= 0 {
				out = append(out, strings.Fields(l[i+len("event="):])[0])
			}
		}
		return out
	}
	assert.Equal(t, []string{"e1", "e2"}, ids("--status", "succeeded"))
	assert.Equal(t, []string{"e4", "e5"}, ids("--status", "deferred,dead_lettered"))
	assert.Equal(t, []string{"e2"}, ids("--object", "Group"))
	assert.Equal(t, []string{"e3"}, ids("--object", "User", "--status", "skipped"))
	assert.Equal(t, []string{"e1", "e4"}, ids("--key", "userName=ada@example.com"), "keys compare case-insensitively")
	assert.Equal(t, []string{"e4"}, ids("--key", "userName=ada@example.com", "--status", "deferred"))
	assert.Empty(t, ids("--key", "displayName=ada@example.com"))
	assert.Empty(t, ids("--status", "rejected"), "nothing matches: the command says nothing and exits")
	assert.Len(t, ids("--since", "1h"), 5)
	assert.Empty(t, ids("--since", "2099-01-01"))

	// --since TIME counts from when the outcome was stored, not from the time it carries.
	late := &events.Outcome{ID: "e6", InputID: "e6", Time: outcomeAt, Object: "User", Status: events.StatusSucceeded, Final: true, Attempt: 1}
	require.NoError(t, events.NewPublisher(ns.JS).Outcome(context.Background(), late))
	stream, err := ns.JS.Stream(context.Background(), events.OutcomesStream)
	require.NoError(t, err)
	stored, err := stream.GetLastMsgForSubject(context.Background(), events.OutcomeSubject("User", events.StatusSucceeded))
	require.NoError(t, err)
	assert.Equal(t, []string{"e6"}, ids("--since", stored.Time.Format(time.RFC3339Nano)))
}

// TestOutcomesJSON prints the outcomes as published, one JSON document per line.
func TestOutcomesJSON(t *testing.T) {
	t.Parallel()
	ns := outcomesServer(t)
	lines := outcomeLines(t, "--nats", ns.URL, "--json", "--status", "dead_lettered")
	require.Len(t, lines, 1)
	var o events.Outcome
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &o))
	assert.Equal(t, "e5", o.InputID)
	assert.Equal(t, "invalid", o.Error.Class)
}

// TestOutcomesFollow keeps printing outcomes published after it started, until interrupted.
func TestOutcomesFollow(t *testing.T) {
	t.Parallel()
	ns := outcomesServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"outcomes", "--nats", ns.URL, "--follow", "--status", "succeeded"}, &out, &errOut)
	}()
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 2 }, 10*time.Second, 20*time.Millisecond,
		"the retained successes: %q", out.String())
	pub := events.NewPublisher(ns.JS)
	require.NoError(t, pub.Outcome(context.Background(), &events.Outcome{ID: "late-dl", InputID: "late-dl", Object: "User",
		Status: events.StatusDeadLettered, Final: true, Attempt: 1, Error: &events.OutcomeError{Class: "permanent", Message: "HTTP 400"}}))
	require.NoError(t, pub.Outcome(context.Background(), &events.Outcome{ID: "late-ok", InputID: "late-ok", Object: "User",
		Key: map[string]any{"userName": "new@example.com"}, Operation: "Create", Status: events.StatusSucceeded, Final: true, Attempt: 1}))
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "event=late-ok") }, 10*time.Second, 20*time.Millisecond,
		"a new outcome is printed while following: %q", out.String())
	select {
	case err := <-done:
		t.Fatalf("--follow ended by itself: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "Ctrl-C ends --follow with status 0")
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop when interrupted")
	}
	assert.NotContains(t, out.String(), "late-dl", "the status filter holds while following")
	assert.Empty(t, errOut.String())
}

// TestOutcomesConnectsThroughTheConfig: with --config and nats.url empty, the command reaches the
// embedded server at nats.listen.
func TestOutcomesConnectsThroughTheConfig(t *testing.T) {
	t.Parallel()
	ns := outcomesServer(t)
	listen := strings.TrimPrefix(ns.URL, "nats://")
	file := filepath.Join(t.TempDir(), "scimflow.yaml")
	cfg := fmt.Sprintf("nats:\n  listen: %s\ntarget:\n  baseURI: http://127.0.0.1:1/scim/v2\n  auth:\n    mode: none\nmodel: %s\n",
		listen, filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	lines := outcomeLines(t, "--config", file, "--object", "Group")
	require.Len(t, lines, 1)
	assert.Contains(t, lines[0], "event=e2")
}

func TestOutcomesUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--status", "done"}, `--status "done" is not one of succeeded, skipped, dead_lettered, rejected, deferred, held`},
		{[]string{"--since", "yesterday"}, `--since: "yesterday" is neither a duration`},
		{[]string{"--key", "userName"}, `invalid value "userName" for flag -key: "userName" is not name=value`},
	} {
		_, errOut, err := runCmd(t, append([]string{"outcomes"}, tc.args...)...)
		assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}), tc.args)
		assert.Contains(t, errOut, tc.want)
	}
	ns := natstest.MustStart(t) // no streams: no worker ever ran here
	_, _, err := runCmd(t, "outcomes", "--nats", ns.URL)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stream IDM_OUTCOMES on "+ns.URL)
	assert.Contains(t, err.Error(), "is a worker running?")
}

func TestOutcomeSubjects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    outcomeQuery
		want []string
	}{
		{outcomeQuery{}, []string{"idm.outcomes.>"}},
		{outcomeQuery{objects: []string{"User"}}, []string{"idm.outcomes.User.*"}},
		{outcomeQuery{statuses: []events.Status{"deferred", "held"}}, []string{"idm.outcomes.*.deferred", "idm.outcomes.*.held"}},
		{outcomeQuery{objects: []string{"User", "Safe Member"}, statuses: []events.Status{"succeeded"}},
			[]string{"idm.outcomes.User.succeeded", "idm.outcomes.Safe_Member.succeeded"}},
		{outcomeQuery{objects: []string{"User", "User"}}, []string{"idm.outcomes.User.*"}},
	} {
		assert.Equal(t, tc.want, tc.q.subjects(), "%+v", tc.q)
	}
}
