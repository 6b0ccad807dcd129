package main

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// The id cache's bucket is a key-value bucket like any other (one value per key, read directly),
// persisted asynchronously on one server; opening it again changes nothing, and a bucket created
// before (with the server's default persistence) keeps its mode and its values.
func TestIDCacheBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := natstest.MustStart(t)
	kv, err := openIDCacheBucket(ctx, s.JS, 1)
	require.NoError(t, err)
	_, err = kv.Put(ctx, "User.alice", []byte("id-1"))
	require.NoError(t, err)
	_, err = kv.Put(ctx, "User.alice", []byte("id-2"))
	require.NoError(t, err)
	kv, err = openIDCacheBucket(ctx, s.JS, 1)
	require.NoError(t, err)
	e, err := kv.Get(ctx, "User.alice")
	require.NoError(t, err)
	assert.Equal(t, "id-2", string(e.Value()))
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), st.History(), "one value per key")
	info, err := s.JS.Stream(ctx, "KV_IDM_IDCACHE")
	require.NoError(t, err)
	cfg := info.CachedInfo().Config
	assert.Equal(t, jetstream.AsyncPersistMode, cfg.PersistMode)
	assert.True(t, cfg.AllowDirect && cfg.AllowRollup && cfg.DenyDelete, "configured as the client configures a bucket: %+v", cfg)
	require.NoError(t, kv.Delete(ctx, "User.alice"))
	_, err = kv.Get(ctx, "User.alice")
	assert.ErrorIs(t, err, jetstream.ErrKeyNotFound)

	// A bucket the client created before keeps its persistence and its values.
	old := natstest.MustStart(t)
	prev, err := old.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: idCacheBucket, History: 1, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	_, err = prev.Put(ctx, "Group.admins", []byte("g-1"))
	require.NoError(t, err)
	kv, err = openIDCacheBucket(ctx, old.JS, 1)
	require.NoError(t, err)
	e, err = kv.Get(ctx, "Group.admins")
	require.NoError(t, err)
	assert.Equal(t, "g-1", string(e.Value()))
	info, err = old.JS.Stream(ctx, "KV_IDM_IDCACHE")
	require.NoError(t, err)
	assert.Equal(t, jetstream.DefaultPersistMode, info.CachedInfo().Config.PersistMode)
}
