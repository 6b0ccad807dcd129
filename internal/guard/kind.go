package guard

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// Kind is what a change does to an object, as far as the guard cares.
type Kind int

// Kinds of change.
const (
	KindNone    Kind = iota // neither deletes nor disables: not counted
	KindDelete              // a DELETE request, or a Delete written as a soft delete
	KindDisable             // sets active to false
)

func (k Kind) String() string {
	switch k {
	case KindDelete:
		return "delete"
	case KindDisable:
		return "disable"
	}
	return "none"
}

// Classify says whether plan deletes or disables its object, from its requests: a DELETE
// request; any write of a Delete operation (a soft delete, docs/datamodel.md); a PATCH with an add
// or replace operation that sets active to false (with the path active, or without a path and
// active in its value); a PUT whose body holds "active": false. A plan without requests is
// KindNone. A PUT cannot tell whether the object was active before, so a PUT of an object that was
// already inactive counts too (the guard errs on the side of holding).
func Classify(plan *reconcile.Plan) Kind {
	if plan == nil || len(plan.Requests) == 0 {
		return KindNone
	}
	kind := KindNone
	for _, r := range plan.Requests {
		switch strings.ToUpper(r.Method) {
		case "DELETE":
			return KindDelete
		case "PATCH":
			if patchDisables(r.Body) {
				kind = KindDisable
			}
		case "PUT":
			var body map[string]any
			if json.Unmarshal(r.Body, &body) == nil && setsInactive(body) {
				kind = KindDisable
			}
		}
	}
	if plan.Operation == reconcile.OpDelete {
		return KindDelete
	}
	return kind
}

// Intent says whether a change asks to delete or disable its object, before any plan: the
// operation Delete, or an Update setting active to false. The guard refuses a protected key on
// intent alone, without a request to the target. A Create or Upsert with active false may create
// an inactive object, which disables nothing: its plan decides (Classify).
func Intent(op reconcile.Operation, attributes map[string]any) Kind {
	switch op {
	case reconcile.OpDelete:
		return KindDelete
	case reconcile.OpUpdate:
	default:
		return KindNone
	}
	for name, v := range attributes {
		if isActive(name) && isFalse(v) {
			return KindDisable
		}
	}
	return KindNone
}

// patchDisables reports whether a SCIM PatchOp body sets active to false.
func patchDisables(raw []byte) bool {
	if !mentionsActive(raw) {
		return false // most patches: no need to decode them
	}
	var body struct {
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return false
	}
	for _, op := range body.Operations {
		if o := strings.ToLower(op.Op); o != "add" && o != "replace" {
			continue
		}
		var v any
		if json.Unmarshal(op.Value, &v) != nil {
			continue
		}
		if op.Path == "" {
			if m, ok := v.(map[string]any); ok && setsInactive(m) {
				return true
			}
			continue
		}
		if isActive(op.Path) && isFalse(v) {
			return true
		}
	}
	return false
}

// mentionsActive reports whether raw may set an attribute named active: it holds "active" in any
// case, or a \u escape that could spell it.
func mentionsActive(raw []byte) bool {
	const word = "active"
	if bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	for i := 0; i+len(word) <= len(raw); i++ {
		if raw[i]|0x20 == 'a' && strings.EqualFold(string(raw[i:i+len(word)]), word) {
			return true
		}
	}
	return false
}

// setsInactive reports whether an object body holds active: false (at the top, or under the core
// User schema's URN).
func setsInactive(body map[string]any) bool {
	for name, v := range body {
		if isActive(name) && isFalse(v) {
			return true
		}
		if m, ok := v.(map[string]any); ok && strings.HasPrefix(name, "urn:") && setsInactive(m) {
			return true
		}
	}
	return false
}

// isActive reports whether an attribute name or path is the User's active attribute
// (case-insensitive, RFC 7643 §2.1), plain or with its schema URN.
func isActive(name string) bool {
	name = strings.ToLower(name)
	return name == "active" || strings.HasPrefix(name, "urn:") && strings.HasSuffix(name, ":active")
}

// isFalse reports whether v is false, or the text "false" (targets and events that send booleans
// as strings).
func isFalse(v any) bool {
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		return strings.EqualFold(strings.TrimSpace(x), "false")
	}
	return false
}
