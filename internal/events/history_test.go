package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// The log keeps a key's outcomes and notes in the order they were written, the newest
// HistoryPerKey of them, one line for an outcome written twice, and nothing of other keys.
func TestHistoryKeepsOutcomesAndNotesInOrder(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	require.NoError(t, Topology{Partitions: 1, HistoryPerKey: 4}.Ensure(ctx, s.JS))
	h, err := NewHistory(s.JS)
	require.NoError(t, err)

	key := map[string]any{"userName": "jdoe@example.com"}
	outcome := func(id string, st Status) *Outcome {
		return &Outcome{ID: id, InputID: id, Time: time.Now().UTC(), Object: "User", Key: key, Operation: OpUpdate, Status: st, Final: st.Final(),
			Requests: []Call{{Method: "PATCH", Path: "Users/1", Status: 204, DurationMs: 1.5}}}
	}
	h.Record(outcome("e1", StatusSucceeded))
	h.Record(outcome("e2/deferred/1", StatusDeferred))
	h.Record(outcome("e2/deferred/1", StatusDeferred)) // republished after a crash: one line
	h.Note(&HistoryNote{Kind: NoteRetry, Object: "User", Key: map[string]any{"userName": "JDoe@Example.com"}, Event: "e2", By: "tester", Detail: "run now"})
	h.Record(outcome("e2", StatusSucceeded))
	h.Record(outcome("e3", StatusSucceeded))
	h.Record(&Outcome{ID: "x1", InputID: "x1", Object: "User", Key: map[string]any{"userName": "other@example.com"}, Status: StatusSucceeded, Final: true})
	h.Record(&Outcome{ID: "bad", InputID: "bad", Status: StatusDeadLettered, Final: true}) // no key: no log
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, h.Flush(flushCtx))

	all, err := ReadHistory(ctx, s.JS, "User", key, 0)
	require.NoError(t, err)
	var got []string
	for _, e := range all {
		if e.Note != nil {
			got = append(got, "note:"+e.Note.Kind+":"+e.Note.By)
			continue
		}
		got = append(got, e.ID+":"+string(e.Status))
	}
	assert.Equal(t, []string{"e2/deferred/1:deferred", "note:retry:tester", "e2:succeeded", "e3:succeeded"}, got,
		"the newest 4 (HistoryPerKey), the duplicate dropped, the note under the same key whatever its case")
	require.NotNil(t, all[0].Outcome)
	assert.Equal(t, []Call{{Method: "PATCH", Path: "Users/1", Status: 204, DurationMs: 1.5}}, all[0].Requests)
	assert.Nil(t, all[1].Outcome, "a note is no outcome")
	assert.Equal(t, all[1].Note.Time, all[1].When())

	newest, err := ReadHistory(ctx, s.JS, "User", key, 2)
	require.NoError(t, err)
	require.Len(t, newest, 2)
	assert.Equal(t, "e3", newest[1].ID)

	none, err := ReadHistory(ctx, s.JS, "User", map[string]any{"userName": "nobody@example.com"}, 0)
	require.NoError(t, err)
	assert.Empty(t, none)

	st := h.Stats()
	assert.EqualValues(t, 7, st.Written, "every write sent (the server drops the duplicate)")
	assert.Zero(t, st.Failed)
	assert.Zero(t, st.Pending)
}

// A write the server refuses (here: no IDM_HISTORY stream at all) is counted with its reason,
// after the fact, and never reaches the caller.
func TestHistoryCountsWritesItCouldNotMake(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	h, err := NewHistory(s.JS)
	require.NoError(t, err)
	key := map[string]any{"userName": "jdoe@example.com"}
	for i := range 3 {
		h.Record(&Outcome{ID: fmt.Sprint("e", i), InputID: fmt.Sprint("e", i), Object: "User", Key: key, Status: StatusSucceeded, Final: true})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.Flush(ctx))
	st := h.Stats()
	assert.EqualValues(t, 3, st.Failed, "%+v", st)
	assert.Contains(t, st.LastError, HistorySubject("User", key))
	assert.False(t, st.LastAt.IsZero())
	assert.EqualValues(t, 3, h.Failed())
}

// OpenParkStore with replicas 0 (the command-line tools) opens the store as the workers made it;
// it used to rewrite the stream's configuration with its own (one replica, no limits).
func TestOpenParkStoreLeavesAWorkersStoreAlone(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	_, err := s.JS.CreateStream(ctx, jetstream.StreamConfig{
		Name: ParkedStream, Subjects: []string{ParkedPrefix + ".>"}, Storage: jetstream.FileStorage, MaxAge: 48 * time.Hour,
		Description: "made by a worker",
	})
	require.NoError(t, err)
	_, err = s.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: KeyStateBucket, History: 3})
	require.NoError(t, err)

	_, err = OpenParkStore(ctx, s.JS, 0)
	require.NoError(t, err)
	st, err := s.JS.Stream(ctx, ParkedStream)
	require.NoError(t, err)
	assert.Equal(t, 48*time.Hour, st.CachedInfo().Config.MaxAge)
	assert.Equal(t, "made by a worker", st.CachedInfo().Config.Description)
	kv, err := s.JS.KeyValue(ctx, KeyStateBucket)
	require.NoError(t, err)
	kst, err := kv.Status(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 3, kst.History())

	// Absent, it is created.
	fresh := natstest.MustStart(t)
	_, err = OpenParkStore(ctx, fresh.JS, 0)
	require.NoError(t, err)
	_, err = fresh.JS.Stream(ctx, ParkedStream)
	assert.NoError(t, err)
}

func TestReplayOf(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"jdoe-2":                                   "",
		ReplayMsgID("jdoe-2", 57):                  "sequence 57 of " + EventsStream,
		DLQReplayMsgID("jdoe-2", 12):               "dead letter 12 of " + DLQStream,
		DLQReplayMsgID("jdoe-2", 12) + "/held/1":   "dead letter 12 of " + DLQStream,
		ReplayMsgID(ReplayMsgID("jdoe-2", 57), 90): "sequence 90 of " + EventsStream,
	} {
		assert.Equal(t, want, ReplayOf(id), id)
	}
}

// The log reads in the order things happened: an outcome stamped before an operator's note, but
// written after it (a held delete's outcome lands after its hold, which the operator approved at
// once), comes first.
func TestHistoryReadsInTheOrderThingsHappened(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	require.NoError(t, Topology{Partitions: 1}.Ensure(ctx, s.JS))
	h, err := NewHistory(s.JS)
	require.NoError(t, err)
	key := map[string]any{"userName": "ada@example.com"}
	held := time.Now().UTC()
	h.Note(&HistoryNote{Kind: NoteApprove, Time: held.Add(time.Millisecond), Object: "User", Key: key, Event: "fire-ada", By: "op"})
	h.Record(&Outcome{ID: "fire-ada/held/1", InputID: "fire-ada", Time: held, Object: "User", Key: key, Operation: OpDelete, Status: StatusHeld})
	flushCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, h.Flush(flushCtx))
	all, err := ReadHistory(ctx, s.JS, "User", key, 0)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.NotNil(t, all[0].Outcome, "the held outcome first")
	assert.Equal(t, StatusHeld, all[0].Status)
	require.NotNil(t, all[1].Note)
	assert.Equal(t, NoteApprove, all[1].Note.Kind)
}
