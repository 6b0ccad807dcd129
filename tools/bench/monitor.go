package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scimflow/scimflow/internal/events"
)

// monitor watches the outcomes as they are published (a core subscription: it sees every outcome
// once it is sent, before JetStream drops a duplicate) and records when each event's first final
// outcome arrived.
type monitor struct {
	sub *nats.Subscription

	mu        sync.Mutex
	finished  map[string]time.Time
	handled   map[string]handled // from the outcome: how long the consumer worked on the event
	failed    int
	firstFail string
	changed   chan struct{}
}

func newMonitor(nc *nats.Conn) (*monitor, error) {
	m := &monitor{finished: map[string]time.Time{}, handled: map[string]handled{}, changed: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(events.OutcomesPrefix+".>", m.receive)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the outcomes: %w", err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return nil, err
	}
	m.sub = sub
	return m, nil
}

func (m *monitor) receive(msg *nats.Msg) {
	now := time.Now()
	var o struct {
		InputID    string        `json:"inputId"`
		Status     events.Status `json:"status"`
		Reason     string        `json:"reason"`
		DurationMs float64       `json:"durationMs"`
		Requests   []struct {
			DurationMs float64 `json:"durationMs"`
		} `json:"requests"`
	}
	if json.Unmarshal(msg.Data, &o) != nil || !o.Status.Final() {
		return
	}
	m.mu.Lock()
	if _, seen := m.finished[o.InputID]; !seen {
		m.finished[o.InputID] = now
		h := handled{work: time.Duration(o.DurationMs * float64(time.Millisecond))}
		for _, r := range o.Requests {
			h.scim += time.Duration(r.DurationMs * float64(time.Millisecond))
		}
		m.handled[o.InputID] = h
		if o.Status != events.StatusSucceeded && o.Status != events.StatusSkipped {
			m.failed++
			if m.firstFail == "" {
				m.firstFail = fmt.Sprintf("%s %s: %s", o.InputID, o.Status, o.Reason)
			}
		}
	}
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// handled is what an outcome says of the consumer's work on its event: from taking it up to
// publishing the outcome (the worker's durationMs: intake, planning, the SCIM calls, the applied
// record), and of that the SCIM calls.
type handled struct {
	work, scim time.Duration
}

func (m *monitor) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.finished)
}

func (m *monitor) close() { _ = m.sub.Unsubscribe() }

// snapshot is the state of a measurement at one moment.
type snapshot struct {
	t        time.Time
	done     int
	cpu      []time.Duration // per consumer process
	natsCPU  time.Duration
	inMsgs   int64
	outMsgs  int64
	consumed bool // every consumer process was alive
}

func (e *env) snapshot(ctx context.Context, m *monitor) (snapshot, error) {
	s := snapshot{t: time.Now(), done: m.count(), consumed: true}
	for _, p := range e.consumers {
		c, err := cpuTime(p.PID())
		if err != nil {
			return s, fmt.Errorf("%s: %w", p.Name, err)
		}
		s.cpu = append(s.cpu, c)
	}
	var err error
	if s.natsCPU, err = cpuTime(e.nats.PID()); err != nil {
		return s, fmt.Errorf("nats-server: %w", err)
	}
	v, err := e.varz(ctx)
	if err != nil {
		return s, err
	}
	s.inMsgs, s.outMsgs = v.InMsgs, v.OutMsgs
	return s, nil
}

// drain is a measured stretch of work: from the snapshot taken when the first outcome arrived to
// the one taken when the last did.
type drain struct {
	from, to snapshot
}

func (d drain) events() int              { return d.to.done - d.from.done }
func (d drain) elapsed() time.Duration   { return d.to.t.Sub(d.from.t) }
func (d drain) rate() float64            { return float64(d.events()) / d.elapsed().Seconds() }
func (d drain) natsCPUPerEvent() float64 { return perEvent(d.to.natsCPU-d.from.natsCPU, d.events()) }
func (d drain) inMsgsPerEvent() float64 {
	return float64(d.to.inMsgs-d.from.inMsgs) / float64(d.events())
}

// consumerCPUPerEvent sums the consumer processes' CPU.
func (d drain) consumerCPUPerEvent() float64 {
	var sum time.Duration
	for i := range d.to.cpu {
		sum += d.to.cpu[i] - d.from.cpu[i]
	}
	return perEvent(sum, d.events())
}

// perEvent is µs per event.
func perEvent(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// waitDrain waits until n events have a final outcome, snapshotting when the first arrives and
// when the last does. It fails when a consumer process exits, when no outcome arrives for stall,
// or when an event ends other than succeeded or skipped.
func (e *env) waitDrain(ctx context.Context, m *monitor, n int, stall time.Duration) (drain, error) {
	d, _, err := e.waitDrainMarks(ctx, m, n, stall, nil)
	return d, err
}

// waitDrainMarks is waitDrain that also takes a snapshot when the count of final outcomes first
// reaches each of marks (ascending).
func (e *env) waitDrainMarks(ctx context.Context, m *monitor, n int, stall time.Duration, marks []int) (drain, []snapshot, error) {
	var d drain
	var at []snapshot
	started := false
	last, lastChange := 0, time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return d, at, ctx.Err()
		case <-tick.C:
		}
		c := m.count()
		if !started && c > 0 {
			s, err := e.snapshot(ctx, m)
			if err != nil {
				return d, at, err
			}
			d.from, started = s, true
		}
		for len(at) < len(marks) && c >= marks[len(at)] {
			s, err := e.snapshot(ctx, m)
			if err != nil {
				return d, at, err
			}
			at = append(at, s)
		}
		if c >= n {
			s, err := e.snapshot(ctx, m)
			if err != nil {
				return d, at, err
			}
			d.to = s
			break
		}
		if c != last {
			last, lastChange = c, time.Now()
		}
		for _, p := range e.consumers {
			if p.Exited() {
				return d, at, fmt.Errorf("%s exited (%v) after %d of %d outcomes; its log: %s", p.Name, p.Err(), c, n, p.Log)
			}
		}
		if time.Since(lastChange) > stall {
			return d, at, fmt.Errorf("no outcome for %s after %d of %d; logs in %s", stall, c, n, e.dir)
		}
	}
	m.mu.Lock()
	failed, first := m.failed, m.firstFail
	m.mu.Unlock()
	if failed > 0 {
		return d, at, fmt.Errorf("%d of %d events did not succeed, the first: %s", failed, n, first)
	}
	return d, at, nil
}

// rss is the peak RSS of every consumer process, summed, and of the JetStream server.
func (e *env) rss() (consumers, natsServer int64, err error) {
	for _, p := range e.consumers {
		r, err := peakRSS(p.PID())
		if err != nil {
			return 0, 0, err
		}
		consumers += r
	}
	natsServer, err = peakRSS(e.nats.PID())
	return consumers, natsServer, err
}
