package publish

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Options configure Run.
type Options struct {
	// Wait for every event's final outcome. With Wait, a "#wait" line in the input (Item.Batch)
	// holds back the events after it until those before it have their outcomes; when that wait
	// times out, the rest is not published (Report.Unpublished). An event that JetStream drops as a
	// duplicate is not processed again: its earlier final outcome is looked up in the outcomes
	// stream (Report.Earlier), or waited for when there is none yet.
	Wait bool
	// Timeout bounds the wait for outcomes; default 2 minutes.
	Timeout time.Duration
	// LookbackTimeout bounds the search of the outcomes stream for the earlier outcomes of
	// duplicates; default 30 seconds, and never longer than what is left of Timeout.
	LookbackTimeout time.Duration
	// Progress, when set, receives a one-line progress display rewritten in place (a terminal).
	Progress io.Writer
	// Invalid says what to do with items that fail validation; the zero value publishes them for
	// the worker to dead-letter. See InvalidPolicy.
	Invalid InvalidPolicy
	// Source names the input in messages, e.g. the file name; default "input".
	Source string
	// Resend publishes every event under a fresh message id (Item.ID + "+resend-" + a stamp of this
	// run), so that JetStream does not drop it as a duplicate of an earlier publication and the
	// worker processes it again. The event itself is unchanged; its outcome's id is the new message
	// id and its inputId the event id.
	Resend bool
	// MaxPending bounds asynchronous publishes awaiting their acknowledgement; default 256.
	MaxPending int
}

func (o Options) withDefaults() Options {
	o.Timeout = cmp.Or(o.Timeout, 2*time.Minute)
	o.LookbackTimeout = cmp.Or(o.LookbackTimeout, 30*time.Second)
	o.MaxPending = cmp.Or(o.MaxPending, 256)
	o.Source = cmp.Or(o.Source, "input")
	return o
}

func (o Options) validate() error {
	switch {
	case o.Invalid < PublishInvalid || o.Invalid > SkipInvalid:
		return fmt.Errorf("publish options: Invalid: %v is not a policy", o.Invalid)
	case o.Timeout < 0:
		return fmt.Errorf("publish options: Timeout: %s is negative", o.Timeout)
	case o.LookbackTimeout < 0:
		return fmt.Errorf("publish options: LookbackTimeout: %s is negative", o.LookbackTimeout)
	case o.MaxPending < 0:
		return fmt.Errorf("publish options: MaxPending: %d is negative", o.MaxPending)
	}
	return nil
}

// Report is what Run did and what became of the events.
type Report struct {
	Items []Item
	// Published counts the events JetStream stored in this run.
	Published int
	// Duplicates were dropped by JetStream: an event with the same message id was published within
	// the events stream's duplicate window (DuplicateWindow), so they were not processed again.
	Duplicates []Item
	// Skipped are invalid events left unpublished (SkipInvalid).
	Skipped []Item
	// Unpublished were never sent: the wait before their "#wait" line timed out, or the run was
	// interrupted.
	Unpublished []Item
	// Unconfirmed were sent when the run was interrupted, without JetStream's acknowledgement: they
	// may or may not be stored.
	Unconfirmed []Item
	// Outcomes holds the final outcomes of the events published in this run, by item id.
	Outcomes map[string]*events.Outcome
	// Earlier holds the final outcomes of duplicates, by item id: those of their earlier
	// publication. They say what happened then, not in this run.
	Earlier map[string]*events.Outcome
	// Progress counts the progress outcomes (deferred, held) of these events seen while waiting.
	Progress map[events.Status]int
	// Missing are the events waited for without a final outcome when the wait ended: published in
	// this run, or duplicates whose earlier final outcome was not found.
	Missing []Item
	// Lookback describes the search for the duplicates' earlier outcomes, if there was one.
	Lookback *Lookback
	// DuplicateWindow is the events stream's duplicate window, when known.
	DuplicateWindow time.Duration
	Waited          bool
	// Interrupted says the context was cancelled before Run was done: the report is partial.
	Interrupted bool
	// PublishErr is why publishing stopped early, other than an interruption.
	PublishErr error
	// Resent says the events were published under fresh message ids (Options.Resend).
	Resent bool
	// Timeout is the wait's bound (Options.Timeout).
	Timeout time.Duration
	Elapsed time.Duration
}

