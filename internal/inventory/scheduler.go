package inventory

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/events"
)

// Scheduler runs the inventory on its schedule on exactly one replica: at each tick every replica
// tries to take the lease, the one that gets it runs the job (fenced by the lease), the others
// skip the tick. The schedule is the one stored in KV (worker inventory schedule), else the
// configured one; a change of the stored schedule takes effect at once on every replica.
type Scheduler struct {
	runner *Runner
	store  *Store
	cfg    Config
	holder string
	log    zerolog.Logger
	now    func() time.Time

	mu   sync.Mutex
	spec string
	next time.Time
	ctx  context.Context // Run's, for runs started on request
	runs sync.WaitGroup  // runs started on request
}

// NewScheduler returns a scheduler for runner; holder names this replica in the lease.
func NewScheduler(runner *Runner, store *Store, cfg Config, holder string, log zerolog.Logger) *Scheduler {
	return &Scheduler{runner: runner, store: store, cfg: cfg, holder: holder, log: log, now: time.Now}
}

// Next returns the schedule in force and the next tick.
func (s *Scheduler) Next() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spec, s.next
}

// schedule is the stored schedule, else the configured one.
func (s *Scheduler) schedule(ctx context.Context) (string, cron.Schedule) {
	if rec, err := s.store.Schedule(ctx); err != nil {
		s.log.Warn().Err(err).Msg("inventory: reading the stored schedule; using the configured one")
	} else if rec != nil {
		if sch, err := ParseSchedule(rec.Spec); err == nil {
			return rec.Spec, sch
		}
		s.log.Warn().Str("schedule", rec.Spec).Msg("inventory: the stored schedule does not parse; using the configured one")
	}
	sch, _ := ParseSchedule(s.cfg.Schedule) // validated
	return s.cfg.Schedule, sch
}

// Run schedules inventories until ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	w, err := s.store.watchSchedule(ctx)
	if err != nil {
		return err
	}
	defer events.StopWatch(ctx, w)
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	defer s.runs.Wait()
	for {
		spec, sch := s.schedule(ctx)
		tick := sch.Next(s.now())
		s.mu.Lock()
		s.spec, s.next = spec, tick
		s.mu.Unlock()
		s.log.Debug().Str("schedule", spec).Time("next", tick).Msg("inventory scheduled")
		timer := time.NewTimer(time.Until(tick))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-w.Updates():
			timer.Stop()
			continue // the schedule changed: compute the next tick again
		case <-timer.C:
		}
		s.tick(ctx, tick, spec, sch)
	}
}

// tick runs the inventory if this replica takes the lease and no replica ran it for this tick.
func (s *Scheduler) tick(ctx context.Context, tick time.Time, spec string, sch cron.Schedule) {
	lease, err := s.store.AcquireLease(ctx, s.holder, s.cfg.LeaseTTL)
	if errors.Is(err, ErrLeaseHeld) {
		s.log.Debug().Err(err).Msg("inventory: another replica runs this one")
		return
	}
	if err != nil {
		s.log.Warn().Err(err).Msg("inventory: could not take the lease; the next window tries again")
		return
	}
	defer lease.Release(context.WithoutCancel(ctx))
	// A replica that was a little late must not run the same window again.
	if jobs, err := s.store.Jobs(ctx, 1); err == nil && len(jobs) > 0 && !jobs[0].StartedAt.Before(tick.Add(-time.Second)) {
		return
	}
	_, _ = s.runner.Run(ctx, RunOptions{
		Trigger: "schedule", Token: lease.Token(), Fence: lease.Check, Schedule: spec,
		Next: func() time.Time { return sch.Next(s.now()) },
	})
}

// ErrNotRunning is RunNow's answer before the scheduler runs (or after it stopped).
var ErrNotRunning = errors.New("the inventory scheduler is not running")

// RunNow starts an inventory at once on this replica (the operator's "run inventory now"), fenced
// by the lease like a scheduled one: it fails with ErrLeaseHeld while another run holds it. The run
// goes on in the background until it ends or the scheduler stops; its job is recorded with trigger
// "request" and by.
func (s *Scheduler) RunNow(by string) error {
	s.mu.Lock()
	ctx, spec := s.ctx, s.spec
	s.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return ErrNotRunning
	}
	lease, err := s.store.AcquireLease(ctx, s.holder+" for "+by, s.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		defer lease.Release(context.WithoutCancel(ctx))
		var next func() time.Time
		if sch, err := ParseSchedule(spec); err == nil {
			next = func() time.Time { return sch.Next(s.now()) }
		}
		_, _ = s.runner.Run(ctx, RunOptions{Trigger: "request", Token: lease.Token(), Fence: lease.Check, Schedule: spec, Next: next})
	}()
	return nil
}
