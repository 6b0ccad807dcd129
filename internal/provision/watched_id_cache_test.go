package provision

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// watchedWorkers starts a JetStream server and returns n WatchedIDCaches over one bucket, each on
// its own connection (a worker each), with the connections.
func watchedWorkers(t *testing.T, n int) ([]*WatchedIDCache, []*nats.Conn) {
	t.Helper()
	connect := mustBucket(t)
	var caches []*WatchedIDCache
	var conns []*nats.Conn
	for range n {
		kv, nc := connect()
		c, err := NewWatchedIDCache(t.Context(), kv, nc, 0, zerolog.Nop())
		require.NoError(t, err)
		caches, conns = append(caches, c), append(conns, nc)
	}
	return caches, conns
}

// A worker answers the ids it knows without a round trip, and follows what another worker changes:
// a rename on worker a (the old key dropped, the id under the new key) reaches worker b, whose
// copy then never gives the old key the renamed person's id (issue 7's wrong-user delete).
func TestWatchedIDCacheFollowsAnotherWorker(t *testing.T) {
	t.Parallel()
	caches, conns := watchedWorkers(t, 2)
	a, b := caches[0], caches[1]
	ctx := t.Context()
	old := CacheKey([]Match{{"userName", "ren.old@example.com"}})
	renamed := CacheKey([]Match{{"userName", "ren.new@example.com"}})

	a.Put(ctx, "Users", old, "id-1")
	id, ok := b.Get(ctx, "Users", old)
	require.True(t, ok)
	require.Equal(t, "id-1", id)
	sent := conns[1].Stats().OutMsgs
	for range 50 {
		id, ok = b.Get(ctx, "Users", old)
		require.True(t, ok)
		require.Equal(t, "id-1", id)
	}
	assert.Equal(t, sent, conns[1].Stats().OutMsgs, "answered from memory: nothing sent to JetStream")

	// The rename, as the pipeline's rekey does it.
	a.DeleteIf(ctx, "Users", old, "id-1")
	a.Put(ctx, "Users", renamed, "id-1")
	require.Eventually(t, func() bool { _, ok := b.Get(ctx, "Users", old); return !ok }, 5*time.Second, time.Millisecond,
		"the old key no longer resolves on the other worker")
	id, ok = b.Get(ctx, "Users", renamed)
	require.True(t, ok)
	assert.Equal(t, "id-1", id)

	// A new person takes the old name: the other worker learns the new id.
	a.Put(ctx, "Users", old, "id-3")
	require.Eventually(t, func() bool { id, _ := b.Get(ctx, "Users", old); return id == "id-3" }, 5*time.Second, time.Millisecond)
	// And its own writes are answered from memory.
	sent = conns[0].Stats().OutMsgs
	id, ok = a.Get(ctx, "Users", old)
	assert.True(t, ok)
	assert.Equal(t, "id-3", id)
	assert.Equal(t, sent, conns[0].Stats().OutMsgs)
}

// A read that crosses a change made elsewhere cannot put the older id back: once the watch showed
// a newer revision, what the read saw is not kept and the next lookup reads the bucket.
func TestWatchedIDCacheKeepsNoOlderRead(t *testing.T) {
	t.Parallel()
	caches, _ := watchedWorkers(t, 2)
	a, b := caches[0], caches[1]
	ctx := t.Context()
	key := CacheKey([]Match{{"userName", "ada@example.com"}})
	a.Put(ctx, "Users", key, "id-1")
	gen := b.begin(kvKey("Users", key)) // b's read of the bucket is in flight
	a.Put(ctx, "Users", key, "id-2")    // meanwhile, on worker a
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		e := b.entries[kvKey("Users", key)]
		return e.stale && e.rev == 2
	}, 5*time.Second, time.Millisecond, "the watch marks the key written at revision 2")
	b.learn(gen, kvKey("Users", key), watchedEntry{id: "id-1", rev: 1}) // the read from before, arriving late
	b.end(kvKey("Users", key))
	id, ok := b.Get(ctx, "Users", key)
	require.True(t, ok)
	assert.Equal(t, "id-2", id)
}

// After the connection reconnected, the copy is dropped: writes made while the watch was away, or
// lost by a JetStream server that restarted, must not be answered from memory.
func TestWatchedIDCacheDropsItsCopyOnReconnect(t *testing.T) {
	t.Parallel()
	caches, conns := watchedWorkers(t, 1)
	c, nc := caches[0], conns[0]
	ctx := t.Context()
	key := CacheKey([]Match{{"userName", "ada@example.com"}})
	c.Put(ctx, "Users", key, "id-1")
	require.Equal(t, 1, c.Len())
	require.NoError(t, nc.ForceReconnect())
	require.Eventually(t, func() bool { return nc.Stats().Reconnects == 1 && nc.IsConnected() }, 5*time.Second, time.Millisecond)
	sent := nc.Stats().OutMsgs
	id, ok := c.Get(ctx, "Users", key)
	require.True(t, ok)
	assert.Equal(t, "id-1", id)
	assert.Greater(t, nc.Stats().OutMsgs, sent, "read from the bucket again")
}

// The copy holds only what this worker asked for or wrote: writes the watch shows of other keys
// leave no trace in it.
func TestWatchedIDCacheHoldsOnlyWhatItUses(t *testing.T) {
	t.Parallel()
	caches, _ := watchedWorkers(t, 2)
	a, b := caches[0], caches[1]
	ctx := t.Context()
	for i := range 50 {
		a.Put(ctx, "Users", CacheKey([]Match{{"userName", fmt.Sprintf("u%d@example.com", i)}}), fmt.Sprintf("id-%d", i))
	}
	mine := CacheKey([]Match{{"userName", "u7@example.com"}})
	id, ok := b.Get(ctx, "Users", mine)
	require.True(t, ok)
	assert.Equal(t, "id-7", id)
	a.Put(ctx, "Users", CacheKey([]Match{{"userName", "last@example.com"}}), "id-last")
	a.Put(ctx, "Users", mine, "id-7b")
	require.Eventually(t, func() bool { id, _ := b.Get(ctx, "Users", mine); return id == "id-7b" }, 5*time.Second, time.Millisecond)
	assert.Equal(t, 1, b.Len(), "worker b holds the one key it used")
	assert.Equal(t, 51, a.Len(), "worker a holds the 51 keys it wrote")
}
