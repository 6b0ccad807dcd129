package publish

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Lookback describes the search of the outcomes stream for the earlier final outcomes of events
// that JetStream dropped as duplicates.
type Lookback struct {
	// Since is where the search started (server clock): the events stream's duplicate window, plus
	// lookbackMargin, before the search. A duplicate's earlier publication is younger than the
	// window, so its outcome is too. Zero when the window is unknown and the whole stream was read.
	Since time.Time
	// Wanted counts the duplicates looked up; Found those whose final outcome was found.
	Wanted, Found int
	// Read counts the outcomes read.
	Read uint64
	// Err says why the search stopped before reading every outcome stored when it began (its
	// deadline, an error); nil when it finished or found everything wanted.
	Err error
}

// lookbackMargin widens the search window for clock differences between the servers of a cluster.
const lookbackMargin = time.Minute

// finalStatuses are the statuses of final outcomes, whose subjects the search reads.
var finalStatuses = []events.Status{events.StatusSucceeded, events.StatusSkipped, events.StatusDeadLettered, events.StatusRejected}

// earlierOutcomes looks up, in the outcomes stream, the final outcomes whose id (the input's message
// id) is a key of want; want's values are the events' objects. It reads, with an ordered consumer,
// only the final-status subjects of those objects (idm.outcomes.<object>.<final status>), from
// window before now, up to the last outcome stored when it began, and stops early when it has found
// them all or ctx ends. It returns what it found, by message id.
func earlierOutcomes(ctx context.Context, js jetstream.JetStream, want map[string]string, window time.Duration) (map[string]*events.Outcome, *Lookback) {
	lb := &Lookback{Wanted: len(want)}
	found := map[string]*events.Outcome{}
	if len(want) == 0 {
		return found, lb
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: finalSubjects(want), DeliverPolicy: jetstream.DeliverAllPolicy}
	if window > 0 {
		now := time.Now()
		if s, err := js.Stream(ctx, events.OutcomesStream); err == nil && !s.CachedInfo().TimeStamp.IsZero() {
			now = s.CachedInfo().TimeStamp
		}
		since := now.Add(-window - lookbackMargin)
		cfg.DeliverPolicy, cfg.OptStartTime, lb.Since = jetstream.DeliverByStartTimePolicy, &since, since
	}
	cons, err := js.OrderedConsumer(ctx, events.OutcomesStream, cfg)
	if err != nil {
		lb.Err = fmt.Errorf("search stream %s for earlier outcomes: %w", events.OutcomesStream, err)
		return found, lb
	}
	info := cons.CachedInfo()
	if info == nil || info.NumPending == 0 {
		return found, lb
	}
	pending := info.NumPending
	msgs, err := cons.Messages()
	if err != nil {
		lb.Err = fmt.Errorf("search stream %s for earlier outcomes: %w", events.OutcomesStream, err)
		return found, lb
	}
	defer msgs.Stop()
	for lb.Read < pending && len(found) < len(want) {
		m, err := msgs.Next(jetstream.NextContext(ctx))
		if err != nil {
			lb.Err = fmt.Errorf("search stream %s for earlier outcomes: stopped after %d of %d outcomes: %w", events.OutcomesStream, lb.Read, pending, err)
			break
		}
		lb.Read++
		if o, err := events.DecodeOutcome(m.Data()); err == nil && o.Final {
			if _, ok := want[o.ID]; ok {
				if _, dup := found[o.ID]; !dup {
					found[o.ID] = o
				}
			}
		}
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			break
		}
	}
	lb.Found = len(found)
	return found, lb
}

// finalSubjects are the final-outcome subjects of the objects in want, sorted.
func finalSubjects(want map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, object := range want {
		for _, s := range finalStatuses {
			subj := events.OutcomeSubject(object, s)
			if !seen[subj] {
				seen[subj] = true
				out = append(out, subj)
			}
		}
	}
	sort.Strings(out)
	return out
}
