package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/natstest"
)

// Each layout stores what docs/design-notes.md says it does: the floor only the outcomes, the keyed
// layouts answer a key's last outcome by a direct get, the server keeps the log and the records
// from it, and the ledger delivers outcomes on the subjects subscribers use today.
func TestLayoutsStoreWhatTheySay(t *testing.T) {
	const events, keys = 30, 5
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			ctx := context.Background()
			s := natstest.MustStart(t)
			w, err := newWriter(s.Conn)
			require.NoError(t, err)
			require.NoError(t, l.setup(ctx, w.js))
			contract := make(chan *nats.Msg, events)
			sub, err := s.Conn.ChanSubscribe("idm.outcomes.User.succeeded", contract)
			require.NoError(t, err)
			defer sub.Unsubscribe()
			require.NoError(t, s.Conn.Flush())

			// One publisher: the events of a key are stored in order, so the last is known.
			require.NoError(t, writeAll(ctx, w, l, options{events: events, keys: keys, publishers: 1}))
			require.Eventually(t, func() bool { ok, err := caughtUp(ctx, w.js, l, events); return err == nil && ok }, 5*time.Second, 10*time.Millisecond)

			if l.name == "floor" {
				var names []string
				for n := range w.js.StreamNames(ctx).Name() {
					names = append(names, n)
				}
				assert.Equal(t, []string{"OUTCOMES"}, names, "the floor keeps no record")
			} else {
				checkRecords(ctx, t, w, l, events, keys)
			}

			outcomes, err := w.js.Stream(ctx, "OUTCOMES")
			if l.name == "keyed" {
				require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
				assert.Empty(t, contract, "the keyed layout publishes under keyed subjects only")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, uint64(events), outcomes.CachedInfo().State.Msgs)
			stored, err := outcomes.GetLastMsgForSubject(ctx, "idm.outcomes.User.succeeded")
			require.NoError(t, err, "the outcomes stream holds the contract's subjects")
			assert.Equal(t, w.outcome, stored.Data)
			require.Eventually(t, func() bool { return len(contract) == events }, 5*time.Second, 10*time.Millisecond,
				"a subscriber of idm.outcomes.User.succeeded receives every outcome once")
		})
	}
}

// checkRecords checks that every key's log and record hold its last event, and, for the keyed
// layouts, that the ledger answers a key's last outcome whatever its status.
func checkRecords(ctx context.Context, t *testing.T, w *writer, l layout, events, keys int) {
	t.Helper()
	history, err := w.js.Stream(ctx, "HISTORY")
	require.NoError(t, err)
	applied, err := w.js.Stream(ctx, "KV_APPLIED")
	require.NoError(t, err)
	for k := range keys {
		key := fmt.Sprintf("k%05d", k)
		h, err := history.GetLastMsgForSubject(ctx, "idm.history.User."+key)
		require.NoError(t, err, "the log of %s", key)
		assert.Equal(t, w.outcome, h.Data)
		rec, err := applied.GetLastMsgForSubject(ctx, "$KV.APPLIED.User."+key)
		require.NoError(t, err, "the record of %s", key)
		if l.name == "today" {
			assert.Equal(t, w.record, rec.Data)
			continue
		}
		assert.Equal(t, string(w.record), rec.Header.Get("Scimflow-Applied"), "the record rides in the outcome's header")
		ledger, err := w.js.Stream(ctx, "LEDGER")
		require.NoError(t, err)
		last, err := ledger.GetLastMsgForSubject(ctx, "idm.ledger.User.*."+key)
		require.NoError(t, err, "a key's last outcome, whatever its status")
		assert.Equal(t, "idm.ledger.User.succeeded."+key, last.Subject)
		assert.Equal(t, fmt.Sprint("ev-", events-keys+k), last.Header.Get(jetstream.MsgIDHeader), "the key's latest event")
	}
}
