package publish

import (
	"bytes"
	"context"
	"fmt"
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

const sample = `{"specversion":"1.0","id":"u1","source":"/hr","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":"a@x"}}}

# comments and blank lines are skipped
{"specversion":"1.0","id":"u2","source":"/hr","type":"identity.user.update","data":{"object":"User","operation":"Update","key":{"userName":"a@x"},"attributes":{"title":"CTO"}}}
{"specversion":"1.0","id":"bad","source":"/hr","type":"identity.user.promote","data":{"object":"User","operation":"Promote","key":{"userName":"a@x"}}}
not json at all
{"specversion":"1.0","id":"g1","source":"/hr","type":"identity.group.create","data":{"object":"Group","operation":"Create","key":{"displayName":"Ops"}}}
`

func TestReadJSONL(t *testing.T) {
	t.Parallel()
	items, err := ReadJSONL(strings.NewReader(sample))
	require.NoError(t, err)
	require.Len(t, items, 5)
	assert.Equal(t, 1, items[0].Line)
	assert.Equal(t, 4, items[1].Line)
	assert.Equal(t, events.EventSubject("User", map[string]any{"userName": "a@x"}), items[0].Subject)
	assert.Equal(t, items[0].Subject, items[1].Subject, "same key, same subject")
	assert.NoError(t, items[0].Invalid)

	bad := items[2]
	require.Error(t, bad.Invalid)
	assert.False(t, bad.NotJSON, "JSON, but not a valid event")
	assert.Equal(t, "bad", bad.ID)
	assert.Equal(t, items[0].Subject, bad.Subject, "an invalid event still travels with its key")

	junk := items[3]
	require.Error(t, junk.Invalid)
	assert.True(t, junk.NotJSON)
	assert.Equal(t, `not JSON: "not json at all"`, junk.Problem())
	assert.Regexp(t, `^line-6-[0-9a-f]{12}$`, junk.ID)
	assert.True(t, strings.HasPrefix(junk.Subject, "idm.events._unknown."), junk.Subject)
}

func TestReadCSV(t *testing.T) {
	t.Parallel()
	src := "userName,name.givenName,emails[].value,active\njdoe@x,John,jdoe@x|john@x,true\nann@x,,ann@x,false\n"
	items, err := ReadCSV(strings.NewReader(src), CSVOptions{Object: "User", Operation: "Upsert", Key: []string{"userName"}, Multi: []string{"emails[].value"}})
	require.NoError(t, err)
	require.Len(t, items, 2)
	ev, err := events.Decode(items[0].Raw)
	require.NoError(t, err)
	assert.Equal(t, "identity.user.upsert", ev.Type)
	assert.Equal(t, map[string]any{"userName": "jdoe@x"}, ev.Data.Key)
	assert.Equal(t, map[string]any{"name.givenName": "John", "emails[].value": []any{"jdoe@x", "john@x"}, "active": true}, ev.Data.Attributes)
	ev2, err := events.Decode(items[1].Raw)
	require.NoError(t, err)
	assert.NotContains(t, ev2.Data.Attributes, "name.givenName", "empty cells are left out")

	again, err := ReadCSV(strings.NewReader(src), CSVOptions{Object: "User", Operation: "Upsert", Key: []string{"userName"}, Multi: []string{"emails[].value"}})
	require.NoError(t, err)
	assert.Equal(t, items[0].ID, again[0].ID, "ids are stable so a republished file is deduplicated")

	_, err = ReadCSV(strings.NewReader(src), CSVOptions{Object: "User", Operation: "Upsert", Key: []string{"uid"}})
	assert.ErrorContains(t, err, `key column "uid"`)
}

func TestRunWaitsForOutcomes(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	topo := events.Topology{Partitions: 4}
	require.NoError(t, topo.Ensure(ctx, s.JS))
	// A real consume loop whose handler fails one event permanently.
	h := events.HandlerFunc(func(ctx context.Context, d *events.Delivery) events.Result {
		if d.Event.Data.Object == "Group" {
			return events.Result{Outcome: events.Outcome{Status: events.StatusDeadLettered,
				Error: &events.OutcomeError{Class: "permanent", Message: "target said no"}}}
		}
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	c := events.NewConsumer(s.JS, topo, events.ConsumerConfig{Logger: zerolog.Nop()}, h)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(cctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	items, err := ReadJSONL(strings.NewReader(sample))
	require.NoError(t, err)
	var progress bytes.Buffer
	rep, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second, Progress: &progress})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Published)
	assert.Empty(t, rep.Missing)
	counts := rep.Counts()
	assert.Equal(t, 2, counts[events.StatusSucceeded])
	assert.Equal(t, 3, counts[events.StatusDeadLettered])
	assert.False(t, rep.OK())
	assert.Contains(t, progress.String(), "5/5 outcomes")

	var out bytes.Buffer
	rep.Render(&out, RenderOptions{})
	text := out.String()
	assert.Contains(t, text, "Published 5 events (0 duplicates dropped by JetStream, 2 invalid published for the worker to dead-letter)")
	assert.Regexp(t, `succeeded\s+2`, text)
	assert.Regexp(t, `dead_lettered\s+3`, text)
	assert.Contains(t, text, "permanent: target said no")
	assert.Contains(t, text, "invalid: invalid event")

	// Publishing the same file again: JetStream drops every event as a duplicate, and the report
	// says what became of them when they were published before instead of claiming success.
	rep2, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 0, rep2.Published)
	assert.Len(t, rep2.Duplicates, 5)
	assert.Empty(t, rep2.Outcomes, "nothing was processed in this run")
	assert.Equal(t, map[events.Status]int{events.StatusSucceeded: 2, events.StatusDeadLettered: 3}, rep2.EarlierCounts())
	assert.False(t, rep2.OK(), "three of the events were dead-lettered when they were published before")
	out.Reset()
	rep2.Render(&out, RenderOptions{})
	assert.NotContains(t, out.String(), "Every event succeeded")
	assert.Contains(t, out.String(), "5 duplicates were NOT processed again")
	assert.Contains(t, out.String(), "1 × dead_lettered (earlier outcome, not processed again): permanent: target said no")
}

