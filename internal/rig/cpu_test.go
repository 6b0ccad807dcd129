package rig

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime 250 and stime 50 ticks follow.
	line := "4242 (worker (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 12 0 100 1000 200"
	d, err := parseStat(line)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, d)

	_, err = parseStat("4242 (short) S 1 2")
	assert.EqualError(t, err, `/proc stat line "4242 (short) S 1 2": 3 fields after the command name, want at least 13`)

	// Our own process: the CPU it used so far is readable and not negative.
	self, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, self, time.Duration(0))
}

func TestMedian(t *testing.T) {
	vs := []float64{3, 1, 2}
	assert.Equal(t, 2.0, Median(vs))
	assert.Equal(t, []float64{3, 1, 2}, vs, "the values are left in their order")
	assert.Equal(t, 2.5, Median([]float64{4, 1, 3, 2}))
	assert.Equal(t, 0.0, Median(nil))
}
