package events

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// brokenTarget is a handler that dead-letters the events of broken keys as a target would refuse
// them, succeeds otherwise, and records every delivery.
type brokenTarget struct {
	mu     sync.Mutex
	broken map[string]bool
	seen   []*Delivery
}

func (b *brokenTarget) Handle(_ context.Context, d *Delivery) Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	cp := *d
	b.seen = append(b.seen, &cp)
	if b.broken[KeyString(d.Event.Data.Key)] {
		return Result{Outcome: Outcome{Status: StatusDeadLettered,
			Error:  &OutcomeError{Class: "permanent", Status: 400, Message: "POST Users → 400 invalidValue"},
			Reason: "send failed permanently: POST Users → 400 invalidValue"}}
	}
	return Result{Outcome: Outcome{Status: StatusSucceeded}}
}

func (b *brokenTarget) fix(key string) {
	b.mu.Lock()
	delete(b.broken, key)
	b.mu.Unlock()
}

func (b *brokenTarget) deliveriesOf(id string) []*Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*Delivery
	for _, d := range b.seen {
		if d.Event.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// finalOutcomes waits for the final outcomes of ids and returns them by outcome id.
func finalOutcomes(t *testing.T, outcomes func(int, time.Duration) []*Outcome, ids ...string) map[string]*Outcome {
	t.Helper()
	var byID map[string]*Outcome
	require.Eventually(t, func() bool {
		byID = map[string]*Outcome{}
		for _, o := range outcomes(0, 0) {
			if o.Final {
				byID[o.ID] = o
			}
		}
		for _, id := range ids {
			if byID[id] == nil {
				return false
			}
		}
		return true
	}, 15*time.Second, 20*time.Millisecond, "final outcomes of %v", ids)
	return byID
}

func dlqCount(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), DLQStream)
	require.NoError(t, err)
	return st.CachedInfo().State.Msgs
}

func userEvent(id, user string, op string) *Event {
	return NewEvent(id, "/test", Change{Object: "User", Operation: op, Key: map[string]any{"userName": user}})
}

