package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/natstest"
)

// standIn is a real consume loop on an embedded JetStream whose handler the test chooses.
type standIn struct {
	*natstest.Server
	mu    sync.Mutex
	calls map[string]int // handler calls by event id
}

// startStandIn starts the streams and a consume loop around h (nil: every event succeeds).
func startStandIn(t *testing.T, h events.HandlerFunc) *standIn {
	t.Helper()
	s := &standIn{Server: natstest.MustStart(t), calls: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, events.Topology{Partitions: 4}.Ensure(ctx, s.JS))
	c := events.NewConsumer(s.JS, events.Topology{Partitions: 4}, events.ConsumerConfig{Logger: zerolog.Nop()},
		events.HandlerFunc(func(ctx context.Context, d *events.Delivery) events.Result {
			s.mu.Lock()
			s.calls[d.Event.ID]++
			s.mu.Unlock()
			if h != nil {
				return h(ctx, d)
			}
			return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
		}))
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func (s *standIn) callsOf(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[id]
}

// storedEvents is the number of events in the events stream.
func (s *standIn) storedEvents(t *testing.T) uint64 {
	t.Helper()
	st, err := s.JS.Stream(context.Background(), events.EventsStream)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func userEvent(id, user string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/t","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":%q}}}`, id, user)
}

func readItems(t *testing.T, lines ...string) []Item {
	t.Helper()
	items, err := ReadJSONL(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	require.NoError(t, err)
	return items
}

func render(rep *Report, opt RenderOptions) string {
	var b bytes.Buffer
	rep.Render(&b, opt)
	return b.String()
}

// TestRunRefusesAFileThatIsNotEvents: the worker's YAML configuration published by mistake is
// refused before anything is published, naming the first bad lines and how many there are.
func TestRunRefusesAFileThatIsNotEvents(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	f, err := os.Open(filepath.Join("..", "..", "deploy", "examples", "config.yaml"))
	require.NoError(t, err)
	defer f.Close()
	items, err := ReadJSONL(f)
	require.NoError(t, err)
	require.NotEmpty(t, items)

	rep, err := Run(context.Background(), s.JS, items, Options{Invalid: RefuseInvalid, Source: "config.yaml"})
	assert.Nil(t, rep)
	var invalid *InvalidError
	require.ErrorAs(t, err, &invalid)
	assert.Len(t, invalid.Bad, len(items))
	msg := err.Error()
	assert.Contains(t, msg, fmt.Sprintf("config.yaml: %d of %d lines are not valid events (%d of them not JSON at all); nothing published", len(items), len(items), len(items)))
	assert.Contains(t, msg, "\n  config.yaml:6: not JSON: \"nats:\"")
	assert.Contains(t, msg, fmt.Sprintf("and %d more invalid lines", len(items)-5))
	assert.LessOrEqual(t, strings.Count(msg, "\n"), 6, "the first five lines and a count, not every line")
	assert.Zero(t, s.storedEvents(t), "nothing published")

	// A JSON event that fails the schema is refused the same way, with its id.
	items = readItems(t, userEvent("ok", "a@x"), `{"specversion":"1.0","id":"bad","source":"/t","type":"identity.user.promote","data":{"object":"User","operation":"Promote","key":{"userName":"a@x"}}}`)
	_, err = Run(context.Background(), s.JS, items, Options{Invalid: RefuseInvalid, Source: "hr.jsonl"})
	require.ErrorAs(t, err, &invalid)
	assert.Contains(t, err.Error(), `hr.jsonl: 1 of 2 lines are not valid events; nothing published:`)
	assert.Contains(t, err.Error(), `hr.jsonl:2: event "bad": invalid event`)
	assert.Zero(t, s.storedEvents(t), "nothing published")
}

// TestRunSkipsInvalidItems: SkipInvalid publishes the valid events only.
func TestRunSkipsInvalidItems(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	items := readItems(t, userEvent("ok", "a@x"), "nats:", userEvent("ok2", "b@x"))
	rep, err := Run(context.Background(), s.JS, items, Options{Invalid: SkipInvalid, Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Published)
	require.Len(t, rep.Skipped, 1)
	assert.Equal(t, 2, rep.Skipped[0].Line)
	assert.True(t, rep.OK())
	assert.Equal(t, uint64(2), s.storedEvents(t))
	text := render(rep, RenderOptions{})
	assert.Contains(t, text, "Done: 2 events succeeded in this run; 1 invalid event left unpublished.")
	assert.NotContains(t, text, "Every event succeeded")
}

// TestRunRerunReadsEarlierOutcomesBack is the field report's re-run: every event is a duplicate,
// nothing is processed, and the report gives the outcome each event already has, labelled as
// earlier, found in the outcomes stream although it was published before this run began.
func TestRunRerunReadsEarlierOutcomesBack(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, func(_ context.Context, d *events.Delivery) events.Result {
		if d.Event.ID == "u3" {
			return events.Result{Outcome: events.Outcome{Status: events.StatusSkipped, Reason: "already in the desired state"}}
		}
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	ctx := context.Background()
	items := readItems(t, userEvent("u1", "a@x"), userEvent("u2", "b@x"), "#wait", userEvent("u3", "c@x"))
	first, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	require.True(t, first.OK())

	again, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Zero(t, again.Published)
	assert.Len(t, again.Duplicates, 3)
	assert.Empty(t, again.Outcomes, "nothing was processed in this run")
	assert.Empty(t, again.Missing)
	require.Len(t, again.Earlier, 3)
	for _, it := range items {
		o := again.Earlier[it.ID]
		require.NotNil(t, o, it.ID)
		assert.Equal(t, it.ID, o.InputID)
		assert.Equal(t, first.Outcomes[it.ID].StreamSeq, o.StreamSeq, "the outcome of the first publication")
		assert.Equal(t, 1, s.callsOf(it.ID), "not processed again")
	}
	require.NotNil(t, again.Lookback)
	assert.Equal(t, 3, again.Lookback.Found)
	assert.NoError(t, again.Lookback.Err)
	assert.True(t, again.OK(), "every event was done when it was published before")

	text := render(again, RenderOptions{})
	assert.NotContains(t, text, "Every event succeeded")
	assert.Contains(t, text, "3 duplicates were NOT processed again")
	assert.Regexp(t, `succeeded\s+0\s+2\n`, text, "this run's count and the earlier one apart")
	assert.Regexp(t, `skipped\s+0\s+1\n`, text)
	assert.Contains(t, text, "Done: 0 events succeeded in this run; 3 duplicates were NOT processed again (their earlier outcomes: succeeded 2, skipped 1).")
}

// TestRunRerunOfAFailedEventIsNotOK: a duplicate whose earlier outcome was a dead letter is a
// failure of the re-run too, shown as an earlier outcome with its reason.
func TestRunRerunOfAFailedEventIsNotOK(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, func(_ context.Context, d *events.Delivery) events.Result {
		if d.Event.ID == "u2" {
			return events.Result{Outcome: events.Outcome{Status: events.StatusDeadLettered,
				Error: &events.OutcomeError{Class: "permanent", Message: `unknown property "titel" of User`}}}
		}
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	ctx := context.Background()
	items := readItems(t, userEvent("u1", "a@x"), userEvent("u2", "b@x"))
	_, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)

	again, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.False(t, again.OK())
	failures := again.Failures()
	require.Len(t, failures, 1)
	assert.True(t, failures[0].Earlier)
	assert.Equal(t, "u2", failures[0].Item.ID)
	assert.Contains(t, render(again, RenderOptions{}), `1 × dead_lettered (earlier outcome, not processed again): permanent: unknown property "titel" of User`)
}

// TestRunRerunWithoutRetainedOutcome: when the earlier outcome is gone (the outcomes stream was
// purged), the report says the event was not processed again and why no outcome is shown.
func TestRunRerunWithoutRetainedOutcome(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	ctx := context.Background()
	items := readItems(t, userEvent("u1", "a@x"))
	_, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	outcomes, err := s.JS.Stream(ctx, events.OutcomesStream)
	require.NoError(t, err)
	require.NoError(t, outcomes.Purge(ctx))

	again, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: time.Second})
	require.NoError(t, err)
	assert.False(t, again.OK())
	require.Len(t, again.Missing, 1)
	failures := again.Failures()
	require.Len(t, failures, 1)
	assert.True(t, failures[0].Earlier)
	assert.Contains(t, failures[0].Reason, "not processed again in this run")
	assert.Contains(t, failures[0].Reason, "no longer retained")
	assert.Regexp(t, `no outcome \(timed out\)\s+0\s+1\n`, render(again, RenderOptions{}))
	assert.Equal(t, 1, s.callsOf("u1"))
}

// TestRunResendProcessesAgain: with Resend, the same file is published under fresh message ids and
// every event is processed again; the outcomes are this run's.
func TestRunResendProcessesAgain(t *testing.T) {
	t.Parallel()
	s := startStandIn(t, nil)
	ctx := context.Background()
	items := readItems(t, userEvent("u1", "a@x"), userEvent("u2", "b@x"))
	_, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)

	again, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second, Resend: true})
	require.NoError(t, err)
	assert.Equal(t, 2, again.Published)
	assert.Empty(t, again.Duplicates)
	assert.True(t, again.OK())
	for _, it := range items {
		o := again.Outcomes[it.ID]
		require.NotNil(t, o, it.ID)
		assert.Equal(t, it.ID, o.InputID, "the event itself is unchanged")
		assert.True(t, strings.HasPrefix(o.ID, it.ID+"+resend-"), o.ID)
		assert.Equal(t, 2, s.callsOf(it.ID), "processed again")
	}
	assert.Contains(t, render(again, RenderOptions{}), "Every event succeeded.")
}

