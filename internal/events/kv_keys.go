package events

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KVKeys lists the keys of the key-value bucket that hold a value and match filter (a key pattern
// such as "k.3.>", or ">" for every key), sorted. It reads the last message of each key with a
// consumer of its own and stops only once that consumer has nothing pending: a key written while
// it lists is read again, never in place of another.
//
// KeyValue.ListKeys is not used for anything a decision rests on: it stops once it has been
// delivered as many messages as were pending when it started, so a key written again while it
// lists is counted twice and another key is left out. Under one writer updating ten of 200 keys,
// 23 of 50 of its listings were one key short. Found by the chaos suite: a worker opened a
// partition without one of its parked keys and ran the key's next events ahead of its parked
// ones (the pool's own listing, rewritten by every member every second, could leave out a live
// member, and with it the member's claims).
func KVKeys(ctx context.Context, js jetstream.JetStream, bucket, filter string) ([]string, error) {
	stream, prefix := "KV_"+bucket, "$KV."+bucket+"."
	cons, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		FilterSubject:     prefix + filter,
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		HeadersOnly:       true,
		MemoryStorage:     true,
		InactiveThreshold: time.Minute, // gone by itself should the delete below fail
	})
	if err != nil {
		return nil, fmt.Errorf("list the keys of %s: %w", bucket, err)
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, info.Name)
	}()
	live := map[string]bool{}
	empty := 0
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, fmt.Errorf("list the keys of %s: %w", bucket, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			key, ok := strings.CutPrefix(m.Subject(), prefix)
			if !ok {
				continue
			}
			h := m.Headers()
			if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" || h.Get(jetstream.MarkerReasonHeader) != "" {
				delete(live, key)
			} else {
				live[key] = true
			}
			if md, err := m.Metadata(); err == nil {
				pending = md.NumPending
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("list the keys of %s: %w", bucket, err)
		}
		if got > 0 {
			empty = 0
			continue
		}
		if empty++; empty > 20 {
			return nil, fmt.Errorf("list the keys of %s: %d keys pending, none delivered", bucket, pending)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list the keys of %s: %w", bucket, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return slices.Sorted(maps.Keys(live)), nil
}