func TestWaitLinesHoldBackLaterBatches(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	topo := events.Topology{Partitions: 8}
	require.NoError(t, topo.Ensure(ctx, s.JS))
	var mu sync.Mutex
	var order []string
	h := events.HandlerFunc(func(ctx context.Context, d *events.Delivery) events.Result {
		if strings.HasPrefix(d.Event.ID, "a") {
			time.Sleep(50 * time.Millisecond) // the first batch is slow: without the barrier, b would overtake it
		}
		mu.Lock()
		order = append(order, d.Event.ID)
		mu.Unlock()
		return events.Result{Outcome: events.Outcome{Status: events.StatusSucceeded}}
	})
	c := events.NewConsumer(s.JS, topo, events.ConsumerConfig{Logger: zerolog.Nop()}, h)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = c.Run(cctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	var src strings.Builder
	line := func(id, user string) {
		fmt.Fprintf(&src, `{"specversion":"1.0","id":%q,"source":"/t","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":%q}}}`+"\n", id, user)
	}
	for i := range 4 {
		line(fmt.Sprintf("a%d", i), fmt.Sprintf("a%d@x", i))
	}
	src.WriteString("#wait: joiners first\n")
	for i := range 4 {
		line(fmt.Sprintf("b%d", i), fmt.Sprintf("b%d@x", i))
	}
	items, err := ReadJSONL(strings.NewReader(src.String()))
	require.NoError(t, err)
	require.Len(t, items, 8)
	assert.Equal(t, 0, items[3].Batch)
	assert.Equal(t, 1, items[4].Batch)
	assert.Equal(t, 6, items[4].Line)

	rep, err := Run(ctx, s.JS, items, Options{Wait: true, Timeout: 20 * time.Second})
	require.NoError(t, err)
	require.True(t, rep.OK())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, order, 8)
	for _, id := range order[:4] {
		assert.True(t, strings.HasPrefix(id, "a"), "batch order broken: %v", order)
	}
}
