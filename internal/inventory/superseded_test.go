package inventory

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
)

// A redelivery of an event older than the last one applied to its key is not applied again: its
// acknowledgement was lost (a worker killed after the write, a JetStream server restarted from an
// older consumer state) and applying it now would undo its successor. Found by the chaos suite: a
// user's title set back from v10 to v7 by updates delivered again after a handover.
func TestARedeliveredEventOlderThanTheLastAppliedIsSuperseded(t *testing.T) {
	f := setup(t, Config{})
	stored := time.Now().Add(-time.Minute)
	delivery := func(id string, seq uint64, title string, redelivered bool) *events.Delivery {
		return &events.Delivery{Attempt: 1, StreamSeq: seq, Stored: stored, Redelivered: redelivered,
			Event: events.NewEvent(id, "/test", events.Change{Object: "User", Operation: events.OpUpsert,
				Key: map[string]any{"userName": "ada@x"}, Attributes: map[string]any{"title": title}})}
	}
	title := func() any {
		for _, u := range f.sim.Snapshot().Users {
			if u["userName"] == "ada@x" {
				return u["title"]
			}
		}
		return nil
	}
	handle := func(d *events.Delivery) events.Outcome {
		t.Helper()
		for {
			res := f.proc.Handle(f.ctx, d)
			if res.Resume.IsZero() {
				return res.Outcome
			}
			time.Sleep(time.Millisecond)
		}
	}
	require.Equal(t, events.StatusSucceeded, handle(delivery("u-7", 70, "v7", false)).Status)
	require.Equal(t, events.StatusSucceeded, handle(delivery("u-10", 100, "v10", false)).Status)
	patches := f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"]

	o := handle(delivery("u-7", 70, "v7", true))
	assert.Equal(t, events.StatusSkipped, o.Status)
	assert.Contains(t, o.Reason, "superseded: event u-10 (sequence 100)")
	assert.Equal(t, "v10", title(), "the successor's value stays")
	assert.Equal(t, patches, f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"], "nothing sent")

	// A first delivery is never checked, nor a later event: both apply.
	assert.Equal(t, events.StatusSucceeded, handle(delivery("u-11", 110, "v11", true)).Status)
	assert.Equal(t, "v11", title())
	// An event stored after the last write of its key (the stream was created again and numbers
	// from 1) is not superseded by a record from before it.
	fresh := delivery("u-2", 2, "v2", true)
	fresh.Stored = time.Now().Add(time.Minute)
	assert.Equal(t, events.StatusSucceeded, handle(fresh).Status)
	assert.Equal(t, "v2", title())
}
