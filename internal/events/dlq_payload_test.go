package events

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setupMaxPayload is setup with a server whose max_payload is maxPayload bytes, so that a dead
// letter outgrows it deterministically.
func setupMaxPayload(t *testing.T, topo Topology, maxPayload int32) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		NoSigs: true, NoLog: true, MaxPayload: maxPayload,
	})
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.EqualValues(t, maxPayload, nc.MaxPayload())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, topo.Ensure(ctx, js))
	return js
}

// junk is n bytes that are not JSON.
func junk(n int) []byte {
	return bytes.Repeat([]byte("not json \x00\xff "), n/12+1)[:n]
}

func lastDeadLetter(t *testing.T, js jetstream.JetStream, object string) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(context.Background(), DLQStream)
	require.NoError(t, err)
	m, err := st.GetLastMsgForSubject(context.Background(), DLQSubject(object))
	require.NoError(t, err, "no dead letter on %s", DLQSubject(object))
	return m
}

func TestDeadLetterTooLargeKeepsATruncatedPayload(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		maxPayload int32
		payload    int
		wantKept   int // bytes of the payload the dead letter keeps
	}{
		// The event fits; its dead letter, the same bytes plus the reason's headers, does not.
		{"keeps the first 64 KiB", 256 << 10, 256<<10 - 64, DeadLetterPayloadLimit},
		// A server that takes less than 64 KiB: as much as fits beside the headers.
		{"keeps what the server takes", 16 << 10, 16<<10 - 64, -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			js := setupMaxPayload(t, Topology{Partitions: 1}, tc.maxPayload)
			ctx := context.Background()
			payload := junk(tc.payload)
			ack, err := NewPublisher(js).PublishRaw(ctx, "idm.events.User.tok", "big-1", payload)
			require.NoError(t, err, "the event itself fits")

			err = NewPublisher(js).DeadLetter(ctx, DeadLetter{
				EventID: "big-1", MsgID: "big-1", Object: "User", EventSubject: "idm.events.User.tok",
				StreamSeq: ack.Sequence, Attempt: 1, ErrorClass: "invalid",
				Reason: "invalid event: not a JSON document", Payload: payload,
			})
			require.NoError(t, err, "a dead letter too large for the server is kept truncated, never lost")

			m := lastDeadLetter(t, js, "User")
			assert.Equal(t, "true", m.Header.Get(HeaderPayloadTruncated))
			assert.Equal(t, strconv.Itoa(tc.payload), m.Header.Get(HeaderPayloadSize))
			assert.Equal(t, strconv.FormatUint(ack.Sequence, 10), m.Header.Get(HeaderStreamSeq), "the full event can be read back from IDM_EVENTS")
			assert.Equal(t, "invalid", m.Header.Get(HeaderErrorClass))
			assert.Equal(t, "big-1", m.Header.Get(HeaderEventID))
			if tc.wantKept > 0 {
				assert.Len(t, m.Data, tc.wantKept)
			} else {
				assert.NotEmpty(t, m.Data)
				assert.Less(t, len(m.Data), int(tc.maxPayload))
			}
			assert.Equal(t, payload[:len(m.Data)], m.Data, "the kept bytes are the payload's first ones")
		})
	}
}

func TestDeadLetterThatFitsIsKeptWhole(t *testing.T) {
	t.Parallel()
	js := setupMaxPayload(t, Topology{Partitions: 1}, 256<<10)
	ctx := context.Background()
	payload := junk(100 << 10) // above the truncation size, yet it fits: kept byte for byte
	err := NewPublisher(js).DeadLetter(ctx, DeadLetter{
		EventID: "e-1", MsgID: "e-1", Object: "User", EventSubject: "idm.events.User.tok",
		StreamSeq: 7, Attempt: 2, ErrorClass: "permanent",
		Reason: "send failed permanently:\r\nPOST Users → 400\nline two", Payload: payload,
	})
	require.NoError(t, err)
	m := lastDeadLetter(t, js, "User")
	assert.Equal(t, payload, m.Data)
	assert.Empty(t, m.Header.Get(HeaderPayloadTruncated))
	assert.Equal(t, "send failed permanently: POST Users → 400 line two", m.Header.Get(HeaderReason),
		"line breaks in a reason would end the header block: they become spaces")
	assert.Equal(t, "2", m.Header.Get(HeaderAttempt))
	assert.Equal(t, "7", m.Header.Get(HeaderStreamSeq))
}

