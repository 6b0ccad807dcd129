package inventory

import (
	"context"
	"fmt"

	"github.com/scimflow/scimflow/internal/guard"
)

var _ guard.ObjectCounter = (*Runner)(nil)

// CountObjects is the deletion guard's base for maxPercent from the last complete inventory: the
// objects of resource (Users) that the newest succeeded or baseline run read. Without such a run,
// or for a resource the inventory does not read, it answers guard.ErrCountUnknown, and the guard
// asks the target instead (guard.Counters).
func (r *Runner) CountObjects(ctx context.Context, resource string) (int, error) {
	var objects []string
	for _, sh := range r.shapes {
		if sh.resource == resource {
			objects = append(objects, sh.object)
		}
	}
	if len(objects) == 0 {
		return 0, guard.ErrCountUnknown
	}
	jobs, err := r.o.Store.Jobs(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("count %s from the last inventory: %w", resource, err)
	}
	for _, j := range jobs { // newest first
		if j.Status != StatusSucceeded && j.Status != StatusBaseline {
			continue
		}
		n := 0
		for _, o := range objects {
			n += j.Objects[o]
		}
		return n, nil
	}
	return 0, guard.ErrCountUnknown
}
