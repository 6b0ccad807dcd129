package events

import (
	"context"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// OutcomeWatch collects the final outcomes of chosen message ids as the workers publish them:
// replays use it to report what became of the events they republished. Start it before publishing,
// so that no outcome can come before it listens.
type OutcomeWatch struct {
	sub     *nats.Subscription
	keep    func(id string) bool
	mu      sync.Mutex
	want    map[string]bool
	got     map[string]*Outcome
	changed chan struct{}
}

// WatchOutcomes subscribes to every outcome subject. It keeps the final outcomes whose id keep
// accepts (nil: those wanted when they arrive), so that an outcome that arrives before its id is
// wanted is not missed.
func WatchOutcomes(nc *nats.Conn, keep func(id string) bool) (*OutcomeWatch, error) {
	w := &OutcomeWatch{keep: keep, want: map[string]bool{}, got: map[string]*Outcome{}, changed: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(OutcomesPrefix+".>", func(m *nats.Msg) {
		o, err := DecodeOutcome(m.Data)
		if err != nil || !o.Final {
			return
		}
		w.mu.Lock()
		if w.want[o.ID] || w.keep != nil && w.keep(o.ID) {
			w.got[o.ID] = o
		}
		w.mu.Unlock()
		select {
		case w.changed <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watch outcomes: %w", err)
	}
	if err := nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch outcomes: %w", err)
	}
	w.sub = sub
	return w, nil
}

// Want adds a message id whose final outcome to collect (the final outcome's id is the input's
// message id).
func (w *OutcomeWatch) Want(id string) {
	w.mu.Lock()
	w.want[id] = true
	w.mu.Unlock()
}

// Wait returns the final outcomes of the wanted ids once all of them are in, or what is in when
// ctx ends.
func (w *OutcomeWatch) Wait(ctx context.Context) map[string]*Outcome {
	for {
		w.mu.Lock()
		done := true
		for id := range w.want {
			if w.got[id] == nil {
				done = false
				break
			}
		}
		w.mu.Unlock()
		if done {
			break
		}
		select {
		case <-ctx.Done():
		case <-w.changed:
			continue
		}
		break
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]*Outcome, len(w.want))
	for id := range w.want {
		if o := w.got[id]; o != nil {
			out[id] = o
		}
	}
	return out
}

// Stop unsubscribes.
func (w *OutcomeWatch) Stop() { _ = w.sub.Unsubscribe() }

// Wanted is how many message ids are wanted.
func (w *OutcomeWatch) Wanted() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.want)
}
