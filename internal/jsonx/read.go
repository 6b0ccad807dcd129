package jsonx

import (
	"bytes"
	"encoding/json"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// reader is a pooled decoder with its reader. The reader is a bytes.Buffer, which jsontext
// parses in place (from any other reader it copies the text, a few KiB at a time, into a buffer
// of its own); it is only ever read.
type reader struct {
	r *bytes.Buffer
	d *jsontext.Decoder
}

// readOptions take what encoding/json takes: duplicate names (the last one wins) and invalid
// UTF-8 (which Value leaves to encoding/json, to be mangled the same way).
var (
	readOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}
	readers     = sync.Pool{New: func() any {
		r := new(bytes.Buffer)
		return &reader{r: r, d: jsontext.NewDecoder(r, readOptions...)}
	}}
)

// Read runs read on a decoder of raw (pooled; read must not keep it).
func Read[T any](raw []byte, read func(d *jsontext.Decoder) (T, bool)) (T, bool) {
	rd := readers.Get().(*reader)
	*rd.r = *bytes.NewBuffer(raw)
	rd.d.Reset(rd.r, readOptions...)
	defer func() {
		*rd.r = bytes.Buffer{}
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
		m := map[string]any{}
		return m, Members(d, func(name []byte) bool {
			k, ok := Unquote(name)
			if ok {
				m[k], ok = Value(d)
			}
			return ok
		})
	case '[':
		a := []any{}
		return a, Elements(d, func() bool {
			e, ok := Value(d)
			a = append(a, e)
			return ok
		})
	case 0:
		return nil, false
	}
	raw, err := d.ReadValue()
	if err != nil || len(raw) == 0 {
		return nil, false
	}
	switch raw[0] {
	case '"':
		return Unquote(raw)
	case 't':
		return true, true
	case 'f':
		return false, true
	case 'n':
		return nil, true
	}
	return json.Number(raw), true
}

// Members reads the object that comes next: for each member, member is given its name as a
// quoted token (the decoder's bytes, valid until its next read; see PlainName) and reads or skips
// the value. ok is false where the text is not an object, or member said false.
func Members(d *jsontext.Decoder, member func(name []byte) bool) bool {
	if d.PeekKind() != '{' {
		return false
	}
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	for d.PeekKind() != '}' {
		name, err := d.ReadValue()
		if err != nil || len(name) < 2 || name[0] != '"' || !member(name) {
			return false
		}
	}
	_, err := d.ReadToken()
	return err == nil
}

// Elements reads the array that comes next, elem reading each element. ok is false where the
// text is not an array, or elem said false.
func Elements(d *jsontext.Decoder, elem func() bool) bool {
	if d.PeekKind() != '[' {
		return false
	}
	if _, err := d.ReadToken(); err != nil {
		return false
	}
	for d.PeekKind() != ']' {
		if !elem() {
			return false
		}
	}
	_, err := d.ReadToken()
	return err == nil
}

// PlainName is a member name token's text when that text is the name itself (no escape, valid
// UTF-8), without making a string.
func PlainName(token []byte) (text []byte, plain bool) {
	text = token[1 : len(token)-1]
	return text, bytes.IndexByte(text, '\\') < 0 && utf8.Valid(text)
}

// Unquote is a JSON string token's text as encoding/json decodes it: its bytes when they need no
// decoding, else through encoding/json (escapes, invalid UTF-8 turned into U+FFFD).
func Unquote(raw []byte) (string, bool) {
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), true
	}
	var s string
	return s, json.Unmarshal(raw, &s) == nil
}