// blockingStandIn succeeds every event but "slow", whose handler signals entered and holds it
// until the test ends.
func blockingStandIn(t *testing.T) (*standIn, <-chan struct{}) {
	t.Helper()
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
	t.Cleanup(func() { close(release) }) // runs before the consume loop stops
	return s, entered
}

// TestRunInterruptedReturnsThePartialReport: cancelling the context while waiting returns what
// is known so far with an error that says so.
func TestRunInterruptedReturnsThePartialReport(t *testing.T) {
	t.Parallel()
	s, entered := blockingStandIn(t)
	items := readItems(t, userEvent("a1", "a1@x"), userEvent("a2", "a2@x"), "#wait", userEvent("slow", "s@x"), "#wait", userEvent("b1", "b1@x"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-entered; cancel() }() // a1 and a2 have their outcomes: the first #wait let slow out

	rep, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: time.Minute})
	require.ErrorIs(t, err, ErrInterrupted)
	require.ErrorIs(t, err, context.Canceled)
	require.NotNil(t, rep)
	assert.True(t, rep.Interrupted)
	assert.Equal(t, 3, rep.Published)
	assert.Len(t, rep.Outcomes, 2)
	require.Len(t, rep.Missing, 1)
	assert.Equal(t, "slow", rep.Missing[0].ID)
	require.Len(t, rep.Unpublished, 1)
	assert.Equal(t, "b1", rep.Unpublished[0].ID)
	assert.False(t, rep.OK())

	text := render(rep, RenderOptions{})
	assert.Contains(t, text, "Published 3 events")
	assert.Contains(t, text, "1 event was not published: the run was interrupted first.")
	assert.Contains(t, text, "Interrupted after")
	assert.Regexp(t, `succeeded\s+2\n`, text)
	assert.Regexp(t, `still waiting\s+1\n`, text)
	assert.NotContains(t, text, "Every event succeeded")
}