// ErrInterrupted is returned, wrapping the context's error, with the partial report of a run whose
// context was cancelled.
var ErrInterrupted = errors.New("interrupted")

// Run publishes items and, with Wait, collects their outcomes.
//
// With RefuseInvalid and an invalid item, it publishes nothing and returns a nil report and an
// *InvalidError. When it stops early, because ctx is cancelled (the error wraps ErrInterrupted and
// the context's error) or a publish fails, it returns the partial report with the error, so that
// the caller can still say what was published and what came of it.
func Run(ctx context.Context, js jetstream.JetStream, items []Item, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if bad := Invalid(items); len(bad) > 0 && opt.Invalid == RefuseInvalid {
		return nil, &InvalidError{Source: opt.Source, Bad: bad, Total: len(items)}
	}
	r := newRunner(js, items, opt)
	return r.run(ctx)
}

// runner holds the state of one Run.
type runner struct {
	js    jetstream.JetStream
	items []Item
	opt   Options
	rep   *Report
	start time.Time

	// msgIDs[i] is the message id items[i] is published with; byMsgID maps it back. Both are
	// written before the outcome watcher starts and only read afterwards.
	msgIDs  []string
	byMsgID map[string]int

	mu sync.Mutex // guards finals, progress, waitFor
	// finals are the final outcomes of this run's items, by message id, as they arrive.
	finals   map[string]*events.Outcome
	progress map[events.Status]int
	// waitFor are the message ids whose final outcome the wait is for.
	waitFor map[string]bool
	arrived chan struct{}

	published map[int]bool // item indexes JetStream stored in this run
	dupes     map[int]bool // item indexes JetStream dropped as duplicates
	window    []pending
	deadline  *time.Timer
	timedOut  bool
}

type pending struct {
	index int
	fut   jetstream.PubAckFuture
}

func newRunner(js jetstream.JetStream, items []Item, opt Options) *runner {
	r := &runner{
		js: js, items: items, opt: opt, start: time.Now(),
		rep: &Report{Items: items, Outcomes: map[string]*events.Outcome{}, Earlier: map[string]*events.Outcome{},
			Progress: map[events.Status]int{}, Waited: opt.Wait, Resent: opt.Resend, Timeout: opt.Timeout},
		msgIDs: make([]string, len(items)), byMsgID: make(map[string]int, len(items)),
		finals: map[string]*events.Outcome{}, progress: map[events.Status]int{}, waitFor: map[string]bool{},
		arrived: make(chan struct{}, 1), published: map[int]bool{}, dupes: map[int]bool{},
	}
	suffix := ""
	if opt.Resend {
		suffix = "+resend-" + runStamp()
	}
	for i, it := range items {
		r.msgIDs[i] = it.ID + suffix
		if _, seen := r.byMsgID[r.msgIDs[i]]; !seen {
			r.byMsgID[r.msgIDs[i]] = i
		}
	}
	return r
}

// runStamp identifies one resend: the time to the second, and random bits so that two resends in
// one second differ.
func runStamp() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	if s, err := r.js.Stream(ctx, events.EventsStream); err == nil {
		r.rep.DuplicateWindow = s.CachedInfo().Config.Duplicates
	}
	if r.opt.Wait {
		stop, err := r.watch(ctx)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	r.deadline = time.NewTimer(r.opt.Timeout)
	defer r.deadline.Stop()

	if err := r.publishAll(ctx); err != nil {
		return r.finish(ctx, err)
	}
	if r.opt.Wait {
		if !r.timedOut {
			r.lookBack(ctx)
		}
		if r.waitOutcomes(ctx) == waitInterrupted {
			return r.finish(ctx, ctx.Err())
		}
	}
	return r.finish(ctx, nil)
}

// watch follows the outcomes stream from now on and records the outcomes of this run's items.
func (r *runner) watch(ctx context.Context) (stop func(), err error) {
	cons, err := r.js.OrderedConsumer(ctx, events.OutcomesStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("watch outcomes on stream %s: %w", events.OutcomesStream, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		o, err := events.DecodeOutcome(m.Data())
		if err != nil {
			return
		}
		r.record(o)
	})
	if err != nil {
		return nil, fmt.Errorf("watch outcomes on stream %s: %w", events.OutcomesStream, err)
	}
	return cc.Stop, nil
}

