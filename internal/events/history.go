package events

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// History is the per-object provisioning log: every outcome published (progress and final) is
// written again under its key's subject in IDM_HISTORY, which keeps the last HistoryPerKey of each
// key. Writes are asynchronous and never hold an event back: a lost entry loses a line of the log,
// never an outcome.
type History struct {
	js     jetstream.JetStream
	failed atomic.Int64
}

// NewHistory records into js's IDM_HISTORY (Topology.Ensure creates it).
func NewHistory(js jetstream.JetStream) *History { return &History{js: js} }

// Record adds o to its key's log; an outcome without a key (an unreadable event) has none.
func (h *History) Record(o *Outcome) {
	if len(o.Key) == 0 || o.Object == "" {
		return
	}
	raw, err := o.Encode()
	if err != nil {
		h.failed.Add(1)
		return
	}
	msg := nats.NewMsg(HistorySubject(o.Object, o.Key))
	msg.Data = raw
	// A republished outcome (after a crash between publishing and acknowledging) is one line.
	if _, err := h.js.PublishMsgAsync(msg, jetstream.WithMsgID("history/"+o.ID)); err != nil {
		h.failed.Add(1)
	}
}

// Failed counts entries that could not be written.
func (h *History) Failed() int64 { return h.failed.Load() }

// ReadHistory returns the logged outcomes of one key, oldest first, at most the newest limit.
func ReadHistory(ctx context.Context, js jetstream.JetStream, object string, key map[string]any, limit int) ([]*Outcome, error) {
	subject := HistorySubject(object, key)
	st, err := js.Stream(ctx, HistoryStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", HistoryStream, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", HistoryStream, err)
	}
	n := info.State.Subjects[subject]
	if n == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", subject, err)
	}
	var out []*Outcome
	for uint64(len(out)) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", subject, err)
		}
		o, err := DecodeOutcome(msg.Data())
		if err != nil {
			continue // not ours to explain
		}
		out = append(out, o)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
