package events

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder is a handler that succeeds and records the event ids it handled per key, in order.
type recorder struct {
	mu    sync.Mutex
	byKey map[string][]string
}

func (r *recorder) Handle(_ context.Context, d *Delivery) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := d.Event.Data.Object + "/" + KeyString(d.Event.Data.Key)
	r.byKey[k] = append(r.byKey[k], d.Event.ID)
	return Result{Outcome: Outcome{Status: StatusSucceeded}}
}

func (r *recorder) of(key string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.byKey[key]...)
}

func TestReplayRepublishesARangeInOrder(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 4}
	js := setup(t, topo)
	outcomes := collectOutcomes(t, js)
	h := &recorder{byKey: map[string][]string{}}
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	ctx := context.Background()
	pub := NewPublisher(js)
	// seq 1..8: users a and b, groups g; seq 9: junk without a message id.
	var ids []string
	for i := range 8 {
		id := fmt.Sprintf("e%d", i+1)
		ids = append(ids, id)
		ev := userEvent(id, []string{"a", "b"}[i%2], OpUpdate)
		if i%4 == 3 {
			ev = NewEvent(id, "/test", Change{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "g"}})
		}
		_, err := pub.PublishEvent(ctx, ev)
		require.NoError(t, err)
	}
	junkMsg := nats.NewMsg("idm.events.User.junktoken")
	junkMsg.Data = []byte("not json")
	junkAck, err := js.PublishMsg(ctx, junkMsg)
	require.NoError(t, err)
	require.EqualValues(t, 9, junkAck.Sequence)
	finalOutcomes(t, outcomes, ids...)
	finalOutcomes(t, outcomes, "seq-9")
	require.Equal(t, []string{"e1", "e3", "e5", "e7"}, h.of("User/userName=a"))

	// seq 3..7: e3 (a), e4 (g), e5 (a), e6 (b), e7 (a).
	var seen []ReplayedEvent
	sum, err := Replay(ctx, js, ReplayRange{FromSeq: 3, ToSeq: 7}, ReplayOptions{OnEvent: func(e ReplayedEvent) { seen = append(seen, e) }})
	require.NoError(t, err)
	assert.Equal(t, 5, sum.Read)
	assert.Equal(t, 5, sum.Republished)
	assert.EqualValues(t, 3, sum.First)
	assert.EqualValues(t, 7, sum.Last)
	assert.Equal(t, map[string]int{"User": 4, "Group": 1}, sum.ByObject)
	require.Len(t, seen, 5)
	assert.Equal(t, "e3/replay/3", seen[0].MsgID)
	assert.Equal(t, "e3", seen[0].EventID)
	assert.Equal(t, EventSubject("User", map[string]any{"userName": "a"}), seen[0].Subject)
	assert.EqualValues(t, 10, seen[0].NewSeq)
	finalOutcomes(t, outcomes, "e3/replay/3", "e4/replay/4", "e5/replay/5", "e6/replay/6", "e7/replay/7")
	assert.Equal(t, []string{"e1", "e3", "e5", "e7", "e3", "e5", "e7"}, h.of("User/userName=a"), "a key's replayed events run in their order")
	assert.Equal(t, []string{"e4", "e8", "e4"}, h.of("Group/displayName=g"))

	st, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	m, err := st.GetMsg(ctx, 10)
	require.NoError(t, err)
	assert.Equal(t, "3", m.Header.Get(HeaderReplay))
	assert.Equal(t, EventsStream, m.Header.Get(HeaderReplayStream))
	assert.Equal(t, "3", m.Header.Get(HeaderOriginalSeq))
	orig, err := st.GetMsg(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, orig.Data, m.Data)
	_, _, tok, _ := ParsePartitioned(orig.Subject)
	_, _, tok2, _ := ParsePartitioned(m.Subject)
	assert.Equal(t, tok, tok2)

	// The same replay again, within the duplicate window: JetStream drops every event.
	sum, err = Replay(ctx, js, ReplayRange{FromSeq: 3, ToSeq: 7}, ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, sum.Republished)
	assert.Equal(t, 5, sum.Duplicates)

	// Everything of the Group object: e4 (already replayed as e4/replay/4 within the duplicate
	// window: dropped), e8, and the copy of e4, skipped since e4 itself is in the range.
	var groupSeen []ReplayedEvent
	sum, err = Replay(ctx, js, ReplayRange{Object: "Group"}, ReplayOptions{OnEvent: func(e ReplayedEvent) { groupSeen = append(groupSeen, e) }})
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Read)
	assert.Equal(t, 1, sum.Republished)
	assert.Equal(t, 1, sum.Duplicates)
	assert.Equal(t, 1, sum.Copies)
	require.Len(t, groupSeen, 3)
	assert.Contains(t, groupSeen[2].Skipped, "a replay of seq 4")
	finalOutcomes(t, outcomes, "e8/replay/8")

	// A dry run reads and publishes nothing; junk without a message id is named by its sequence.
	before, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	var dry []ReplayedEvent
	sum, err = Replay(ctx, js, ReplayRange{FromSeq: 9, ToSeq: 9}, ReplayOptions{DryRun: true, OnEvent: func(e ReplayedEvent) { dry = append(dry, e) }})
	require.NoError(t, err)
	assert.True(t, sum.DryRun)
	require.Len(t, dry, 1)
	assert.Equal(t, "seq-9/replay/9", dry[0].MsgID)
	assert.Equal(t, "idm.events.User.junktoken", dry[0].Subject)
	after, err := js.Stream(ctx, EventsStream)
	require.NoError(t, err)
	assert.Equal(t, before.CachedInfo().State.LastSeq, after.CachedInfo().State.LastSeq)
}

