package events

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyStateSubject is the stream subject of IDM_KEYSTATE's key k.
func keyStateSubject(k string) string { return "$KV." + KeyStateBucket + "." + k }

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
		out[k] = info.State.Subjects[keyStateSubject(k)]
	}
	return out
}

// An unparked key keeps its marker until it is a day old: the marker is what keeps the key's
// older state from coming back after a JetStream server is killed (MarkerAge). Removed a minute
// after it was written, it let the chaos suite's restarted server bring back a state, and the key
// was parked again behind an event applied long before.
func TestUnparkedKeyKeepsItsMarker(t *testing.T) {
	t.Parallel()
	s, store := startParkStore(t)
	ctx := context.Background()
	subject := adaSubject(2)
	st := &KeyState{Subject: subject, Object: "User", Hold: HoldWindow, HeadSeq: 3, HeadEvent: "e-3"}
	require.NoError(t, store.SetState(ctx, st))
	require.NoError(t, store.Unpark(ctx, subject, st.Revision))

	n, err := store.SweepMarkers(ctx, MarkerAge)
	require.NoError(t, err)
	assert.Zero(t, n)
	kvStream, err := s.JS.Stream(ctx, "KV_"+KeyStateBucket)
	require.NoError(t, err)
	last, err := kvStream.GetLastMsgForSubject(ctx, keyStateSubject(stateKey(subject)))
	require.NoError(t, err)
	assert.Equal(t, "DEL", last.Header.Get("KV-Operation"), "the key's last message is not the unpark's marker")
	assert.Equal(t, map[string]uint64{stateKey(subject): 1}, keyStateMessages(t, s.JS, stateKey(subject)))
}

// Markers older than the sweep's age are removed, each only up to its own sequence: a key parked
// again after its marker keeps its state, and younger markers stay.
func TestSweepRemovesMarkersOlderThanItsAge(t *testing.T) {
	t.Parallel()
	s, store := startParkStore(t)
	ctx := context.Background()
	kv, err := s.JS.KeyValue(ctx, KeyStateBucket)
	require.NoError(t, err)
	for _, k := range []string{"k.1.User.a", "k.1.User.b", "k.1.User.c", "k.1.User.d"} {
		_, err := kv.Put(ctx, k, []byte(`{}`))
		require.NoError(t, err)
	}
	require.NoError(t, kv.Delete(ctx, "k.1.User.a"))
	require.NoError(t, kv.Delete(ctx, "k.1.User.b"))
	_, err = kv.Put(ctx, "k.1.User.b", []byte(`{}`)) // parked again
	require.NoError(t, err)
	time.Sleep(1200 * time.Millisecond)
	require.NoError(t, kv.Delete(ctx, "k.1.User.d")) // too young to sweep

	n, err := store.SweepMarkers(ctx, time.Second)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, map[string]uint64{"k.1.User.a": 0, "k.1.User.b": 1, "k.1.User.c": 1, "k.1.User.d": 1},
		keyStateMessages(t, s.JS, "k.1.User.a", "k.1.User.b", "k.1.User.c", "k.1.User.d"))
	keys, err := KVKeys(ctx, s.JS, KeyStateBucket, ">")
	require.NoError(t, err)
	assert.Equal(t, []string{"k.1.User.b", "k.1.User.c"}, keys)

	n, err = store.SweepMarkers(ctx, time.Second)
	require.NoError(t, err)
	assert.Zero(t, n, "a second sweep")
}