// TestConsumerDeadLettersAnEventWhoseDeadLetterIsTooLarge runs the consume loop: an event that fits
// the server's max_payload but whose dead letter does not used to be retried forever with no
// outcome; now it ends dead_lettered, its dead letter truncated and pointing at the event.
func TestConsumerDeadLettersAnEventWhoseDeadLetterIsTooLarge(t *testing.T) {
	t.Parallel()
	topo := Topology{Partitions: 2}
	const maxPayload = 128 << 10
	js := setupMaxPayload(t, topo, maxPayload)
	outcomes := collectOutcomes(t, js)
	h := HandlerFunc(func(ctx context.Context, d *Delivery) Result {
		return Result{Outcome: Outcome{Status: StatusSucceeded}}
	})
	c, _, _ := runConsumer(t, js, topo, ConsumerConfig{}, h)

	ctx := context.Background()
	payload := junk(maxPayload - 64)
	ack, err := NewPublisher(js).PublishRaw(ctx, "idm.events.User.bigtoken", "big-1", payload)
	require.NoError(t, err)

	got := outcomes(1, 15*time.Second)
	require.Len(t, got, 1, "the event has its final outcome (publish errors so far: %d)", c.Stats().PublishErr)
	o := got[0]
	assert.Equal(t, "big-1", o.ID)
	assert.Equal(t, StatusDeadLettered, o.Status)
	require.NotNil(t, o.Error)
	assert.Equal(t, "invalid", o.Error.Class)
	assert.Contains(t, o.Error.Message, "not a JSON document")
	waitAllAcked(t, js, c, topo)

	m := lastDeadLetter(t, js, "User")
	assert.Equal(t, "true", m.Header.Get(HeaderPayloadTruncated))
	assert.Equal(t, strconv.Itoa(len(payload)), m.Header.Get(HeaderPayloadSize))
	assert.Equal(t, strconv.FormatUint(ack.Sequence, 10), m.Header.Get(HeaderStreamSeq))
	assert.Equal(t, "idm.events.User.bigtoken", m.Header.Get(HeaderEventSubject))
	assert.Len(t, m.Data, DeadLetterPayloadLimit)
	assert.Equal(t, payload[:DeadLetterPayloadLimit], m.Data)
	assert.Zero(t, c.Stats().PublishErr, "the dead letter went through at the first try")
}

// TestDeadLetterRefusedByTheStreamKeepsLess covers a refusal by the server rather than the client:
// the dead-letter stream takes smaller messages than max_payload. The dead letter keeps less, down
// to its headers alone, which still name the event and its stream sequence.
func TestDeadLetterRefusedByTheStreamKeepsLess(t *testing.T) {
	t.Parallel()
	js := setupMaxPayload(t, Topology{Partitions: 1}, 256<<10)
	ctx := context.Background()
	st, err := js.Stream(ctx, DLQStream)
	require.NoError(t, err)
	cfg := st.CachedInfo().Config
	cfg.MaxMsgSize = 2 << 10
	_, err = js.UpdateStream(ctx, cfg)
	require.NoError(t, err)

	payload := junk(100 << 10)
	err = NewPublisher(js).DeadLetter(ctx, DeadLetter{
		EventID: "e-1", MsgID: "e-1", Object: "User", EventSubject: "idm.events.User.tok",
		StreamSeq: 42, Attempt: 1, ErrorClass: "invalid", Reason: "not a JSON document", Payload: payload,
	})
	require.NoError(t, err)
	m := lastDeadLetter(t, js, "User")
	assert.Empty(t, m.Data)
	assert.Equal(t, "true", m.Header.Get(HeaderPayloadTruncated))
	assert.Equal(t, strconv.Itoa(len(payload)), m.Header.Get(HeaderPayloadSize))
	assert.Equal(t, "42", m.Header.Get(HeaderStreamSeq))
	assert.Equal(t, "e-1", m.Header.Get(HeaderEventID))
}
