package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// Guard decides whether a delete or disable may be sent now. It is safe for concurrent use.
type Guard struct {
	cfg     Config
	counter ObjectCounter
	tally   Tally

	mu    sync.Mutex
	bases map[time.Time]map[string]*base // per window and resource; the two newest windows
}

// Options are the Guard's parts.
type Options struct {
	// Counter gives the base of MaxPercent; required unless the percent limit is off.
	Counter ObjectCounter
	// Tally keeps the window counts. Default NewMemoryTally(): one worker process. Replicas that
	// share a target share a KVTally, or each applies the limits on its own.
	Tally Tally
}

// New returns a Guard with cfg's limits (zero fields get the defaults).
func New(cfg Config, opt Options) (*Guard, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.percentLimit() > 0 && opt.Counter == nil {
		return nil, errors.New("deletionGuard.maxPercent: the guard needs an object counter for its base")
	}
	if opt.Tally == nil {
		opt.Tally = NewMemoryTally()
	}
	return &Guard{cfg: cfg, counter: opt.Counter, tally: opt.Tally, bases: map[time.Time]map[string]*base{}}, nil
}

// Config returns the guard's configuration, defaults filled.
func (g *Guard) Config() Config { return g.cfg }

// Change is what the guard looks at.
type Change struct {
	Object     string // the data-model object, e.g. User
	Operation  reconcile.Operation
	Key        map[string]any // the event's key
	Attributes map[string]any
	// Plan is the plan about to be sent; nil to judge the intent alone (Protected).
	Plan *reconcile.Plan
	// Window names the sync window (WindowOf): the counts start again in every window.
	Window time.Time
	// Approved says an operator approved this change after the guard held it: it is not held
	// again, and it is counted.
	Approved bool
}

// Verdict is the guard's answer.
type Verdict int

// Verdicts.
const (
	Allow  Verdict = iota // send it
	Hold                  // send nothing; an operator approves or rejects it
	Reject                // never: a protected object
)

func (v Verdict) String() string {
	switch v {
	case Hold:
		return "held"
	case Reject:
		return "rejected"
	}
	return "allowed"
}

// Decision is a Verdict with its reason. An allowed delete or disable holds a count of its window:
// Release gives it back when the requests were not sent or failed.
type Decision struct {
	Verdict Verdict
	Kind    Kind
	Reason  string
	slot    *slot
}

type slot struct {
	tally    Tally
	window   time.Time
	resource string
	done     atomic.Bool
}

// Release gives back the count of an allowed delete or disable whose requests failed or were not
// sent, so that a failed delete does not spend the window's allowance (a retry counts again). It
// is safe to call on any Decision, more than once.
func (d Decision) Release(ctx context.Context) error {
	if d.slot == nil || d.slot.done.Swap(true) {
		return nil
	}
	return d.slot.tally.Release(context.WithoutCancel(ctx), d.slot.window, d.slot.resource)
}

// Protected judges a change by its intent alone, before any plan or request: a Delete, or a change
// setting active to false, of an object whose key matches a protected pattern is rejected.
func (g *Guard) Protected(ch Change) (reason string, protected bool) {
	kind := Intent(ch.Operation, ch.Attributes)
	if ch.Plan != nil {
		kind = max(kind, Classify(ch.Plan))
	}
	return g.protected(ch, kind)
}

func (g *Guard) protected(ch Change, kind Kind) (string, bool) {
	if kind == KindNone {
		return "", false
	}
	for _, p := range g.cfg.Protected {
		if p.Matches(ch.Object, ch.Key) {
			return fmt.Sprintf("deletion guard: %s %s %q matches protected pattern %q: never %sd",
				ch.Object, p.Property, fmt.Sprint(ch.Key[p.Property]), p.Pattern, kind), true
		}
	}
	return "", false
}

