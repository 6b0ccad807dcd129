package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func schedTask(subject string, partition int, seq uint64) *task {
	return &task{d: &Delivery{Subject: subject, StreamSeq: seq, Attempt: 1}, partition: partition}
}

// A pause whose probe key is handed over (its partition moves to another worker) must not leave
// the scheduler paused for ever: found by the chaos suite, where two of three workers stayed
// paused after a target outage and a rebalance.
func TestPauseEndsWhenTheProbeIsHandedOver(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	s.add(schedTask("idm.part.0.User.a", 0, 1))
	k, _, _, ok := s.next()
	require.True(t, ok)
	assert.False(t, s.finish(k, paused, time.Now().Add(time.Hour)), "the probe failed: paused")
	s.add(schedTask("idm.part.1.User.b", 1, 2))
	s.mu.Lock()
	blocked := s.firstAllowed()
	s.mu.Unlock()
	assert.Equal(t, -1, blocked, "while paused only the probe may run")

	s.releasePartition(0) // the probe's partition moves to another worker
	k, _, release, ok := s.next()
	require.True(t, ok)
	require.True(t, release)
	rest, resumed := s.dropAll(k)
	assert.Len(t, rest, 1)
	assert.True(t, resumed, "handing the probe over ends the pause")
	k, _, release, ok = s.next()
	require.True(t, ok, "other keys run again")
	assert.False(t, release)
	assert.Equal(t, "idm.part.1.User.b", k.subject)
}

func taskSeqs(k *keyQueue) []uint64 {
	var out []uint64
	for _, t := range k.tasks {
		out = append(out, t.d.StreamSeq)
	}
	return out
}

// A redelivery that arrives after newer events of its key (a Nak'd event JetStream sent behind
// later ones) is queued before them, never before the event running.
func TestRedeliveryIsQueuedInStreamOrder(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	const subj = "idm.part.0.User.a"
	assert.Equal(t, added, s.add(schedTask(subj, 0, 5)))
	k, _, _, ok := s.next()
	require.True(t, ok)
	require.Equal(t, uint64(5), k.tasks[0].d.StreamSeq, "5 runs")
	s.add(schedTask(subj, 0, 9))
	s.add(schedTask(subj, 0, 7))
	s.add(schedTask(subj, 0, 3)) // older than the one running: it goes first of the queued ones
	assert.Equal(t, []uint64{5, 3, 7, 9}, taskSeqs(k))
	assert.Equal(t, duplicateHeld, s.add(schedTask(subj, 0, 7)))
	assert.Equal(t, []uint64{5, 3, 7, 9}, taskSeqs(k))
}

// A message acknowledged lately and delivered again is reported, not queued; one acknowledged
// longer ago than the retention, or beyond the size bound, is queued again.
func TestAcknowledgedMessagesAreRecognisedWhenDeliveredAgain(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 3)
	for seq := uint64(1); seq <= 4; seq++ {
		s.acknowledged(seq)
	}
	assert.Equal(t, added, s.add(schedTask("idm.part.0.User.a", 0, 1)), "1 fell out of the bound of 3")
	assert.Equal(t, duplicateFinished, s.add(schedTask("idm.part.0.User.a", 0, 4)))
	assert.Equal(t, duplicateFinished, s.add(schedTask("idm.part.0.User.b", 0, 2)))

	var r recentSeqs
	r.retain, r.limit = time.Second, 10
	now := time.Now()
	r.add(10, now)
	r.add(11, now.Add(2*time.Second)) // 10 is forgotten
	assert.False(t, r.has(10, now.Add(2*time.Second)))
	assert.True(t, r.has(11, now.Add(2*time.Second)))
	assert.Equal(t, []uint64{11}, r.order)
}

// The recovery gate counts the consumer's messages only: parked events run again are not the
// consumer's and must not make up for one still held elsewhere.
func TestDeliveredHeldCountsTheConsumersMessagesOnly(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	s.gate(0)
	parked := schedTask("idm.part.0.User.a", 0, 2)
	parked.replay = &replayInfo{}
	s.prepend(parked.d.Subject, 0, []*task{parked})
	held, delivered := s.deliveredHeld(0)
	assert.Equal(t, 0, held)
	assert.False(t, delivered, "nothing came from the consumer since the gate")
	s.add(schedTask("idm.part.0.User.b", 0, 7))
	held, delivered = s.deliveredHeld(0)
	assert.Equal(t, 1, held)
	assert.True(t, delivered)
	s.gate(0)
	_, delivered = s.deliveredHeld(0)
	assert.False(t, delivered, "a new gate waits for a new delivery")
}

