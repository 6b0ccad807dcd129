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

// Headers of a replayed event. A replay is a new message with a new Nats-Msg-Id,
// <id>/replay/<seq> (<id>/replay/dlq-<seq> from the dead-letter stream), so that JetStream does not
// drop it as a duplicate of the original, while replaying the same message twice within the
// duplicate window is dropped.
const (
	// HeaderReplay is the sequence the event was replayed from, in the stream HeaderReplayStream
	// names (IDM_EVENTS or IDM_DLQ).
	HeaderReplay       = "Scimflow-Replay"
	HeaderReplayStream = "Scimflow-Replay-Stream"
	// HeaderOriginalSeq is the IDM_EVENTS sequence of the event as first published, kept across
	// replays of replays.
	HeaderOriginalSeq = "Scimflow-Original-Seq"
)

// ReplayMsgID is the message id of a replay of the message with id at seq of IDM_EVENTS.
func ReplayMsgID(id string, seq uint64) string { return id + "/replay/" + strconv.FormatUint(seq, 10) }

// DLQReplayMsgID is the message id of a replay of the dead letter at seq of IDM_DLQ.
func DLQReplayMsgID(id string, dlqSeq uint64) string {
	return id + "/replay/dlq-" + strconv.FormatUint(dlqSeq, 10)
}

// ReplayRange selects the retained events of IDM_EVENTS to replay: from Since or FromSeq (one of
// them; neither means the first retained event) up to ToSeq (0: the last event stored when the
// replay starts, so that a replay never replays itself), of one Object or all.
type ReplayRange struct {
	Since   time.Time
	FromSeq uint64
	ToSeq   uint64
	Object  string
}

// Validate names the first contradiction.
func (r ReplayRange) Validate() error {
	if !r.Since.IsZero() && r.FromSeq > 0 {
		return errors.New("give a start time or a start sequence, not both")
	}
	if r.ToSeq > 0 && r.ToSeq < r.FromSeq {
		return fmt.Errorf("the last sequence %d is before the first %d", r.ToSeq, r.FromSeq)
	}
	if r.Object != "" && SubjectToken(r.Object) != r.Object {
		return fmt.Errorf("object %q is not a data-model object name", r.Object)
	}
	return nil
}

func (r ReplayRange) consumerConfig() jetstream.OrderedConsumerConfig {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if r.Object != "" {
		cfg.FilterSubjects = []string{PartitionedPrefix + ".*." + r.Object + ".*"}
	}
	switch {
	case !r.Since.IsZero():
		since := r.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case r.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.FromSeq
	}
	return cfg
}

// ReplayedEvent is one event of a replay, as it was (or, in a dry run, would be) republished.
type ReplayedEvent struct {
	Seq     uint64    // in IDM_EVENTS
	Time    time.Time // when it was stored
	Object  string
	Subject string // where it is republished: idm.events.<object>.<keytoken>
	EventID string // the event's id, when the payload is readable
	MsgID   string // the replay's message id
	// Skipped says why the event is not republished: a replay copy of an event this replay
	// republishes too.
	Skipped string
	// Duplicate: JetStream already had a message with this id (the same replay ran before within
	// the duplicate window); it was not stored again.
	Duplicate bool
	// NewSeq is the replay's sequence in IDM_EVENTS.
	NewSeq uint64
}

// ReplaySummary says what a replay did.
type ReplaySummary struct {
	// First and Last are the sequences of the first and last event read (0 when none).
	First, Last uint64
	// UpTo is the last sequence the replay would read (ToSeq, or the last stored when it began).
	UpTo uint64
	// Read counts the events read; Republished those stored again; Duplicates those JetStream
	// dropped as already replayed; Copies the replay copies skipped.
	Read, Republished, Duplicates, Copies int
	ByObject                              map[string]int
	// MsgIDs are the message ids republished, by object: their final outcomes have these ids.
	MsgIDs map[string]string
	DryRun bool
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// DryRun reads and reports without publishing.
	DryRun bool
	// OnEvent, when set, is called for every event read, after it was republished (or not).
	OnEvent func(ReplayedEvent)
}

