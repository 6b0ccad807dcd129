package provision

import (
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// cachedTarget is a client of the simulator (cyberark profile) with an id cache in a KV bucket of an
// embedded JetStream server, and a counter of the lookups the target answered.
func cachedTarget(t *testing.T) (c *Client, lookups func() int) {
	t.Helper()
	ns := natstest.MustStart(t)
	kv, err := ns.JS.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: "scimflow_ids"})
	require.NoError(t, err)
	st := startTarget(t, ProfileCyberArk, nil)
	cfg := st.config()
	cfg.IDCache = NewKVIDCache(kv)
	return newClient(t, cfg), func() int { return st.sim.Stats().Requests["GET /scim/v2/Users"] }
}

func TestRememberThenResolveNeedsNoQuery(t *testing.T) {
	t.Parallel()
	c, lookups := cachedTarget(t)
	ctx := t.Context()
	key := []Match{{"userName", "new.hire@example.com"}}
	id := createUser(t, c, "new.hire@example.com")

	c.Remember(ctx, "Users", key, id)
	before := lookups()
	got, found, err := c.Resolve(ctx, "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
	assert.Equal(t, before, lookups(), "Resolve answered from what Remember stored")

	// Remember ignores what it can't store or what Resolve would refuse.
	c.Remember(ctx, "Users", []Match{{"userName", "nobody@example.com"}}, "")
	c.Remember(ctx, "Users", []Match{{"user Name", "x"}}, "u1")
	c.Remember(ctx, "Users", nil, "u1")
	_, found, err = c.Resolve(ctx, "Users", []Match{{"userName", "nobody@example.com"}})
	require.NoError(t, err)
	assert.False(t, found)
	assert.Equal(t, before+1, lookups())
}

// TestRenameMovesTheCacheEntry is issue 7 item 1 at the connector: after userName changes, the old
// key must not resolve to the renamed object any more, and the new key resolves without a query.
func TestRenameMovesTheCacheEntry(t *testing.T) {
	t.Parallel()
	c, lookups := cachedTarget(t)
	ctx := t.Context()
	oldKey, newKey := []Match{{"userName", "ren.old@example.com"}}, []Match{{"userName", "ren.new@example.com"}}
	id := createUser(t, c, "ren.old@example.com")
	got, found, err := c.Resolve(ctx, "Users", oldKey) // cached
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, id, got)
	_, err = c.Do(ctx, Request{Method: http.MethodPatch, Path: ResourcePath("Users", id), Body: []byte(
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"ren.new@example.com"}]}`)})
	require.NoError(t, err)

	c.Forget(ctx, "Users", oldKey, id)
	c.Remember(ctx, "Users", newKey, id)
	before := lookups()
	got, found, err = c.Resolve(ctx, "Users", newKey)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
	assert.Equal(t, before, lookups())
	_, found, err = c.Resolve(ctx, "Users", oldKey)
	require.NoError(t, err)
	assert.False(t, found, "the old key no longer names the renamed user")
}

func TestResolveFresh(t *testing.T) {
	t.Parallel()
	c, lookups := cachedTarget(t)
	ctx := t.Context()
	key := []Match{{"userName", "fresh@example.com"}}
	id := createUser(t, c, "fresh@example.com")

	t.Run("queries the target even with a cached entry", func(t *testing.T) {
		c.Remember(ctx, "Users", key, id)
		before := lookups()
		got, found, err := c.ResolveFresh(ctx, "Users", key)
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, id, got)
		assert.Equal(t, before+1, lookups())
	})
	t.Run("corrects a stale entry", func(t *testing.T) {
		c.Remember(ctx, "Users", key, "stale-id")
		got, _, err := c.Resolve(ctx, "Users", key)
		require.NoError(t, err)
		require.Equal(t, "stale-id", got, "precondition: Resolve trusts the cache")
		got, found, err := c.ResolveFresh(ctx, "Users", key)
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, id, got)
		before := lookups()
		got, _, err = c.Resolve(ctx, "Users", key)
		require.NoError(t, err)
		assert.Equal(t, id, got, "the cache now holds the fresh id")
		assert.Equal(t, before, lookups())
	})
	t.Run("drops the entry of an object that is gone", func(t *testing.T) {
		_, err := c.Do(ctx, Request{Method: http.MethodDelete, Path: ResourcePath("Users", id)})
		require.NoError(t, err)
		_, found, err := c.ResolveFresh(ctx, "Users", key)
		require.NoError(t, err)
		assert.False(t, found)
		before := lookups()
		_, found, err = c.Resolve(ctx, "Users", key)
		require.NoError(t, err)
		assert.False(t, found, "no stale id left in the cache")
		assert.Equal(t, before+1, lookups())
	})
	t.Run("refuses a lookup it can't send", func(t *testing.T) {
		_, _, err := c.ResolveFresh(ctx, "Users", []Match{{"user name", "x"}})
		requireClass(t, err, ClassConfig)
	})
}

func TestRememberAndResolveFreshWithoutCache(t *testing.T) {
	t.Parallel()
	st := startTarget(t, ProfileCyberArk, nil)
	c := newClient(t, st.config())
	ctx := t.Context()
	key := []Match{{"userName", "nocache@example.com"}}
	id := createUser(t, c, "nocache@example.com")
	c.Remember(ctx, "Users", key, "whatever") // nowhere to store it
	got, found, err := c.Resolve(ctx, "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
	got, found, err = c.ResolveFresh(ctx, "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
}
