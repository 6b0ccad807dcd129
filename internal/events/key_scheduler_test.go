package events

import (
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
	s := newKeyScheduler()
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
