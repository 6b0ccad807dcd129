package pipeline

import (
	"context"
	"maps"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// Applied is one write of ours that succeeded: the key it concerned (the new key after a rename),
// the event, and the object as the target answered it.
type Applied struct {
	Object    string
	Key       map[string]any
	EventID   string
	Operation string
	TargetID  string
	// Deleted: the write deleted the object.
	Deleted bool
	// Resource is the body of the last answer that carried one (the object after the write), or
	// nil (204).
	Resource []byte
	// Attributes are the event's values, by data-model property name.
	Attributes map[string]any
}

// AppliedRecorder is told of every successful write (Config.Applied). It must not block for
// long and reports its own failures: the event's outcome does not depend on it.
type AppliedRecorder interface {
	RecordApplied(ctx context.Context, a Applied)
}

func (p *Processor) recordApplied(ctx context.Context, d *events.Delivery, ch reconcile.Change, plan *reconcile.Plan, targetID string, body []byte) {
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
	p.cfg.Applied.RecordApplied(ctx, Applied{
		Object: ch.Object, Key: key, EventID: d.Event.ID, Operation: string(ch.Operation),
		TargetID: targetID, Deleted: hasDelete(plan), Resource: body, Attributes: attrs,
	})
}
