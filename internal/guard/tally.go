package guard

import (
	"context"
	"maps"
	"sync"
	"time"
)

// Tally keeps how many deletes and disables each sync window has counted, in total and per
// resource. Implementations are safe for concurrent use.
type Tally interface {
	// Reserve counts one more delete or disable of resource in window, unless admit, given the
	// counts this one would reach (every resource together, and resource alone), returns a reason
	// to hold it: then nothing is counted and the reason is returned.
	Reserve(ctx context.Context, window time.Time, resource string, admit func(total, ofResource int) (held string)) (held string, err error)
	// Release gives back one count Reserve took, when the request was not sent or failed.
	Release(ctx context.Context, window time.Time, resource string) error
}

// MemoryTally is a Tally of one worker process. It keeps the two newest windows (the current one,
// and the one before for a straggler that read the clock just before the window turned).
type MemoryTally struct {
	mu      sync.Mutex
	windows map[time.Time]*windowCounts
}

type windowCounts struct {
	Total int            `json:"total"`
	Per   map[string]int `json:"per"`
}

var _ Tally = (*MemoryTally)(nil)

// NewMemoryTally returns an empty MemoryTally.
func NewMemoryTally() *MemoryTally { return &MemoryTally{windows: map[time.Time]*windowCounts{}} }

// counts returns the counts of window, creating them (and dropping all but the two newest windows).
func (t *MemoryTally) counts(window time.Time) *windowCounts {
	window = window.UTC()
	if c, ok := t.windows[window]; ok {
		return c
	}
	c := &windowCounts{Per: map[string]int{}}
	t.windows[window] = c
	dropOldWindows(t.windows)
	return c
}

// Reserve implements Tally.
func (t *MemoryTally) Reserve(_ context.Context, window time.Time, resource string, admit func(total, ofResource int) string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts(window)
	if held := admit(c.Total+1, c.Per[resource]+1); held != "" {
		return held, nil
	}
	c.Total++
	c.Per[resource]++
	return "", nil
}

// Release implements Tally. The count of a window already dropped is gone anyway.
func (t *MemoryTally) Release(_ context.Context, window time.Time, resource string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.windows[window.UTC()]
	if !ok || c.Per[resource] == 0 {
		return nil
	}
	c.Total--
	c.Per[resource]--
	return nil
}

// Counts returns what window has counted: every resource together, and per resource.
func (t *MemoryTally) Counts(window time.Time) (total int, per map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.windows[window.UTC()]
	if !ok {
		return 0, map[string]int{}
	}
	return c.Total, maps.Clone(c.Per)
}