// record keeps o if it belongs to one of this run's items: a final outcome's id is the input's
// message id, a progress outcome's id is that id followed by "/<status>/<attempt>".
func (r *runner) record(o *events.Outcome) {
	id := o.ID
	if !o.Final {
		id = progressInput(o.ID)
	}
	if _, ours := r.byMsgID[id]; !ours {
		return
	}
	r.mu.Lock()
	if !o.Final {
		r.progress[o.Status]++
	} else if _, dup := r.finals[id]; !dup {
		r.finals[id] = o
	}
	r.mu.Unlock()
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// progressInput is the input message id of a progress outcome id "<msg id>/<status>/<attempt>".
func progressInput(id string) string {
	for range 2 {
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return ""
		}
		id = id[:i]
	}
	return id
}

// publishAll publishes the items batch by batch; with Wait, a batch goes out only when every event
// before it has its final outcome. When that wait ends without them, the rest stays unpublished.
func (r *runner) publishAll(ctx context.Context) error {
	for i, it := range r.items {
		if it.Invalid != nil && r.opt.Invalid == SkipInvalid {
			r.rep.Skipped = append(r.rep.Skipped, it)
			continue
		}
		if r.opt.Wait && i > 0 && it.Batch != r.items[i-1].Batch {
			// A #wait line: the events before it must be done before the next batch goes out.
			if err := r.settle(ctx); err != nil {
				r.notPublishedFrom(i)
				return err
			}
			switch r.waitOutcomes(ctx) {
			case waitInterrupted:
				r.notPublishedFrom(i)
				return ctx.Err()
			case waitTimedOut:
				r.notPublishedFrom(i)
				return nil
			}
		}
		if ctx.Err() != nil {
			r.notPublishedFrom(i)
			return ctx.Err()
		}
		msg := nats.NewMsg(it.Subject)
		msg.Data = it.Raw
		fut, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(r.msgIDs[i]))
		if err != nil {
			r.notPublishedFrom(i)
			return fmt.Errorf("publish %s:%d (event %q): %w", r.opt.Source, it.Line, it.ID, err)
		}
		r.window = append(r.window, pending{index: i, fut: fut})
		if len(r.window) == r.opt.MaxPending {
			if err := r.settle(ctx); err != nil {
				r.notPublishedFrom(i + 1)
				return err
			}
		}
		if r.opt.Progress != nil && (i%50 == 0 || i == len(r.items)-1) {
			progressLine(r.opt.Progress, "published", i+1, len(r.items), 0)
		}
	}
	return r.settle(ctx)
}

// notPublishedFrom records the items from index i on as not published (skipped ones stay skipped).
func (r *runner) notPublishedFrom(i int) {
	for _, it := range r.items[i:] {
		if it.Invalid != nil && r.opt.Invalid == SkipInvalid {
			r.rep.Skipped = append(r.rep.Skipped, it)
			continue
		}
		r.rep.Unpublished = append(r.rep.Unpublished, it)
	}
}

// interruptGrace is how long acknowledgements of publishes already sent are awaited after ctx is
// cancelled, so that the partial report counts them right.
const interruptGrace = 2 * time.Second

// settle waits for the acknowledgements of the publishes in flight. After ctx is cancelled it waits
// interruptGrace more, then records what is left as unconfirmed and returns the context's error.
// When a publish fails, its item is recorded as not published and the rest of the window as
// unconfirmed.
func (r *runner) settle(ctx context.Context) error {
	defer func() { r.window = r.window[:0] }()
	var grace <-chan time.Time
	done := ctx.Done()
	for k, p := range r.window {
		it := r.items[p.index]
		select {
		case ack := <-p.fut.Ok():
			r.acked(p.index, ack)
			continue
		case err := <-p.fut.Err():
			r.rep.Unpublished = append(r.rep.Unpublished, it)
			for _, q := range r.window[k+1:] {
				r.rep.Unconfirmed = append(r.rep.Unconfirmed, r.items[q.index])
			}
			return fmt.Errorf("publish %s:%d (event %q): %w", r.opt.Source, it.Line, it.ID, err)
		case <-done:
			grace, done = time.After(interruptGrace), nil
		}
		// Interrupted: take the acknowledgements that come within the grace period.
		select {
		case ack := <-p.fut.Ok():
			r.acked(p.index, ack)
		case <-p.fut.Err():
			r.rep.Unconfirmed = append(r.rep.Unconfirmed, it)
		case <-grace:
			r.rep.Unconfirmed = append(r.rep.Unconfirmed, it)
		}
	}
	if grace != nil {
		return ctx.Err()
	}
	return nil
}

