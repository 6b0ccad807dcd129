// Package events holds scimflow's messaging contracts and their JetStream plumbing: the CloudEvents
// envelope of an identity event and its validation, the subjects events, outcomes and dead letters
// travel on, the stream topology, the partitioned consume loop, and the publishing of outcomes and
// dead letters (DESIGN.md §3 and §5).
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// SpecVersion is the CloudEvents version of every scimflow event.
const SpecVersion = "1.0"

// Operations an event may ask for.
const (
	OpCreate           = "Create"
	OpUpdate           = "Update"
	OpDelete           = "Delete"
	OpUpsert           = "Upsert"
	OpAddAssignment    = "AddAssignment"
	OpRemoveAssignment = "RemoveAssignment"
)

// Event is an identity event: a CloudEvents 1.0 envelope in structured JSON mode whose data is one
// identity change.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject,omitempty"`
	Time            time.Time `json:"time,omitzero"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	Data            Change    `json:"data"`
}

// Change is the data of an identity event: what changed for which object of the data model.
type Change struct {
	// Object names an object of the data model, such as User or Group.
	Object string `json:"object"`
	// Operation is Create, Update, Delete, Upsert, AddAssignment or RemoveAssignment.
	Operation string `json:"operation"`
	// Key holds the values of the object's isKey properties by property name.
	Key map[string]any `json:"key"`
	// Attributes holds property values by data-model property name.
	Attributes map[string]any `json:"attributes,omitempty"`
	// Actions optionally overrides a property's task-mapping action (add, modify, remove).
	Actions map[string]string `json:"actions,omitempty"`
}

// NewEvent builds a valid envelope for change: the type and subject follow from the change, time is
// now unless set later.
func NewEvent(id, source string, change Change) *Event {
	return &Event{
		SpecVersion:     SpecVersion,
		ID:              id,
		Source:          source,
		Type:            EventType(change.Object, change.Operation),
		Subject:         change.Object + "/" + KeyString(change.Key),
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		Data:            change,
	}
}

// EventType is the CloudEvents type of a change: identity.<object>.<operation> in lower case.
func EventType(object, operation string) string {
	return "identity." + strings.ToLower(object) + "." + strings.ToLower(operation)
}

// Decode parses and validates one event. Every failure is a *DecodeError saying what is wrong and
// where; the event is returned as far as it could be read, so that a dead letter can still name its
// id and object.
func Decode(raw []byte) (*Event, error) {
	var ev Event
	if err := defaultValidator().validate(raw); err != nil {
		// Read what can be read for the dead letter; ignore a second error.
		_ = json.Unmarshal(raw, &ev)
		return &ev, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return &ev, &DecodeError{Reason: "the event does not fit the envelope", Err: err}
	}
	if want := EventType(ev.Data.Object, ev.Data.Operation); ev.Type != want {
		return &ev, &DecodeError{
			Pointer: "/type",
			Reason:  fmt.Sprintf("type %q does not match data (object %q, operation %q): want %q", ev.Type, ev.Data.Object, ev.Data.Operation, want),
		}
	}
	return &ev, nil
}

// Encode renders the event as JSON.
func (e *Event) Encode() ([]byte, error) {
	return json.Marshal(e)
}

// DecodeError says why an event was refused at intake.
type DecodeError struct {
	Pointer string // JSON pointer of the offending value, "" for the whole document
	Reason  string
	Err     error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("invalid event")
	if e.Pointer != "" {
		b.WriteString(" at ")
		b.WriteString(e.Pointer)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *DecodeError) Unwrap() error { return e.Err }
