package provision

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// WatchedIDCache is the pool's key → id cache (the KV bucket of KVIDCache) with a copy in this
// process, so that an update or a membership change costs no round trip to JetStream. The copy
// is kept as current as the bucket by watching it: every write and delete any worker makes
// reaches every copy within a round trip, in revision order. An entry this process read is only
// replaced by a newer revision, so a read that crosses a watched change cannot put an older id
// back. The copy holds what this process asked for and what changed since it started, up to a
// bound; past it, it starts over.
//
// Where the copy could fall behind the bucket, it is dropped and this process reads the bucket
// again: when the watch ends, and when the NATS connection reconnected (a JetStream server that
// restarted may have lost writes the watch had shown, or the watch may resume past writes made
// while it was away). Writes go to the bucket first, as with KVIDCache, so the bucket stays the
// pool's shared memory.
type WatchedIDCache struct {
	kv     jetstream.KeyValue
	bucket *KVIDCache // the bucket's own deletes
	nc     *nats.Conn
	log    zerolog.Logger
	size   int

	mu         sync.Mutex
	watching   bool
	gen        uint64 // changes whenever the copy is dropped
	reconnects uint64
	entries    map[string]watchedEntry
	reading    map[string]int // keys with a read or write of the bucket in flight
	done       chan struct{}
	observe    func(time.Duration) // ObserveWrites
}

type watchedEntry struct {
	id    string
	rev   uint64
	gone  bool // deleted (or known absent)
	stale bool // written at rev by someone: the id is to be read from the bucket
}

// DefaultWatchedSize bounds the entries a WatchedIDCache keeps.
const DefaultWatchedSize = 200_000

// NewWatchedIDCache starts watching kv and returns the cache; it watches until ctx ends. nc, the
// connection kv uses, tells it of reconnections (nil: it cannot, and trusts the watch). size
// bounds the copy (0: DefaultWatchedSize).
func NewWatchedIDCache(ctx context.Context, kv jetstream.KeyValue, nc *nats.Conn, size int, log zerolog.Logger) (*WatchedIDCache, error) {
	if size <= 0 {
		size = DefaultWatchedSize
	}
	c := &WatchedIDCache{kv: kv, bucket: NewKVIDCache(kv, WithCacheLogger(log)), nc: nc, log: log, size: size, entries: map[string]watchedEntry{}, reading: map[string]int{}, done: make(chan struct{})}
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.watching = true
	if nc != nil {
		c.reconnects = nc.Stats().Reconnects
	}
	c.mu.Unlock()
	go c.watch(w)
	return c, nil
}

var (
	_ IDCache            = (*WatchedIDCache)(nil)
	_ conditionalDeleter = (*WatchedIDCache)(nil)
)

// ObserveWrites has f told how long each write of an id to the bucket took, until the server
// stored it (metrics). Call it before the cache is used.
func (c *WatchedIDCache) ObserveWrites(f func(time.Duration)) { c.observe = f }

// Done is closed when the watch ended (the context ended, or the subscription closed); the cache
// then reads the bucket for every lookup.
func (c *WatchedIDCache) Done() <-chan struct{} { return c.done }

