package events

import (
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

// Parking (DESIGN.md §5): a key whose event failed in a way only time can fix is parked until the
// next sync window. Its event, and every later event of the key, leave the events stream (they are
// acknowledged there, so a target outage that parks 50,000 keys never fills MaxAckPending) and wait
// in IDM_PARKED, in order, under the key's subject; IDM_KEYSTATE says which keys are parked, why,
// how many windows their head event has spent, and when the next one starts.
const (
	ParkedStream   = "IDM_PARKED"
	ParkedPrefix   = "idm.parked"
	KeyStateBucket = "IDM_KEYSTATE"

	// Headers of a parked event, besides the original ones.
	HeaderParkedSubject  = "Scimflow-Stored-Subject" // the event's stored subject in IDM_EVENTS
	HeaderParkedSeq      = "Scimflow-Stream-Seq"     // its sequence there
	HeaderParkedStoredAt = "Scimflow-Stored-At"      // when it was stored there (RFC 3339)
)

// Hold kinds: why a key is parked.
const (
	HoldWindow = "window" // a retryable failure: retried at the next sync window
	HoldDelete = "delete" // a delete the deletion guard holds until an operator approves or rejects
)

// KeyState is what IDM_KEYSTATE holds for a parked key.
type KeyState struct {
	Subject string         `json:"subject"` // the key's stored subject, idm.part.<p>.<object>.<keytoken>
	Object  string         `json:"object"`
	Key     map[string]any `json:"key,omitempty"`
	Hold    string         `json:"hold"`
	// HeadSeq is the events-stream sequence of the parked event tried first; Windows the windows it
	// has spent.
	HeadSeq    uint64    `json:"headSeq"`
	HeadEvent  string    `json:"headEvent"`
	Windows    int       `json:"windows"`
	Reason     string    `json:"reason"`
	Since      time.Time `json:"since"`
	NextWindow time.Time `json:"nextWindow,omitzero"`
	// Revision is the state's revision in IDM_KEYSTATE, as read or written (not stored in it).
	Revision uint64 `json:"-"`
}

// ParkedEvent is one event waiting in IDM_PARKED.
type ParkedEvent struct {
	Seq       uint64 // in IDM_PARKED
	StreamSeq uint64 // in IDM_EVENTS
	Subject   string // stored subject in IDM_EVENTS
	MsgID     string
	Data      []byte
	Header    nats.Header
	Parked    time.Time // when it was parked
	// Stored is when IDM_EVENTS stored it (zero for an event parked by an earlier version, which
	// did not keep it).
	Stored time.Time
}

// ParkStore keeps parked keys and their events.
type ParkStore struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	kv     jetstream.KeyValue
}

// OpenParkStore creates (or opens) IDM_PARKED and IDM_KEYSTATE. Replicas 0 opens them as they are
// (creating them with one replica only when absent): a command-line tool must never rewrite the
// configuration a worker gave them, such as scale a 3-replica stream down to one.
func OpenParkStore(ctx context.Context, js jetstream.JetStream, replicas int) (*ParkStore, error) {
	if replicas <= 0 {
		st, serr := js.Stream(ctx, ParkedStream)
		kv, kerr := js.KeyValue(ctx, KeyStateBucket)
		if serr == nil && kerr == nil {
			return &ParkStore{js: js, stream: st, kv: kv}, nil
		}
		absent := (serr == nil || errors.Is(serr, jetstream.ErrStreamNotFound)) && (kerr == nil || errors.Is(kerr, jetstream.ErrBucketNotFound))
		if !absent {
			return nil, fmt.Errorf("open %s and %s: %w", ParkedStream, KeyStateBucket, errors.Join(serr, kerr))
		}
	}
	replicas = max(replicas, 1)
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: ParkedStream, Description: "scimflow: events of parked keys, waiting for the next sync window or an operator",
		Subjects: []string{ParkedPrefix + ".>"}, Storage: jetstream.FileStorage, Replicas: replicas,
		Duplicates: time.Hour,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", ParkedStream, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: KeyStateBucket, Description: "scimflow: parked and held keys", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", KeyStateBucket, err)
	}
	return &ParkStore{js: js, stream: st, kv: kv}, nil
}

// MarkerAge is how old the marker an unparked key leaves in IDM_KEYSTATE must be before
// SweepMarkers removes it.
//
// The marker is what keeps the key's older state from coming back. JetStream removes a state a
// later write replaces "by limits", without a tombstone, and a server killed with kill -9
// recovers such removals only from the stream's index, which it writes every 2 to 2.5 minutes:
// in the chaos suite a marker removed a minute after it was written (a purge with a one-minute
// TTL) let a server restarted 20 s later bring the state back, and the key was parked again
// behind an event that had long been applied. A day is far beyond the index's interval.
const MarkerAge = 24 * time.Hour

