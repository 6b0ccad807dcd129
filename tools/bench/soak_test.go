package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// make bench leaves the soak out (make bench-all runs it); -parts soak asks for it alone.
func TestSoakIsAskedFor(t *testing.T) {
	o, err := parseOptions(nil, nil)
	require.NoError(t, err)
	assert.False(t, o.parts["soak"])
	assert.True(t, o.parts["overhead"] && o.parts["ablation"] && o.parts["scale"])
	o, err = parseOptions([]string{"-parts", "soak"}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"soak": true}, o.parts)
}

// The soak's rows set the late window against the early one.
func TestSoakRows(t *testing.T) {
	early, late := roundOf(1000, 0.5, 200, 4.3), roundOf(1000, 0.8, 300, 4.5)
	early.d.to.natsCPU, late.d.to.natsCPU = 300*time.Millisecond, 360*time.Millisecond // 300 and 360 µs an event
	rows := soakRows(&soakRun{n: 4000, users: 1000, early: early.d, late: late.d})
	require.Len(t, rows, 3)
	assert.Contains(t, rows[0].figure, "1000 events, 2000 events/s, worker 200 µs/event")
	assert.Contains(t, rows[1].figure, "1250 events/s, worker 300 µs/event")
	assert.Equal(t, "worker CPU per event 1.50, events/s 0.62; nats-server CPU per event 1.20 (the host's drift)", rows[2].figure)
	assert.Empty(t, soakRows(nil))
}
