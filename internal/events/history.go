package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/ablate"
)

// History is the per-object provisioning log: every outcome published (progress and final) is
// written again under its key's subject in IDM_HISTORY, which keeps the last HistoryPerKey of each
// key, and so are notes of what else happened to the key (an operator's retry, approval or
// rejection, drift the inventory found). Writes are asynchronous and never hold an event back: a
// lost entry loses a line of the log, never an outcome; Stats counts them.
type History struct {
	js      jetstream.JetStream
	written atomic.Int64
	failed  atomic.Int64

	mu      sync.Mutex
	lastErr string
	lastAt  time.Time
}

// historyMaxPending bounds the log's unacknowledged writes; beyond it an entry is dropped (and
// counted) after historyStallWait instead of slowing the event that wrote it.
const (
	historyMaxPending = 4096
	historyStallWait  = time.Millisecond
)

// NewHistory records into IDM_HISTORY (Topology.Ensure creates it) over js's connection, with a
// JetStream context of its own so that its failed writes are counted apart from everything else.
func NewHistory(js jetstream.JetStream) (*History, error) {
	h := &History{}
	var err error
	h.js, err = jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncMaxPending(historyMaxPending),
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) { h.fail(m.Subject, err) }))
	if err != nil {
		return nil, fmt.Errorf("provisioning log %s: %w", HistoryStream, err)
	}
	return h, nil
}

// fail counts an entry that was not written and keeps the newest reason.
func (h *History) fail(subject string, err error) {
	h.failed.Add(1)
	h.mu.Lock()
	h.lastErr, h.lastAt = fmt.Sprintf("%s: %v", subject, err), time.Now().UTC()
	h.mu.Unlock()
}

// HistoryNote is an entry of the provisioning log that is not an outcome: something done to a key
// by an operator or found by the inventory.
type HistoryNote struct {
	// ID, when set, makes the note's write idempotent: a second note with the same ID within the
	// duplicate window is dropped.
	ID string `json:"id,omitempty"`
	// Kind is NoteRetry, NoteApprove, NoteReject or NoteDrift.
	Kind   string         `json:"kind"`
	Time   time.Time      `json:"time"`
	Object string         `json:"object"`
	Key    map[string]any `json:"key"`
	// Event is the event it concerns (the parked or held event at the key's head), when one.
	Event string `json:"event,omitempty"`
	// By says who: the operator's command or HTTP client, or the inventory run.
	By string `json:"by,omitempty"`
	// Worker is the worker that wrote the note.
	Worker string `json:"worker,omitempty"`
	// Detail says what happened, in one sentence.
	Detail string `json:"detail"`
}

// Kinds of HistoryNote.
const (
	NoteRetry   = "retry"   // an operator ran a parked key now (worker parked retry)
	NoteApprove = "approve" // an operator approved a held delete (worker deletes approve)
	NoteReject  = "reject"  // an operator rejected a held delete (worker deletes reject)
	NoteDrift   = "drift"   // the inventory found the object changed, created or gone in the target
)

// HistoryEntry is one line of a key's provisioning log: an outcome, or a note. Its JSON form is
// the outcome's fields, or {"note": {...}}.
type HistoryEntry struct {
	*Outcome
	Note *HistoryNote `json:"note,omitempty"`
}

// When is the time of the entry.
func (e *HistoryEntry) When() time.Time {
	if e.Note != nil {
		return e.Note.Time
	}
	return e.Outcome.Time
}

// Record adds o to its key's log; an outcome without a key (an unreadable event) has none.
func (h *History) Record(o *Outcome) {
	if len(o.Key) == 0 || o.Object == "" || ablate.History {
		return
	}
	raw, err := o.wire()
	if err != nil {
		h.fail(HistorySubject(o.Object, o.Key), err)
		return
	}
	// A republished outcome (after a crash between publishing and acknowledging) is one line.
	h.write(HistorySubject(o.Object, o.Key), raw, "history/"+o.ID)
}

// Note adds n to its key's log.
func (h *History) Note(n *HistoryNote) {
	if len(n.Key) == 0 || n.Object == "" {
		return
	}
	if n.Time.IsZero() {
		n.Time = time.Now().UTC()
	}
	raw, err := json.Marshal(HistoryEntry{Note: n})
	if err != nil {
		h.fail(HistorySubject(n.Object, n.Key), err)
		return
	}
	msgID := ""
	if n.ID != "" {
		msgID = "history/" + n.ID
	}
	h.write(HistorySubject(n.Object, n.Key), raw, msgID)
}

func (h *History) write(subject string, raw []byte, msgID string) {
	msg := nats.NewMsg(subject)
	msg.Data = raw
	opts := []jetstream.PublishOpt{jetstream.WithStallWait(historyStallWait)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := h.js.PublishMsgAsync(msg, opts...); err != nil {
		h.fail(subject, err)
		return
	}
	h.written.Add(1)
}

// Flush waits until every write so far is acknowledged (or failed), or ctx ends.
func (h *History) Flush(ctx context.Context) error {
	select {
	case <-h.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("provisioning log: %d writes unacknowledged: %w", h.js.PublishAsyncPending(), ctx.Err())
	}
}

// HistoryStats is how the provisioning log's writes fare: Written were sent, Failed of them (or
// before sending) were lost, Pending await their acknowledgement.
type HistoryStats struct {
	Written   int64     `json:"written"`
	Failed    int64     `json:"failed"`
	Pending   int       `json:"pending"`
	LastError string    `json:"lastError,omitempty"`
	LastAt    time.Time `json:"lastErrorAt,omitzero"`
}

// Stats says how the log's writes fare.
func (h *History) Stats() HistoryStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return HistoryStats{Written: h.written.Load(), Failed: h.failed.Load(), Pending: h.js.PublishAsyncPending(),
		LastError: h.lastErr, LastAt: h.lastAt}
}

// Failed counts entries that could not be written.
func (h *History) Failed() int64 { return h.failed.Load() }

// ReadHistory returns the log of one key, oldest first, at most the newest limit entries.
func ReadHistory(ctx context.Context, js jetstream.JetStream, object string, key map[string]any, limit int) ([]*HistoryEntry, error) {
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
	var out []*HistoryEntry
	for read := uint64(0); read < n; read++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", subject, err)
		}
		var e HistoryEntry
		if err := json.Unmarshal(msg.Data(), &e); err != nil || (e.Outcome == nil) == (e.Note == nil) {
			continue // not ours to explain
		}
		out = append(out, &e)
	}
	// In the order things happened, not the order their writes landed: a held delete's outcome
	// (stamped before the hold was stored) is written after the hold, so an operator's approval
	// of it can reach the log first.
	sort.SliceStable(out, func(i, j int) bool { return out[i].When().Before(out[j].When()) })
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}
