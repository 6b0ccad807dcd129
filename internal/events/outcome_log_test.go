package events

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the consume loop's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// At info level the worker's log says which events were deferred and which dead-lettered, naming
// each event, its object and key, the status, the class and the reason; a success is not logged
// at info (issue 7 item 8: "at info nothing logged about dead-lettered or deferred events").
func TestConsumerLogsDeferralsAndDeadLettersAtInfo(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	var attempts sync.Map
	h := HandlerFunc(func(_ context.Context, d *Delivery) Result {
		n, _ := attempts.LoadOrStore(d.Event.ID, new(int))
		*n.(*int)++
		switch {
		case d.Event.ID == "late-1" && *n.(*int) == 1:
			return Result{RetryAt: time.Now().Add(50 * time.Millisecond), Outcome: Outcome{Status: StatusDeferred,
				Reason: "target busy, deferred", Error: &OutcomeError{Class: "retryable", Message: "503"}}}
		case d.Event.ID == "bad-1":
			return Result{Outcome: Outcome{Status: StatusDeadLettered, Reason: "the target refused it",
				Error: &OutcomeError{Class: "permanent", Message: "400 invalidValue"}}}
		}
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	var log lockedBuffer
	c := NewConsumer(js, topo, ConsumerConfig{Logger: zerolog.New(&log).Level(zerolog.InfoLevel)}, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, ev := range []*Event{userEvent("late-1", "late@x", OpUpdate), userEvent("bad-1", "bad@x", OpUpdate), userEvent("ok-1", "ok@x", OpUpdate)} {
		_, err := NewPublisher(js).PublishEvent(ctx, ev)
		require.NoError(t, err)
	}
	got := outcomes(4, 20*time.Second) // late-1 deferred then succeeded, bad-1, ok-1
	require.Len(t, got, 4)

	byStatus := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l), line)
		if s, ok := l["status"].(string); ok {
			byStatus[s] = l
		}
	}
	deferred := byStatus["deferred"]
	require.NotNil(t, deferred, "no line about the deferred event:\n%s", log.String())
	assert.Equal(t, "info", deferred["level"])
	assert.Equal(t, "late-1", deferred["event"])
	assert.Equal(t, "userName=late@x", deferred["key"])
	assert.Equal(t, "retryable", deferred["class"])
	assert.Equal(t, "target busy, deferred", deferred["message"])
	dead := byStatus["dead_lettered"]
	require.NotNil(t, dead, "no line about the dead letter:\n%s", log.String())
	assert.Equal(t, "warn", dead["level"])
	assert.Equal(t, "bad-1", dead["event"])
	assert.Equal(t, "User", dead["object"])
	assert.Equal(t, "permanent", dead["class"])
	assert.Equal(t, "the target refused it", dead["message"])
	assert.NotContains(t, byStatus, "succeeded", "a success is not logged at info")
}
