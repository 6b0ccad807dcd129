package cyberarksim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// writeMode says which request produced a resource body; the rules differ slightly.
type writeMode int

const (
	modeCreate  writeMode = iota + 1 // POST: schemas required, readOnly attributes ignored
	modeReplace                      // PUT: as POST; a differing id is rejected by the caller
	modePatched                      // result of PATCH operations: no schemas, derived values present
	modeSeed                         // Seed: schemas optional, ids kept
)

// memberRef is a Group member as a client wrote it.
type memberRef struct {
	value string
	typ   string // "User", "Group" or "" when the client did not say
}

// normalizedResource is a validated resource body in stored form.
type normalizedResource struct {
	// doc holds the client-writable attributes with canonical names, without id, meta, schemas,
	// password, members and readOnly attributes.
	doc         map[string]any
	id          string  // id given in the body, if any
	password    *string // nil when the body has none
	members     []memberRef
	haveMembers bool
}

// normalizeResource validates a resource body against rt: known attributes only (names matched
// case-insensitively and rewritten canonically), values of the declared types, required
// attributes present, extension URNs listed in schemas. Errors are *scimError values naming the
// attribute at fault.
func normalizeResource(rt *resourceType, in map[string]any, mode writeMode) (*normalizedResource, error) {
	out := &normalizedResource{doc: make(map[string]any, len(in))}
	seen := make(map[string]string, len(in)) // folded name → name as written
	listed := map[string]bool{}
	var haveSchemas bool
	for k, v := range in {
		folded := foldCase(k)
		if prev, dup := seen[folded]; dup {
			return nil, badRequest(scimInvalidSyntax, "attributes %q and %q are the same attribute (names are case-insensitive)", prev, k)
		}
		seen[folded] = k
		switch {
		case folded == "schemas":
			haveSchemas = true
			if err := checkSchemas(rt, v, listed); err != nil {
				return nil, err
			}
		case folded == "id":
			if v == nil {
				continue
			}
			s, ok := v.(string)
			if !ok {
				return nil, badRequest(scimInvalidValue, "id must be a string")
			}
			out.id = s
		case folded == "meta":
			// readOnly: ignored (RFC 7644 §3.5.1).
		case strings.HasPrefix(folded, "urn:"):
			_, ext := rt.extension(k)
			if ext == nil {
				if strings.EqualFold(k, rt.core.id) {
					return nil, badRequest(scimInvalidSyntax, "core schema attributes of %s belong at the top level, not under %q", rt.name, k)
				}
				return nil, badRequest(scimInvalidSyntax, "unknown schema extension %q for resource type %s", k, rt.name)
			}
			if v == nil {
				continue
			}
			m, ok := v.(map[string]any)
			if !ok {
				return nil, badRequest(scimInvalidSyntax, "extension %q must be a JSON object", ext.id)
			}
			norm, err := normalizeExtension(ext, m, mode)
			if err != nil {
				return nil, err
			}
			if len(norm) > 0 {
				out.doc[ext.id] = norm
			}
		default:
			if err := out.coreAttr(rt, k, v, mode); err != nil {
				return nil, err
			}
		}
	}
	if mode == modeCreate || mode == modeReplace {
		if !haveSchemas {
			return nil, badRequest(scimInvalidSyntax, "schemas is required and must include %q", rt.core.id)
		}
		if !listed[foldCase(rt.core.id)] {
			return nil, badRequest(scimInvalidSyntax, "schemas must include %q", rt.core.id)
		}
		for k := range out.doc {
			if strings.HasPrefix(k, "urn:") && !listed[foldCase(k)] {
				return nil, badRequest(scimInvalidSyntax, "extension %q has attributes but is not listed in schemas", k)
			}
		}
	}
	for _, a := range rt.core.attrs {
		if !a.required || a.mutability == mutReadOnly {
			continue
		}
		if _, ok := out.doc[a.name]; !ok {
			return nil, badRequest(scimInvalidValue, "%s is required for resource type %s", a.name, rt.name)
		}
	}
	return out, nil
}

