package events

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scimflow/scimflow/schemas"
)

// eventSchema is the embedded schema every event must satisfy at intake.
const eventSchema = "event.schema.json"

type validator struct{}

var (
	validatorOnce sync.Once
	theValidator  validator
)

func defaultValidator() validator {
	validatorOnce.Do(func() { schemas.MustCompile(eventSchema) })
	return theValidator
}

// parse checks raw against the event schema and returns the document it read (numbers as
// json.Number), or a *DecodeError naming every violation.
func (validator) parse(raw []byte) (any, error) {
	doc, ok := readDocument(raw)
	if !ok {
		var err error
		if doc, err = jsonschema.UnmarshalJSON(bytes.NewReader(raw)); err != nil {
			return nil, &DecodeError{Reason: "not a JSON document", Err: err}
		}
	}
	if conforms(doc) {
		return doc, nil // the common case, proven without the general validator (a sixth of intake)
	}
	vs, err := schemas.Validate(eventSchema, doc)
	if err != nil {
		return nil, &DecodeError{Reason: "schema check failed", Err: err}
	}
	if len(vs) == 0 {
		return doc, nil
	}
	if len(vs) == 1 {
		return nil, &DecodeError{Pointer: vs[0].Pointer, Reason: vs[0].Message}
	}
	msgs := make([]string, 0, len(vs))
	for _, v := range vs {
		msgs = append(msgs, v.String())
	}
	return nil, &DecodeError{Reason: strings.Join(msgs, "; ")}
}

// A date-time shape that only valid RFC 3339 text
// has (with time.Parse, which checks the ranges).
var (
	dateTimePattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)
)

// conforms reports whether doc, as jsonschema.UnmarshalJSON read it, surely satisfies
// schemas/event.schema.json. It checks the schema's rules in Go, which costs a fraction of the
// general validator, and may say false for a valid event (a leap second, a lower-case "t" in a
// time): parse then asks the validator, which also writes the errors. It must never say true for
// an event the schema refuses; TestConformsAgreesWithTheSchema and FuzzConformsAgreesWithTheSchema
// hold it to that.
func conforms(doc any) bool {
	m, ok := doc.(map[string]any)
	if !ok || m["specversion"] != SpecVersion {
		return false
	}
	if id, ok := m["id"].(string); !ok || id == "" || utf8.RuneCountInString(id) > 256 {
		return false
	}
	if src, ok := m["source"].(string); !ok || src == "" {
		return false
	}
	if typ, ok := m["type"].(string); !ok || !isEventType(typ) {
		return false
	}
	if !optionalString(m, "subject") || !optionalString(m, "dataschema") {
		return false
	}
	if v, ok := m["datacontenttype"]; ok && v != "application/json" {
		return false
	}
	if v, ok := m["time"]; ok {
		t, ok := v.(string)
		if !ok || !dateTimePattern.MatchString(t) {
			return false
		}
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return false
		}
	}
	data, ok := m["data"].(map[string]any)
	if !ok {
		return false
	}
	for name, v := range data {
		switch name {
		case "object":
			if o, ok := v.(string); !ok || !isObjectName(o) {
				return false
			}
		case "operation":
			switch v {
			case OpCreate, OpUpdate, OpDelete, OpUpsert, OpAddAssignment, OpRemoveAssignment:
			default:
				return false
			}
		case "key":
			key, ok := v.(map[string]any)
			if !ok || len(key) == 0 {
				return false
			}
			for _, kv := range key {
				switch kv.(type) {
				case string, bool, json.Number:
				default:
					return false
				}
			}
		case "attributes":
			if _, ok := v.(map[string]any); !ok {
				return false
			}
		case "actions":
			actions, ok := v.(map[string]any)
			if !ok {
				return false
			}
			for _, a := range actions {
				if a != "add" && a != "modify" && a != "remove" {
					return false
				}
			}
		default:
			return false // additionalProperties: false
		}
	}
	_, hasObject := data["object"]
	_, hasOperation := data["operation"]
	_, hasKey := data["key"]
	return hasObject && hasOperation && hasKey
}

// isEventType is the schema's type pattern,
// ^identity\.[a-z0-9_]+\.(create|update|delete|upsert|addassignment|removeassignment)$.
func isEventType(s string) bool {
	rest, ok := strings.CutPrefix(s, "identity.")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return false
	}
	for _, c := range []byte(rest[:i]) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	switch rest[i+1:] {
	case "create", "update", "delete", "upsert", "addassignment", "removeassignment":
		return true
	}
	return false
}

// isObjectName is the schema's object pattern, ^[A-Za-z][A-Za-z0-9_]*$.
func isObjectName(s string) bool {
	for i, c := range []byte(s) {
		letter := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
		if !letter && (i == 0 || !('0' <= c && c <= '9' || c == '_')) {
			return false
		}
	}
	return s != ""
}

// optionalString reports whether m's name is absent or a string.
func optionalString(m map[string]any, name string) bool {
	v, ok := m[name]
	if !ok {
		return true
	}
	_, ok = v.(string)
	return ok
}
