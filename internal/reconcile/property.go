package reconcile

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ohler55/ojg/jp"
)

// PropertyType is a data-model property's value type.
type PropertyType string

// Property types. int and long are sent as JSON numbers only with Options.UseNumericValues (the
// seed's "Use numeric values"), otherwise as strings; bool is always a JSON boolean; complex is a
// JSON object; reference values are looked up and replaced by the referenced object's id.
const (
	TypeString    PropertyType = "string"
	TypeInt       PropertyType = "int"
	TypeLong      PropertyType = "long"
	TypeBool      PropertyType = "bool"
	TypeReference PropertyType = "reference"
	TypeComplex   PropertyType = "complex"
)

var propertyTypes = []PropertyType{TypeString, TypeInt, TypeLong, TypeBool, TypeReference, TypeComplex}

// Property is one property of a data-model object.
type Property struct {
	name        string
	typ         PropertyType
	path        attrPath // target path; zero for JSONPath properties
	expr        jp.Expr  // JSONPath properties only
	isKey       bool
	multiValued bool
	refObject   string // keys: where Resolve Object ID looks; references: the referenced resource
	refLookup   string
}

// Name is the property's name as events and task mappings use it.
func (p *Property) Name() string { return p.name }

// Type is the value type.
func (p *Property) Type() PropertyType { return p.typ }

// IsKey reports whether the property identifies the object (Resolve Object ID).
func (p *Property) IsKey() bool { return p.isKey }

// IsJSONPath reports whether the name is a JSONPath ("$." prefix) applied on top of the request.
func (p *Property) IsJSONPath() bool { return p.expr != nil }

// MultiValued reports whether the property holds a list of values.
func (p *Property) MultiValued() bool {
	if p.IsJSONPath() {
		return p.multiValued
	}
	return p.path.isArray()
}

// Path is the target path in RFC 7644 attribute-path notation ("" for JSONPath properties).
func (p *Property) Path() string {
	if p.IsJSONPath() {
		return ""
	}
	return p.path.raw
}

// ReferenceObject is the resource a key or reference is looked up in.
func (p *Property) ReferenceObject() string { return p.refObject }

// ReferenceLookupProperty is the attribute a key or reference is looked up by.
func (p *Property) ReferenceLookupProperty() string { return p.refLookup }

// isReference: the value names another object and is sent as that object's id (the seed's Resolve
// Reference Property works on non-key properties only).
func (p *Property) isReference() bool {
	return !p.isKey && !p.IsJSONPath() && (p.typ == TypeReference || p.refObject != "")
}

// coerceValues turns an event value into the property's values: exactly one for single-valued
// properties (possibly nil, meaning "no value"), one per element for multi-valued ones (a single
// value is a list of one). Reference values come back as lookup strings. Messages are for the
// caller to wrap.
func (p *Property) coerceValues(v any, numeric bool) ([]any, error) {
	list, isList := v.([]any)
	if !p.MultiValued() {
		if isList {
			return nil, errors.New("is single-valued, got a list")
		}
		one, err := p.coerceOne(v, numeric)
		if err != nil {
			return nil, err
		}
		return []any{one}, nil
	}
	if !isList {
		if v == nil {
			return nil, nil
		}
		list = []any{v}
	}
	out := make([]any, 0, len(list))
	for i, e := range list {
		if e == nil {
			return nil, fmt.Errorf("element %d is null", i)
		}
		c, err := p.coerceOne(e, numeric)
		if err != nil {
			if len(list) > 1 {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *Property) coerceOne(v any, numeric bool) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch p.typ {
	case TypeInt, TypeLong:
		bits := 64
		if p.typ == TypeInt {
			bits = 32
		}
		n, err := toInt(v, bits)
		if err != nil {
			return nil, err
		}
		if numeric {
			return json.Number(strconv.FormatInt(n, 10)), nil
		}
		return strconv.FormatInt(n, 10), nil
	case TypeBool:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("want a bool, got %s", describe(v))
			}
			return b, nil
		}
		return nil, fmt.Errorf("want a bool, got %s", describe(v))
	case TypeComplex:
		switch v := v.(type) {
		case map[string]any:
			return normalizeJSON(v)
		case string:
			if t := strings.TrimSpace(v); strings.HasPrefix(t, "{") {
				parsed, err := decodeJSON([]byte(t))
				if err != nil {
					return nil, fmt.Errorf("want a JSON object, got text that is not valid JSON: %w", err)
				}
				return parsed, nil
			}
		}
		return nil, fmt.Errorf("want a JSON object, got %s", describe(v))
	default: // string, reference (the lookup value)
		s, ok := scalarText(v)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", describe(v))
		}
		if p.typ == TypeReference || p.isReference() {
			if s == "" {
				return nil, errors.New("a reference needs a non-empty lookup value")
			}
		}
		return s, nil
	}
}

// scalarText is the text of a string, number or bool.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	}
	return numberText(v)
}

func toInt(v any, bits int) (int64, error) {
	var text string
	switch v := v.(type) {
	case string:
		text = strings.TrimSpace(v)
	case json.Number:
		text = string(v)
	case float64:
		if v != math.Trunc(v) || math.IsInf(v, 0) || math.IsNaN(v) {
			return 0, fmt.Errorf("want an integer, got %v", v)
		}
		text = strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		text = strconv.Itoa(v)
	case int64:
		text = strconv.FormatInt(v, 10)
	default:
		return 0, fmt.Errorf("want an integer, got %s", describe(v))
	}
	n, err := strconv.ParseInt(text, 10, bits)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%s is out of range for a %d-bit integer", text, bits)
		}
		return 0, fmt.Errorf("want an integer, got %s", describe(v))
	}
	return n, nil
}

// describe names a value for an error message.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 64 {
			v = v[:64] + "..."
		}
		return strconv.Quote(v)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case bool:
		return strconv.FormatBool(v)
	}
	if s, ok := numberText(v); ok {
		return s
	}
	return fmt.Sprintf("a %T", v)
}
