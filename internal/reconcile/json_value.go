package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// Documents are handled in the shapes encoding/json produces with UseNumber: map[string]any,
// []any, string, json.Number, bool and nil. These helpers keep them that way.

// decodeJSON parses exactly one JSON value with numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonSyntaxError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("line %d: data after the JSON value", lineAt(data, int(dec.InputOffset())))
	}
	return v, nil
}

func jsonSyntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("line %d: %s", lineAt(data, int(se.Offset)), se.Error())
	}
	if errors.Is(err, io.EOF) {
		return errors.New("no JSON value")
	}
	return err
}

func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

// normalizeJSON converts any JSON-marshalable value (a Reader's map, a YAML-decoded template) into
// the canonical shapes. It also deep-copies.
func normalizeJSON(v any) (any, error) {
	raw, err := marshalJSON(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(raw)
}

// marshalJSON encodes without HTML escaping ("&" stays "&"), without a trailing newline.
func marshalJSON(v any) ([]byte, error) { return jsonx.Append(nil, v, false) }

// cloneJSON deep-copies a canonical value.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}

// jsonEqual compares canonical values. A number and a string are equal when the string is the
// number's text (an id "42" sent as 42 with useNumericValues is the same id); numbers compare by
// value (1 and 1.0 are equal).
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !jsonEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return scalarEqual(a, b)
}

func scalarEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	an, aNum := numberText(a)
	bn, bNum := numberText(b)
	switch {
	case aNum && bNum:
		if an == bn {
			return true
		}
		af, err1 := strconv.ParseFloat(an, 64)
		bf, err2 := strconv.ParseFloat(bn, 64)
		return err1 == nil && err2 == nil && af == bf && !math.IsInf(af, 0)
	case aNum:
		s, ok := b.(string)
		return ok && s == an
	case bNum:
		s, ok := a.(string)
		return ok && s == bn
	}
	switch a := a.(type) {
	case string:
		s, ok := b.(string)
		return ok && a == s
	case bool:
		t, ok := b.(bool)
		return ok && a == t
	}
	return false
}

func numberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case float64:
		return strconv.FormatFloat(n, 'f', -1, 64), true
	case int:
		return strconv.Itoa(n), true
	case int64:
		return strconv.FormatInt(n, 10), true
	}
	return "", false
}

// contains reports whether have holds want: for objects, every field of want is in have with a
// matching value (so a server-decorated member {"value":"1","display":"x","$ref":"..."} holds
// {"value":"1"}); anything else compares with jsonEqual. It is the duplicate test of add and the
// match test of remove.
func contains(have, want any) bool {
	w, ok := want.(map[string]any)
	if !ok {
		return jsonEqual(have, want)
	}
	h, ok := have.(map[string]any)
	if !ok {
		return false
	}
	for k, wv := range w {
		hv, ok := h[k]
		if !ok || !contains(hv, wv) {
			return false
		}
	}
	return true
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
