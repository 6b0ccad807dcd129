package events

import (
	"bytes"
	"strings"
	"sync"

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

// validate checks raw against the event schema and returns a *DecodeError naming every violation.
func (validator) validate(raw []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &DecodeError{Reason: "not a JSON document", Err: err}
	}
	vs, err := schemas.Validate(eventSchema, doc)
	if err != nil {
		return &DecodeError{Reason: "schema check failed", Err: err}
	}
	if len(vs) == 0 {
		return nil
	}
	if len(vs) == 1 {
		return &DecodeError{Pointer: vs[0].Pointer, Reason: vs[0].Message}
	}
	msgs := make([]string, 0, len(vs))
	for _, v := range vs {
		msgs = append(msgs, v.String())
	}
	return &DecodeError{Reason: strings.Join(msgs, "; ")}
}
