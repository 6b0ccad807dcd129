package inventory

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/pipeline"
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
			if res.Settle != nil {
				res.Settle() // as the consumer does before it acknowledges the event
			}
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

// A redelivery of the very event last applied to its key is not sent again: its successor may
// have reached the target without being recorded (its worker lost JetStream, wrote, and died), and
// the old values would go back over it. Found by the chaos suite: a JetStream restart lost the
// acknowledgement of u01298's update #2, its worker wrote #3 while the server was down and was
// killed; #2, delivered again, set the title back from v3 to v2. A record of an unfinished event
// (a follow-up still to write) is not evidence.
func TestARedeliveryOfTheLastAppliedEventIsNotSentAgain(t *testing.T) {
	f := setup(t, Config{})
	stored := time.Now().Add(-time.Minute)
	delivery := func(id string, seq uint64, title string) *events.Delivery {
		return &events.Delivery{Attempt: 1, StreamSeq: seq, Stored: stored, Redelivered: true,
			Event: events.NewEvent(id, "/test", events.Change{Object: "User", Operation: events.OpUpsert,
				Key: map[string]any{"userName": "bob@x"}, Attributes: map[string]any{"title": title}})}
	}
	handle := func(d *events.Delivery) events.Outcome {
		t.Helper()
		for {
			res := f.proc.Handle(f.ctx, d)
			if res.Settle != nil {
				res.Settle() // as the consumer does before it acknowledges the event
			}
			if res.Resume.IsZero() {
				return res.Outcome
			}
			time.Sleep(time.Millisecond)
		}
	}
	require.Equal(t, events.StatusSucceeded, handle(delivery("u-2", 20, "v2")).Status)
	// Event 3 reaches the target, unrecorded.
	f.do("PATCH", "Users/"+f.userID("bob@x"), map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "title", "value": "v3"}}})
	patches := f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"]

	o := handle(delivery("u-2", 20, "v2"))
	assert.Equal(t, events.StatusSucceeded, o.Status)
	assert.Contains(t, o.Reason, "by an earlier delivery whose acknowledgement was lost; not sent again")
	assert.Equal(t, patches, f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"], "nothing sent")
	for _, u := range f.sim.Snapshot().Users {
		if u["userName"] == "bob@x" {
			assert.Equal(t, "v3", u["title"], "the successor's value stays")
		}
	}

	// An unfinished record of the event does not stop it.
	f.applied.RecordApplied(f.ctx, pipeline.Applied{Object: "User", Key: map[string]any{"userName": "bob@x"},
		EventID: "u-4", StreamSeq: 40, Operation: "Upsert", Partial: true})
	o = handle(delivery("u-4", 40, "v4"))
	assert.Equal(t, events.StatusSucceeded, o.Status)
	assert.NotContains(t, o.Reason, "not sent again")
	assert.Equal(t, patches+1, f.sim.Stats().Requests["PATCH /scim/v2/Users/{id}"], "the unfinished event is sent")
}