// An event delivered again from the events stream after it was parked (its acknowledgement was
// lost) must not run beside its parked copy: a delivery that finds the parked copy held is to be
// acknowledged, and parked copies queued after it take its place. Found by the chaos suite: four
// parked updates run again from the stream after their key was unparked, after their successors.
func TestAParkedEventDeliveredAgainGivesWayToItsParkedCopy(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	const subj = "idm.part.0.User.a"
	replayTask := func(seq uint64) *task {
		t := schedTask(subj, 0, seq)
		t.replay = &replayInfo{gen: 1}
		return t
	}
	s.gate(0)
	// Stream deliveries of 5 (parked already) and 9 (newer) are held when the parked 5 and 7 are
	// queued to run.
	require.Equal(t, added, s.add(schedTask(subj, 0, 5)))
	require.Equal(t, added, s.add(schedTask(subj, 0, 9)))
	superseded := s.prepend(subj, 0, []*task{replayTask(5), replayTask(7)})
	require.Len(t, superseded, 1)
	assert.Equal(t, uint64(5), superseded[0].d.StreamSeq)
	assert.Nil(t, superseded[0].replay, "the stream's copy is the one to acknowledge")
	k := s.keys[subj]
	assert.Equal(t, []uint64{5, 7, 9}, taskSeqs(k))
	assert.Equal(t, 3, s.stats().Held)

	// 7 delivered again now: the parked copy is held.
	assert.Equal(t, duplicateParked, s.add(schedTask(subj, 0, 7)))
	assert.Equal(t, []uint64{5, 7, 9}, taskSeqs(k))
	// 9 delivered again: an ordinary duplicate of a held delivery.
	assert.Equal(t, duplicateHeld, s.add(schedTask(subj, 0, 9)))
}

// A key handed over goes before the keys that run, however many are ready: its next owner waits
// for it, and handing back calls no target (found by make bench: with every lane busy on a deep
// backlog, a handover waited its turn behind thousands of keys for more than a minute).
func TestHandedOverKeysGoFirst(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	for i := range 50 {
		s.add(schedTask(fmt.Sprintf("idm.part.0.User.k%d", i), 0, uint64(i+1)))
	}
	s.add(schedTask("idm.part.1.User.moving", 1, 100))
	s.add(schedTask("idm.part.1.User.moving", 1, 101))
	k, _, release, ok := s.next()
	require.True(t, ok)
	assert.False(t, release)
	assert.Equal(t, "idm.part.0.User.k0", k.subject, "first come, first served")
	s.finish(k, done, time.Time{})

	s.releasePartition(1) // its key is queued behind 49 others
	k, _, release, ok = s.next()
	require.True(t, ok)
	assert.True(t, release)
	assert.Equal(t, "idm.part.1.User.moving", k.subject, "the key handed over goes first")
	rest, _ := s.dropAll(k)
	assert.Equal(t, []uint64{100, 101}, []uint64{rest[0].d.StreamSeq, rest[1].d.StreamSeq}, "in order")

	// An event of the partition delivered after the handover began is handed back first too.
	s.add(schedTask("idm.part.1.User.late", 1, 102))
	k, _, release, ok = s.next()
	require.True(t, ok)
	assert.True(t, release)
	assert.Equal(t, "idm.part.1.User.late", k.subject)
	s.dropAll(k)
	k, _, release, ok = s.next()
	require.True(t, ok)
	assert.False(t, release)
	assert.Equal(t, "idm.part.0.User.k1", k.subject, "then the others, in their order")
	s.mu.Lock()
	assert.Zero(t, s.readyReleases)
	s.mu.Unlock()
}

