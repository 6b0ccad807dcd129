package provision

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a manually advanced clock for the limiter.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestLimiter(cfg ConcurrencyConfig) (*Limiter, *fakeClock) {
	l := NewLimiter(cfg)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l.now = clk.now
	return l, clk
}

// round acquires n slots and releases them all with the outcome and RTT, advancing the clock by rtt.
func round(t *testing.T, l *Limiter, clk *fakeClock, n int, o outcome, rtt time.Duration) {
	t.Helper()
	rel := make([]func(outcome, time.Duration), n)
	for i := range rel {
		r, err := l.acquire(context.Background(), "GET Users")
		require.NoError(t, err)
		rel[i] = r
	}
	clk.t = clk.t.Add(rtt)
	for _, r := range rel {
		r(o, rtt)
	}
}

func TestLimiterSlowStartThenOverload(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 4, Max: 100})
	round(t, l, clk, 4, outcomeSuccess, 50*time.Millisecond)
	assert.Equal(t, 8, l.Limit(), "slow start doubles per round trip")
	round(t, l, clk, 8, outcomeSuccess, 50*time.Millisecond)
	assert.Equal(t, 16, l.Limit())

	// The first 429 of a round trip multiplies by 0.9, the next ones shed a slot each:
	// 16 × 0.9 − 1 = 13.4.
	round(t, l, clk, 2, outcomeOverload, time.Millisecond)
	assert.Equal(t, 13, l.Limit())
	assert.EqualValues(t, 2, l.decreases)
	assert.EqualValues(t, 14, l.ceiling, "the capacity at the last rejection is remembered")
	l.limit, l.ceiling = 14.5, 0

	// Congestion avoidance: +Increase per round trip, not doubling.
	before := l.limit
	round(t, l, clk, 14, outcomeSuccess, 50*time.Millisecond)
	assert.InDelta(t, before+14*0.25/14.5, l.limit, 0.02)
	before = l.limit
	round(t, l, clk, 14, outcomeSuccess, 50*time.Millisecond)
	assert.InDelta(t, before+0.25, l.limit, 0.02)

	// Near a remembered ceiling, growth is eight times slower.
	l.limit, l.ceiling = 14.5, 15
	before = l.limit
	round(t, l, clk, 14, outcomeSuccess, 50*time.Millisecond)
	assert.InDelta(t, before+14*0.25/8/14.5, l.limit, 0.01)

	// Latency decreases are paced: a slow round trip counts once.
	clk.t = clk.t.Add(time.Second)
	d := l.decreases
	round(t, l, clk, 5, outcomeSuccess, 500*time.Millisecond)
	assert.EqualValues(t, d+1, l.decreases)
}

func TestLimiterLatencyRiseDecreases(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 10, Max: 100})
	round(t, l, clk, 10, outcomeSuccess, 20*time.Millisecond)
	grown := l.Limit()
	clk.t = clk.t.Add(time.Second)
	round(t, l, clk, 1, outcomeSuccess, 100*time.Millisecond) // one answer at 5x the baseline: noise
	assert.Equal(t, grown, l.Limit(), "one slow answer is no queue")
	round(t, l, clk, 10, outcomeSuccess, 100*time.Millisecond) // a round trip of them: a queue
	assert.Less(t, l.Limit(), grown)
}

// At a target that answers in a fraction of a millisecond, a few slow answers (a GC pause, a
// descheduled thread) must not hold the limit down: with every answer compared on its own, the
// limit stayed at 3 to 7 of 64 and the worker drained 620 events/s where the smoothed round trip
// lets it reach 815 (BenchmarkPipeline/instant).
func TestLimiterFastTargetIgnoresJitter(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 4, Max: 64})
	answers := 0
	for range 200 {
		rel := make([]func(outcome, time.Duration), l.Limit())
		for i := range rel {
			r, err := l.acquire(context.Background(), "POST Users")
			require.NoError(t, err)
			rel[i] = r
		}
		clk.t = clk.t.Add(time.Millisecond)
		for _, r := range rel {
			rtt := 200 * time.Microsecond
			if answers++; answers%7 == 0 {
				rtt = 3 * time.Millisecond // jitter: one answer in seven is fifteen times slower
			}
			r(outcomeSuccess, rtt)
		}
	}
	assert.Equal(t, 64, l.Limit(), "after %d decreases", l.decreases)
}

