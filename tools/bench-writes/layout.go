package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A layout is one way of storing what the worker stores per event: its streams, and the writes
// one event makes.
type layout struct {
	name string
	// what says, for the table, what an event writes and what the server derives.
	what  string
	setup func(ctx context.Context, js jetstream.JetStream) error
	// write stores event i of key; it returns once every write the event waits for is stored.
	write func(ctx context.Context, w *writer, i int, key string) error
	// derived are the streams the server fills from the writes, after their acknowledgement.
	derived []string
}

// writer holds what the layouts write with: the connection's JetStream contexts and the payloads.
type writer struct {
	js, async jetstream.JetStream
	outcome   []byte // an outcome, about the worker's size
	record    []byte // an applied record, about the worker's size
}

func newWriter(nc *nats.Conn) (*writer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	async, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, err
	}
	return &writer{js: js, async: async, outcome: payload("outcome", 760), record: payload("record", 900)}, nil
}

// payload is a JSON object of about n bytes, printable so that it also fits in a header.
func payload(kind string, n int) []byte {
	b := fmt.Appendf(nil, `{"kind":%q,"pad":"`, kind)
	for len(b) < n-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

const (
	// ledgerSubjects: idm.ledger.<object>.<status>.<keytoken>, the keyed outcome.
	ledgerSubjects = "idm.ledger.*.*.*"
	dupWindow      = 2 * time.Minute
)

func sourced(from, to string) []*jetstream.StreamSource {
	return []*jetstream.StreamSource{{Name: "LEDGER", SubjectTransforms: []jetstream.SubjectTransformConfig{{Source: from, Destination: to}}}}
}

func create(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, c := range cfgs {
		if _, err := js.CreateStream(ctx, c); err != nil {
			return fmt.Errorf("stream %s: %w", c.Name, err)
		}
	}
	return nil
}

// The derived stores of the keyed layouts: the provisioning log and the applied records, sourced
// from the ledger by the server and persisted asynchronously.
var (
	historyFromLedger = jetstream.StreamConfig{Name: "HISTORY", MaxMsgsPerSubject: 50, PersistMode: jetstream.AsyncPersistMode,
		Sources: sourced(ledgerSubjects, "idm.history.{{wildcard(1)}}.{{wildcard(3)}}")}
	appliedFromLedger = jetstream.StreamConfig{Name: "KV_APPLIED", MaxMsgsPerSubject: 1, PersistMode: jetstream.AsyncPersistMode, AllowDirect: true,
		Sources: sourced("idm.ledger.*.succeeded.*", "$KV.APPLIED.{{wildcard(1)}}.{{wildcard(2)}}")}
)

var layouts = []layout{
	{
		name: "floor",
		what: "the outcome alone, fsynced: the bare loop's one write, and no record at all (1 message)",
		setup: func(ctx context.Context, js jetstream.JetStream) error {
			return create(ctx, js, outcomesStream)
		},
		write: func(ctx context.Context, w *writer, i int, key string) error { return publishOutcome(ctx, w, i) },
	},
	{
		name: "today",
		what: "outcome and applied record fsynced, provisioning log entry unfsynced (3 messages)",
		setup: func(ctx context.Context, js jetstream.JetStream) error {
			return create(ctx, js, outcomesStream,
				jetstream.StreamConfig{Name: "KV_APPLIED", Subjects: []string{"$KV.APPLIED.>"}, MaxMsgsPerSubject: 1, AllowDirect: true, Discard: jetstream.DiscardNew},
				jetstream.StreamConfig{Name: "HISTORY", Subjects: []string{"idm.history.>"}, MaxMsgsPerSubject: 50, PersistMode: jetstream.AsyncPersistMode, Duplicates: dupWindow})
		},
		write: func(ctx context.Context, w *writer, i int, key string) error {
			// As the worker: the record beside the outcome, both awaited; the log's entry not.
			var rerr error
			var wg sync.WaitGroup
			wg.Go(func() { _, rerr = w.js.Publish(ctx, "$KV.APPLIED.User."+key, w.record) })
			err := publishOutcome(ctx, w, i)
			h := nats.NewMsg("idm.history.User." + key)
			h.Data = w.outcome
			h.Header.Set(jetstream.MsgIDHeader, fmt.Sprint("history/ev-", i))
			if _, herr := w.async.PublishMsgAsync(h); err == nil {
				err = herr
			}
			wg.Wait()
			if err == nil {
				err = rerr
			}
			return err
		},
	},
	{
		name: "keyed",
		what: "one fsynced outcome under a keyed subject, carrying the record; log and records sourced (1 message)",
		setup: func(ctx context.Context, js jetstream.JetStream) error {
			return create(ctx, js,
				jetstream.StreamConfig{Name: "LEDGER", Subjects: []string{ledgerSubjects}, Duplicates: dupWindow, AllowDirect: true},
				historyFromLedger, appliedFromLedger)
		},
		write:   writeLedger,
		derived: []string{"HISTORY", "KV_APPLIED"},
	},
	{
		name: "ledger",
		what: "as keyed, republished as idm.outcomes.<object>.<status>, and IDM_OUTCOMES sourced too (1 message)",
		setup: func(ctx context.Context, js jetstream.JetStream) error {
			return create(ctx, js,
				jetstream.StreamConfig{Name: "LEDGER", Subjects: []string{ledgerSubjects}, Duplicates: dupWindow, AllowDirect: true,
					RePublish: &jetstream.RePublish{Source: ledgerSubjects, Destination: "idm.outcomes.{{wildcard(1)}}.{{wildcard(2)}}"}},
				jetstream.StreamConfig{Name: "OUTCOMES", PersistMode: jetstream.AsyncPersistMode,
					Sources: sourced(ledgerSubjects, "idm.outcomes.{{wildcard(1)}}.{{wildcard(2)}}")},
				historyFromLedger, appliedFromLedger)
		},
		write:   writeLedger,
		derived: []string{"HISTORY", "KV_APPLIED", "OUTCOMES"},
	},
}

// outcomesStream is IDM_OUTCOMES where the worker writes its outcomes itself.
var outcomesStream = jetstream.StreamConfig{Name: "OUTCOMES", Subjects: []string{"idm.outcomes.>"}, Duplicates: dupWindow}

// publishOutcome stores event i's outcome under the contract's subject and waits for it.
func publishOutcome(ctx context.Context, w *writer, i int) error {
	_, err := w.js.Publish(ctx, "idm.outcomes.User.succeeded", w.outcome, jetstream.WithMsgID(fmt.Sprint("ev-", i)))
	return err
}

// writeLedger publishes the one keyed outcome, the record in a header, and waits for it.
func writeLedger(ctx context.Context, w *writer, i int, key string) error {
	m := nats.NewMsg("idm.ledger.User.succeeded." + key)
	m.Data = w.outcome
	m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint("ev-", i))
	m.Header.Set("Scimflow-Applied", string(w.record))
	_, err := w.js.PublishMsg(ctx, m)
	return err
}

// caughtUp reports whether the server's derived stores hold every event of n: sourcing runs
// behind the writes, and its cost belongs to the layout.
func caughtUp(ctx context.Context, js jetstream.JetStream, l layout, n int) (bool, error) {
	for _, name := range l.derived {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false, err
		}
		if s.CachedInfo().State.LastSeq < uint64(n) {
			return false, nil
		}
	}
	return true, nil
}
