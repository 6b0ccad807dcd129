package events

import (
	"io"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// readDocument reads raw as jsonschema.UnmarshalJSON does (encoding/json, numbers as
// json.Number, nothing but space after the value). ok is false for anything it does not read; the
// caller then asks jsonschema.UnmarshalJSON, whose errors are the ones intake reports.
// TestReadDocumentIsWhatTheValidatorReads and FuzzReadDocument hold the two equal.
func readDocument(raw []byte) (any, bool) {
	return jsonx.Read(raw, func(d *jsontext.Decoder) (any, bool) {
		doc, ok := jsonx.Value(d)
		if !ok {
			return nil, false
		}
		if _, err := d.ReadToken(); err != io.EOF {
			return nil, false // something after the value
		}
		return doc, true
	})
}
