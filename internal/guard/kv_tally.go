package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVTally is a Tally shared by every replica of the worker through a JetStream key-value bucket, so
// that the limits hold for the pool as a whole, not per replica. Each window is one key whose
// value holds the window's counts, changed by compare-and-set on its revision: two replicas
// counting at once cannot both take the last slot.
type KVTally struct {
	kv jetstream.KeyValue
}

var _ Tally = (*KVTally)(nil)

// KVTallyBucket is the default bucket of the shared counts.
const KVTallyBucket = "scimflow-deletion-guard"

// KVTallyConfig is the bucket's configuration: one revision per key, and counts that expire a week
// after their window's last change (a window's counts matter only during the window).
func KVTallyConfig(bucket string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "scimflow deletion guard: deletes and disables counted per sync window",
		History:     1,
		TTL:         7 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// NewKVTally returns a Tally kept in kv (a bucket of KVTallyConfig).
func NewKVTally(kv jetstream.KeyValue) *KVTally { return &KVTally{kv: kv} }

func windowKey(window time.Time) string {
	return "window." + strconv.FormatInt(window.UTC().UnixNano(), 10)
}

// maxCASAttempts bounds the compare-and-set retries of one change; each retry means another
// replica or lane changed the counts meanwhile, so it only runs out under absurd contention.
const maxCASAttempts = 1000

// update applies change to the counts of window by compare-and-set until it holds; change returns
// false to leave the counts as they are.
func (t *KVTally) update(ctx context.Context, window time.Time, change func(*windowCounts) bool) error {
	key := windowKey(window)
	for range maxCASAttempts {
		var c windowCounts
		var rev uint64
		e, err := t.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		default:
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			rev = e.Revision()
		}
		if c.Per == nil {
			c.Per = map[string]int{}
		}
		if !change(&c) {
			return nil
		}
		b, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = t.kv.Create(ctx, key, b)
		} else {
			_, err = t.kv.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // changed meanwhile: read again
		default:
			return fmt.Errorf("write %s: %w", key, err)
		}
	}
	return fmt.Errorf("write %s: still contended after %d attempts", key, maxCASAttempts)
}

// Reserve implements Tally.
func (t *KVTally) Reserve(ctx context.Context, window time.Time, resource string, admit func(total, ofResource int) string) (string, error) {
	var held string
	err := t.update(ctx, window, func(c *windowCounts) bool {
		if held = admit(c.Total+1, c.Per[resource]+1); held != "" {
			return false
		}
		c.Total++
		c.Per[resource]++
		return true
	})
	if err != nil {
		return "", err
	}
	return held, nil
}

// Release implements Tally.
func (t *KVTally) Release(ctx context.Context, window time.Time, resource string) error {
	return t.update(ctx, window, func(c *windowCounts) bool {
		if c.Per[resource] == 0 {
			return false
		}
		c.Total--
		c.Per[resource]--
		return true
	})
}

// Counts returns what window has counted: every resource together, and per resource.
func (t *KVTally) Counts(ctx context.Context, window time.Time) (total int, per map[string]int, err error) {
	var c windowCounts
	err = t.update(ctx, window, func(got *windowCounts) bool { c = *got; return false })
	if c.Per == nil {
		c.Per = map[string]int{}
	}
	return c.Total, c.Per, err
}
