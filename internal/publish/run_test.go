package publish

import (
	"context"
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
}
