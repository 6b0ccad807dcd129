// Package pipeline processes one identity event end to end (DESIGN.md §4): it plans the SCIM
// requests with the data model, sends them through the connector, and classifies the result into
// the outcome the consume loop publishes: succeeded, skipped, deferred to the next sync window, or
// dead-lettered with its reason.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// TargetReader is the read side of the connector: Resolve Object ID / Reference Property and GET.
type TargetReader interface {
	Resolve(ctx context.Context, resource string, match []provision.Match) (id string, found bool, err error)
	Get(ctx context.Context, resource, id string) (map[string]any, error)
}

// Target is the part of the connector the pipeline uses; *provision.Client implements it.
type Target interface {
	TargetReader
	Do(ctx context.Context, req provision.Request) (*provision.Response, error)
	idCache
}

// cacheForgetter drops a cached key → id resolution (after a delete, or when the id answered 404).
type cacheForgetter interface {
	Forget(ctx context.Context, resource string, match []provision.Match, staleID string)
}

// idCache is the connector's key → id cache as the pipeline keeps it true: Remember after a create
// or a rename, ResolveFresh (never the cache) for a destructive write.
type idCache interface {
	cacheForgetter
	Remember(ctx context.Context, resource string, match []provision.Match, id string)
	ResolveFresh(ctx context.Context, resource string, match []provision.Match) (id string, found bool, err error)
}

var _ Target = (*provision.Client)(nil)

// Schedule says when the next sync window starts; robfig/cron schedules implement it.
type Schedule interface {
	Next(time.Time) time.Time
}

// Config configures a Processor. The zero value is the documented default.
type Config struct {
	// Windows says when deferred events are tried again. Default: every DefaultWindow.
	Windows Schedule
	// MaxWindows is how many sync windows a deferred event is retried in before it is
	// dead-lettered. Default DefaultMaxWindows.
	MaxWindows int
	// ReferenceRetries is how many times a change whose reference does not resolve yet (a member
	// or manager created by an event on another key, still in flight) is planned again in process,
	// without holding a worker slot, before it is deferred to the next window. Zero means
	// DefaultReferenceRetries; NoReferenceRetries (negative) means none.
	ReferenceRetries int
	// ReferenceBackoff is the first wait between those attempts; it doubles, up to 5 seconds.
	// Default DefaultReferenceBackoff.
	ReferenceBackoff time.Duration
	Logger           zerolog.Logger

	// Guard, when set, is asked before a plan that deletes or disables an object is sent
	// (docs/deletion-guard.md): beyond its limits the event is held (StatusHeld, error class
	// ClassHeldDelete) with nothing sent, for the consume loop to park until an operator decides;
	// a protected object is rejected at once (StatusRejected, final). nil: no guard.
	Guard DeletionGuard
	// Approved reports whether an operator approved the delivery's held delete (worker deletes
	// approve): the guard does not hold it again, though it still counts it and still refuses a
	// protected object. nil: never approved.
	Approved func(*events.Delivery) bool
	// Applied, when set, is told of every write that succeeded (what the inventory needs to tell
	// our own changes from drift, docs/inventory.md). nil: nothing recorded.
	Applied AppliedRecorder
}

// Defaults of Config (and of the syncWindow section of the worker configuration).
const (
	DefaultWindow           = 15 * time.Minute
	DefaultMaxWindows       = 3
	DefaultReferenceRetries = 8
	DefaultReferenceBackoff = 250 * time.Millisecond
	NoReferenceRetries      = -1
)

type every time.Duration

func (e every) Next(t time.Time) time.Time { return t.Add(time.Duration(e)) }

// Period says the windows have a fixed length (guard.WindowOf).
func (e every) Period() time.Duration { return time.Duration(e) }

// Every is a Schedule of fixed-length windows.
func Every(d time.Duration) Schedule { return every(d) }

// Processor is the events.Handler of the worker.
type Processor struct {
	planner *reconcile.Planner
	target  Target
	cfg     Config
	log     zerolog.Logger
	now     func() time.Time
}

var _ events.Handler = (*Processor)(nil)

// New returns a Processor planning with planner and sending to target.
func New(planner *reconcile.Planner, target Target, cfg Config) *Processor {
	if cfg.Windows == nil {
		cfg.Windows = Every(DefaultWindow)
	}
	cfg.MaxWindows = cmp.Or(cfg.MaxWindows, DefaultMaxWindows)
	cfg.ReferenceRetries = max(cmp.Or(cfg.ReferenceRetries, DefaultReferenceRetries), 0)
	cfg.ReferenceBackoff = cmp.Or(cfg.ReferenceBackoff, DefaultReferenceBackoff)
	return &Processor{planner: planner, target: target, cfg: cfg, log: cfg.Logger, now: time.Now}
}