func TestReplaySinceAndEmptyRanges(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	ctx := context.Background()
	pub := NewPublisher(js)

	sum, err := Replay(ctx, js, ReplayRange{}, ReplayOptions{})
	require.NoError(t, err, "an empty stream replays nothing")
	assert.Equal(t, 0, sum.Read)

	for i := range 3 {
		_, err := pub.PublishEvent(ctx, userEvent("old"+strconv.Itoa(i), "u", OpUpdate))
		require.NoError(t, err)
	}
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	for i := range 2 {
		_, err := pub.PublishEvent(ctx, userEvent("new"+strconv.Itoa(i), "u", OpUpdate))
		require.NoError(t, err)
	}
	var got []string
	sum, err = Replay(ctx, js, ReplayRange{Since: since}, ReplayOptions{OnEvent: func(e ReplayedEvent) { got = append(got, e.EventID) }})
	require.NoError(t, err)
	assert.Equal(t, []string{"new0", "new1"}, got)
	assert.EqualValues(t, 5, sum.UpTo, "the replay stops where the stream ended when it began")

	sum, err = Replay(ctx, js, ReplayRange{Object: "Container"}, ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, sum.Read, "no event of that object")
	sum, err = Replay(ctx, js, ReplayRange{FromSeq: 100}, ReplayOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, sum.Read, "past the end")

	for _, bad := range []ReplayRange{
		{Since: since, FromSeq: 2},
		{FromSeq: 5, ToSeq: 3},
		{Object: "idm.>"},
	} {
		_, err := Replay(ctx, js, bad, ReplayOptions{})
		assert.Error(t, err, "%+v", bad)
	}
}

func TestOutcomeWatchCollectsReplayedOutcomes(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	js := setup(t, topo)
	h := &recorder{byKey: map[string][]string{}}
	runConsumer(t, js, topo, ConsumerConfig{}, h)
	ctx := context.Background()
	w, err := WatchOutcomes(js.Conn(), func(id string) bool { return id == "w2" })
	require.NoError(t, err)
	defer w.Stop()
	w.Want("w1")
	_, err = NewPublisher(js).PublishEvent(ctx, userEvent("w1", "x", OpUpdate))
	require.NoError(t, err)
	_, err = NewPublisher(js).PublishEvent(ctx, userEvent("w2", "y", OpUpdate))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		return len(w.Wait(short)) == 1
	}, 10*time.Second, 10*time.Millisecond)
	// w2's outcome is kept by the watch's filter, whether it came before it was wanted or after.
	w.Want("w2")
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got := w.Wait(wctx)
	require.Len(t, got, 2)
	assert.Equal(t, StatusSucceeded, got["w1"].Status)

	w.Want("never")
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	assert.Len(t, w.Wait(short), 2, "Wait returns what is in when its context ends")
}
