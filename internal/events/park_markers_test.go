package events

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// keyStateMessages counts what IDM_KEYSTATE's stream holds under each of the given keys.
func keyStateMessages(t *testing.T, js jetstream.JetStream, keys ...string) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, "KV_"+KeyStateBucket)
	require.NoError(t, err)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("$KV."+KeyStateBucket+".>"))
	require.NoError(t, err)
	out := map[string]uint64{}
	for _, k := range keys {
		out[k] = info.State.Subjects["$KV."+KeyStateBucket+"."+k]
	}
	return out
}

// An unparked key leaves nothing behind for long: without a TTL on its marker, every key ever
// parked would stay in IDM_KEYSTATE as a marker that every listing of its partition reads past.
func TestUnparkedKeysMarkerExpires(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	store, err := OpenParkStore(ctx, s.JS, 1)
	require.NoError(t, err)
	require.Equal(t, unparkMarkerTTL, store.markerTTL, "the server supports marker TTLs")
	store.markerTTL = time.Second

	gone := PartitionedPrefix + ".2.User." + KeyToken(map[string]any{"userName": "ada@example.com"})
	back := PartitionedPrefix + ".2.User." + KeyToken(map[string]any{"userName": "bob@example.com"})
	for _, subject := range []string{gone, back} {
		st := &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 3, HeadEvent: "e-3"}
		require.NoError(t, store.SetState(ctx, st))
		require.NoError(t, store.Unpark(ctx, subject, st.Revision))
	}
	// bob is parked again before his marker expires.
	require.NoError(t, store.SetState(ctx, &KeyState{Subject: back, Object: "User", Hold: HoldWindow, HeadSeq: 8, HeadEvent: "e-8"}))

	require.Eventually(t, func() bool {
		return keyStateMessages(t, s.JS, stateKey(gone))[stateKey(gone)] == 0
	}, 10*time.Second, 100*time.Millisecond, "the unparked key's marker is still there")
	time.Sleep(1500 * time.Millisecond) // past the TTL of any marker the expiry left
	assert.Equal(t, map[string]uint64{stateKey(gone): 0, stateKey(back): 1}, keyStateMessages(t, s.JS, stateKey(gone), stateKey(back)))

	states, err := store.States(ctx, 2)
	require.NoError(t, err)
	require.Len(t, states, 1)
	assert.Equal(t, "e-8", states[0].HeadEvent)
	st, err := store.State(ctx, gone)
	require.NoError(t, err)
	assert.Nil(t, st)
	require.NoError(t, store.Unpark(ctx, gone, 1), "unparking a key whose marker expired")
}

// Markers an earlier version left (plain deletes, without a TTL) are swept when a worker opens
// the store, and a key parked again after its marker keeps its state.
func TestSweepRemovesMarkersLeftWithoutATTL(t *testing.T) {
	t.Parallel()
	s := natstest.MustStart(t)
	ctx := context.Background()
	// The bucket as the earlier version made it.
	kv, err := s.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: KeyStateBucket, History: 1, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	for _, k := range []string{"k.1.User.a", "k.1.User.b", "k.1.User.c"} {
		_, err := kv.Put(ctx, k, []byte(`{}`))
		require.NoError(t, err)
	}
	require.NoError(t, kv.Delete(ctx, "k.1.User.a"))
	require.NoError(t, kv.Delete(ctx, "k.1.User.b"))
	_, err = kv.Put(ctx, "k.1.User.b", []byte(`{"subject":"idm.part.1.User.b"}`)) // parked again
	require.NoError(t, err)

	store, err := OpenParkStore(ctx, s.JS, 1)
	require.NoError(t, err)
	n, err := store.SweepMarkers(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, map[string]uint64{"k.1.User.a": 0, "k.1.User.b": 1, "k.1.User.c": 1},
		keyStateMessages(t, s.JS, "k.1.User.a", "k.1.User.b", "k.1.User.c"))
	n, err = store.SweepMarkers(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a second sweep")

	// The bucket now takes marker TTLs.
	require.Equal(t, unparkMarkerTTL, store.markerTTL)
	require.NoError(t, store.Unpark(ctx, "idm.part.1.User.c", 0))
	n, err = store.SweepMarkers(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a marker with a TTL is left to expire")
}