// progress is what the processor keeps of a delivery across its resumptions (events.Delivery.State):
// a change waiting for a reference holds its key but not a worker slot.
type progress struct {
	refWaits int           // waits for an unresolved reference in this window
	calls    []events.Call // requests made in this window so far
	// followUp is the change still to apply: the references the first write left out because
	// their objects did not exist yet.
	followUp *reconcile.Change
	sent     bool   // a request of this event succeeded
	targetID string // the object's id, once known
	notes    []string
	// fenced: the delivery was checked against what was last applied to its key (superseded).
	fenced bool
	// record is closed when the applied record being written beside the outcome is stored (or
	// failed); nil when none is being written.
	record chan struct{}
	// cached is closed when a created object's key → id, written beside the outcome, is stored
	// (or failed); nil when none is being written.
	cached chan struct{}
}

// awaitRecord waits for the applied record being written, if any.
func (st *progress) awaitRecord() {
	if st.record != nil {
		<-st.record
	}
}

// settle waits for everything written beside the outcome: the applied record and the key → id.
func (st *progress) settle() {
	st.awaitRecord()
	if st.cached != nil {
		<-st.cached
	}
}

func (st *progress) note(format string, args ...any) {
	if n := fmt.Sprintf(format, args...); n != "" {
		st.notes = append(st.notes, n)
	}
}

func (st *progress) reason() string { return strings.Join(st.notes, "; ") }

// Handle processes one event and returns its outcome, or asks to be resumed later (a reference
// that does not resolve yet).
func (p *Processor) Handle(ctx context.Context, d *events.Delivery) events.Result {
	st, _ := d.State.(*progress)
	if st == nil {
		st = &progress{}
		d.State = st
	}
	ctx, trace := provision.WithTrace(ctx)
	res := p.handle(ctx, d, st)
	for _, c := range trace.Calls() {
		st.calls = append(st.calls, events.Call{
			Method: c.Method, Path: c.Path, Status: c.Status, Attempt: c.Attempt, Error: c.Err,
			DurationMs: float64(c.Duration.Microseconds()) / 1000,
		})
	}
	if res.Resume.IsZero() && !res.Abandon {
		// The outcome of this window: it carries every request the window made.
		res.Outcome.Requests, st.calls, st.refWaits = st.calls, nil, 0
	}
	if st.record != nil || st.cached != nil {
		res.Settle = st.settle
	}
	return res
}

// referenceWait is how long to wait before planning again after the n-th unresolved reference
// (from 1): ReferenceBackoff doubling, at most 5 seconds.
func (p *Processor) referenceWait(n int) time.Duration {
	return min(p.cfg.ReferenceBackoff<<(n-1), 5*time.Second)
}

