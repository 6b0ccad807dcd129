package events

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StopWatch stops a key-value watch made with ctx, unless ctx has ended: the watch's subscription
// then stops itself, and a second Stop would wait on deleting the watch's consumer (five seconds
// when NATS is down, nats.go's timeout, which no context shortens).
func StopWatch(ctx context.Context, w jetstream.KeyWatcher) {
	if ctx.Err() == nil {
		_ = w.Stop()
	}
}

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
	live := map[string]bool{}
	err := lastPerKey(ctx, js, bucket, filter, func(key string, h nats.Header, _ *jetstream.MsgMetadata) {
		if kvRemoved(h) {
			delete(live, key)
		} else {
			live[key] = true
		}
	})
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(live)), nil
}

// kvRemoved says whether a key-value message with headers h removes its key: a delete or purge
// marker, or the marker the server leaves when a key's value expires.
func kvRemoved(h nats.Header) bool {
	op := h.Get("KV-Operation")
	return op == "DEL" || op == "PURGE" || h.Get(jetstream.MarkerReasonHeader) != ""
}

// lastPerKey calls f with the headers and metadata (stream sequence, time) of the last message of
// every key of the bucket matching filter, in stream order, until its consumer has nothing pending
// (so a key written meanwhile is seen again, with its later message).
func lastPerKey(ctx context.Context, js jetstream.JetStream, bucket, filter string, f func(key string, h nats.Header, md *jetstream.MsgMetadata)) error {
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
		return fmt.Errorf("list the keys of %s: %w", bucket, err)
	}
	info := cons.CachedInfo()
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = js.DeleteConsumer(dctx, stream, info.Name)
	}()
	empty := 0
	for pending := info.NumPending; pending > 0; {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("list the keys of %s: %w", bucket, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("list the keys of %s: %w", bucket, err)
			}
			pending = md.NumPending
			if key, ok := strings.CutPrefix(m.Subject(), prefix); ok {
				f(key, m.Headers(), md)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("list the keys of %s: %w", bucket, err)
		}
		if got > 0 {
			empty = 0
			continue
		}
		// Nothing delivered: what was pending may have expired meanwhile (a pool member's entry
		// that was not renewed), which the count taken from the last message delivered still
		// includes. The consumer's own count is current.
		if ci, err := cons.Info(ctx); err == nil && ci.NumPending < pending {
			pending = ci.NumPending
			continue
		}
		if empty++; empty > 20 {
			return fmt.Errorf("list the keys of %s: %d keys pending, none delivered", bucket, pending)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("list the keys of %s: %w", bucket, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