func (c *WatchedIDCache) watch(w jetstream.KeyWatcher) {
	defer close(c.done)
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		// The watch carries no values (MetaOnly): a put marks what this process holds of the key
		// stale (read the bucket when it is asked for), a delete marks it gone, unless the copy
		// is as new already. Keys this process neither holds nor is reading are none of its
		// business.
		c.mu.Lock()
		c.sync()
		cur, ok := c.entries[e.Key()]
		if ok && e.Revision() > cur.rev || !ok && c.reading[e.Key()] > 0 {
			put := e.Operation() == jetstream.KeyValuePut
			c.keep(e.Key(), watchedEntry{rev: e.Revision(), stale: put, gone: !put})
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.watching = false
	c.drop()
	c.mu.Unlock()
}

// sync drops the copy when the connection reconnected since it was last checked. Callers hold mu.
func (c *WatchedIDCache) sync() {
	if c.nc == nil {
		return
	}
	if n := c.nc.Stats().Reconnects; n != c.reconnects {
		c.reconnects = n
		c.drop()
	}
}

// drop forgets the copy. Callers hold mu.
func (c *WatchedIDCache) drop() {
	clear(c.entries)
	c.gen++
}

// keep stores e under k. Callers hold mu.
func (c *WatchedIDCache) keep(k string, e watchedEntry) {
	if len(c.entries) >= c.size {
		c.drop()
	}
	c.entries[k] = e
}

// lookup is the copy's entry of k.
func (c *WatchedIDCache) lookup(k string) (watchedEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sync()
	if !c.watching {
		return watchedEntry{}, false
	}
	e, ok := c.entries[k]
	return e, ok && !e.stale
}

// begin marks a read or write of k in flight, so that the watch marks the writes of k it sees
// meanwhile, and returns the generation to learn the answer under. end unmarks it.
func (c *WatchedIDCache) begin(k string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sync()
	c.reading[k]++
	return c.gen
}

func (c *WatchedIDCache) end(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading[k]--; c.reading[k] <= 0 {
		delete(c.reading, k)
	}
}

// learn stores what the bucket answered under generation gen, unless the copy was dropped since or
// holds a newer revision.
func (c *WatchedIDCache) learn(gen uint64, k string, e watchedEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.watching || c.gen != gen {
		return
	}
	if cur, ok := c.entries[k]; ok && (e.rev < cur.rev || e.rev == cur.rev && !cur.stale) {
		return // the copy is newer, or as new
	}
	c.keep(k, e)
}

// Len is how many entries the copy holds (deleted keys included).
func (c *WatchedIDCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// read gets k from the bucket and learns the answer.
func (c *WatchedIDCache) read(ctx context.Context, resource, k string) (jetstream.KeyValueEntry, bool) {
	gen := c.begin(k)
	defer c.end(k)
	e, err := c.kv.Get(ctx, k)
	switch {
	case err == nil && len(e.Value()) > 0:
		c.learn(gen, k, watchedEntry{id: string(e.Value()), rev: e.Revision()})
		return e, true
	case err == nil || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		// Absent: remembered as absent until a write of the key is watched. A deleted key's
		// revision is not given, so the absence is revision 0: any watched write is newer.
		c.learn(gen, k, watchedEntry{gone: true})
	default:
		c.log.Warn().Err(err).Str("resource", resource).Msg("id cache read failed; resolving from the target")
	}
	return nil, false
}

// Get returns the cached id of key: from the copy when it knows the key, else from the bucket.
func (c *WatchedIDCache) Get(ctx context.Context, resource, key string) (string, bool) {
	k := kvKey(resource, key)
	if e, ok := c.lookup(k); ok {
		return e.id, !e.gone
	}
	got, found := c.read(ctx, resource, k)
	if !found {
		return "", false
	}
	return string(got.Value()), true
}

// Put records id for key, unless the copy holds it already.
func (c *WatchedIDCache) Put(ctx context.Context, resource, key, id string) {
	k := kvKey(resource, key)
	if e, ok := c.lookup(k); ok && !e.gone && e.id == id {
		return
	}
	// Unknown here (a key this process never looked up: the id of an object just created) is
	// written without reading first: the write is what the bucket would need anyway.
	gen := c.begin(k)
	defer c.end(k)
	started := time.Now()
	rev, err := c.kv.Put(ctx, k, []byte(id))
	if c.observe != nil {
		c.observe(time.Since(started))
	}
	if err != nil {
		c.log.Warn().Err(err).Str("resource", resource).Msg("id cache write failed")
		return
	}
	c.learn(gen, k, watchedEntry{id: id, rev: rev})
}

// Delete forgets key, whatever id it holds.
func (c *WatchedIDCache) Delete(ctx context.Context, resource, key string) {
	c.forget(kvKey(resource, key))
	c.bucket.Delete(ctx, resource, key)
}

// DeleteIf forgets key only while it maps to id (KVIDCache.DeleteIf); the copy forgets it at once,
// whatever the bucket decides, and reads it afresh next time.
func (c *WatchedIDCache) DeleteIf(ctx context.Context, resource, key, id string) {
	c.forget(kvKey(resource, key))
	c.bucket.DeleteIf(ctx, resource, key, id)
}

// forget drops k from the copy, so that the next lookup reads the bucket.
func (c *WatchedIDCache) forget(k string) {
	c.mu.Lock()
	delete(c.entries, k)
	c.gen++ // a read of k in flight must not store what it read before this change
	c.mu.Unlock()
}
