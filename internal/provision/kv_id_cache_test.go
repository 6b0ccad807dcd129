package provision

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mustKV starts an embedded JetStream server and returns a fresh KV bucket on a new connection
// per call of connect.
func mustKV(t *testing.T) func() jetstream.KeyValue {
	t.Helper()
	connect := mustBucket(t)
	return func() jetstream.KeyValue {
		kv, _ := connect()
		return kv
	}
}

// mustBucket starts an embedded JetStream server and returns, per call of connect, the id cache's
// bucket on a new connection (a worker each) and the connection.
func mustBucket(t *testing.T) (connect func() (jetstream.KeyValue, *nats.Conn)) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return func() (jetstream.KeyValue, *nats.Conn) {
		nc, err := nats.Connect(srv.ClientURL())
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		kv, err := js.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "scimflow_ids"})
		require.NoError(t, err)
		return kv, nc
	}
}

func TestKVIDCache(t *testing.T) {
	t.Parallel()
	connect := mustKV(t)
	ctx := t.Context()
	a, b := NewKVIDCache(connect()), NewKVIDCache(connect()) // two workers
	key := CacheKey([]Match{{"userName", `o"brien é`}})

	_, ok := a.Get(ctx, "Users", key)
	assert.False(t, ok)
	a.Put(ctx, "Users", key, "id-1")
	id, ok := b.Get(ctx, "Users", key)
	require.True(t, ok, "shared between workers")
	assert.Equal(t, "id-1", id)

	// Worker b replaces the object (id-2); worker a then sees id-1 answer 404 and invalidates
	// conditionally: b's fresh id survives.
	b.Put(ctx, "Users", key, "id-2")
	a.DeleteIf(ctx, "Users", key, "id-1")
	id, ok = a.Get(ctx, "Users", key)
	require.True(t, ok)
	assert.Equal(t, "id-2", id)

	// Invalidating the id it holds removes it.
	a.DeleteIf(ctx, "Users", key, "id-2")
	_, ok = b.Get(ctx, "Users", key)
	assert.False(t, ok)

	// Put again after a delete, unconditional Delete, and a resource name that is no NATS token.
	a.Put(ctx, "Users", key, "id-3")
	a.Delete(ctx, "Users", key)
	_, ok = a.Get(ctx, "Users", key)
	assert.False(t, ok)
	a.Put(ctx, "Odd Resource.*>", key, "id-4")
	id, ok = b.Get(ctx, "Odd Resource.*>", key)
	require.True(t, ok)
	assert.Equal(t, "id-4", id)
	_, ok = b.Get(ctx, "Users", key)
	assert.False(t, ok, "resources do not share keys")
}

func TestKVIDCacheConcurrentWriters(t *testing.T) {
	t.Parallel()
	connect := mustKV(t)
	caches := []*KVIDCache{NewKVIDCache(connect()), NewKVIDCache(connect()), NewKVIDCache(connect())}
	var wg sync.WaitGroup
	for i, c := range caches {
		wg.Go(func() {
			for range 50 {
				c.Put(context.Background(), "Users", "k", "fresh")
				c.DeleteIf(context.Background(), "Users", "k", "stale")
				if i == 0 {
					c.Put(context.Background(), "Users", "k", "stale")
					c.DeleteIf(context.Background(), "Users", "k", "stale")
				}
			}
		})
	}
	wg.Wait()
	caches[0].Put(context.Background(), "Users", "k", "fresh")
	for range 20 {
		caches[1].DeleteIf(context.Background(), "Users", "k", "stale")
	}
	id, ok := caches[2].Get(context.Background(), "Users", "k")
	require.True(t, ok)
	assert.Equal(t, "fresh", id, "a stale invalidation never removes a fresh id")
}

func TestKVIDCacheWithClient(t *testing.T) {
	t.Parallel()
	connect := mustKV(t)
	st := startTarget(t, ProfileCyberArk, nil)
	cfg := st.config()
	cfg.IDCache = NewKVIDCache(connect())
	c := newClient(t, cfg)
	key := []Match{{"userName", "kv@example.com"}}
	first := createUser(t, c, "kv@example.com")
	id, found, err := c.Resolve(t.Context(), "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, first, id)

	// A second worker resolves from the cache without asking the target.
	cfg2 := st.config()
	cfg2.IDCache = NewKVIDCache(connect())
	c2 := newClient(t, cfg2)
	before := st.sim.Stats().Requests["GET /scim/v2/Users"]
	id, found, err = c2.Resolve(t.Context(), "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, first, id)
	assert.Equal(t, before, st.sim.Stats().Requests["GET /scim/v2/Users"])

	// Recreated elsewhere: worker 2's update hits 404, re-resolves and succeeds.
	_, err = c.Do(t.Context(), Request{Method: http.MethodDelete, Path: ResourcePath("Users", first)})
	require.NoError(t, err)
	second := createUser(t, c, "kv@example.com")
	got, err := c2.ByKey(t.Context(), "Users", key, func(ctx context.Context, id string) error {
		_, err := c2.Do(ctx, Request{Method: http.MethodPatch, Path: ResourcePath("Users", id), Body: []byte(
			`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"CTO"}]}`)})
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, second, got)
	id, _, _ = c.Resolve(t.Context(), "Users", key)
	assert.Equal(t, second, id, "worker 1 sees the fresh id too")
}
