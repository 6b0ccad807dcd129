package events

import (
	"context"
	"fmt"
	"strconv"
	"time"

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
)

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
// headers.
func (p *Publisher) DeadLetter(ctx context.Context, d DeadLetter) error {
	msg := nats.NewMsg(DLQSubject(d.Object))
	msg.Data = d.Payload
	msg.Header.Set(HeaderEventID, d.EventID)
	msg.Header.Set(HeaderEventSubject, d.EventSubject)
	msg.Header.Set(HeaderStreamSeq, strconv.FormatUint(d.StreamSeq, 10))
	msg.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempt))
	msg.Header.Set(HeaderErrorClass, d.ErrorClass)
	msg.Header.Set(HeaderReason, d.Reason)
	msg.Header.Set(HeaderDeadLetteredAt, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID("dlq/"+d.MsgID)); err != nil {
		return fmt.Errorf("dead-letter event %q: %w", d.EventID, err)
	}
	return nil
}