// checkSchemas validates the schemas attribute and records the URNs it lists (folded).
func checkSchemas(rt *resourceType, v any, listed map[string]bool) error {
	arr, ok := v.([]any)
	if !ok {
		return badRequest(scimInvalidSyntax, "schemas must be an array of schema URNs")
	}
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return badRequest(scimInvalidSyntax, "schemas must be an array of strings")
		}
		if rt.schemaByURN(s) == nil {
			return badRequest(scimInvalidSyntax, "unknown schema %q in schemas for resource type %s (expected %s)", s, rt.name, rt.schemaList())
		}
		listed[foldCase(s)] = true
	}
	return nil
}

// coreAttr validates one top-level attribute of the core schema (or externalId).
func (out *normalizedResource) coreAttr(rt *resourceType, k string, v any, mode writeMode) error {
	a := rt.core.attr(k)
	if a == nil {
		a = commonAttr(k)
	}
	if a == nil {
		return badRequest(scimInvalidSyntax, "unknown attribute %q for resource type %s", k, rt.name)
	}
	if a.mutability == mutReadOnly {
		return nil
	}
	switch {
	case a.mutability == mutWriteOnly: // password
		if v == nil {
			return nil
		}
		s, ok := v.(string)
		if !ok {
			return badRequest(scimInvalidValue, "%s must be a string", a.name)
		}
		out.password = &s
		return nil
	case rt == groupType && a.name == "members":
		refs, err := normalizeMembers(v)
		if err != nil {
			return err
		}
		out.members, out.haveMembers = refs, true
		return nil
	}
	nv, present, err := normalizeValue(a, v, a.name, mode)
	if err != nil {
		return err
	}
	if present {
		if a.required && a.typ == typeString {
			if s, _ := nv.(string); strings.TrimSpace(s) == "" {
				return badRequest(scimInvalidValue, "%s must not be empty", a.name)
			}
		}
		out.doc[a.name] = nv
	}
	return nil
}

// normalizeMembers validates Group.members: objects with a string value and an optional type;
// display and $ref are derived by the server and ignored; duplicates collapse.
func normalizeMembers(v any) ([]memberRef, error) {
	if v == nil {
		return nil, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, badRequest(scimInvalidSyntax, "members is multi-valued; send a JSON array")
	}
	refs := make([]memberRef, 0, len(arr))
	seen := make(map[string]bool, len(arr))
	for i, e := range arr {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, badRequest(scimInvalidSyntax, "members[%d] must be an object with a value", i)
		}
		var ref memberRef
		for k, sv := range m {
			switch foldCase(k) {
			case "value":
				s, ok := sv.(string)
				if !ok || s == "" {
					return nil, badRequest(scimInvalidValue, "members[%d].value must be a non-empty string (the member's id)", i)
				}
				ref.value = s
			case "type":
				s, _ := sv.(string)
				switch foldCase(s) {
				case "user":
					ref.typ = "User"
				case "group":
					ref.typ = "Group"
				default:
					return nil, badRequest(scimInvalidValue, "members[%d].type must be \"User\" or \"Group\", not %v", i, sv)
				}
			case "display", "$ref":
			default:
				return nil, badRequest(scimInvalidSyntax, "unknown sub-attribute %q of members", k)
			}
		}
		if ref.value == "" {
			return nil, badRequest(scimInvalidValue, "members[%d].value is required", i)
		}
		if !seen[ref.value] {
			seen[ref.value] = true
			refs = append(refs, ref)
		}
	}
	return refs, nil
}

// normalizeExtension validates the object of one extension schema.
func normalizeExtension(ext *schema, m map[string]any, mode writeMode) (map[string]any, error) {
	out := make(map[string]any, len(m))
	seen := make(map[string]string, len(m))
	for k, v := range m {
		folded := foldCase(k)
		if prev, dup := seen[folded]; dup {
			return nil, badRequest(scimInvalidSyntax, "attributes %q and %q of %s are the same attribute (names are case-insensitive)", prev, k, ext.id)
		}
		seen[folded] = k
		if ext.schemaless {
			if !isAttrName(k) {
				return nil, badRequest(scimInvalidSyntax, "invalid attribute name %q in %s", k, ext.id)
			}
			if v != nil {
				out[k] = v
			}
			continue
		}
		a := ext.attr(k)
		if a == nil {
			return nil, badRequest(scimInvalidSyntax, "unknown attribute %q of %s", k, ext.id)
		}
		if a.mutability == mutReadOnly {
			continue
		}
		nv, present, err := normalizeValue(a, v, ext.id+":"+a.name, mode)
		if err != nil {
			return nil, err
		}
		if present {
			out[a.name] = nv
		}
	}
	return out, nil
}

