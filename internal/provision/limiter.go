package provision

import (
	"container/list"
	"context"
	"math"
	"strings"
	"sync"
	"time"
)

// outcome is what a finished request tells the limiter.
type outcome int

const (
	outcomeIgnore   outcome = iota // no signal (transport failure, cancelled): the RTT means nothing
	outcomeSuccess                 // an answer arrived; its round trip is a latency sample
	outcomeOverload                // 429, 503 or a timeout: the target is past its capacity
)

// Limiter is the adaptive concurrency limit of one target, shared by every request to it. It is
// TCP congestion control applied to in-flight requests:
//
//   - slow start: from Initial, every healthy answer adds 1 (the limit doubles per round trip)
//     until the first sign of overload;
//   - congestion avoidance: then every healthy answer adds Increase/limit (Increase per round
//     trip), so the limit creeps towards the target's capacity;
//   - decrease on rejection: the first 429, 503 or attempt timeout of a round trip multiplies the
//     limit by Backoff, each further one in that round trip removes one slot. A rejected request
//     returns at once and its slot would be refilled at once, so every rejection must shed, but
//     a burst (the overshoot of slow start) must not collapse the limit;
//   - decrease on latency: a smoothed round trip (of the request's class) slower than
//     Tolerance × the best recent round trip, and more than LatencyFloor slower, multiplies the
//     limit by Backoff, at most once per smoothed round trip, since every request of a slow round
//     trip carries the same signal; one slow answer among fast ones is jitter, not a queue, and
//     so is a rise of a few milliseconds: at a target that answers in one, the client's own
//     host (its scheduling, its JetStream server's disk) moves the round trip that much;
//   - near the capacity at which the last rejection came (±1), growth is eight times slower, so
//     the limit lingers just below the target's capacity instead of hitting it every few round
//     trips (the plateau of TCP BIC/CUBIC); past it without a rejection, the memory is dropped;
//   - the limit only grows while it is used (at least half of it in flight within the last two
//     round trips), so an idle period cannot inflate it.
//
// The best recent round trip is the minimum over a 10 s window, so a target that becomes
// permanently slower gets a new baseline instead of a collapsing limit. It is kept per class of
// request (method and resource: GET Users, PATCH Groups, ...): lookups that answer in 10 ms and
// writes that take 60 ms are each compared with their own kind, or every write would look like
// congestion and the limit would collapse (issue 10: 2 of 64 after 203 decreases). Waiters are
// served first come, first served.
type Limiter struct {
	cfg ConcurrencyConfig
	now func() time.Time

	mu           sync.Mutex
	limit        float64
	ssthresh     float64
	inflight     int
	waiters      list.List // of chan struct{}
	base         map[string]*baseline
	srtt         time.Duration
	lastDecrease time.Time
	decreases    int64
	ceiling      float64   // capacity at the last rejection; 0 when unknown
	peak         int       // most requests in flight recently
	peakAt       time.Time // when peak was seen
}

// DefaultLatencyFloor is ConcurrencyConfig.LatencyFloor's default.
const DefaultLatencyFloor = 5 * time.Millisecond

// baselineWindow is how long the best round trip is remembered.
const baselineWindow = 10 * time.Second

// baseline is the best recent round trip of one class of request.
type baseline struct {
	srtt        time.Duration // smoothed round trip of the class (7/8 weight on history)
	rtt         time.Duration // the best of the last full window (or of this one, if better)
	windowMin   time.Duration
	windowStart time.Time
}

// requestClass is the class a request's round trip is compared within: its method and resource
// (the first segment of its path).
func requestClass(method, rel string) string {
	res, _, _ := strings.Cut(strings.TrimPrefix(rel, "/"), "/")
	res, _, _ = strings.Cut(res, "?")
	return method + " " + res
}

// NewLimiter returns a limiter; cfg's zero fields take their defaults.
func NewLimiter(cfg ConcurrencyConfig) *Limiter {
	cfg = Config{Concurrency: cfg}.withDefaults().Concurrency
	return &Limiter{cfg: cfg, now: time.Now, limit: float64(cfg.Initial), ssthresh: float64(cfg.Max), base: map[string]*baseline{}}
}

// capacity is the whole number of requests allowed in flight.
func (l *Limiter) capacity() int { return max(l.cfg.Min, int(math.Floor(l.limit+1e-9))) }

// Limit returns the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.capacity()
}

