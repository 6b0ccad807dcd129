// Package events holds scimflow's messaging contracts and their JetStream plumbing: the CloudEvents
// envelope of an identity event and its validation, the subjects events, outcomes and dead letters
// travel on, the stream topology, the partitioned consume loop, and the publishing of outcomes and
// dead letters (DESIGN.md §3 and §5).
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
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
	if err := textError(raw); err != nil {
		// encoding/json would turn the offending text into U+FFFD and the target would store it:
		// refuse it, naming where it is.
		_ = json.Unmarshal(raw, &ev)
		return &ev, err
	}
	doc, err := defaultValidator().parse(raw)
	if err != nil {
		// Read what can be read for the dead letter; ignore a second error.
		_ = json.Unmarshal(raw, &ev)
		return &ev, err
	}
	// The schema has checked every field's type: read the event from the document it parsed
	// rather than parse the JSON a second time (a third of intake's cost).
	if err := ev.fromDocument(doc); err != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		_ = dec.Decode(&ev)
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

// fromDocument fills e from a schema-checked JSON document (json.Number for numbers), as
// encoding/json would decode the same text into it: unknown members ignored, maps kept as read.
func (e *Event) fromDocument(doc any) error {
	m, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("the event is a JSON %T, not an object", doc)
	}
	str := func(obj map[string]any, name string) (string, error) {
		switch v := obj[name].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		default:
			return "", fmt.Errorf("%s: a %T where a string belongs", name, v)
		}
	}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"specversion", &e.SpecVersion}, {"id", &e.ID}, {"source", &e.Source}, {"type", &e.Type}, {"subject", &e.Subject}, {"datacontenttype", &e.DataContentType}} {
		if *f.dst, err = str(m, f.name); err != nil {
			return err
		}
	}
	if t, ok := m["time"]; ok && t != nil {
		s, ok := t.(string)
		if !ok {
			return fmt.Errorf("time: a %T where a string belongs", t)
		}
		if err := e.Time.UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("time: %w", err)
		}
	}
	data, ok := m["data"].(map[string]any)
	if !ok {
		return fmt.Errorf("data: a %T where an object belongs", m["data"])
	}
	if e.Data.Object, err = str(data, "object"); err != nil {
		return fmt.Errorf("data.%w", err)
	}
	if e.Data.Operation, err = str(data, "operation"); err != nil {
		return fmt.Errorf("data.%w", err)
	}
	object := func(name string) (map[string]any, error) {
		switch v := data[name].(type) {
		case nil:
			return nil, nil
		case map[string]any:
			return v, nil
		default:
			return nil, fmt.Errorf("data.%s: a %T where an object belongs", name, v)
		}
	}
	if e.Data.Key, err = object("key"); err != nil {
		return err
	}
	if e.Data.Attributes, err = object("attributes"); err != nil {
		return err
	}
	actions, err := object("actions")
	if err != nil {
		return err
	}
	if actions != nil {
		e.Data.Actions = make(map[string]string, len(actions))
		for k, v := range actions {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("data.actions.%s: a %T where a string belongs", k, v)
			}
			e.Data.Actions[k] = s
		}
	}
	return nil
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

// textError finds the first string of raw, member name or value, that is not Unicode text: bytes
// that are not valid UTF-8, or a \u escape of a lone UTF-16 surrogate (a high surrogate not followed
// by a low one, or a low one alone). encoding/json replaces either with U+FFFD without a word, and
// the target would then store a value nobody sent. The error names the value by its JSON pointer
// (a member name by its object's). Syntax errors are left to the schema check: textError returns
// nil where raw stops being JSON.
func textError(raw []byte) *DecodeError {
	if utf8.Valid(raw) && !bytes.Contains(raw, []byte(`\u`)) {
		return nil // the common case: nothing to decode that could go wrong
	}
	s := &textScanner{raw: raw}
	return s.scan()
}

// textScanner walks a JSON document without recursion (nesting depth costs memory, not stack),
// keeping the path to the current value for the pointer.
type textScanner struct {
	raw  []byte
	i    int
	path []textFrame
}

type textFrame struct {
	object bool
	name   string // the current member's name (objects)
	index  int    // the current element's index (arrays)
}

func (s *textScanner) pointer() string { return s.pointerOf(len(s.path)) }

// pointerOf is the pointer of the value the first n frames lead to.
func (s *textScanner) pointerOf(n int) string {
	var b strings.Builder
	for _, f := range s.path[:n] {
		b.WriteByte('/')
		if f.object {
			b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(f.name))
		} else {
			b.WriteString(strconv.Itoa(f.index))
		}
	}
	return b.String()
}

