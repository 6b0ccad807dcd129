package main

import (
	"context"
	"fmt"
	"time"
)

// soakRun is one worker's drain of a long backlog, its cost per event early in the drain and
// late in it.
type soakRun struct {
	n           int
	users       int
	early, late drain
}

// Where the soak's two windows lie, as fractions of the backlog: after the groups and the first
// users (whose creates the rest depends on), and at the end, past the 2^18 acknowledged sequences
// the consumer remembers.
const (
	soakEarlyFrom, soakEarlyTo = 0.15, 0.35
	soakLateFrom               = 0.80
)

// soak drains a backlog of the mixed workload large enough that the worker's bounded memories
// fill (the acknowledged sequences, 2^18; the applied records, 20,000 keys) and compares what an
// event costs early in the drain with what it costs at the end: a cost that grows with the
// worker's age (a structure scanned or moved whole per event) shows as a late window dearer than
// the early one. Groups grow with the users (25 members each on average) so that the late events
// are no dearer by their own size.
func (h *harness) soak(ctx context.Context) (*soakRun, error) {
	users := h.opt.soakUsers
	items, err := mixed("soak", users, max(users/25, 1))
	if err != nil {
		return nil, err
	}
	n := len(items)
	h.logf("soak: publishing %d events, then draining them with one worker", n)
	e, m, done, err := h.startDrain(ctx, "soak", kindWorker, items, nil, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	marks := []int{int(soakEarlyFrom * float64(n)), int(soakEarlyTo * float64(n)), int(soakLateFrom * float64(n))}
	d, at, err := e.waitDrainMarks(ctx, m, n, 2*time.Minute, marks)
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	if len(at) != len(marks) {
		return nil, fmt.Errorf("soak: %d of %d marks taken", len(at), len(marks))
	}
	r := &soakRun{n: n, users: users, early: drain{from: at[0], to: at[1]}, late: drain{from: at[2], to: d.to}}
	h.logf("soak: early %s; late %s", soakText(r.early), soakText(r.late))
	return r, nil
}

func soakText(d drain) string {
	return fmt.Sprintf("%d events, %.0f events/s, worker %.0f µs/event, nats-server %.0f µs/event, %.2f NATS msgs in/event",
		d.events(), d.rate(), d.consumerCPUPerEvent(), d.natsCPUPerEvent(), d.inMsgsPerEvent())
}

// soakRows are the soak's lines of the table.
func soakRows(r *soakRun) []row {
	if r == nil {
		return nil
	}
	sec := fmt.Sprintf("soak, 0 ms (%d events of %d users, one worker)", r.n, r.users)
	return []row{
		{section: sec, measure: fmt.Sprintf("early (%.0f–%.0f%% of the drain)", 100*soakEarlyFrom, 100*soakEarlyTo), figure: soakText(r.early)},
		{section: sec, measure: fmt.Sprintf("late (%.0f–100%%)", 100*soakLateFrom), figure: soakText(r.late)},
		// The server's work per event does not change with the worker's age: its ratio is the
		// host's drift between the windows, which on a shared machine is as large as what is
		// looked for.
		{section: sec, measure: "late ÷ early", figure: fmt.Sprintf("worker CPU per event %.2f, events/s %.2f; nats-server CPU per event %.2f (the host's drift)",
			r.late.consumerCPUPerEvent()/r.early.consumerCPUPerEvent(), r.late.rate()/r.early.rate(),
			r.late.natsCPUPerEvent()/r.early.natsCPUPerEvent())},
	}
}