// Replay republishes retained events of IDM_EVENTS in r, in stream order, each on the subject it
// was first published on and with the message id ReplayMsgID, so that they go through the consume
// loop again as new deliveries: the worker plans each against the target's current state (it
// never resends blindly), which converges the target and, where the state already matches, sends
// nothing (skipped). A replay copy of an event this replay also republishes is skipped, so that a
// range holding both the original and an earlier replay of it applies it once. Events are
// published one at a time, each acknowledged before the next, so that a key's events are stored
// again in their order; on an error Replay stops and returns the summary so far with the error.
func Replay(ctx context.Context, js jetstream.JetStream, r ReplayRange, opt ReplayOptions) (*ReplaySummary, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	sum := &ReplaySummary{ByObject: map[string]int{}, MsgIDs: map[string]string{}, DryRun: opt.DryRun}
	selected := map[uint64]bool{} // original sequences replayed by this run
	err := scanStream(ctx, js, EventsStream, r.consumerConfig(), r.ToSeq, &sum.UpTo, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		seq := md.Sequence.Stream
		if sum.First == 0 {
			sum.First = seq
		}
		sum.Last = seq
		sum.Read++
		_, object, keyToken, err := ParsePartitioned(m.Subject())
		if err != nil {
			return fmt.Errorf("event at seq %d: %w", seq, err)
		}
		re := ReplayedEvent{
			Seq: seq, Time: md.Timestamp, Object: object, Subject: EventsPrefix + "." + object + "." + keyToken,
			EventID: payloadID(m.Data()),
		}
		orig := seq
		if o, err := strconv.ParseUint(m.Headers().Get(HeaderOriginalSeq), 10, 64); err == nil && o > 0 {
			orig = o
		}
		if selected[orig] {
			re.Skipped = fmt.Sprintf("a replay of seq %d, which this replay republishes", orig)
			sum.Copies++
			if opt.OnEvent != nil {
				opt.OnEvent(re)
			}
			return nil
		}
		selected[orig] = true
		id := m.Headers().Get(HeaderMsgID)
		if id == "" {
			id = cmp.Or(re.EventID, "seq-"+strconv.FormatUint(seq, 10))
		}
		re.MsgID = ReplayMsgID(id, seq)
		if !opt.DryRun {
			msg := nats.NewMsg(re.Subject)
			msg.Data = m.Data()
			for k, vs := range m.Headers() {
				if strings.HasPrefix(k, "Nats-") {
					continue // the message id is new; expectations were the first publisher's
				}
				msg.Header[k] = vs
			}
			msg.Header.Set(HeaderReplay, strconv.FormatUint(seq, 10))
			msg.Header.Set(HeaderReplayStream, EventsStream)
			msg.Header.Set(HeaderOriginalSeq, strconv.FormatUint(orig, 10))
			ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(re.MsgID))
			if err != nil {
				return fmt.Errorf("republish seq %d as %q: %w (replay again from --from-seq %d: events already republished are dropped as duplicates within the duplicate window)", seq, re.MsgID, err, seq)
			}
			re.NewSeq, re.Duplicate = ack.Sequence, ack.Duplicate
		}
		if re.Duplicate {
			sum.Duplicates++
		} else {
			sum.Republished++
			sum.ByObject[object]++
			sum.MsgIDs[re.MsgID] = object
		}
		if opt.OnEvent != nil {
			opt.OnEvent(re)
		}
		return nil
	})
	return sum, err
}

// payloadID reads the id of an event from its payload, "" when it can't.
func payloadID(raw []byte) string {
	var probe struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return ""
	}
	return probe.ID
}

// scanTimeout is how long a scan waits for the next message before it asks the server whether
// any is left (messages deleted or expired since the scan began are never delivered).
const scanTimeout = 3 * time.Second

// scanStream calls fn for every message of stream that cfg selects, in stream order, up to the
// sequence upTo (0: the last one stored when the scan begins), which it reports in *last. It
// stops at the first error of fn.
func scanStream(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, upTo uint64, last *uint64, fn func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	state := st.CachedInfo().State
	if upTo == 0 || upTo > state.LastSeq {
		upTo = state.LastSeq
	}
	if last != nil {
		*last = upTo
	}
	if state.Msgs == 0 || upTo < state.FirstSeq {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		return nil
	}
	msgs, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer msgs.Stop()
	for {
		nctx, cancel := context.WithTimeout(ctx, scanTimeout)
		m, err := msgs.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				if ci, ierr := cons.Info(ctx); ierr == nil && ci.NumPending == 0 {
					return nil
				}
				continue
			}
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("read stream %s: %w", stream, err)
		}
		if md.Sequence.Stream > upTo {
			return nil
		}
		if err := fn(m, md); err != nil {
			return err
		}
		if md.Sequence.Stream == upTo || md.NumPending == 0 {
			return nil
		}
	}
}

// ReplayOf says what an outcome id (or message id) made by ReplayMsgID or DLQReplayMsgID replays,
// for people: "dead letter 12" or "sequence 57 of IDM_EVENTS"; "" when it is no replay.
func ReplayOf(id string) string {
	i := strings.LastIndex(id, "/replay/")
	if i < 0 {
		return ""
	}
	rest := id[i+len("/replay/"):]
	rest, _, _ = strings.Cut(rest, "/") // a progress outcome's /<status>/<attempt>
	if seq, ok := strings.CutPrefix(rest, "dlq-"); ok {
		return "dead letter " + seq + " of " + DLQStream
	}
	return "sequence " + rest + " of " + EventsStream
}
