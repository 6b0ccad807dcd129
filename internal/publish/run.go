package publish

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Options configure Run.
type Options struct {
	// Wait for every published event's final outcome. With Wait, a "#wait" line in the input
	// (Item.Batch) holds back the events after it until those before it have their outcomes.
	Wait bool
	// Timeout bounds the wait for outcomes; default 2 minutes.
	Timeout time.Duration
	// Progress, when set, receives a one-line progress display rewritten in place (a terminal).
	Progress io.Writer
	// Invalid says what to do with items that fail validation; the zero value publishes them for
	// the worker to dead-letter. See InvalidPolicy.
	Invalid InvalidPolicy
	// Source names the input in messages, e.g. the file name; default "input".
	Source string
	// MaxPending bounds asynchronous publishes awaiting their acknowledgement; default 256.
	MaxPending int
}

// Report is what Run did and what became of the events.
type Report struct {
	Items      []Item
	Published  int
	Duplicates []Item // dropped by JetStream: an event with that id was published before
	Skipped    []Item // invalid events left unpublished (SkipInvalid)
	// Outcomes holds the final outcome of each waited-for event by input id.
	Outcomes map[string]*events.Outcome
	// Progress counts progress outcomes (deferred, held) seen while waiting.
	Progress map[events.Status]int
	// Missing are published events without a final outcome when the wait ended.
	Missing []Item
	Waited  bool
	Elapsed time.Duration
}

// Run publishes items and, with Wait, collects their outcomes. With RefuseInvalid and an invalid
// item, it publishes nothing and returns an *InvalidError.
func Run(ctx context.Context, js jetstream.JetStream, items []Item, opt Options) (*Report, error) {
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Minute
	}
	if opt.MaxPending == 0 {
		opt.MaxPending = 256
	}
	if opt.Source == "" {
		opt.Source = "input"
	}
	if opt.Invalid < PublishInvalid || opt.Invalid > SkipInvalid {
		return nil, fmt.Errorf("publish options: Invalid: %v is not a policy", opt.Invalid)
	}
	if bad := Invalid(items); len(bad) > 0 && opt.Invalid == RefuseInvalid {
		return nil, &InvalidError{Source: opt.Source, Bad: bad, Total: len(items)}
	}
	start := time.Now()
	rep := &Report{Items: items, Outcomes: map[string]*events.Outcome{}, Progress: map[events.Status]int{}, Waited: opt.Wait}

	var (
		mu      sync.Mutex
		waitFor = map[string]Item{}
		arrived = make(chan struct{}, 1)
	)
	if opt.Wait {
		cons, err := js.OrderedConsumer(ctx, events.OutcomesStream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("watch outcomes: %w", err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			o, err := events.DecodeOutcome(m.Data())
			if err != nil {
				return
			}
			mu.Lock()
			if !o.Final {
				rep.Progress[o.Status]++
			} else if _, dup := rep.Outcomes[o.InputID]; !dup {
				rep.Outcomes[o.InputID] = o
			}
			mu.Unlock()
			select {
			case arrived <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return nil, fmt.Errorf("watch outcomes: %w", err)
		}
		defer cc.Stop()
	}

	type pending struct {
		item Item
		fut  jetstream.PubAckFuture
	}
	window := make([]pending, 0, opt.MaxPending)
	settle := func() error {
		for _, p := range window {
			select {
			case ack := <-p.fut.Ok():
				if ack.Duplicate {
					rep.Duplicates = append(rep.Duplicates, p.item)
					continue
				}
				rep.Published++
				mu.Lock()
				waitFor[p.item.ID] = p.item
				mu.Unlock()
			case err := <-p.fut.Err():
				return fmt.Errorf("publish line %d (event %q): %w", p.item.Line, p.item.ID, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		window = window[:0]
		return nil
	}
	deadline := time.NewTimer(opt.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	// waitOutcomes waits until every published event has its final outcome, or the timeout.
	timedOut := false
	waitOutcomes := func() {
		for !timedOut {
			mu.Lock()
			done := 0
			for id := range waitFor {
				if _, ok := rep.Outcomes[id]; ok {
					done++
				}
			}
			total := len(waitFor)
			mu.Unlock()
			if opt.Progress != nil {
				progressLine(opt.Progress, "outcomes", done, total, time.Since(start))
			}
			if done == total {
				return
			}
			select {
			case <-arrived:
			case <-tick.C:
			case <-deadline.C:
				timedOut = true
			case <-ctx.Done():
				timedOut = true
			}
		}
	}

	for i, it := range items {
		if it.Invalid != nil && opt.Invalid == SkipInvalid {
			rep.Skipped = append(rep.Skipped, it)
			continue
		}
		if opt.Wait && i > 0 && it.Batch != items[i-1].Batch {
			// A #wait line: the events before it must be done before the next batch goes out.
			if err := settle(); err != nil {
				return nil, err
			}
			waitOutcomes()
		}
		msg := nats.NewMsg(it.Subject)
		msg.Data = it.Raw
		fut, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(it.ID))
		if err != nil {
			return nil, fmt.Errorf("publish line %d (event %q): %w", it.Line, it.ID, err)
		}
		window = append(window, pending{item: it, fut: fut})
		if len(window) == cap(window) {
			if err := settle(); err != nil {
				return nil, err
			}
		}
		if opt.Progress != nil && (i%50 == 0 || i == len(items)-1) {
			progressLine(opt.Progress, "published", i+1, len(items), 0)
		}
	}
	if err := settle(); err != nil {
		return nil, err
	}

	if opt.Wait {
		waitOutcomes()
		mu.Lock()
		for _, it := range items {
			if _, ok := waitFor[it.ID]; ok {
				if _, got := rep.Outcomes[it.ID]; !got {
					rep.Missing = append(rep.Missing, it)
				}
			}
		}
		// Keep only outcomes of this run's events.
		for id := range rep.Outcomes {
			if _, ok := waitFor[id]; !ok {
				delete(rep.Outcomes, id)
			}
		}
		mu.Unlock()
		if opt.Progress != nil {
			fmt.Fprintln(opt.Progress)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

func progressLine(w io.Writer, what string, n, total int, elapsed time.Duration) {
	const width = 30
	filled := 0
	if total > 0 {
		filled = n * width / total
	}
	bar := make([]byte, width)
	for i := range bar {
		if i < filled {
			bar[i] = '#'
		} else {
			bar[i] = '.'
		}
	}
	if elapsed > 0 {
		fmt.Fprintf(w, "\r[%s] %d/%d %s (%s)   ", bar, n, total, what, elapsed.Round(100*time.Millisecond))
		return
	}
	fmt.Fprintf(w, "\r[%s] %d/%d %s   ", bar, n, total, what)
}
