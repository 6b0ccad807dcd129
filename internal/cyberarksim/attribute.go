package cyberarksim

import "strings"

// attrType is an RFC 7643 §2.3 attribute data type.
type attrType string

const (
	typeString    attrType = "string"
	typeBoolean   attrType = "boolean"
	typeDecimal   attrType = "decimal"
	typeInteger   attrType = "integer"
	typeDateTime  attrType = "dateTime"
	typeReference attrType = "reference"
	typeComplex   attrType = "complex"
	typeBinary    attrType = "binary"
)

// Attribute characteristics (RFC 7643 §2.2, §7).
const (
	mutReadOnly  = "readOnly"
	mutReadWrite = "readWrite"
	mutImmutable = "immutable"
	mutWriteOnly = "writeOnly"

	retAlways  = "always"
	retNever   = "never"
	retDefault = "default"

	uniqNone   = "none"
	uniqServer = "server"
)

// attribute is one attribute definition of a schema (RFC 7643 §7). Definitions are built once at
// package initialisation and never modified afterwards, so they are shared by every Server.
type attribute struct {
	name        string
	typ         attrType
	multi       bool
	caseExact   bool
	required    bool
	mutability  string
	returned    string
	uniqueness  string
	description string
	canonical   []string
	refTypes    []string
	subs        []*attribute
}

func newAttr(name string, t attrType) *attribute {
	return &attribute{name: name, typ: t, mutability: mutReadWrite, returned: retDefault, uniqueness: uniqNone}
}

func strAttr(name string) *attribute { return newAttr(name, typeString) }

func (a *attribute) multiValued() *attribute { a.multi = true; return a }
func (a *attribute) exact() *attribute       { a.caseExact = true; return a }
func (a *attribute) req() *attribute         { a.required = true; return a }
func (a *attribute) readOnly() *attribute    { a.mutability = mutReadOnly; return a }
func (a *attribute) immutable() *attribute   { a.mutability = mutImmutable; return a }
func (a *attribute) unique() *attribute      { a.uniqueness = uniqServer; return a }
func (a *attribute) always() *attribute      { a.returned = retAlways; return a }
func (a *attribute) desc(d string) *attribute {
	a.description = d
	return a
}

func (a *attribute) writeOnly() *attribute {
	a.mutability = mutWriteOnly
	a.returned = retNever
	return a
}

func (a *attribute) canonicalValues(v ...string) *attribute { a.canonical = v; return a }
func (a *attribute) refs(types ...string) *attribute        { a.refTypes = types; return a }

func (a *attribute) withSubs(subs ...*attribute) *attribute {
	a.typ = typeComplex
	a.subs = subs
	return a
}

// sub finds a sub-attribute by name, case-insensitively (RFC 7643 §2.1).
func (a *attribute) sub(name string) *attribute {
	for _, s := range a.subs {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

// isString reports whether values of a are compared as strings.
func (a *attribute) isString() bool {
	switch a.typ {
	case typeString, typeReference, typeBinary:
		return true
	}
	return false
}

// toJSON renders the attribute definition as RFC 7643 §7 describes it.
func (a *attribute) toJSON() map[string]any {
	m := map[string]any{
		"name":        a.name,
		"type":        string(a.typ),
		"multiValued": a.multi,
		"description": a.description,
		"required":    a.required,
		"mutability":  a.mutability,
		"returned":    a.returned,
	}
	if a.typ != typeComplex && a.typ != typeBoolean {
		m["caseExact"] = a.caseExact
		m["uniqueness"] = a.uniqueness
	}
	if len(a.canonical) > 0 {
		m["canonicalValues"] = a.canonical
	}
	if a.typ == typeReference {
		m["referenceTypes"] = a.refTypes
	}
	if len(a.subs) > 0 {
		subs := make([]any, len(a.subs))
		for i, s := range a.subs {
			subs[i] = s.toJSON()
		}
		m["subAttributes"] = subs
	}
	return m
}

// schema is a SCIM schema (RFC 7643 §7): the core schema of a resource type or an extension.
type schema struct {
	id          string
	name        string
	description string
	attrs       []*attribute
	// schemaless schemas accept any attribute name (CyberArk's custom extension holds
	// tenant-defined attributes); their values are compared as case-insensitive strings.
	schemaless bool
}

// attr finds a top-level attribute by name, case-insensitively.
func (s *schema) attr(name string) *attribute {
	for _, a := range s.attrs {
		if strings.EqualFold(a.name, name) {
			return a
		}
	}
	return nil
}

func (s *schema) toJSON(location string) map[string]any {
	attrs := make([]any, len(s.attrs))
	for i, a := range s.attrs {
		attrs[i] = a.toJSON()
	}
	return map[string]any{
		"schemas":     []any{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":          s.id,
		"name":        s.name,
		"description": s.description,
		"attributes":  attrs,
		"meta":        map[string]any{"resourceType": "Schema", "location": location},
	}
}

// schemalessAttr is the definition used for attributes of schemaless extensions.
var schemalessAttr = strAttr("*")