func (r *runner) acked(i int, ack *jetstream.PubAck) {
	if ack.Duplicate {
		r.dupes[i] = true
		r.rep.Duplicates = append(r.rep.Duplicates, r.items[i])
		return
	}
	r.published[i] = true
	r.rep.Published++
	r.mu.Lock()
	r.waitFor[r.msgIDs[i]] = true
	r.mu.Unlock()
}

// lookBack looks up the earlier final outcomes of the duplicates in the outcomes stream; those it
// does not find are waited for like this run's events (they may still be in progress).
func (r *runner) lookBack(ctx context.Context) {
	if len(r.dupes) == 0 {
		return
	}
	want := map[string]string{}
	r.mu.Lock()
	for i := range r.dupes {
		id := r.msgIDs[i]
		if _, ok := r.finals[id]; !ok {
			want[id] = r.items[i].Object
		}
	}
	r.mu.Unlock()
	budget := min(r.opt.LookbackTimeout, r.opt.Timeout-time.Since(r.start))
	lctx, cancel := context.WithTimeout(ctx, max(budget, 0))
	defer cancel()
	found, lb := earlierOutcomes(lctx, r.js, want, r.rep.DuplicateWindow)
	r.rep.Lookback = lb
	r.mu.Lock()
	for id, o := range found {
		if _, ok := r.finals[id]; !ok {
			r.finals[id] = o
		}
	}
	for i := range r.dupes {
		r.waitFor[r.msgIDs[i]] = true
	}
	r.mu.Unlock()
}

type waitResult int

const (
	waitDone waitResult = iota
	waitTimedOut
	waitInterrupted
)

// waitOutcomes waits until every event waited for has its final outcome, the timeout, or ctx's end.
func (r *runner) waitOutcomes(ctx context.Context) waitResult {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		done := 0
		for id := range r.waitFor {
			if _, ok := r.finals[id]; ok {
				done++
			}
		}
		total := len(r.waitFor)
		r.mu.Unlock()
		if r.opt.Progress != nil {
			progressLine(r.opt.Progress, "outcomes", done, total, time.Since(r.start))
		}
		if done == total {
			return waitDone
		}
		if r.timedOut {
			return waitTimedOut
		}
		select {
		case <-r.arrived:
		case <-tick.C:
		case <-r.deadline.C:
			r.timedOut = true
			return waitTimedOut
		case <-ctx.Done():
			return waitInterrupted
		}
	}
}

// finish sorts what is known into the report and returns it with err; when ctx is cancelled, the
// report is marked interrupted and err wraps ErrInterrupted.
func (r *runner) finish(ctx context.Context, err error) (*Report, error) {
	rep := r.rep
	if r.opt.Wait {
		r.mu.Lock()
		for i, it := range r.items {
			id := r.msgIDs[i]
			o, got := r.finals[id]
			switch {
			case r.published[i] && got:
				rep.Outcomes[it.ID] = o
			case r.dupes[i] && got:
				rep.Earlier[it.ID] = o
			case r.published[i] || r.dupes[i]:
				rep.Missing = append(rep.Missing, it)
			}
		}
		for s, n := range r.progress {
			rep.Progress[s] = n
		}
		r.mu.Unlock()
		if r.opt.Progress != nil {
			fmt.Fprintln(r.opt.Progress)
		}
	}
	rep.Elapsed = time.Since(r.start)
	switch {
	case err != nil && ctx.Err() != nil:
		rep.Interrupted = true
		return rep, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	case err != nil:
		rep.PublishErr = err
	}
	return rep, err
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
