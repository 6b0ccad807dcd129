package provision

import (
	"context"
	"sync"
	"time"
)

// Call is one HTTP attempt made for a traced context. It never holds bodies or headers. Query is
// kept apart from Path because filters hold key values: outcome events carry Path only, while
// `worker plan` shows the whole request.
type Call struct {
	Method   string
	Path     string // relative to the entity or query base, without the query string
	Query    string // the raw query string, e.g. filter=userName%20eq%20%22x%22
	Status   int    // 0 when no answer arrived
	Duration time.Duration
	Attempt  int    // 1 for the first attempt of a call, 2 for its first retry...
	Err      string // the failure, when the attempt failed
}

// Trace collects the Calls made with a context. It is safe for concurrent use.
type Trace struct {
	mu    sync.Mutex
	calls []Call
}

type traceKey struct{}

// WithTrace returns a context whose SCIM calls are recorded in the returned Trace.
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := &Trace{}
	return context.WithValue(ctx, traceKey{}, t), t
}

// Calls returns a copy of the calls recorded so far, in the order they finished.
func (t *Trace) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Call(nil), t.calls...)
}

func (t *Trace) add(c Call) {
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
}

func traceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}
