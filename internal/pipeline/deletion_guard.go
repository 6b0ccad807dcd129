package pipeline

import (
	"context"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// DeletionGuard is the part of the deletion guard the pipeline uses.
type DeletionGuard interface {
	Protected(ch guard.Change) (reason string, protected bool)
	Check(ctx context.Context, ch guard.Change) (guard.Decision, error)
}

var _ DeletionGuard = (*guard.Guard)(nil)

// ClassHeldDelete is the error class of the outcome of an event the deletion guard holds.
const ClassHeldDelete = "held_delete"

// guardChange is what the deletion guard looks at.
func (p *Processor) guardChange(d *events.Delivery, ch reconcile.Change, plan *reconcile.Plan) guard.Change {
	return guard.Change{
		Object: ch.Object, Operation: ch.Operation, Key: ch.Key, Attributes: ch.Attributes, Plan: plan,
		Window:   guard.WindowOf(p.cfg.Windows, p.now()),
		Approved: p.cfg.Approved != nil && p.cfg.Approved(d),
	}
}

// protected rejects, before any request, a delete or disable of a protected object.
func (p *Processor) protected(d *events.Delivery, ch reconcile.Change) (events.Result, bool) {
	if p.cfg.Guard == nil {
		return events.Result{}, false
	}
	reason, ok := p.cfg.Guard.Protected(p.guardChange(d, ch, nil))
	if !ok {
		return events.Result{}, false
	}
	return events.Result{Outcome: events.Outcome{Status: events.StatusRejected, Reason: reason}}, true
}

// guard asks the deletion guard about a plan about to be sent: allowed (with the count to give back
// if the requests fail), or the held or rejected result to return instead.
func (p *Processor) guard(ctx context.Context, d *events.Delivery, ch reconcile.Change, plan *reconcile.Plan) (guard.Decision, events.Result, bool) {
	if p.cfg.Guard == nil {
		return guard.Decision{}, events.Result{}, false
	}
	dec, err := p.cfg.Guard.Check(ctx, p.guardChange(d, ch, plan))
	if err != nil {
		return dec, p.failed(ctx, d, "deletion guard", err), true
	}
	switch dec.Verdict {
	case guard.Hold:
		return dec, events.Result{Outcome: events.Outcome{
			Status: events.StatusHeld, TargetID: plan.ObjectID, Reason: dec.Reason,
			Error: &events.OutcomeError{Class: ClassHeldDelete, Message: dec.Reason},
		}}, true
	case guard.Reject:
		return dec, events.Result{Outcome: events.Outcome{
			Status: events.StatusRejected, TargetID: plan.ObjectID, Reason: dec.Reason,
		}}, true
	}
	return dec, events.Result{}, false
}
