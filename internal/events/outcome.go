package events

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// Status is what became of an event.
type Status string

// Final statuses: exactly one per input event.
const (
	StatusSucceeded    Status = "succeeded"     // the target now reflects the event
	StatusSkipped      Status = "skipped"       // nothing needed sending (already in the desired state, already absent)
	StatusDeadLettered Status = "dead_lettered" // kept in the dead-letter stream with its reason; replayable
	StatusRejected     Status = "rejected"      // refused by policy (e.g. a held delete that was declined)
)

// Progress statuses: may precede the final outcome, under their own ids.
const (
	StatusDeferred Status = "deferred" // retryable failure: redelivered at the next sync window
	StatusHeld     Status = "held"     // waiting for an operator (deletion guard)
)

// Final reports whether s ends an event's life.
func (s Status) Final() bool {
	switch s {
	case StatusSucceeded, StatusSkipped, StatusDeadLettered, StatusRejected:
		return true
	}
	return false
}

// Outcome is published for every input event (DESIGN.md §3). Its JSON form is defined by
// schemas/outcome.schema.json.
type Outcome struct {
	// ID is the outcome's own id: "<input id>" for the final outcome (so JetStream deduplicates a
	// republished final outcome), "<input id>/deferred/<attempt>" and the like for progress outcomes.
	ID        string         `json:"id"`
	InputID   string         `json:"inputId"`
	Time      time.Time      `json:"time"`
	Object    string         `json:"object"`
	Key       map[string]any `json:"key,omitempty"`
	Operation string         `json:"operation,omitempty"`
	Status    Status         `json:"status"`
	Final     bool           `json:"final"`
	// TargetID is the id of the object in the target, when known.
	TargetID string `json:"targetId,omitempty"`
	// Reason explains a skip, a deferral, a hold or a dead letter in one sentence.
	Reason string `json:"reason,omitempty"`
	// Requests are the HTTP calls made for this attempt, without bodies.
	Requests []Call `json:"requests,omitempty"`
	// Attempt counts deliveries of the input event, from 1.
	Attempt int `json:"attempt"`
	// Error is set for deferred and dead-lettered outcomes.
	Error *OutcomeError `json:"error,omitempty"`
	// NextAttemptAt is when a deferred event will be tried again.
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	// Where the input came from, for tracing.
	Stream    string `json:"stream,omitempty"`
	StreamSeq uint64 `json:"streamSeq,omitempty"`
	Partition int    `json:"partition"`
	Worker    string `json:"worker,omitempty"`
	// DurationMs is the processing time of this attempt.
	DurationMs float64 `json:"durationMs"`

	// published is the JSON the Publisher sent, so that the provisioning log stores the same bytes
	// without encoding them again.
	published []byte
}

// Call is one HTTP request made for an event.
type Call struct {
	Method     string  `json:"method"`
	Path       string  `json:"path"`
	Status     int     `json:"status,omitempty"`
	DurationMs float64 `json:"durationMs"`
	Attempt    int     `json:"attempt,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// OutcomeError classifies a failure.
type OutcomeError struct {
	// Class is one of invalid, config, permanent, conflict, not_found, retryable, unresolved,
	// exhausted, internal (the worker panicked), systemic (a pause reason) or held_delete.
	Class   string `json:"class"`
	Message string `json:"message"`
	Status  int    `json:"status,omitempty"`
	// ScimType is the SCIM error type the target answered, when it did.
	ScimType string `json:"scimType,omitempty"`
}

// Encode renders the outcome as JSON: json.Marshal's bytes (TestOutcomeEncodeIsJSONMarshals),
// written without reflection, since every event publishes one.
func (o *Outcome) Encode() ([]byte, error) {
	b := make([]byte, 0, 512)
	str := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = jsonx.AppendString(b, v, true)
	}
	integer := func(name string, v int64, omitEmpty bool) {
		if omitEmpty && v == 0 {
			return
		}
		b = append(b, ',', '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, v, 10)
	}
	var err error
	b = append(b, `{"id":`...)
	b = jsonx.AppendString(b, o.ID, true)
	str("inputId", o.InputID, false)
	b = append(b, `,"time":`...)
	if b, err = jsonx.AppendTime(b, o.Time); err != nil {
		return nil, err
	}
	str("object", o.Object, false)
	if len(o.Key) > 0 {
		b = append(b, `,"key":`...)
		if b, err = jsonx.Append(b, o.Key, true); err != nil {
			return nil, err
		}
	}
	str("operation", o.Operation, true)
	str("status", string(o.Status), false)
	if o.Final {
		b = append(b, `,"final":true`...)
	} else {
		b = append(b, `,"final":false`...)
	}
	str("targetId", o.TargetID, true)
	str("reason", o.Reason, true)
	if len(o.Requests) > 0 {
		b = append(b, `,"requests":[`...)
		for i, c := range o.Requests {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"method":`...)
			b = jsonx.AppendString(b, c.Method, true)
			str("path", c.Path, false)
			integer("status", int64(c.Status), true)
			b = append(b, `,"durationMs":`...)
			if b, err = jsonx.AppendFloat(b, c.DurationMs); err != nil {
				return nil, err
			}
			integer("attempt", int64(c.Attempt), true)
			str("error", c.Error, true)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	integer("attempt", int64(o.Attempt), false)
	if e := o.Error; e != nil {
		b = append(b, `,"error":{"class":`...)
		b = jsonx.AppendString(b, e.Class, true)
		str("message", e.Message, false)
		integer("status", int64(e.Status), true)
		str("scimType", e.ScimType, true)
		b = append(b, '}')
	}
	if !o.NextAttemptAt.IsZero() {
		b = append(b, `,"nextAttemptAt":`...)
		if b, err = jsonx.AppendTime(b, o.NextAttemptAt); err != nil {
			return nil, err
		}
	}
	str("stream", o.Stream, true)
	if o.StreamSeq != 0 {
		b = append(b, `,"streamSeq":`...)
		b = strconv.AppendUint(b, o.StreamSeq, 10)
	}
	integer("partition", int64(o.Partition), false)
	str("worker", o.Worker, true)
	b = append(b, `,"durationMs":`...)
	if b, err = jsonx.AppendFloat(b, o.DurationMs); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// wire is the outcome's JSON as published, or encoded now when it was not.
func (o *Outcome) wire() ([]byte, error) {
	if o.published != nil {
		return o.published, nil
	}
	return o.Encode()
}

// DecodeOutcome parses an outcome.
func DecodeOutcome(b []byte) (*Outcome, error) {
	var o Outcome
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, err
	}
	return &o, nil
}
