package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// make bench runs the large-group part; -big-group sets the group's size.
func TestBigGroupIsAskedFor(t *testing.T) {
	o, err := parseOptions(nil, nil)
	require.NoError(t, err)
	assert.True(t, o.parts["biggroup"])
	assert.Equal(t, 2500, o.bigGroup)
	o, err = parseOptions([]string{"-parts", "biggroup", "-big-group", "40"}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"biggroup": true}, o.parts)
	assert.Equal(t, 40, o.bigGroup)
	_, err = parseOptions([]string{"-big-group", "0"}, nil)
	assert.ErrorContains(t, err, "-big-group")
}

// The large group's rows: each consumer's rate and CPU, and, with the overhead rounds, what a
// membership add costs above an ordinary event: (800 − 300) µs × 10,001 events ÷ 2,500 adds is
// 2.00 ms for the worker, (400 − 100) µs × 10,001 ÷ 2,500 is 1.20 ms for the bare loop.
func TestBigGroupRows(t *testing.T) {
	g := &bigGroupRun{members: 2500, worker: roundOf(10001, 10, 800, 4), bare: roundOf(10001, 5, 400, 2)}
	rows := bigGroupRows(g, []*round{roundOf(1000, 1, 300, 4)}, []*round{roundOf(1000, 1, 100, 2)})
	require.Len(t, rows, 3)
	assert.Equal(t, "one large group, 0 ms (10001 events; 2500 membership adds to one group, which ends with 2500 members)", rows[0].section)
	assert.Equal(t, "worker 1000, bare loop 2000, ratio 0.50", rows[0].figure)
	assert.Equal(t, "worker 800 µs, bare loop 400 µs, ratio 2.00", rows[1].figure)
	assert.Equal(t, "worker 2.00 ms, bare loop 1.20 ms (the group has 1250 members on average)", rows[2].figure)
	assert.Len(t, bigGroupRows(g, nil, nil), 2, "without the overhead rounds there is nothing to set the adds against")
	assert.Empty(t, bigGroupRows(nil, nil, nil))
}