// SweepMarkers removes the markers unparked keys left in IDM_KEYSTATE that are older than
// olderThan, and says how many: without it every key ever parked would stay in the bucket, read
// past by every listing of its partition's parked keys. Each marker is removed with what came
// before it under its key and nothing after, so a key parked again since the listing keeps its
// state. A worker sweeps with MarkerAge when it starts and every sweepEvery after.
func (s *ParkStore) SweepMarkers(ctx context.Context, olderThan time.Duration) (int, error) {
	prefix := "$KV." + KeyStateBucket + "."
	stale := map[string]uint64{} // subject → the marker's sequence
	err := lastPerKey(ctx, s.js, KeyStateBucket, ">", func(key string, h nats.Header, md *jetstream.MsgMetadata) {
		if kvRemoved(h) && time.Since(md.Timestamp) > olderThan {
			stale[prefix+key] = md.Sequence.Stream
		} else {
			delete(stale, prefix+key)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", KeyStateBucket, err)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	kvStream, err := s.js.Stream(ctx, "KV_"+KeyStateBucket)
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", KeyStateBucket, err)
	}
	swept := 0
	for subject, seq := range stale {
		// Up to the marker's sequence, inclusive.
		if err := kvStream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(seq+1)); err != nil {
			return swept, fmt.Errorf("sweep %s: %w", subject, err)
		}
		swept++
	}
	return swept, nil
}

// stateKey is the KV key of a stored subject idm.part.<p>.<object>.<keytoken>: k.<p>.<object>.<keytoken>.
func stateKey(subject string) string {
	return "k." + strings.TrimPrefix(subject, PartitionedPrefix+".")
}

// parkedSubject is where a key's events wait: idm.parked.<p>.<object>.<keytoken>.
func parkedSubject(subject string) string {
	return ParkedPrefix + "." + strings.TrimPrefix(subject, PartitionedPrefix+".")
}

// State returns the state of the key stored under subject, or nil when it is not parked.
func (s *ParkStore) State(ctx context.Context, subject string) (*KeyState, error) {
	e, err := s.kv.Get(ctx, stateKey(subject))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key state %s: %w", subject, err)
	}
	var st KeyState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return nil, fmt.Errorf("key state %s: %w", subject, err)
	}
	st.Revision = e.Revision()
	return &st, nil
}

// SetState records st, and its new revision in st.Revision.
func (s *ParkStore) SetState(ctx context.Context, st *KeyState) error {
	raw, _ := json.Marshal(st)
	rev, err := s.kv.Put(ctx, stateKey(st.Subject), raw)
	if err != nil {
		return fmt.Errorf("record key state %s: %w", st.Subject, err)
	}
	st.Revision = rev
	return nil
}

// ErrParkedAgain says that Unpark found the key's state rewritten since the revision it was given:
// the key was parked again meanwhile (by another worker, which owns the key's partition now) and
// stays parked.
var ErrParkedAgain = errors.New("the key was parked again meanwhile")

// Unpark forgets the key's state, when it is still at revision rev (0: whatever it is): its events
// flow again. A worker unparks a key once it finds nothing parked under it; the revision keeps it
// from deleting the state another worker wrote since, parking the key anew, which would leave that
// worker's parked events without a state to be found by.
func (s *ParkStore) Unpark(ctx context.Context, subject string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := s.kv.Delete(ctx, stateKey(subject), opts...)
	var apiErr *jetstream.APIError
	switch {
	case err == nil, errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		// Written since: parked anew, or unparked already (a delete is a revision too).
		st, rerr := s.State(ctx, subject)
		switch {
		case rerr != nil:
			return fmt.Errorf("unpark %s: %w", subject, rerr)
		case st == nil:
			return nil
		}
		return fmt.Errorf("unpark %s at revision %d (it is at %d): %w", subject, rev, st.Revision, ErrParkedAgain)
	}
	return fmt.Errorf("unpark %s: %w", subject, err)
}

// States lists the parked keys, of one partition (p >= 0) or all (p < 0). It fails rather than
// leave a parked key out: a worker that did not know a key is parked would run its next event
// ahead of the parked ones. So the keys are listed by KVKeys, and a state that cannot be read (a
// timeout, a JetStream server restarting) is an error; a key unparked meanwhile is left out.
func (s *ParkStore) States(ctx context.Context, p int) ([]*KeyState, error) {
	filter := "k.>"
	if p >= 0 {
		filter = "k." + strconv.Itoa(p) + ".>"
	}
	keys, err := KVKeys(ctx, s.js, KeyStateBucket, filter)
	if err != nil {
		return nil, fmt.Errorf("list parked keys: %w", err)
	}
	var out []*KeyState
	for _, k := range keys {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // unparked meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read parked key %s: %w", k, err)
		}
		var st KeyState
		if err := json.Unmarshal(e.Value(), &st); err != nil || st.Subject != subjectOfStateKey(k) {
			// Not written by a worker: the key's events still wait behind whatever it has parked,
			// which the next window replays.
			st = KeyState{Subject: subjectOfStateKey(k), Hold: HoldWindow,
				Reason: fmt.Sprintf("its state in %s could not be read (%v): replayed at the next window", KeyStateBucket, cmp.Or[error](err, errors.New("it names another subject")))}
		}
		st.Revision = e.Revision()
		out = append(out, &st)
	}
	return out, nil
}

