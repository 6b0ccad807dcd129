package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// roundOf is a drain of n events in secs seconds that used cpu µs of the consumer per event and
// sent msgs NATS messages per event.
func roundOf(n int, secs, cpuUS, msgs float64) *round {
	t0 := time.Unix(1000, 0)
	return &round{n: n, d: drain{
		from: snapshot{t: t0, cpu: []time.Duration{0}},
		to: snapshot{t: t0.Add(time.Duration(secs * float64(time.Second))), done: n,
			cpu: []time.Duration{time.Duration(cpuUS*float64(n)) * time.Microsecond}, inMsgs: int64(msgs * float64(n))},
	}}
}

func ablationOf(msgs ...float64) []*ablationResult {
	res := make([]*ablationResult, len(ablationVariants))
	for i, v := range ablationVariants {
		res[i] = &ablationResult{v: v, rounds: []*round{roundOf(1000, 1, 100, msgs[i])}}
	}
	return res
}

// The part refuses figures from a variant that did not leave its records out: a worker built
// without the tag sends as many messages as the ordinary one.
func TestAblationFailsWhenNothingWasLeftOut(t *testing.T) {
	require.NoError(t, checkAblation(ablationOf(4.3, 3.3, 3.3, 3.3, 2.3, 2.1)))

	err := checkAblation(ablationOf(4.3, 3.3, 4.3, 3.3, 2.3, 2.1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"worker without the applied record" sent 4.30 NATS messages per event against the worker's 4.30, not the 1 fewer`)

	err = checkAblation(ablationOf(4.3, 3.3, 3.3, 3.3, 3.3, 2.1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"worker without either" sent 3.30 NATS messages per event against the worker's 4.30, not the 2 fewer per event that leaving out applied and history takes`)

	err = checkAblation(ablationOf(4.3, 3.3, 3.3, 4.25, 2.3, 2.1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"worker with its applied record built, not written" sent 4.25 NATS messages per event against the worker's 4.30, not the 1 fewer per event that leaving out appliedwrite takes`)
}

// Each variant is set against the bare loop of the same run.
func TestAblationRows(t *testing.T) {
	res := ablationOf(4.3, 3.3, 3.3, 3.3, 2.3, 2.1)
	res[0].rounds[0] = roundOf(1000, 2, 300, 4.3) // the worker: 500 events/s, 300 µs
	rows := ablationRows(res)
	require.Len(t, rows, len(ablationVariants))
	assert.Equal(t, "worker", rows[0].measure)
	assert.Contains(t, rows[0].figure, "500 events/s, 0.50 × the bare loop; consumer CPU 300 µs/event, 3.00 × the bare loop's")
	assert.Equal(t, kindBare, rows[5].measure)
	assert.Contains(t, rows[5].figure, "1000 events/s, 1.00 × the bare loop")
	assert.Empty(t, ablationRows(nil))
}
