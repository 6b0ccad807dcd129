package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/scimflow/scimflow/internal/reconcile"
)

func plan(op reconcile.Operation, reqs ...reconcile.Request) *reconcile.Plan {
	return &reconcile.Plan{Object: "User", Resource: "Users", Operation: op, ObjectID: "u1", Requests: reqs}
}

func patch(body string) reconcile.Request {
	return reconcile.Request{Method: "PATCH", Path: "Users/u1", Body: []byte(body)}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	del := reconcile.Request{Method: "DELETE", Path: "Users/u1"}
	put := func(body string) reconcile.Request {
		return reconcile.Request{Method: "PUT", Path: "Users/u1", Body: []byte(body)}
	}
	cases := []struct {
		name string
		plan *reconcile.Plan
		want Kind
	}{
		{"no plan", nil, KindNone},
		{"nothing to send", plan(reconcile.OpDelete), KindNone},
		{"DELETE", plan(reconcile.OpDelete, del), KindDelete},
		{"lower-case delete method", plan(reconcile.OpDelete, reconcile.Request{Method: "delete", Path: "Users/u1"}), KindDelete},
		{"soft delete writes the object", plan(reconcile.OpDelete, patch(`{"Operations":[{"op":"replace","path":"title","value":"gone"}]}`)), KindDelete},
		{"replace active false", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"active","value":false}]}`)), KindDisable},
		{"Replace with another case", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"Replace","path":"Active","value":false}]}`)), KindDisable},
		{"add active false", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"add","path":"active","value":false}]}`)), KindDisable},
		{"active false as text", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"active","value":"False"}]}`)), KindDisable},
		{"path with the schema URN", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"urn:ietf:params:scim:schemas:core:2.0:User:active","value":false}]}`)), KindDisable},
		{"replace without a path", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","value":{"title":"x","active":false}}]}`)), KindDisable},
		{"among other operations", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"title","value":"x"},{"op":"replace","path":"active","value":false}]}`)), KindDisable},
		{"replace active true", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"active","value":true}]}`)), KindNone},
		{"remove active", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"remove","path":"active"}]}`)), KindNone},
		{"another attribute false", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"x-active","value":false}]}`)), KindNone},
		{"PUT active false", plan(reconcile.OpUpdate, put(`{"userName":"a","active":false}`)), KindDisable},
		{"PUT active under the core URN", plan(reconcile.OpUpdate, put(`{"urn:ietf:params:scim:schemas:core:2.0:User":{"active":false}}`)), KindDisable},
		{"PUT active true", plan(reconcile.OpUpdate, put(`{"userName":"a","active":true}`)), KindNone},
		{"create an inactive user", plan(reconcile.OpCreate, reconcile.Request{Method: "POST", Path: "Users", Body: []byte(`{"userName":"a","active":false}`)}), KindNone},
		{"member removal", plan(reconcile.OpRemoveAssignment, patch(`{"Operations":[{"op":"remove","path":"members[value eq \"u2\"]"}]}`)), KindNone},
		{"not JSON", plan(reconcile.OpUpdate, patch(`{`)), KindNone},
		// A body that never names active is not decoded, but one may spell it with escapes.
		{"active spelled with escapes", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"replace","path":"\u0061ctive","value":false}]}`)), KindDisable},
		{"the object's key spelled with escapes", plan(reconcile.OpUpdate, put(`{"userName":"a","\u0041CTIVE":false}`)), KindDisable},
		{"ACTIVE in capitals", plan(reconcile.OpUpdate, patch(`{"Operations":[{"op":"REPLACE","path":"ACTIVE","value":false}]}`)), KindDisable},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, Classify(tc.plan), tc.name)
	}
}

func TestIntent(t *testing.T) {
	t.Parallel()
	assert.Equal(t, KindDelete, Intent(reconcile.OpDelete, nil))
	assert.Equal(t, KindDisable, Intent(reconcile.OpUpdate, map[string]any{"title": "x", "active": false}))
	assert.Equal(t, KindDisable, Intent(reconcile.OpUpdate, map[string]any{"active": "false"}))
	assert.Equal(t, KindNone, Intent(reconcile.OpCreate, map[string]any{"active": false}), "creating an inactive object disables nothing")
	assert.Equal(t, KindNone, Intent(reconcile.OpUpsert, map[string]any{"active": false}), "the plan decides: a create, or a disable")
	assert.Equal(t, KindNone, Intent(reconcile.OpUpdate, map[string]any{"active": true}))
	assert.Equal(t, KindNone, Intent(reconcile.OpCreate, map[string]any{"title": "x"}))
}