// subjectOfStateKey is the stored subject a KV key k.<p>.<object>.<keytoken> stands for.
func subjectOfStateKey(k string) string {
	return PartitionedPrefix + "." + strings.TrimPrefix(k, "k.")
}

// Park appends one event of the key to IDM_PARKED: the event stored under subject at streamSeq in
// IDM_EVENTS at time stored. It is idempotent per events-stream sequence (a redelivered event
// parked twice is stored once).
func (s *ParkStore) Park(ctx context.Context, subject string, streamSeq uint64, stored time.Time, msgID string, data []byte, hdr nats.Header) error {
	m := nats.NewMsg(parkedSubject(subject))
	m.Data = data
	for k, v := range hdr {
		if k == HeaderMsgID || strings.HasPrefix(k, "Nats-") {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(HeaderParkedSubject, subject)
	m.Header.Set(HeaderParkedSeq, strconv.FormatUint(streamSeq, 10))
	if stored.IsZero() {
		m.Header.Del(HeaderParkedStoredAt) // the event's own, if it had one, says nothing of IDM_EVENTS
	} else {
		m.Header.Set(HeaderParkedStoredAt, stored.UTC().Format(time.RFC3339Nano))
	}
	m.Header.Set(HeaderEventID, msgID)
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithMsgID("park/"+strconv.FormatUint(streamSeq, 10))); err != nil {
		return fmt.Errorf("park event %s of %s: %w", msgID, subject, err)
	}
	return nil
}

// Parked returns the key's parked events, oldest first.
func (s *ParkStore) Parked(ctx context.Context, subject string) ([]ParkedEvent, error) {
	subj := parkedSubject(subject)
	var out []ParkedEvent
	for seq := uint64(1); ; {
		m, err := s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("read parked events of %s: %w", subject, err)
		}
		pe := ParkedEvent{Seq: m.Sequence, Subject: m.Header.Get(HeaderParkedSubject), MsgID: m.Header.Get(HeaderEventID), Data: m.Data, Header: nats.Header{}, Parked: m.Time}
		for k, v := range m.Header {
			pe.Header[k] = v
		}
		// The consume loop names the final outcome after the event's own message id.
		pe.Header.Set(HeaderMsgID, pe.MsgID)
		pe.StreamSeq, _ = strconv.ParseUint(m.Header.Get(HeaderParkedSeq), 10, 64)
		pe.Stored, _ = time.Parse(time.RFC3339Nano, m.Header.Get(HeaderParkedStoredAt))
		out = append(out, pe)
		seq = m.Sequence + 1
	}
}

// Remove deletes a parked event once it has its final outcome.
// One removed already (by an earlier run of it) is removed: the server reports "sequence not
// found" inside a generic deletion error, so a failure is checked by reading the message back.
func (s *ParkStore) Remove(ctx context.Context, seq uint64) error {
	err := s.stream.DeleteMsg(ctx, seq)
	if err == nil || errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if _, gerr := s.stream.GetMsg(ctx, seq); errors.Is(gerr, jetstream.ErrMsgNotFound) {
		return nil
	}
	return fmt.Errorf("remove parked event %d: %w", seq, err)
}

// parkedMsg is a parked event presented to the consume loop as a delivery: acknowledging it removes
// it from IDM_PARKED; handing it back leaves it there.
type parkedMsg struct {
	store *ParkStore
	pe    ParkedEvent
}

var _ jetstream.Msg = (*parkedMsg)(nil)

func (m *parkedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Stream: m.pe.StreamSeq},
		NumDelivered: 2, // it was delivered before it was parked: its effects may be in the target
		Stream:       EventsStream,
	}, nil
}
func (m *parkedMsg) Data() []byte         { return m.pe.Data }
func (m *parkedMsg) Headers() nats.Header { return m.pe.Header }
func (m *parkedMsg) Subject() string      { return m.pe.Subject }
func (m *parkedMsg) Reply() string        { return "" }
func (m *parkedMsg) Ack() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return m.store.Remove(ctx, m.pe.Seq)
}
func (m *parkedMsg) DoubleAck(ctx context.Context) error { return m.store.Remove(ctx, m.pe.Seq) }
func (m *parkedMsg) Nak() error                          { return nil }
func (m *parkedMsg) NakWithDelay(time.Duration) error    { return nil }
func (m *parkedMsg) InProgress() error                   { return nil }
func (m *parkedMsg) Term() error                         { return m.Ack() }
func (m *parkedMsg) TermWithReason(string) error         { return m.Ack() }
