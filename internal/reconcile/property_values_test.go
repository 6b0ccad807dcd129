package reconcile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPropertyValuesIn(t *testing.T) {
	t.Parallel()
	m, err := ParseModel("m.yaml", []byte(`objects:
  - name: User
    resource: Users
    properties:
      - {name: userName, isKey: true}
      - {name: name.givenName}
      - {name: "emails[].value"}
      - {name: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", type: reference, referenceObject: Users, referenceLookupProperty: userName}
      - {name: "$.x", type: string}
`))
	require.NoError(t, err)
	o, _ := m.Object("User")
	res := map[string]any{
		"UserName": "ada",
		"name":     map[string]any{"givenName": "Ada"},
		"emails":   []any{map[string]any{"value": "a@x"}, map[string]any{"type": "home"}, map[string]any{"value": "b@x"}},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"manager": map[string]any{"value": "m1"}},
	}
	want := map[string][]any{
		"userName":       {"ada"},
		"name.givenName": {"Ada"},
		"emails[].value": {"a@x", "b@x"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": {"m1"},
		"$.x": nil,
	}
	for _, p := range o.Properties() {
		assert.Equal(t, want[p.Name()], p.ValuesIn(res), p.Name())
	}
	p, _ := o.Property("name.givenName")
	assert.Nil(t, p.ValuesIn(map[string]any{"name": "flat"}), "a scalar where an object is expected holds nothing")
}