func (p *Processor) handle(ctx context.Context, d *events.Delivery, st *progress) events.Result {
	ev := d.Event
	ch := reconcile.Change{
		Object:     ev.Data.Object,
		Operation:  reconcile.Operation(ev.Data.Operation),
		Key:        ev.Data.Key,
		Attributes: ev.Data.Attributes,
		Actions:    ev.Data.Actions,
		// A redelivered or retried Create may have reached the target before: look before creating.
		ResolveFirst: d.Redelivered || d.Attempt > 1,
		// References after objects: a reference whose object does not exist yet (a manager or a
		// member created by another key's event in the same batch) is left out of the write, and set
		// by the follow-up below as soon as its object exists.
		DeferUnresolved: true,
	}
	if st.followUp != nil {
		ch = *st.followUp
	} else if res, stop := p.protected(d, ch); stop {
		return res
	} else if !st.fenced {
		st.fenced = true // once per delivery: a resumption is the same run
		if res, stop := p.superseded(ctx, d, ch); stop {
			return res
		}
	}
	// A cached id is never trusted for a destructive write (a delete, or a disable): the key is
	// looked up afresh, so that an object renamed behind our back keeps its old key's cache entry
	// and is still never deleted or disabled through it.
	rd := &reader{t: p.target, fresh: guard.Intent(ch.Operation, ch.Attributes) != guard.KindNone}
	var conflictRetried, staleRetried bool
	for {
		rd.seen = rd.seen[:0]
		plan, err := p.planner.Plan(ctx, rd, ch)
		if err != nil {
			var unresolved *reconcile.UnresolvedReferenceError
			if errors.As(err, &unresolved) && st.refWaits < p.cfg.ReferenceRetries {
				// The referenced object is not there yet (created by an event of another key, still
				// in flight): free the worker slot and plan again shortly, holding this key.
				st.refWaits++
				return events.Result{Resume: p.now().Add(p.referenceWait(st.refWaits))}
			}
			if stale(err) && !staleRetried {
				// A read of the object by a cached id answered 404: the id is stale (the object was
				// deleted behind our back). Drop the cached ids and plan again from fresh lookups.
				staleRetried, rd.fresh = true, true
				rd.forget(ctx, p.target, func(string) bool { return true })
				continue
			}
			return p.failed(ctx, d, "plan", err)
		}
		if len(plan.Requests) == 0 {
			p.rekey(ctx, plan, plan.ObjectID)
			if fu, ok := plan.FollowUp(); ok {
				st.note("%s", plan.Skipped)
				st.followUp, ch = &fu, fu
				conflictRetried, staleRetried, rd.fresh = false, false, false
				continue
			}
			p.recordFound(ctx, st, d, ch, plan)
			status, reason := events.StatusSkipped, cmp.Or(plan.Skipped, "nothing to send")
			if st.sent {
				status, reason = events.StatusSucceeded, st.reason()
			}
			return events.Result{Outcome: events.Outcome{Status: status, TargetID: cmp.Or(plan.ObjectID, st.targetID), Reason: reason}}
		}
		if !rd.fresh && rd.resolved() && guard.Classify(plan) != guard.KindNone {
			// The plan deletes or disables an object found through the cache (an Upsert or a
			// follow-up can do so without asking for it up front): plan again from the target.
			rd.fresh = true
			continue
		}
		allowed, res, stop := p.guard(ctx, d, ch, plan)
		if stop {
			return res
		}
		targetID, body, err := p.execute(ctx, plan)
		if err != nil {
			// Not deleted (or not known to be): the count goes back; a retry counts again.
			if rerr := allowed.Release(ctx); rerr != nil {
				events.LogEvent(p.log.Warn().Err(rerr), d.Event).Msg("deletion guard: give back a count")
			}
		}
		switch {
		case err == nil:
			st.sent = true
			st.targetID = cmp.Or(targetID, st.targetID)
			fu, partial := plan.FollowUp()
			p.remember(ctx, st, rd, plan, targetID, !partial)
			p.recordApplied(ctx, st, d, ch, plan, st.targetID, body, partial)
			st.note("%s", strings.Join(plan.Notes, "; "))
			if partial {
				// Written without the references that do not resolve yet: set them next, before any
				// later event of this key.
				st.followUp, ch = &fu, fu
				conflictRetried, staleRetried, rd.fresh = false, false, false
				continue
			}
			if st.followUp != nil {
				st.note("references set once their objects existed")
			}
			return events.Result{Outcome: events.Outcome{
				Status: events.StatusSucceeded, TargetID: st.targetID, Reason: st.reason(),
			}}
		case provision.ClassOf(err) == provision.ClassConflict && !conflictRetried && ch.Operation != reconcile.OpDelete:
			// 409 on create: the object exists (created by an earlier delivery or by someone else):
			// resolve it by key and converge it instead.
			conflictRetried, ch.ResolveFirst = true, true
			continue
		case stale(err) && !staleRetried:
			// An id this plan used may be stale (cached before the object was deleted, or deleted
			// and created again by someone else): drop every cached id the plan used and plan
			// once more from fresh lookups. A truly absent object then plans as absent.
			// The lookups go to the target, not the cache: another cached id of the key may be as
			// stale (the inventory remembers ids it read minutes ago).
			staleRetried, rd.fresh = true, true
			rd.forget(ctx, p.target, func(string) bool { return true })
			continue
		case provision.ClassOf(err) == provision.ClassNotFound && hasDelete(plan):
			// Fresh lookups found it, yet it is gone now: deleted meanwhile, which is what was asked.
			return events.Result{Outcome: events.Outcome{
				Status: events.StatusSucceeded, TargetID: plan.ObjectID, Reason: "already deleted by the time the request arrived",
			}}
		default:
			return p.failed(ctx, d, "send", err)
		}
	}
}

