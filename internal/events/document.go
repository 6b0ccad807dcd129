package events

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// documentReader is a pooled decoder with its reader.
type documentReader struct {
	r *bytes.Reader
	d *jsontext.Decoder
}

var (
	documentOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true)}
	documentReaders = sync.Pool{New: func() any {
		r := bytes.NewReader(nil)
		return &documentReader{r: r, d: jsontext.NewDecoder(r, documentOptions...)}
	}}
)

// readDocument reads raw as jsonschema.UnmarshalJSON does (encoding/json, numbers as
// json.Number, nothing but space after the value), for the text events are made of: valid UTF-8
// without a backslash, so that every string is its bytes. ok is false for any other text, and
// for anything this reader refuses; the caller then asks jsonschema.UnmarshalJSON, whose errors
// are the ones intake reports. TestReadDocumentIsWhatTheValidatorReads holds the two equal.
func readDocument(raw []byte) (doc any, ok bool) {
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return nil, false
	}
	dr := documentReaders.Get().(*documentReader)
	dr.r.Reset(raw)
	dr.d.Reset(dr.r, documentOptions...)
	defer func() {
		dr.r.Reset(nil)
		dr.d.Reset(dr.r, documentOptions...)
		documentReaders.Put(dr)
	}()
	doc, ok = readValue(dr.d)
	if !ok {
		return nil, false
	}
	if _, err := dr.d.ReadToken(); err != io.EOF {
		return nil, false // something after the value
	}
	return doc, true
}

// readValue reads the next value as encoding/json decodes it into an interface (UseNumber); the
// text holds no escapes.
func readValue(d *jsontext.Decoder) (any, bool) {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		m := map[string]any{}
		for d.PeekKind() != '}' {
			name, err := d.ReadValue()
			if err != nil || len(name) < 2 || name[0] != '"' {
				return nil, false
			}
			k := string(name[1 : len(name)-1]) // now: the next read reuses the decoder's buffer
			v, ok := readValue(d)
			if !ok {
				return nil, false
			}
			m[k] = v
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		return m, true
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		a := []any{}
		for d.PeekKind() != ']' {
			v, ok := readValue(d)
			if !ok {
				return nil, false
			}
			a = append(a, v)
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		return a, true
	case 0:
		return nil, false
	}
	v, err := d.ReadValue()
	if err != nil || len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '"':
		return string(v[1 : len(v)-1]), true
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	}
	return json.Number(v), true
}
