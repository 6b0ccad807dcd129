package events

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetterEntry is one message of the dead-letter stream, read back.
type DeadLetterEntry struct {
	// Seq is the dead letter's sequence in IDM_DLQ.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // when it was dead-lettered
	// EventID is the event's id ("" when its payload could not be read).
	EventID string `json:"eventId"`
	Object  string `json:"object"`
	// Key is the event's key as read from the payload (nil when it can't be read); KeyToken the
	// key token of the subject it was published on.
	Key      map[string]any `json:"key,omitempty"`
	KeyToken string         `json:"keyToken,omitempty"`
	// EventSubject is where the event was published and where a replay republishes it; "" when
	// its stored subject could not be read.
	EventSubject string `json:"eventSubject,omitempty"`
	// StreamSeq is the event's sequence in IDM_EVENTS.
	StreamSeq  uint64 `json:"streamSeq"`
	Attempt    int    `json:"attempt"`
	ErrorClass string `json:"class"`
	Reason     string `json:"reason"`
	// Truncated says the dead letter keeps only the first bytes of the event (PayloadSize long);
	// the event itself is in IDM_EVENTS at StreamSeq while retained.
	Truncated   bool        `json:"truncated,omitempty"`
	PayloadSize int         `json:"payloadSize"`
	Header      nats.Header `json:"headers,omitempty"`
	Payload     []byte      `json:"-"`
}

// KeyString is the key for people: name=value pairs, or the key token when the payload can't be
// read.
func (e *DeadLetterEntry) KeyString() string {
	if len(e.Key) > 0 {
		return KeyString(e.Key)
	}
	return e.KeyToken
}