// remember keeps the key → id cache true to what the plan just did: a deleted object's key no
// longer resolves, a created object's key resolves to its new id, and a renamed object's id moves
// from its old key to its new one (so that a later event of the old key can never reach it).
//
// A create that is the event's last write (last: no follow-up plans after it) stores its new
// key → id beside the outcome, as the applied record is (startRecord): the outcome does not wait
// for the bucket's write, the acknowledgement does (Result.Settle), so the key's next event finds
// the id stored. Another key's event that asks for the id meanwhile reads the bucket, and failing
// that the target, as it did while the write was awaited.
func (p *Processor) remember(ctx context.Context, st *progress, rd *reader, plan *reconcile.Plan, targetID string, last bool) {
	switch {
	case plan.ObjectID != "" && hasDelete(plan):
		rd.forget(ctx, p.target, func(id string) bool { return id == plan.ObjectID })
		return
	case plan.Rekey != nil:
		p.rekey(ctx, plan, cmp.Or(plan.ObjectID, targetID))
	case plan.ObjectID == "" && targetID != "" && len(plan.Key) > 0:
		resource, key := plan.KeyResource, toProvision(plan.Key)
		if !last {
			p.target.Remember(ctx, resource, key, targetID)
			return
		}
		st.cached = writeBeside(ctx, st.cached, func(wctx context.Context) { p.target.Remember(wctx, resource, key, targetID) })
	}
}

// rekey moves the cache entry of a renamed object from its old key to its new one.
func (p *Processor) rekey(ctx context.Context, plan *reconcile.Plan, id string) {
	if plan.Rekey == nil || id == "" {
		return
	}
	p.target.Forget(ctx, plan.Rekey.Resource, toProvision(plan.Rekey.Old), id)
	p.target.Remember(ctx, plan.Rekey.Resource, toProvision(plan.Rekey.New), id)
}

func toProvision(ms []reconcile.Match) []provision.Match {
	out := make([]provision.Match, len(ms))
	for i, m := range ms {
		out[i] = provision.Match{Attr: m.Attr, Value: m.Value}
	}
	return out
}

// systemic reports whether a failure is one no single event can fix: an open breaker, credentials
// or TLS the target refuses (401/403 after the connector refreshed its token, ClassConfig), or a
// target that can't be reached at all (connection refused, DNS). Those pause intake; they never
// spend an event's windows nor dead-letter it.
func systemic(pe *provision.Error) bool {
	switch {
	case pe.BreakerOpen, pe.Class == provision.ClassConfig, pe.Status == 401, pe.Status == 403:
		return true
	case pe.Status == 0:
		var dns *net.DNSError
		return errors.Is(pe.Err, syscall.ECONNREFUSED) || errors.Is(pe.Err, syscall.EHOSTUNREACH) ||
			errors.Is(pe.Err, syscall.ENETUNREACH) || errors.As(pe.Err, &dns)
	}
	return false
}

// stale reports whether err may come from a stale id: 404 on the object, or a target refusing a
// referenced id as an invalid value.
func stale(err error) bool {
	var pe *provision.Error
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Class == provision.ClassNotFound || pe.Status == 400 && pe.ScimType == "invalidValue"
}

func hasDelete(plan *reconcile.Plan) bool {
	for _, r := range plan.Requests {
		if r.Method == "DELETE" {
			return true
		}
	}
	return false
}

// execute sends the plan's requests in order and returns the target object's id and the body of
// the last answer that carried one (the object as the writes left it, when the target says).
func (p *Processor) execute(ctx context.Context, plan *reconcile.Plan) (string, []byte, error) {
	id := plan.ObjectID
	var last []byte
	for _, r := range plan.Requests {
		resp, err := p.target.Do(ctx, provision.Request{Method: r.Method, Path: r.Path, Body: r.Body})
		if err != nil {
			return id, nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
		}
		if resp != nil && len(resp.Body) > 0 {
			last = resp.Body
		}
		if r.Method == "POST" && id == "" && resp != nil {
			var created struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(resp.Body, &created) == nil {
				id = created.ID
			}
		}
	}
	return id, last, nil
}

// failed turns an error into a deferral or a dead letter.
func (p *Processor) failed(ctx context.Context, d *events.Delivery, stage string, err error) events.Result {
	if ctx.Err() != nil {
		return events.Result{Abandon: true}
	}
	oe := classify(err)
	out := events.Outcome{Error: oe}
	if oe.Class == "systemic" {
		// Nothing this event can fix: the target is unreachable, refuses our credentials or TLS, or
		// the breaker is open. Pause intake and probe again; no window spent, nothing dead-lettered.
		probe := p.now().Add(5 * time.Second)
		var pe *provision.Error
		if errors.As(err, &pe) && pe.RetryAfter > 5*time.Second {
			probe = p.now().Add(min(pe.RetryAfter, time.Minute))
		}
		out.Reason = fmt.Sprintf("%s failed for a cause outside the object: %s", stage, oe.Message)
		return events.Result{Pause: true, RetryAt: probe, Outcome: out}
	}
	if oe.Class != "retryable" && oe.Class != "unresolved" {
		out.Status = events.StatusDeadLettered
		out.Reason = fmt.Sprintf("%s failed permanently: %s", stage, oe.Message)
		return events.Result{Outcome: out}
	}
	if d.Attempt > p.cfg.MaxWindows {
		out.Status = events.StatusDeadLettered
		out.Error = &events.OutcomeError{Class: "exhausted", Status: oe.Status, ScimType: oe.ScimType,
			Message: fmt.Sprintf("still failing after %d sync windows: %s", p.cfg.MaxWindows, oe.Message)}
		out.Reason = out.Error.Message
		return events.Result{Outcome: out}
	}
	now := p.now()
	next := p.cfg.Windows.Next(now)
	var pe *provision.Error
	if errors.As(err, &pe) && pe.RetryAfter > 0 && now.Add(pe.RetryAfter).After(next) {
		next = now.Add(pe.RetryAfter)
	}
	out.Status = events.StatusDeferred
	out.NextAttemptAt = next.UTC()
	out.Reason = fmt.Sprintf("%s failed, deferred to the next sync window (%d of %d): %s", stage, d.Attempt, p.cfg.MaxWindows, oe.Message)
	return events.Result{Outcome: out, RetryAt: next}
}

