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

// parse checks raw against the event schema and returns the document it read (numbers as
// json.Number), or a *DecodeError naming every violation.
func (validator) parse(raw []byte) (any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &DecodeError{Reason: "not a JSON document", Err: err}
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
