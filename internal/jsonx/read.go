package jsonx

import (
	"bytes"
	"encoding/json"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// reader is a pooled decoder with its reader.
type reader struct {
	r *bytes.Reader
	d *jsontext.Decoder
}

// readOptions take what encoding/json takes: duplicate names (the last one wins) and invalid
// UTF-8 (which Value leaves to encoding/json, to be mangled the same way).
var (
	readOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
	readers     = sync.Pool{New: func() any {
		r := bytes.NewReader(nil)
		return &reader{r: r, d: jsontext.NewDecoder(r, readOptions...)}
	}}
)

// Read runs read on a decoder of raw (pooled; read must not keep it).
func Read[T any](raw []byte, read func(d *jsontext.Decoder) (T, bool)) (T, bool) {
	rd := readers.Get().(*reader)
	rd.r.Reset(raw)
	rd.d.Reset(rd.r, readOptions...)
	defer func() {
		rd.r.Reset(nil)
		rd.d.Reset(rd.r, readOptions...)
		readers.Put(rd)
	}()
	return read(rd.d)
}

// Value reads the next value as encoding/json decodes it into an interface with UseNumber:
// map[string]any, []any, string, json.Number, bool or nil. ok is false where the text is not
// JSON; the caller then asks encoding/json, for its error.
func Value(d *jsontext.Decoder) (v any, ok bool) {
	switch d.PeekKind() {
	case '{':
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		m := map[string]any{}
		for d.PeekKind() != '}' {
			k, ok := Name(d)
			if !ok {
				return nil, false
			}
			if m[k], ok = Value(d); !ok {
				return nil, false
			}
		}
		_, err := d.ReadToken()
		return m, err == nil
	case '[':
		if _, err := d.ReadToken(); err != nil {
			return nil, false
		}
		a := []any{}
		for d.PeekKind() != ']' {
			e, ok := Value(d)
			if !ok {
				return nil, false
			}
			a = append(a, e)
		}
		_, err := d.ReadToken()
		return a, err == nil
	case 0:
		return nil, false
	}
	raw, err := d.ReadValue()
	if err != nil || len(raw) == 0 {
		return nil, false
	}
	switch raw[0] {
	case '"':
		return unquote(raw)
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	}
	return json.Number(raw), true
}

// Name reads the next object member's name, as encoding/json reads it.
func Name(d *jsontext.Decoder) (string, bool) {
	raw, err := d.ReadValue()
	if err != nil || len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	return unquote(raw)
}

// NameBytes reads the next member's name without making a string, when its text is its name (no
// escape, valid UTF-8); ok is false otherwise. The bytes are the decoder's, valid until its next
// read.
func NameBytes(d *jsontext.Decoder) (name []byte, plain, ok bool) {
	raw, err := d.ReadValue()
	if err != nil || len(raw) < 2 || raw[0] != '"' {
		return nil, false, false
	}
	text := raw[1 : len(raw)-1]
	return text, bytes.IndexByte(text, '\\') < 0 && utf8.Valid(text), true
}

// unquote is a JSON string token's text as encoding/json decodes it: its bytes when they need no
// decoding, else through encoding/json (escapes, invalid UTF-8 turned into U+FFFD).
func unquote(raw []byte) (string, bool) {
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}