// A target that answers in a fraction of a millisecond, on a host whose own scheduling and disk
// stretch every round trip to a few milliseconds for a while: the smoothed round trip is ten times
// the best, yet only a few milliseconds slower. That is the client's noise, not a queue at the
// target; with the tolerance alone the limit fell to a few slots and events waited for them
// (issue 10: publish-to-outcome p99 40-170 ms at 1,000 events/s, handlers blocked in the
// limiter while the SCIM calls took 1 ms). A rise past the floor still counts.
func TestLimiterRiseWithinTheFloorIsNoise(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 64, Max: 64})
	for range 20 {
		round(t, l, clk, 64, outcomeSuccess, 300*time.Microsecond)
	}
	for range 50 {
		round(t, l, clk, l.Limit(), outcomeSuccess, 4*time.Millisecond)
	}
	assert.Equal(t, 64, l.Limit(), "after %d decreases", l.decreases)
	assert.Zero(t, l.decreases)

	for range 5 {
		round(t, l, clk, l.Limit(), outcomeSuccess, 8*time.Millisecond)
	}
	assert.Less(t, l.Limit(), 64, "a smoothed round trip past the floor is a queue")

	// The floor is the operator's to set.
	strict, sclk := newTestLimiter(ConcurrencyConfig{Initial: 64, Max: 64, LatencyFloor: time.Millisecond})
	for range 20 {
		round(t, strict, sclk, 64, outcomeSuccess, 300*time.Microsecond)
	}
	for range 5 {
		round(t, strict, sclk, strict.Limit(), outcomeSuccess, 4*time.Millisecond)
	}
	assert.Less(t, strict.Limit(), 64, "with a floor of 1ms, 4ms against 0.3ms is a queue")
}

func TestLimiterDoesNotGrowWhenIdle(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 20, Max: 100})
	for range 50 {
		round(t, l, clk, 2, outcomeSuccess, 10*time.Millisecond) // 2 of 20 in use
	}
	assert.Equal(t, 20, l.Limit())
}

func TestLimiterBounds(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Min: 2, Initial: 3, Max: 5})
	for range 20 {
		round(t, l, clk, l.Limit(), outcomeSuccess, 10*time.Millisecond)
	}
	assert.Equal(t, 5, l.Limit())
	for range 50 {
		clk.t = clk.t.Add(time.Second)
		round(t, l, clk, 1, outcomeOverload, time.Millisecond)
	}
	assert.Equal(t, 2, l.Limit())
}

func TestLimiterQueueAndCancel(t *testing.T) {
	t.Parallel()
	l, _ := newTestLimiter(ConcurrencyConfig{Min: 1, Initial: 1, Max: 1})
	r1, err := l.acquire(context.Background(), "GET Users")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = l.acquire(ctx, "GET Users")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	order := make(chan int, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			r, err := l.acquire(context.Background(), "GET Users")
			assert.NoError(t, err)
			order <- i
			r(outcomeIgnore, 0)
		})
		// Queue them in a known order.
		require.Eventually(t, func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.waiters.Len() == i+1
		}, time.Second, time.Millisecond)
	}
	assert.Equal(t, 1, l.InFlight())
	r1(outcomeIgnore, 0)
	r1(outcomeIgnore, 0) // a second release is ignored
	wg.Wait()
	close(order)
	var got []int
	for i := range order {
		got = append(got, i)
	}
	assert.Equal(t, []int{0, 1, 2}, got, "first come, first served")
	assert.Equal(t, 0, l.InFlight())
}

// Lookups at 10 ms and writes at 60 ms, interleaved, are no congestion: each kind is compared with
// its own best round trip, and the limit grows (issue 10: with one baseline for all, it stayed at 2
// of 64 after 203 decreases).
func TestLimiterMixedLatenciesDoNotCollapse(t *testing.T) {
	t.Parallel()
	l, clk := newTestLimiter(ConcurrencyConfig{Initial: 4, Max: 64})
	mixed := func() {
		n := l.Limit()
		rel := make([]func(outcome, time.Duration), n)
		for i := range rel {
			class := "GET Users"
			if i%2 == 1 {
				class = "PATCH Users"
			}
			r, err := l.acquire(context.Background(), class)
			require.NoError(t, err)
			rel[i] = r
		}
		clk.t = clk.t.Add(60 * time.Millisecond)
		for i, r := range rel {
			rtt := 10 * time.Millisecond
			if i%2 == 1 {
				rtt = 60 * time.Millisecond
			}
			r(outcomeSuccess, rtt)
		}
	}
	for range 40 {
		mixed()
	}
	assert.Equal(t, 64, l.Limit(), "after %d decreases", l.decreases)
	assert.Zero(t, l.decreases)

	// A real rise of one kind still counts: writes at five times their best.
	clk.t = clk.t.Add(time.Second)
	for range 5 {
		r, err := l.acquire(context.Background(), "PATCH Users")
		require.NoError(t, err)
		r(outcomeSuccess, 300*time.Millisecond)
	}
	assert.Less(t, l.Limit(), 64)
}

func TestRequestClass(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "GET Users", requestClass("GET", "Users"))
	assert.Equal(t, "PATCH Users", requestClass("PATCH", "Users/2819c223"))
	assert.Equal(t, "GET Groups", requestClass("GET", "/Groups?filter=x"))
}
