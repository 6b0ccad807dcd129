package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers scimflow sets on dead letters and replays.
const (
	HeaderMsgID          = "Nats-Msg-Id"
	HeaderReason         = "Scimflow-Reason"
	HeaderErrorClass     = "Scimflow-Error-Class"
	HeaderEventID        = "Scimflow-Event-Id"
	HeaderEventSubject   = "Scimflow-Event-Subject"
	HeaderStreamSeq      = "Scimflow-Stream-Seq"
	HeaderAttempt        = "Scimflow-Attempt"
	HeaderDeadLetteredAt = "Scimflow-Dead-Lettered-At"
	// HeaderPayloadTruncated is "true" on a dead letter that keeps only the first bytes of its
	// event (the whole would not fit the server's max_payload); HeaderPayloadSize is the event's
	// size in bytes. The event itself stays in IDM_EVENTS at HeaderStreamSeq while retained.
	HeaderPayloadTruncated = "Scimflow-Payload-Truncated"
	HeaderPayloadSize      = "Scimflow-Payload-Size"
)

// DeadLetterPayloadLimit is how much of its event a dead letter keeps when the whole would not fit
// the server's max_payload: the first 64 KiB, or less when the server takes less.
const DeadLetterPayloadLimit = 64 << 10

// Publisher publishes events, outcomes and dead letters with the ids that make them idempotent.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// PublishEvent publishes ev on its subject with Nats-Msg-Id = ev.ID, so that JetStream drops a
// duplicate within the stream's duplicate window.
func (p *Publisher) PublishEvent(ctx context.Context, ev *Event) (*jetstream.PubAck, error) {
	raw, err := ev.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode event %q: %w", ev.ID, err)
	}
	return p.PublishRaw(ctx, EventSubject(ev.Data.Object, ev.Data.Key), ev.ID, raw)
}

// PublishRaw publishes an already encoded event (possibly malformed: the worker dead-letters it) on
// subject with the given message id.
func (p *Publisher) PublishRaw(ctx context.Context, subject, msgID string, raw []byte) (*jetstream.PubAck, error) {
	msg := nats.NewMsg(subject)
	msg.Data = raw
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	if err != nil {
		return nil, fmt.Errorf("publish event %q on %s: %w", msgID, subject, err)
	}
	return ack, nil
}

// Outcome publishes o on idm.outcomes.<object>.<status> with Nats-Msg-Id = o.ID.
func (p *Publisher) Outcome(ctx context.Context, o *Outcome) error {
	raw, err := o.Encode()
	if err != nil {
		return fmt.Errorf("encode outcome %q: %w", o.ID, err)
	}
	msg := nats.NewMsg(OutcomeSubject(o.Object, o.Status))
	msg.Data = raw
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID("outcome/"+o.ID)); err != nil {
		return fmt.Errorf("publish outcome %q: %w", o.ID, err)
	}
	o.published = raw
	return nil
}

// DeadLetter is what the dead-letter stream keeps of a failed event.
type DeadLetter struct {
	EventID      string
	MsgID        string // the input's Nats-Msg-Id, which identifies this delivery's final outcome
	Object       string
	EventSubject string // the subject to republish on when replaying
	StreamSeq    uint64
	Attempt      int
	ErrorClass   string
	Reason       string
	Payload      []byte // the original event, byte for byte
}

// DeadLetter publishes d on idm.dlq.<object>, the original payload as the body and the reason in
// headers. A dead letter is never lost to its size: when the payload and the headers would exceed
// the server's max_payload (the event fitted alone), it keeps the payload's first
// DeadLetterPayloadLimit bytes (fewer if the server takes fewer) with HeaderPayloadTruncated and
// HeaderPayloadSize, and HeaderStreamSeq says where the whole event is in IDM_EVENTS.
func (p *Publisher) DeadLetter(ctx context.Context, d DeadLetter) error {
	msg := nats.NewMsg(DLQSubject(d.Object))
	msg.Data = d.Payload
	setHeader(msg, HeaderEventID, d.EventID)
	setHeader(msg, HeaderEventSubject, d.EventSubject)
	msg.Header.Set(HeaderStreamSeq, strconv.FormatUint(d.StreamSeq, 10))
	msg.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	setHeader(msg, HeaderErrorClass, d.ErrorClass)
	setHeader(msg, HeaderReason, d.Reason)
	msg.Header.Set(HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	msgID := "dlq/" + d.MsgID
	if limit := p.js.Conn().MaxPayload(); limit > 0 && int64(len(msg.Data)+headerSize(msg.Header, msgID)) > limit {
		truncate(msg, len(d.Payload), limit, msgID)
	}
	_, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	// The server refused the size (a stream's max_msg_size, or a max_payload lowered since we
	// connected): keep less, down to the headers alone, which still say where the event is.
	for _, keep := range []int{DeadLetterPayloadLimit, 4 << 10, 0} {
		if err == nil || !tooLarge(err) {
			break
		}
		if keep >= len(msg.Data) {
			continue
		}
		msg.Header.Set(HeaderPayloadTruncated, "true")
		msg.Header.Set(HeaderPayloadSize, strconv.Itoa(len(d.Payload)))
		msg.Data = msg.Data[:keep]
		_, err = p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID))
	}
	if err != nil {
		return fmt.Errorf("dead-letter event %q: %w", d.EventID, err)
	}
	return nil
}

// maxHeaderValue bounds one header value of a dead letter: a reason can quote a lot of the event.
const maxHeaderValue = 4 << 10

// setHeader sets a header value that comes from the event or its failure: line breaks would end
// the header block and are made spaces, and a very long value is cut.
func setHeader(msg *nats.Msg, name, value string) {
	value = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)
	if len(value) > maxHeaderValue {
		cut := maxHeaderValue
		for cut > 0 && !utf8.RuneStart(value[cut]) {
			cut--
		}
		value = value[:cut] + "…"
	}
	msg.Header.Set(name, value)
}

// truncate keeps the first bytes of msg's payload that fit maxPayload beside its headers, at most
// DeadLetterPayloadLimit, and says so in the headers.
func truncate(msg *nats.Msg, size int, maxPayload int64, msgID string) {
	msg.Header.Set(HeaderPayloadTruncated, "true")
	msg.Header.Set(HeaderPayloadSize, strconv.Itoa(size))
	// Headers JetStream and the client add on the way (a margin for their framing).
	const slack = 256
	keep := min(int64(DeadLetterPayloadLimit), maxPayload-int64(headerSize(msg.Header, msgID))-slack, int64(len(msg.Data)))
	msg.Data = msg.Data[:max(keep, 0)]
}

// headerSize is the size of h on the wire with the message id set: NATS/1.0, then "Name: value"
// lines, each ending in CRLF, and a blank line.
func headerSize(h nats.Header, msgID string) int {
	n := len("NATS/1.0\r\n\r\n") + len(HeaderMsgID) + len(": \r\n") + len(msgID)
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// tooLarge reports whether err refuses a message for its size.
func tooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}
