package main

import (
	"context"
	"fmt"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/metrics"
)

// watchMetrics registers the families read from the worker's state at scrape time.
func (a *app) watchMetrics() {
	a.metrics.Watch(metrics.Source{
		Consumer: a.consumer.Stats,
		Breaker:  a.target.BreakerState,
		Limit:    a.target.Limit,
		InFlight: a.target.InFlight,
		Token:    a.target.Authorizer().Stats,
		Lag:      a.partitionLag,
		LastJob: func(ctx context.Context) (*inventory.Job, error) {
			jobs, err := a.invStore.Jobs(ctx, 3)
			if err != nil {
				return nil, err
			}
			for _, j := range jobs {
				if !j.EndedAt.IsZero() {
					return j, nil
				}
			}
			return nil, nil
		},
		Running: func() bool { return a.inventory.Current() != nil },
	})
}

// partitionLag reads the consumers of the partitions this worker runs.
func (a *app) partitionLag(ctx context.Context) (map[int]metrics.Lag, error) {
	out := map[int]metrics.Lag{}
	for _, p := range a.consumer.Stats().Partitions {
		cons, err := a.js.Consumer(ctx, events.EventsStream, fmt.Sprintf("%s-p%d", a.cfg.NATS.Consumer, p))
		if err != nil {
			continue // handed over meanwhile
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return nil, err
		}
		out[p] = metrics.Lag{Pending: ci.NumPending, AckPending: ci.NumAckPending}
	}
	return out, nil
}