func TestDLQListShowsDeadLettersAndFilters(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := &brokenTarget{broken: map[string]bool{"userName=b1": true, "userName=b2": true}}
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	ctx := context.Background()
	pub := NewPublisher(js)
	for i, u := range []string{"ok1", "b1", "ok2", "b2"} {
		_, err := pub.PublishEvent(ctx, userEvent(fmt.Sprintf("e%d", i), u, OpCreate))
		require.NoError(t, err)
	}
	_, err := pub.PublishRaw(ctx, "idm.events.Group.tok", "junk-1", []byte("not json"))
	require.NoError(t, err)
	finalOutcomes(t, outcomes, "e0", "e1", "e2", "e3", "junk-1")
	before := time.Now()

	q := NewDLQ(js)
	all, err := q.List(ctx, DLQFilter{}, false)
	require.NoError(t, err)
	require.Len(t, all, 3)
	// Partitions finish in no particular order: the dead letters are in the order they were
	// dead-lettered, which the test can't know.
	byEvent := map[string]*DeadLetterEntry{}
	for i, e := range all {
		byEvent[e.EventID] = e
		if i > 0 {
			assert.Greater(t, e.Seq, all[i-1].Seq, "oldest first")
		}
	}
	b1 := byEvent["e1"]
	require.NotNil(t, b1)
	assert.Equal(t, "User", b1.Object)
	assert.Equal(t, "userName=b1", b1.KeyString())
	assert.Equal(t, "permanent", b1.ErrorClass)
	assert.Equal(t, 1, b1.Attempt)
	assert.EqualValues(t, 2, b1.StreamSeq)
	assert.Equal(t, EventSubject("User", map[string]any{"userName": "b1"}), b1.EventSubject)
	assert.Contains(t, b1.Reason, "400 invalidValue")
	assert.Nil(t, b1.Payload, "a listing leaves payloads out")
	junk := byEvent["junk-1"]
	require.NotNil(t, junk, "an unreadable event is named by its message id")
	assert.Equal(t, "Group", junk.Object)
	assert.Equal(t, "tok", junk.KeyString(), "an unreadable event's key is its key token")
	assert.Equal(t, "invalid", junk.ErrorClass)

	users, err := q.List(ctx, DLQFilter{Object: "User"}, true)
	require.NoError(t, err)
	require.Len(t, users, 2)
	keyOf := map[string]string{"e1": `"b1"`, "e3": `"b2"`}
	for _, u := range users {
		assert.Contains(t, string(u.Payload), keyOf[u.EventID], "the payload is kept")
	}
	invalid, err := q.List(ctx, DLQFilter{Class: "invalid"}, false)
	require.NoError(t, err)
	require.Len(t, invalid, 1)
	assert.Equal(t, "junk-1", invalid[0].EventID)
	byID, err := q.List(ctx, DLQFilter{EventID: "e3"}, false)
	require.NoError(t, err)
	require.Len(t, byID, 1)
	later, err := q.List(ctx, DLQFilter{Since: before}, false)
	require.NoError(t, err)
	assert.Empty(t, later)
	one, err := q.List(ctx, DLQFilter{Seq: byEvent["e3"].Seq}, true)
	require.NoError(t, err)
	require.Len(t, one, 1)
	assert.Equal(t, "e3", one[0].EventID)
	_, err = q.Get(ctx, 999)
	assert.ErrorIs(t, err, ErrNoDeadLetter)
	none, err := q.List(ctx, DLQFilter{Object: "Container"}, false)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestDLQReplayProcessesAgainAndRemovesTheDeadLetter(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := &brokenTarget{broken: map[string]bool{"userName=fixed": true, "userName=still": true}}
	c, _, _ := runConsumer(t, js, topo, ConsumerConfig{}, h)
	ctx := context.Background()
	pub := NewPublisher(js)
	_, err := pub.PublishEvent(ctx, userEvent("f1", "fixed", OpCreate))
	require.NoError(t, err)
	_, err = pub.PublishEvent(ctx, userEvent("s1", "still", OpCreate))
	require.NoError(t, err)
	first := finalOutcomes(t, outcomes, "f1", "s1")
	require.Equal(t, StatusDeadLettered, first["f1"].Status)
	q := NewDLQ(js)
	byEvent := map[string]*DeadLetterEntry{}
	all, err := q.List(ctx, DLQFilter{}, true)
	require.NoError(t, err)
	require.Len(t, all, 2)
	for _, e := range all {
		byEvent[e.EventID] = e
	}
	dead := []*DeadLetterEntry{byEvent["f1"], byEvent["s1"]}

	// The cause is fixed: the replay runs through the handler again as a new delivery and ends
	// with a new final outcome under the replay's id; the dead letter is gone.
	h.fix("userName=fixed")
	r, err := q.Replay(ctx, dead[0])
	require.NoError(t, err)
	assert.Equal(t, "f1/replay/dlq-"+strconv.FormatUint(dead[0].Seq, 10), r.MsgID)
	assert.False(t, r.Duplicate)
	assert.Zero(t, r.NewerSeq)
	got := finalOutcomes(t, outcomes, r.MsgID)
	o := got[r.MsgID]
	assert.Equal(t, StatusSucceeded, o.Status)
	assert.Equal(t, "f1", o.InputID)
	assert.Equal(t, r.NewSeq, o.StreamSeq)
	ds := h.deliveriesOf("f1")
	require.Len(t, ds, 2, "the replay was handled, not resent blindly")
	assert.True(t, ds[1].Redelivered, "a replay is planned as a redelivery: the target may have it already")
	_, err = q.Get(ctx, dead[0].Seq)
	assert.ErrorIs(t, err, ErrNoDeadLetter, "the replayed dead letter is removed")

	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	stored, err := st.GetMsg(ctx, r.NewSeq)
	require.NoError(t, err)
	assert.Equal(t, dead[0].Payload, stored.Data, "the original payload, byte for byte")
	assert.Equal(t, strconv.FormatUint(dead[0].Seq, 10), stored.Header.Get(HeaderReplay))
	assert.Equal(t, DLQStream, stored.Header.Get(HeaderReplayStream))
	assert.Equal(t, strconv.FormatUint(dead[0].StreamSeq, 10), stored.Header.Get(HeaderOriginalSeq))
	assert.Equal(t, r.MsgID, stored.Header.Get(HeaderMsgID))

	// Still broken: the replay fails again and returns to the DLQ once, as a new dead letter.
	r2, err := q.Replay(ctx, dead[1])
	require.NoError(t, err)
	got = finalOutcomes(t, outcomes, r2.MsgID)
	assert.Equal(t, StatusDeadLettered, got[r2.MsgID].Status)
	again, err := q.List(ctx, DLQFilter{}, false)
	require.NoError(t, err)
	require.Len(t, again, 1)
	assert.Equal(t, "s1", again[0].EventID)
	assert.Greater(t, again[0].Seq, dead[1].Seq, "a new dead letter")
	assert.EqualValues(t, r2.NewSeq, again[0].StreamSeq, "it names the replay's sequence")

	// A replay whose removal failed and is run again is dropped as a duplicate: the event is not
	// processed a third time.
	r3, err := q.Replay(ctx, dead[1])
	require.NoError(t, err)
	assert.True(t, r3.Duplicate)
	assert.Equal(t, r2.MsgID, r3.MsgID)
	// Nothing replays a dead letter by itself: the outcomes settle at one per delivery.
	waitAllAcked(t, js, c, topo)
	assert.Len(t, h.deliveriesOf("s1"), 2)
	assert.EqualValues(t, 1, dlqCount(t, js))
}

func TestDLQReplayNewerEventsOfTheKey(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := &brokenTarget{broken: map[string]bool{"userName=k": true}}
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	ctx := context.Background()
	pub := NewPublisher(js)
	_, err := pub.PublishEvent(ctx, userEvent("k1", "k", OpCreate))
	require.NoError(t, err)
	finalOutcomes(t, outcomes, "k1")
	h.fix("userName=k")
	ack, err := pub.PublishEvent(ctx, userEvent("k2", "K", OpUpdate))
	require.NoError(t, err)
	finalOutcomes(t, outcomes, "k2")

	q := NewDLQ(js)
	dead, err := q.List(ctx, DLQFilter{}, true)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	r, err := q.Replay(ctx, dead[0])
	require.NoError(t, err)
	assert.Equal(t, ack.Sequence, r.NewerSeq, "the replay says a newer event of the key ran before it")
}

func TestDLQReplayOfATruncatedDeadLetterReadsTheEventBack(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 1}
	const maxPayload = 128 << 10
	js := setupMaxPayload(t, topo, maxPayload)
	ctx := context.Background()
	// Room for the replay's headers (about 130 bytes), not for the dead letter's.
	payload := junk(maxPayload - 200)
	pub := NewPublisher(js)
	ack, err := pub.PublishRaw(ctx, "idm.events.User.tok", "big-1", payload)
	require.NoError(t, err)
	require.NoError(t, pub.DeadLetter(ctx, DeadLetter{EventID: "big-1", MsgID: "big-1", Object: "User",
		EventSubject: "idm.events.User.tok", StreamSeq: ack.Sequence, Attempt: 1, ErrorClass: "invalid",
		Reason: "not a JSON document", Payload: payload}))
	q := NewDLQ(js)
	dead, err := q.List(ctx, DLQFilter{}, true)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.True(t, dead[0].Truncated)
	assert.Equal(t, len(payload), dead[0].PayloadSize)

	orig, err := q.Original(ctx, dead[0])
	require.NoError(t, err)
	assert.Equal(t, payload, orig)
	r, err := q.Replay(ctx, dead[0])
	require.NoError(t, err)
	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	m, err := st.GetMsg(ctx, r.NewSeq)
	require.NoError(t, err)
	assert.Equal(t, payload, m.Data, "the whole event is replayed, not the dead letter's first bytes")

	// When IDM_EVENTS no longer holds it, the replay refuses and the dead letter stays.
	require.NoError(t, pub.DeadLetter(ctx, DeadLetter{EventID: "big-1", MsgID: "big-1/again", Object: "User",
		EventSubject: "idm.events.User.tok", StreamSeq: ack.Sequence, Attempt: 1, ErrorClass: "invalid",
		Reason: "not a JSON document", Payload: payload}))
	require.NoError(t, st.DeleteMsg(ctx, ack.Sequence))
	dead, err = q.List(ctx, DLQFilter{}, true)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	_, err = q.Replay(ctx, dead[0])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "keeps only the first")
	_, err = q.Get(ctx, dead[0].Seq)
	assert.NoError(t, err, "a dead letter that could not be replayed stays")
}

func TestDLQReplayWithoutSubjectRefuses(t *testing.T) {
	t.Parallel()
	js := setup(t, Topology{Partitions: 1})
	ctx := context.Background()
	require.NoError(t, NewPublisher(js).DeadLetter(ctx, DeadLetter{EventID: "m1", MsgID: "m1", Object: "User",
		StreamSeq: 3, Attempt: 1, ErrorClass: "invalid", Reason: "the stored subject could not be read",
		Payload: []byte(`{}`)}))
	q := NewDLQ(js)
	dead, err := q.List(ctx, DLQFilter{}, true)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	_, err = q.Replay(ctx, dead[0])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no subject to replay it on")
	assert.EqualValues(t, 1, dlqCount(t, js))
}
