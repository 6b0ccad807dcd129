package reconcile

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func loadExample(t *testing.T, name string) *Model {
	t.Helper()
	m, err := LoadModel(filepath.Join("..", "..", "deploy", "examples", "models", name))
	require.NoError(t, err)
	return m
}

func TestSmokeRender(t *testing.T) {
	m := loadExample(t, "scim-generic.yaml")
	r := newMemoryReader()
	r.add(t, "Users", `{"userName":"boss@example.com"}`)
	r.add(t, "Users", `{"userName":"jdoe@example.com","name":{"givenName":"J"},"emails":[{"value":"old@example.com","type":"home"}]}`)
	r.add(t, "Groups", `{"displayName":"Admins","members":[]}`)
	p := NewPlanner(m, Options{})
	for _, ch := range []Change{
		{Object: "User", Operation: OpCreate, Key: map[string]any{"userName": "new@example.com"}, Attributes: map[string]any{
			"name.givenName": "New", "emails[].value": []any{"new@example.com"}, "emails[].type": []any{"work"}, "active": true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value": "boss@example.com"}},
		{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe@example.com"}, Attributes: map[string]any{
			"name.givenName": "John", "emails[].value": []any{"jdoe@example.com"}, "emails[].type": "work"}},
		{Object: "Group", Operation: OpAddAssignment, Key: map[string]any{"displayName": "Admins"}, Attributes: map[string]any{"members[].value": []any{"jdoe@example.com"}}},
		{Object: "Group", Operation: OpRemoveAssignment, Key: map[string]any{"displayName": "Admins"}, Attributes: map[string]any{"members[].value": []any{"jdoe@example.com", "ghost"}}},
	} {
		plan, err := p.Plan(context.Background(), r, ch)
		require.NoError(t, err)
		var b bytes.Buffer
		require.NoError(t, plan.Render(&b))
		t.Log("\n" + b.String())
	}
	_ = loadExample(t, "cyberark.yaml")
}