// Check decides on a plan about to be sent. A plan that neither deletes nor disables is allowed
// and not counted; a protected object is rejected; an approved change is allowed and counted;
// anything else is counted and allowed while the window's counts stay within the limits, and
// held (not counted) beyond them. An error (the object count could not be read) decides nothing.
func (g *Guard) Check(ctx context.Context, ch Change) (Decision, error) {
	kind := Classify(ch.Plan)
	if kind == KindNone {
		return Decision{Verdict: Allow}, nil
	}
	if reason, ok := g.protected(ch, kind); ok {
		return Decision{Verdict: Reject, Kind: kind, Reason: reason}, nil
	}
	resource := ch.Plan.Resource
	window := ch.Window.UTC()
	limitOf := 0 // this resource's limit in this window, from the percent base; 0 for none
	var baseN int
	if pct := g.cfg.percentLimit(); pct > 0 && !ch.Approved {
		n, err := g.base(ctx, window, resource)
		if err != nil {
			return Decision{}, fmt.Errorf("deletion guard: %w", err)
		}
		baseN = n
		limitOf = max(1, int(math.Ceil(pct*float64(n)/100-1e-9)))
	}
	maxDeletes := g.cfg.countLimit()
	admit := func(total, ofResource int) string {
		switch {
		case ch.Approved:
			return ""
		case maxDeletes > 0 && total > maxDeletes:
			return fmt.Sprintf("deletion guard: %s %s in this window exceeds maxDeletes %d",
				ordinal(total), countedAs(kind), maxDeletes)
		case limitOf > 0 && ofResource > limitOf:
			return fmt.Sprintf("deletion guard: %s %s of %s in this window exceeds maxPercent %s%% of the %d %s the target holds (%d per window)",
				ordinal(ofResource), countedAs(kind), resource, strconv.FormatFloat(g.cfg.MaxPercent, 'f', -1, 64), baseN, resource, limitOf)
		}
		return ""
	}
	held, err := g.tally.Reserve(ctx, window, resource, admit)
	if err != nil {
		return Decision{}, fmt.Errorf("deletion guard: count %s of %s: %w", kind, resource, err)
	}
	if held != "" {
		return Decision{Verdict: Hold, Kind: kind, Reason: held}, nil
	}
	return Decision{Verdict: Allow, Kind: kind, slot: &slot{tally: g.tally, window: window, resource: resource}}, nil
}

// countedAs names what is counted: deletes and disables share the count.
func countedAs(k Kind) string {
	if k == KindDisable {
		return "delete or disable (this one a disable)"
	}
	return "delete"
}

// ordinal writes 1st, 2nd, 3rd, 4th, 11th, 21st, 51st...
func ordinal(n int) string {
	suffix := "th"
	switch n % 100 {
	case 11, 12, 13:
	default:
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return strconv.Itoa(n) + suffix
}

// base is a count in progress or done; ready closes when n and err are set.
type base struct {
	ready chan struct{}
	n     int
	err   error
}

// base returns how many objects of resource the target held when window first needed it, asking
// the counter once per window and resource however many changes ask at once. A failed count is not
// kept: the next change asks again.
func (g *Guard) base(ctx context.Context, window time.Time, resource string) (int, error) {
	for {
		g.mu.Lock()
		per := g.bases[window]
		if per == nil {
			per = map[string]*base{}
			g.bases[window] = per
			dropOldWindows(g.bases)
		}
		b, waiting := per[resource]
		if !waiting {
			b = &base{ready: make(chan struct{})}
			per[resource] = b
		}
		g.mu.Unlock()
		if !waiting {
			b.n, b.err = g.counter.CountObjects(ctx, resource)
			if b.err != nil {
				g.mu.Lock()
				if per[resource] == b {
					delete(per, resource)
				}
				g.mu.Unlock()
			}
			close(b.ready)
			return b.n, b.err
		}
		select {
		case <-b.ready:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if b.err != nil && ctx.Err() == nil && (errors.Is(b.err, context.Canceled) || errors.Is(b.err, context.DeadlineExceeded)) {
			continue // the change that counted gave up; this one counts again
		}
		return b.n, b.err
	}
}

// dropOldWindows keeps the two newest windows of m: the current one, and the one before for a
// straggler that read the clock just before the window turned.
func dropOldWindows[V any](m map[time.Time]V) {
	for len(m) > 2 {
		var oldest time.Time
		first := true
		for w := range m {
			if first || w.Before(oldest) {
				oldest, first = w, false
			}
		}
		delete(m, oldest)
	}
}