// classify maps an error onto the outcome's error classes, in one place (STYLE.md).
func classify(err error) *events.OutcomeError {
	oe := &events.OutcomeError{Message: err.Error()}
	var unresolved *reconcile.UnresolvedReferenceError
	var pe *provision.Error
	switch {
	case errors.Is(err, reconcile.ErrInvalidChange):
		oe.Class = "invalid"
	case errors.Is(err, reconcile.ErrModel):
		oe.Class = "config"
	case errors.Is(err, reconcile.ErrObjectNotFound):
		oe.Class = "not_found"
	case errors.Is(err, reconcile.ErrTargetResponse):
		// The target answered something the model can't use (a match without an id): asking again
		// gives the same answer.
		oe.Class = "permanent"
	case errors.As(err, &unresolved):
		oe.Class = "unresolved"
	case errors.As(err, &pe) && systemic(pe):
		oe.Status, oe.ScimType = pe.Status, pe.ScimType
		oe.Class = "systemic"
	case errors.As(err, &pe):
		oe.Status, oe.ScimType = pe.Status, pe.ScimType
		switch pe.Class {
		case provision.ClassRetryable:
			oe.Class = "retryable"
		case provision.ClassConflict:
			oe.Class = "conflict"
		case provision.ClassNotFound:
			oe.Class = "not_found"
		case provision.ClassConfig:
			oe.Class = "config"
		default:
			oe.Class = "permanent"
		}
	case errors.Is(err, context.DeadlineExceeded):
		oe.Class = "retryable"
	default:
		// Unknown failures are retried in the next window rather than lost; after MaxWindows
		// windows they are dead-lettered with this message.
		oe.Class = "retryable"
	}
	return oe
}

// ReaderFor gives the planner the target's reads and nothing else: `worker plan` uses it to plan
// without writing.
func ReaderFor(t TargetReader) reconcile.Reader { return &reader{t: t} }

// reader remembers what it resolved, so that the pipeline can drop those cache entries when an id
// turns out stale.
type reader struct {
	t    TargetReader
	seen []resolution
	// fresh resolves from the target, never the cache (when the target supports it).
	fresh bool
}

type freshResolver interface {
	ResolveFresh(ctx context.Context, resource string, match []provision.Match) (id string, found bool, err error)
}

type resolution struct {
	resource string
	match    []provision.Match
	id       string
}

func (r *reader) Resolve(ctx context.Context, resource string, match []reconcile.Match) (string, bool, error) {
	pm := make([]provision.Match, len(match))
	for i, m := range match {
		pm[i] = provision.Match{Attr: m.Attr, Value: m.Value}
	}
	resolve := r.t.Resolve
	if f, ok := r.t.(freshResolver); ok && r.fresh {
		resolve = f.ResolveFresh
	}
	id, found, err := resolve(ctx, resource, pm)
	if found {
		r.seen = append(r.seen, resolution{resource: resource, match: pm, id: id})
	}
	return id, found, err
}

func (r *reader) Get(ctx context.Context, resource, id string) (map[string]any, error) {
	return r.t.Get(ctx, resource, id)
}

// resolved reports whether the last plan resolved a key.
func (r *reader) resolved() bool { return len(r.seen) > 0 }

// forget drops from f the cached resolutions of this plan whose id satisfies drop.
func (r *reader) forget(ctx context.Context, f cacheForgetter, drop func(id string) bool) {
	for _, s := range r.seen {
		if drop(s.id) {
			f.Forget(ctx, s.resource, s.match, s.id)
		}
	}
}
