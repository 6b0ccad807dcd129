package guard

import (
	"context"
	"errors"
	"fmt"

	"github.com/scimflow/scimflow/internal/provision"
)

// ObjectCounter says how many objects of a resource (Users) the target holds: the base of
// Config.MaxPercent. The Guard asks once per window and resource, and keeps the answer for the
// window.
type ObjectCounter interface {
	CountObjects(ctx context.Context, resource string) (int, error)
}

// ErrCountUnknown is what an ObjectCounter answers when it has no count (no inventory yet):
// Counters then asks the next one.
var ErrCountUnknown = errors.New("object count unknown")

// Counters asks each counter in turn and answers with the first that knows: typically the last
// inventory's counts, then a count query on the target.
type Counters []ObjectCounter

var _ ObjectCounter = Counters(nil)

// CountObjects implements ObjectCounter.
func (cs Counters) CountObjects(ctx context.Context, resource string) (int, error) {
	for _, c := range cs {
		n, err := c.CountObjects(ctx, resource)
		if !errors.Is(err, ErrCountUnknown) {
			return n, err
		}
	}
	return 0, fmt.Errorf("count %s: %w", resource, ErrCountUnknown)
}

// CounterFunc adapts a function to ObjectCounter (e.g. a lookup in the last inventory that answers
// ErrCountUnknown when there is none).
type CounterFunc func(ctx context.Context, resource string) (int, error)

// CountObjects implements ObjectCounter.
func (f CounterFunc) CountObjects(ctx context.Context, resource string) (int, error) {
	return f(ctx, resource)
}

// Lister reads one page of a resource; *provision.Client implements it.
type Lister interface {
	List(ctx context.Context, resource string, startIndex, count int) (*provision.ListPage, error)
}

var _ Lister = (*provision.Client)(nil)

// QueryCounter counts with one query on the target: GET {resource}?startIndex=1&count=1, reading
// totalResults (RFC 7644 §3.4.2). It keeps nothing: the Guard keeps the count for the window.
type QueryCounter struct {
	Target Lister
}

var _ ObjectCounter = QueryCounter{}

// CountObjects implements ObjectCounter.
func (q QueryCounter) CountObjects(ctx context.Context, resource string) (int, error) {
	page, err := q.Target.List(ctx, resource, 1, 1)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", resource, err)
	}
	return page.TotalResults, nil
}