// TestRunTimeoutAtAWaitLineHoldsTheRestBack: when the events before a #wait line have no outcome
// within the timeout, the events after it are not published (they would overtake them).
func TestRunTimeoutAtAWaitLineHoldsTheRestBack(t *testing.T) {
	t.Parallel()
	s, _ := blockingStandIn(t)
	items := readItems(t, userEvent("a1", "a1@x"), userEvent("slow", "s@x"), "#wait", userEvent("b1", "b1@x"), userEvent("b2", "b2@x"))
	rep, err := Run(context.Background(), s.JS, items, Options{Wait: true, Timeout: 500 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Published)
	assert.Equal(t, uint64(2), s.storedEvents(t), "the batch after the #wait line stays unpublished")
	assert.Len(t, rep.Unpublished, 2)
	assert.False(t, rep.OK())
	text := render(rep, RenderOptions{})
	assert.Contains(t, text, "2 events were not published: the events before its #wait line had no final outcome within the 500ms timeout.")
	assert.Contains(t, text, "1 × no outcome: no final outcome within the 500ms timeout")
}

func TestProgressInput(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"u1/deferred/2":                  "u1",
		"a/b+resend-x/held/1":            "a/b+resend-x",
		"u1":                             "",
		"line-6-92628a747890/deferred/1": "line-6-92628a747890",
	} {
		assert.Equal(t, want, progressInput(id), id)
	}
	assert.False(t, errors.Is(nil, ErrInterrupted))
}
