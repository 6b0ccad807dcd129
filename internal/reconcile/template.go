package reconcile

import (
	"fmt"
	"strings"
)

// parseTemplate reads an {Operation}Request template: JSON text holding one object (the seed stores
// it in <largeDataField>), or a value already decoded from YAML.
func parseTemplate(v any) (map[string]any, error) {
	var parsed any
	switch t := v.(type) {
	case string:
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("empty template")
		}
		p, err := decodeJSON([]byte(t))
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		parsed = p
	default:
		p, err := normalizeJSON(t)
		if err != nil {
			return nil, fmt.Errorf("not representable as JSON: %w", err)
		}
		parsed = p
	}
	m, ok := parsed.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object, got %s", describe(parsed))
	}
	if s, ok := m["schemas"]; ok {
		list, ok := s.([]any)
		if !ok {
			return nil, fmt.Errorf(`"schemas" must be a list of schema URNs, got %s`, describe(s))
		}
		for i, e := range list {
			if str, ok := e.(string); !ok || str == "" {
				return nil, fmt.Errorf(`"schemas"[%d] must be a schema URN, got %s`, i, describe(e))
			}
		}
	}
	return m, nil
}

// checkPatchTemplate checks a template that is the base of a PATCH: a PatchOp message whose
// "Operations", when present, are RFC 7644 operations.
func checkPatchTemplate(m map[string]any) error {
	raw, ok := m["Operations"]
	if !ok {
		return nil
	}
	ops, ok := raw.([]any)
	if !ok {
		return fmt.Errorf(`a PATCH template's "Operations" must be a list, got %s`, describe(raw))
	}
	for i, o := range ops {
		op, ok := o.(map[string]any)
		if !ok {
			return fmt.Errorf(`"Operations"[%d] must be an object, got %s`, i, describe(o))
		}
		name, _ := op["op"].(string)
		switch strings.ToLower(name) {
		case "add", "replace", "remove":
		default:
			return fmt.Errorf(`"Operations"[%d].op must be add, replace or remove, got %s`, i, describe(op["op"]))
		}
	}
	return nil
}