// entryOf reads a dead letter's headers and payload.
func entryOf(seq uint64, subject string, stored time.Time, h nats.Header, payload []byte) *DeadLetterEntry {
	e := &DeadLetterEntry{
		Seq: seq, Header: h, Payload: payload,
		EventID: h.Get(HeaderEventID), EventSubject: h.Get(HeaderEventSubject),
		ErrorClass: h.Get(HeaderErrorClass), Reason: h.Get(HeaderReason),
		Truncated: h.Get(HeaderPayloadTruncated) == "true", PayloadSize: len(payload),
	}
	e.Object, _ = strings.CutPrefix(subject, DLQPrefix+".")
	e.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderStreamSeq), 10, 64)
	e.Attempt, _ = strconv.Atoi(h.Get(HeaderAttempt))
	if n, err := strconv.Atoi(h.Get(HeaderPayloadSize)); err == nil && e.Truncated {
		e.PayloadSize = n
	}
	e.Time = stored
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDeadLetteredAt)); err == nil {
		e.Time = t
	}
	if rest, ok := strings.CutPrefix(e.EventSubject, EventsPrefix+"."); ok {
		if _, tok, ok := strings.Cut(rest, "."); ok {
			e.KeyToken = tok
		}
	}
	var probe struct {
		Data struct {
			Key map[string]any `json:"key"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if !e.Truncated && dec.Decode(&probe) == nil {
		e.Key = probe.Data.Key
	}
	return e
}

// DLQFilter selects dead letters. The zero value selects all.
type DLQFilter struct {
	// Seq selects one dead letter by its IDM_DLQ sequence.
	Seq uint64
	// EventID selects the dead letters of one event.
	EventID string
	Object  string
	Class   string
	// Since selects those dead-lettered at or after it.
	Since time.Time
}

func (f DLQFilter) match(e *DeadLetterEntry) bool {
	return (f.EventID == "" || e.EventID == f.EventID) &&
		(f.Object == "" || e.Object == SubjectToken(f.Object)) &&
		(f.Class == "" || e.ErrorClass == f.Class) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since))
}

// DLQ reads and replays the dead-letter stream IDM_DLQ.
type DLQ struct {
	js jetstream.JetStream
}

// NewDLQ returns the dead-letter stream on js.
func NewDLQ(js jetstream.JetStream) *DLQ { return &DLQ{js: js} }

// ErrNoDeadLetter is returned when a dead letter asked for by sequence does not exist.
var ErrNoDeadLetter = errors.New("no such dead letter")

// List returns the dead letters f selects, oldest first. Without payloads (withPayload false)
// entries keep only what their headers and the payload's key say, so that a long listing stays
// small.
func (q *DLQ) List(ctx context.Context, f DLQFilter, withPayload bool) ([]*DeadLetterEntry, error) {
	if f.Seq > 0 {
		e, err := q.Get(ctx, f.Seq)
		if err != nil {
			return nil, err
		}
		if !f.match(e) {
			return nil, nil
		}
		return []*DeadLetterEntry{e}, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if f.Object != "" {
		cfg.FilterSubjects = []string{DLQSubject(f.Object)}
	}
	if !f.Since.IsZero() {
		// Stored times are when the dead letters were stored, a moment after their header's time:
		// start a little earlier and let match decide.
		since := f.Since.Add(-time.Minute)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	var out []*DeadLetterEntry
	err := scanStream(ctx, q.js, DLQStream, cfg, 0, nil, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		e := entryOf(md.Sequence.Stream, m.Subject(), md.Timestamp, m.Headers(), m.Data())
		if !f.match(e) {
			return nil
		}
		if !withPayload {
			e.Payload = nil
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// Get reads the dead letter at seq of IDM_DLQ.
func (q *DLQ) Get(ctx context.Context, seq uint64) (*DeadLetterEntry, error) {
	st, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", DLQStream, err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w at seq %d of %s", ErrNoDeadLetter, seq, DLQStream)
	}
	if err != nil {
		return nil, fmt.Errorf("read seq %d of %s: %w", seq, DLQStream, err)
	}
	return entryOf(m.Sequence, m.Subject, m.Time, m.Header, m.Data), nil
}

// Original returns the whole event of a dead letter: its payload, or, when the dead letter keeps
// only the first bytes, the event read back from IDM_EVENTS at its stream sequence.
func (q *DLQ) Original(ctx context.Context, e *DeadLetterEntry) ([]byte, error) {
	if !e.Truncated {
		return e.Payload, nil
	}
	st, err := q.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	m, err := st.GetMsg(ctx, e.StreamSeq)
	if err != nil {
		return nil, fmt.Errorf("the dead letter keeps only the first %d of %d bytes, and its event (seq %d of %s) is not there: %w", len(e.Payload), e.PayloadSize, e.StreamSeq, EventsStream, err)
	}
	if len(m.Data) != e.PayloadSize || !bytes.HasPrefix(m.Data, e.Payload) {
		return nil, fmt.Errorf("the dead letter keeps only the first %d of %d bytes, and seq %d of %s is another message (%d bytes)", len(e.Payload), e.PayloadSize, e.StreamSeq, EventsStream, len(m.Data))
	}
	return m.Data, nil
}

// DLQReplay is what became of one dead letter's replay.
type DLQReplay struct {
	Entry   *DeadLetterEntry
	MsgID   string // the replay's message id: its final outcome has this id
	Subject string
	// NewSeq is the replay's sequence in IDM_EVENTS; Duplicate says JetStream already had it (an
	// earlier replay of this dead letter whose removal failed).
	NewSeq    uint64
	Duplicate bool
	// NewerSeq is the last event of the same key in IDM_EVENTS, when it is newer than the dead
	// letter's: the replay then applies this event's values after it.
	NewerSeq uint64
}

// Replay republishes a dead letter's event on the subject it was published on, with the message id
// DLQReplayMsgID and the Scimflow-Replay headers, and removes the dead letter once JetStream has
// acknowledged the republished event. The worker then processes it as any new event: it plans it
// against the target's current state and publishes a new final outcome under the new id. If it
// fails again it is dead-lettered again, once, as a new dead letter: nothing replays it by itself.
// Replaying the same dead letter twice within the duplicate window republishes it once.
func (q *DLQ) Replay(ctx context.Context, e *DeadLetterEntry) (*DLQReplay, error) {
	if e.EventSubject == "" {
		return nil, fmt.Errorf("dead letter %d names no subject to replay it on (its stored subject could not be read): publish the event again on its subject", e.Seq)
	}
	payload, err := q.Original(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d: %w", e.Seq, err)
	}
	r := &DLQReplay{Entry: e, Subject: e.EventSubject}
	r.MsgID = DLQReplayMsgID(cmp.Or(e.EventID, "seq-"+strconv.FormatUint(e.StreamSeq, 10)), e.Seq)
	events, err := q.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	if rest, ok := strings.CutPrefix(e.EventSubject, EventsPrefix+"."); ok {
		if last, err := events.GetLastMsgForSubject(ctx, PartitionedPrefix+".*."+rest); err == nil && last.Sequence > e.StreamSeq {
			r.NewerSeq = last.Sequence
		}
	}
	msg := nats.NewMsg(e.EventSubject)
	msg.Data = payload
	msg.Header.Set(HeaderReplay, strconv.FormatUint(e.Seq, 10))
	msg.Header.Set(HeaderReplayStream, DLQStream)
	if e.StreamSeq > 0 {
		msg.Header.Set(HeaderOriginalSeq, strconv.FormatUint(e.StreamSeq, 10))
	}
	ack, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(r.MsgID))
	if err != nil {
		if tooLarge(err) {
			err = fmt.Errorf("the event (%d bytes) and the replay's headers exceed what the server takes: %w", len(payload), err)
		}
		return nil, fmt.Errorf("dead letter %d: republish on %s: %w (the dead letter stays)", e.Seq, e.EventSubject, err)
	}
	r.NewSeq, r.Duplicate = ack.Sequence, ack.Duplicate
	st, err := q.js.Stream(ctx, DLQStream)
	if err == nil {
		err = st.DeleteMsg(ctx, e.Seq)
	}
	if err != nil && !alreadyRemoved(err) {
		return r, fmt.Errorf("dead letter %d: republished as %q (seq %d of %s) but not removed: %w (replaying it again within the duplicate window republishes nothing)", e.Seq, r.MsgID, r.NewSeq, EventsStream, err)
	}
	return r, nil
}

// alreadyRemoved reports whether a delete failed because the message is gone (removed by an
// earlier replay): the server answers "no message found" without a code of its own
// (JSStreamMsgDeleteFailedF), so the text decides.
func alreadyRemoved(err error) bool {
	return errors.Is(err, jetstream.ErrMsgNotFound) ||
		errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "no message found")
}
