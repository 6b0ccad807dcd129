package provision

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// KVIDCache is an IDCache in a JetStream KV bucket shared by every worker. Keys are
// "id.<resource>.<sha256 of resource and canonical filter>", values the target's ids.
//
// Correctness under concurrent workers rests on three things. Writes are last-writer-wins, which
// is safe because an id is only ever written after the target confirmed it for that key, and
// SCIM ids are never reused: a stale entry can only point at an object that is gone (the 404
// drops it and the key is resolved again) or at the same object. Invalidation after a 404 is
// conditional (DeleteIf): it deletes the entry only at the revision that still holds the stale
// id, so a worker that saw an old id never erases the fresh one another worker just wrote.
// And the pipeline orders events per key, so two workers rarely race on one key at all.
type KVIDCache struct {
	kv  jetstream.KeyValue
	log zerolog.Logger
}

// KVIDCacheOption configures a KVIDCache.
type KVIDCacheOption func(*KVIDCache)

// WithCacheLogger logs cache failures (at warn) to log; by default they are silent misses.
func WithCacheLogger(log zerolog.Logger) KVIDCacheOption {
	return func(c *KVIDCache) { c.log = log }
}

// NewKVIDCache returns a cache over kv. The bucket's TTL and history are the caller's choice;
// one revision of history is enough.
func NewKVIDCache(kv jetstream.KeyValue, opts ...KVIDCacheOption) *KVIDCache {
	c := &KVIDCache{kv: kv, log: zerolog.Nop()}
	for _, o := range opts {
		o(c)
	}
	return c
}

var _ IDCache = (*KVIDCache)(nil)

// Get returns the cached id of key.
func (c *KVIDCache) Get(ctx context.Context, resource, key string) (string, bool) {
	e, err := c.kv.Get(ctx, kvKey(resource, key))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			c.log.Warn().Err(err).Str("resource", resource).Msg("id cache read failed; resolving from the target")
		}
		return "", false
	}
	if len(e.Value()) == 0 {
		return "", false
	}
	return string(e.Value()), true
}

// Put records id for key, unless it is already there.
func (c *KVIDCache) Put(ctx context.Context, resource, key, id string) {
	k := kvKey(resource, key)
	if e, err := c.kv.Get(ctx, k); err == nil && string(e.Value()) == id {
		return
	}
	if _, err := c.kv.Put(ctx, k, []byte(id)); err != nil {
		c.log.Warn().Err(err).Str("resource", resource).Msg("id cache write failed")
	}
}

// Delete forgets key, whatever id it holds (the object was deleted).
func (c *KVIDCache) Delete(ctx context.Context, resource, key string) {
	if err := c.kv.Delete(ctx, kvKey(resource, key)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		c.log.Warn().Err(err).Str("resource", resource).Msg("id cache delete failed")
	}
}

// DeleteIf forgets key only while it still maps to id.
func (c *KVIDCache) DeleteIf(ctx context.Context, resource, key, id string) {
	k := kvKey(resource, key)
	e, err := c.kv.Get(ctx, k)
	if err != nil || string(e.Value()) != id {
		return
	}
	err = c.kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
	if err != nil && !isWrongRevision(err) {
		c.log.Warn().Err(err).Str("resource", resource).Msg("id cache invalidation failed")
	}
}

// isWrongRevision reports a lost compare-and-set: someone wrote the key in between.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}
