package pipeline

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// Applied is one write of ours that succeeded: the key it concerned (the new key after a rename),
// the event, and the object as the target answered it.
type Applied struct {
	Object    string
	Key       map[string]any
	EventID   string
	StreamSeq uint64 // the event's sequence in the events stream
	Operation string
	TargetID  string
	// Deleted: the write deleted the object.
	Deleted bool
	// Resource is the body of the last answer that carried one (the object after the write), or
	// nil (204).
	Resource []byte
	// Attributes are the event's values, by data-model property name.
	Attributes map[string]any
	// Partial: the event is not finished; a follow-up (references set once their objects exist)
	// is still to be written.
	Partial bool
}

// AppliedRecorder is told of every successful write (Config.Applied). It must not block for
// long and reports its own failures: the event's outcome does not depend on it.
type AppliedRecorder interface {
	RecordApplied(ctx context.Context, a Applied)
}

// LastApplied is the latest write of ours to one key, as an AppliedReader knows it.
type LastApplied struct {
	EventID   string
	StreamSeq uint64
	Partial   bool      // a follow-up of the event was still to be written
	At        time.Time // when it was recorded
}

// AppliedReader, when the AppliedRecorder is one too, answers what was last applied to a key: a
// redelivered event older than that is not applied again (superseded).
type AppliedReader interface {
	LastApplied(ctx context.Context, object string, key map[string]any) (*LastApplied, error)
}

// superseded stops a redelivered event when a later event of its key was applied already: the
// event was finished before (its acknowledgement was lost: a worker killed in between, a JetStream
// server that restarted from an older consumer state) and running it again would undo its
// successors. Only redeliveries pay the lookup. A record older than the event is not evidence (a
// stream created again numbers from 1).
func (p *Processor) superseded(ctx context.Context, d *events.Delivery, ch reconcile.Change) (events.Result, bool) {
	r, ok := p.cfg.Applied.(AppliedReader)
	if !ok || !d.Redelivered || d.StreamSeq == 0 || d.Stored.IsZero() {
		return events.Result{}, false
	}
	last, err := r.LastApplied(ctx, ch.Object, ch.Key)
	if err != nil {
		events.LogEvent(p.log.Warn().Err(err), d.Event).Msg("reading what was last applied to the key; processing the event")
		return events.Result{}, false
	}
	if last == nil || last.StreamSeq < d.StreamSeq || !last.At.After(d.Stored) {
		return events.Result{}, false
	}
	if last.StreamSeq == d.StreamSeq {
		if last.EventID != d.Event.ID || last.Partial {
			return events.Result{}, false
		}
		// This very event was applied whole by an earlier delivery whose acknowledgement was lost.
		// Its successors may have reached the target since without being recorded (their worker
		// lost JetStream, then died): sending it again would put its older values back over theirs.
		return events.Result{Outcome: events.Outcome{
			Status: events.StatusSucceeded,
			Reason: fmt.Sprintf("applied at %s by an earlier delivery whose acknowledgement was lost; not sent again",
				last.At.UTC().Format(time.RFC3339)),
		}}, true
	}
	return events.Result{Outcome: events.Outcome{
		Status: events.StatusSkipped,
		Reason: fmt.Sprintf("superseded: event %s (sequence %d), later in this key's order, was applied at %s; this delivery of an earlier event is not applied again",
			last.EventID, last.StreamSeq, last.At.UTC().Format(time.RFC3339)),
	}}, true
}

func (p *Processor) recordApplied(ctx context.Context, st *progress, d *events.Delivery, ch reconcile.Change, plan *reconcile.Plan, targetID string, body []byte, partial bool) {
	if p.cfg.Applied == nil {
		return
	}
	key := ch.Key
	if plan.Rekey != nil {
		// A rename: the object is known by its new key from now on.
		key = maps.Clone(ch.Key)
		for k := range key {
			if v, ok := ch.Attributes[k]; ok {
				key[k] = v
			}
		}
	}
	attrs := maps.Clone(ch.Attributes)
	for k := range ch.Key {
		delete(attrs, k)
	}
	p.startRecord(ctx, st, Applied{
		Object: ch.Object, Key: key, EventID: d.Event.ID, StreamSeq: d.StreamSeq, Operation: string(ch.Operation),
		TargetID: targetID, Deleted: hasDelete(plan) || plan.Absent, Resource: body, Attributes: attrs, Partial: partial,
	})
}

// recordWriteTimeout bounds an applied record's write that runs beside the outcome's publication.
const recordWriteTimeout = 30 * time.Second

// startRecord writes a record while the outcome is published: the event's Result carries a Settle
// that waits for it, which the consumer calls before it acknowledges the event, so a crash before
// the record is stored redelivers the event (see recordFound). The writes of one event go one
// after the other: each waits for the one before.
func (p *Processor) startRecord(ctx context.Context, st *progress, a Applied) {
	st.record = writeBeside(ctx, st.record, func(wctx context.Context) { p.cfg.Applied.RecordApplied(wctx, a) })
}

// writeBeside starts write once the write before it (prev, nil for none) is done, and returns
// what is closed when it is done. The write outlives Handle but not the work: a worker's drain
// deadline cancels it as it cancels the event's other requests (the event, not acknowledged,
// comes back).
func writeBeside(ctx context.Context, prev chan struct{}, write func(context.Context)) chan struct{} {
	if prev != nil {
		<-prev
	}
	done := make(chan struct{})
	wctx, cancel := context.WithTimeout(ctx, recordWriteTimeout)
	go func() {
		defer close(done)
		defer cancel()
		write(wctx)
	}()
	return done
}

// recordFound records, for a redelivered event that finds the target already as it asks (a
// delete of an absent object, a reconciled update that would change nothing), what the target
// holds: the event's earlier run may have written it and stopped before its record was stored
// (the record is written beside the outcome). Without it, an inventory would report that run's
// own change as drift.
func (p *Processor) recordFound(ctx context.Context, st *progress, d *events.Delivery, ch reconcile.Change, plan *reconcile.Plan) {
	if !d.Redelivered && d.Attempt <= 1 || st.sent || !plan.Absent && len(plan.Current) == 0 || len(plan.Unresolved) > 0 {
		return
	}
	p.recordApplied(ctx, st, d, ch, plan, plan.ObjectID, plan.Current, false)
}