// normalizeValue validates the value of attribute a; path names it in errors. present is false
// for null and empty values, which RFC 7643 §2.5 treats as unassigned.
func normalizeValue(a *attribute, v any, path string, mode writeMode) (any, bool, error) {
	if v == nil {
		return nil, false, nil
	}
	if !a.multi {
		return normalizeSingle(a, v, path, mode)
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, badRequest(scimInvalidSyntax, "%s is multi-valued; send a JSON array", path)
	}
	out := make([]any, 0, len(arr))
	primaries := 0
	for i, e := range arr {
		if e == nil {
			return nil, false, badRequest(scimInvalidValue, "%s[%d] is null", path, i)
		}
		nv, present, err := normalizeSingle(a, e, fmt.Sprintf("%s[%d]", path, i), mode)
		if err != nil {
			return nil, false, err
		}
		if !present {
			continue
		}
		if m, ok := nv.(map[string]any); ok && m["primary"] == true {
			primaries++
		}
		out = append(out, nv)
	}
	if primaries > 1 {
		return nil, false, badRequest(scimInvalidValue, "%s has %d values with primary true; at most one is allowed", path, primaries)
	}
	if len(out) == 0 {
		return nil, false, nil
	}
	return out, true, nil
}

func normalizeSingle(a *attribute, v any, path string, mode writeMode) (any, bool, error) {
	switch a.typ {
	case typeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, badRequest(scimInvalidSyntax, "%s must be a JSON object", path)
		}
		out := make(map[string]any, len(m))
		seen := make(map[string]string, len(m))
		for k, sv := range m {
			folded := foldCase(k)
			if prev, dup := seen[folded]; dup {
				return nil, false, badRequest(scimInvalidSyntax, "%s.%s and %s.%s are the same sub-attribute", path, prev, path, k)
			}
			seen[folded] = k
			sub := a.sub(k)
			if sub == nil {
				return nil, false, badRequest(scimInvalidSyntax, "unknown sub-attribute %q of %s", k, path)
			}
			if sub.mutability == mutReadOnly {
				continue
			}
			nv, present, err := normalizeSingle(sub, sv, path+"."+sub.name, mode)
			if err != nil {
				return nil, false, err
			}
			if present {
				out[sub.name] = nv
			}
		}
		if len(out) == 0 && len(m) == 0 {
			return nil, false, nil
		}
		for _, sub := range a.subs {
			if _, ok := out[sub.name]; sub.required && !ok {
				return nil, false, badRequest(scimInvalidValue, "%s.%s is required", path, sub.name)
			}
		}
		if len(out) == 0 {
			return nil, false, nil
		}
		return out, true, nil
	case typeString, typeReference, typeBinary:
		s, ok := v.(string)
		if !ok {
			return nil, false, badRequest(scimInvalidValue, "%s must be a string, not %s", path, jsonKind(v))
		}
		return s, true, nil
	case typeBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, false, badRequest(scimInvalidValue, "%s must be a boolean (true or false), not %s", path, jsonKind(v))
		}
		return b, true, nil
	case typeInteger:
		n, ok := v.(json.Number)
		if !ok {
			return nil, false, badRequest(scimInvalidValue, "%s must be an integer, not %s", path, jsonKind(v))
		}
		if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
			return nil, false, badRequest(scimInvalidValue, "%s must be an integer, not %s", path, n)
		}
		return n, true, nil
	case typeDecimal:
		n, ok := v.(json.Number)
		if !ok {
			return nil, false, badRequest(scimInvalidValue, "%s must be a number, not %s", path, jsonKind(v))
		}
		return n, true, nil
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, false, badRequest(scimInvalidValue, "%s must be an RFC 3339 dateTime string, not %s", path, jsonKind(v))
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, false, badRequest(scimInvalidValue, "%s must be an RFC 3339 dateTime, not %q", path, s)
		}
		return s, true, nil
	}
	return nil, false, badRequest(scimInvalidValue, "%s has an unsupported type", path)
}

// jsonKind names the JSON type of a decoded value for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