// InFlight returns the number of requests holding a slot.
func (l *Limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// Acquire waits for a slot for a request of class (requestClass). The returned release must be
// called exactly once with the outcome.
func (l *Limiter) acquire(ctx context.Context, class string) (func(outcome, time.Duration), error) {
	l.mu.Lock()
	if l.waiters.Len() == 0 && l.inflight < l.capacity() {
		l.inflight++
		l.notePeak()
		l.mu.Unlock()
		return l.releaser(class), nil
	}
	ch := make(chan struct{})
	el := l.waiters.PushBack(ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return l.releaser(class), nil
	case <-ctx.Done():
		l.mu.Lock()
		select {
		case <-ch: // granted while we gave up: hand the slot on
			l.inflight--
			l.wake()
		default:
			l.waiters.Remove(el)
		}
		l.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (l *Limiter) releaser(class string) func(outcome, time.Duration) {
	var once sync.Once
	return func(o outcome, rtt time.Duration) {
		once.Do(func() { l.release(o, rtt, class) })
	}
}

func (l *Limiter) release(o outcome, rtt time.Duration, class string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	busy := l.inflight // in flight when this answer arrived, this one included
	l.inflight--
	now := l.now()
	if now.Sub(l.peakAt) > 2*max(l.srtt, time.Millisecond) {
		l.peak, l.peakAt = busy, now // forget a peak older than two round trips
	}
	switch o {
	case outcomeOverload:
		l.ceiling = float64(l.capacity())
		l.shed(now)
	case outcomeSuccess:
		if rtt <= 0 {
			rtt = time.Microsecond
		}
		// The class's smoothed round trip, not this one answer, is compared with its best: one
		// slow answer (a GC pause, a descheduled thread) is noise, a slower average is a queue.
		base, srtt := l.sample(now, rtt, class)
		if srtt > time.Duration(float64(base)*l.cfg.Tolerance) && srtt-base > l.cfg.LatencyFloor {
			l.decrease(now, true)
		} else if 2*l.peak >= l.capacity() {
			switch {
			case l.limit < l.ssthresh:
				l.limit++
			case l.ceiling > 0 && l.limit >= l.ceiling-1 && l.limit < l.ceiling+1:
				l.limit += l.cfg.Increase / 8 / l.limit // probe the last known ceiling gently
			default:
				l.limit += l.cfg.Increase / l.limit
			}
			if l.ceiling > 0 && l.limit >= l.ceiling+1 {
				l.ceiling = 0 // past it without a rejection: the target's capacity grew
			}
			l.limit = min(l.limit, float64(l.cfg.Max))
		}
	}
	l.wake()
}

// sample updates the smoothed round trips and the best one of class, and returns the class's
// best and smoothed round trips.
func (l *Limiter) sample(now time.Time, rtt time.Duration, class string) (best, smoothed time.Duration) {
	if l.srtt == 0 {
		l.srtt = rtt
	} else {
		l.srtt = (7*l.srtt + rtt) / 8
	}
	b := l.base[class]
	if b == nil {
		b = &baseline{windowStart: now}
		l.base[class] = b
	}
	if b.srtt == 0 {
		b.srtt = rtt
	} else {
		b.srtt = (7*b.srtt + rtt) / 8
	}
	if b.windowMin == 0 || rtt < b.windowMin {
		b.windowMin = rtt
	}
	if b.rtt == 0 || rtt < b.rtt {
		b.rtt = rtt
	}
	if now.Sub(b.windowStart) >= baselineWindow {
		b.rtt, b.windowMin, b.windowStart = b.windowMin, 0, now
	}
	return b.rtt, b.srtt
}

// shed reacts to a rejection: the first of a round trip multiplies the limit by Backoff, each
// further one in the same round trip removes one slot (it is one more request over capacity).
// A rejected request returns at once and its slot would be refilled at once, so every rejection
// must shed; counting the later ones as one slot each keeps a burst from collapsing the limit.
func (l *Limiter) shed(now time.Time) {
	if !l.lastDecrease.IsZero() && now.Sub(l.lastDecrease) < max(l.srtt, time.Millisecond) {
		l.decreases++
		l.limit = max(float64(l.cfg.Min), l.limit-1)
		l.ssthresh = l.limit
		return
	}
	l.decrease(now, false)
}

// decrease applies the multiplicative decrease; paced, at most once per smoothed round trip
// (for latency, where every request of a slow round trip carries the same signal).
func (l *Limiter) decrease(now time.Time, paced bool) {
	if paced && !l.lastDecrease.IsZero() && now.Sub(l.lastDecrease) < max(l.srtt, time.Millisecond) {
		return
	}
	l.lastDecrease = now
	l.decreases++
	l.limit = max(float64(l.cfg.Min), l.limit*l.cfg.Backoff)
	l.ssthresh = l.limit
}

// wake hands free slots to waiters in arrival order. Callers hold mu.
func (l *Limiter) wake() {
	for l.waiters.Len() > 0 && l.inflight < l.capacity() {
		ch := l.waiters.Remove(l.waiters.Front()).(chan struct{})
		l.inflight++
		l.notePeak()
		close(ch)
	}
}

// notePeak records the in-flight count after an acquisition. Callers hold mu.
func (l *Limiter) notePeak() {
	if l.inflight >= l.peak {
		l.peak, l.peakAt = l.inflight, l.now()
	}
}