func (s *textScanner) skipSpace() {
	for s.i < len(s.raw) {
		switch s.raw[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *textScanner) peek() byte {
	s.skipSpace()
	if s.i >= len(s.raw) {
		return 0
	}
	return s.raw[s.i]
}

func (s *textScanner) scan() *DecodeError {
	for {
		// A value starts here.
		switch s.peek() {
		case '{':
			s.i++
			s.path = append(s.path, textFrame{object: true})
			if s.peek() == '}' {
				s.i++
				s.path = s.path[:len(s.path)-1]
			} else if err, ok := s.member(); !ok || err != nil {
				return err
			} else {
				continue
			}
		case '[':
			s.i++
			s.path = append(s.path, textFrame{})
			if s.peek() == ']' {
				s.i++
				s.path = s.path[:len(s.path)-1]
			} else {
				continue
			}
		case '"':
			s.i++
			if _, problem, ok := s.str(false); !ok {
				return nil
			} else if problem != "" {
				return &DecodeError{Pointer: s.pointer(), Reason: problem}
			}
		case 0:
			return nil
		default:
			// A number or a literal; the schema check judges it.
			for s.i < len(s.raw) && !strings.ContainsRune(",]} \t\n\r", rune(s.raw[s.i])) {
				s.i++
			}
		}
		// After a value: close containers, or move to the next element or member.
		for {
			if len(s.path) == 0 {
				return nil
			}
			top := &s.path[len(s.path)-1]
			c := s.peek()
			switch {
			case c == ',' && top.object:
				s.i++
				if err, ok := s.member(); !ok || err != nil {
					return err
				}
			case c == ',':
				s.i++
				top.index++
			case c == '}' && top.object, c == ']' && !top.object:
				s.i++
				s.path = s.path[:len(s.path)-1]
				continue
			default:
				return nil // not JSON
			}
			break
		}
	}
}

// member reads a member name and its colon; ok is false where raw stops being JSON.
func (s *textScanner) member() (err *DecodeError, ok bool) {
	if s.peek() != '"' {
		return nil, false
	}
	s.i++
	name, problem, ok := s.str(true)
	if !ok {
		return nil, false
	}
	if problem != "" {
		// The pointer of the object: the name can't be written.
		return &DecodeError{Pointer: s.pointerOf(len(s.path) - 1), Reason: "a member name " + problem}, true
	}
	s.path[len(s.path)-1].name = name
	if s.peek() != ':' {
		return nil, false
	}
	s.i++
	return nil, true
}

// str reads a string body up to its closing quote. It returns the decoded text when keep is set,
// the problem with the text if any (then it stops at once), and ok false where raw stops being
// JSON.
func (s *textScanner) str(keep bool) (text, problem string, ok bool) {
	var b strings.Builder
	for s.i < len(s.raw) {
		c := s.raw[s.i]
		switch {
		case c == '"':
			s.i++
			return b.String(), "", true
		case c == '\\':
			if s.i+1 >= len(s.raw) {
				return "", "", false
			}
			if s.raw[s.i+1] != 'u' {
				if keep {
					b.WriteString(unescapeOne(s.raw[s.i+1]))
				}
				s.i += 2
				continue
			}
			r, ok := hex4(s.raw, s.i+2)
			if !ok {
				return "", "", false
			}
			esc := string(s.raw[s.i : s.i+6])
			at := s.i
			s.i += 6
			if utf16.IsSurrogate(r) {
				lo, isLow := rune(0), false
				if r < 0xdc00 && s.i+1 < len(s.raw) && s.raw[s.i] == '\\' && s.raw[s.i+1] == 'u' {
					lo, isLow = hex4(s.raw, s.i+2)
					isLow = isLow && lo >= 0xdc00 && lo <= 0xdfff
				}
				if !isLow {
					return "", fmt.Sprintf("holds the lone surrogate %s (offset %d): a JSON string escapes a character outside the BMP as a pair of surrogates, and half a pair is no character", esc, at), true
				}
				s.i += 6
				r = utf16.DecodeRune(r, lo)
			}
			if keep {
				b.WriteRune(r)
			}
		case c < utf8.RuneSelf:
			if keep {
				b.WriteByte(c)
			}
			s.i++
		default:
			r, size := utf8.DecodeRune(s.raw[s.i:])
			if r == utf8.RuneError && size == 1 {
				return "", fmt.Sprintf("is not valid UTF-8: byte 0x%02x at offset %d", c, s.i), true
			}
			if keep {
				b.WriteRune(r)
			}
			s.i += size
		}
	}
	return "", "", false
}

func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(raw[at:at+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

func unescapeOne(c byte) string {
	switch c {
	case 'n':
		return "\n"
	case 't':
		return "\t"
	case 'r':
		return "\r"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	default:
		return string(c) // \" \\ \/
	}
}