// A partition shut again while it runs (its pin moved) starts nothing more until it is opened:
// its keys waiting for a lane are taken off the ready list, the other partitions' keys still run,
// and once open each key runs its events in stream order. A partition already shut, running on
// trust or being handed over is not shut again.
func TestARegatedPartitionStartsNothingUntilOpen(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	s.add(schedTask("idm.part.0.User.a", 0, 3))
	s.add(schedTask("idm.part.0.User.b", 0, 4))
	s.add(schedTask("idm.part.1.User.c", 1, 5))
	gen, ok := s.regate(0)
	require.True(t, ok)
	assert.Equal(t, gateClosed, s.gateOf(0, gen))
	_, again := s.regate(0)
	assert.False(t, again, "shut twice")

	k, _, _, ok := s.next()
	require.True(t, ok)
	assert.Equal(t, "idm.part.1.User.c", k.subject, "the other partition runs")
	s.mu.Lock()
	blocked := s.firstAllowed()
	s.mu.Unlock()
	assert.Equal(t, -1, blocked, "a key of the shut partition is still ready to run")

	s.add(schedTask("idm.part.0.User.a", 0, 1)) // delivered elsewhere, back now
	s.open(0)
	heads := map[string]uint64{}
	for range 2 {
		k, head, _, ok := s.next()
		require.True(t, ok)
		heads[k.subject] = head.d.StreamSeq
	}
	assert.Equal(t, map[string]uint64{"idm.part.0.User.a": 1, "idm.part.0.User.b": 4}, heads,
		"each key of the partition runs, its oldest event first")

	s.releasePartition(1)
	_, ok = s.regate(1)
	assert.False(t, ok, "a partition being handed over was shut")
}

// BenchmarkKeySchedulerBacklog is a lane's turn on a deep backlog: a key taken off a ready list
// of 5,000 others, run, and a new key queued behind them.
func BenchmarkKeySchedulerBacklog(b *testing.B) {
	s := newKeyScheduler(time.Minute, 1<<20)
	seq := uint64(0)
	add := func() {
		seq++
		s.add(schedTask(fmt.Sprintf("idm.part.%d.User.k%d", seq%32, seq), int(seq%32), seq))
	}
	for range 5000 {
		add()
	}
	b.ReportAllocs()
	for b.Loop() {
		k, _, _, ok := s.next()
		if !ok {
			b.Fatal("nothing ready")
		}
		s.finish(k, done, time.Time{})
		add()
	}
}

// BenchmarkRecentSeqsFull is the acknowledged-sequence set of a worker that has run long enough
// to fill it (the consumer's bound, 2^18): each sequence added forgets the oldest.
func BenchmarkRecentSeqsFull(b *testing.B) {
	r := recentSeqs{retain: time.Hour, limit: 1 << 18}
	now := time.Now()
	seq := uint64(0)
	for range 1 << 18 {
		seq++
		r.add(seq, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		seq++
		r.add(seq, now)
	}
	if len(r.order) != 1<<18 || len(r.at) != 1<<18 {
		b.Fatalf("%d sequences in order, %d in the set, want %d", len(r.order), len(r.at), 1<<18)
	}
}

// The keep-alive names only the held events JetStream has heard nothing of for long enough, and
// counts them heard of: an event delivered since the last tick is not kept alive at this one.
func TestStaleMessagesAreThoseNotHeardOfLately(t *testing.T) {
	t.Parallel()
	s := newKeyScheduler(time.Minute, 100)
	now := time.Now()
	old, fresh := schedTask("idm.part.0.User.a", 0, 1), schedTask("idm.part.0.User.b", 0, 2)
	old.alive = now.Add(-11 * time.Second)
	old.msg, fresh.msg = &parkedMsg{}, &parkedMsg{}
	s.add(old)
	s.add(fresh)
	assert.Equal(t, now, s.keys["idm.part.0.User.a"].tasks[0].alive.Add(11*time.Second), "a task's delivery time is kept")
	assert.Len(t, s.staleMessages(now, 10*time.Second), 1, "only the event not heard of for 10 s")
	assert.Empty(t, s.staleMessages(now.Add(5*time.Second), 10*time.Second), "both heard of within 10 s")
	assert.Len(t, s.staleMessages(now.Add(11*time.Second), 10*time.Second), 2)
}
