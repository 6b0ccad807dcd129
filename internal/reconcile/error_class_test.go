package reconcile

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// craftedReader answers the way a test needs, including the ways a broken target answers.
type craftedReader struct {
	resolve func(resource string, match []Match) (string, bool, error)
	get     func(resource, id string) (map[string]any, error)
}

func (c craftedReader) Resolve(_ context.Context, resource string, match []Match) (string, bool, error) {
	if c.resolve != nil {
		return c.resolve(resource, match)
	}
	ids := map[string]string{"Users/jdoe": "u1", "Users/boss": "u2", "Safes/Payroll": "s1"}
	id, ok := ids[resource+"/"+match[0].Value]
	return id, ok, nil
}

func (c craftedReader) Get(_ context.Context, resource, id string) (map[string]any, error) {
	if c.get != nil {
		return c.get(resource, id)
	}
	return map[string]any{"id": id, "name": "Payroll"}, nil
}

var errReader = errors.New("reader failed")

// planErrorClass is what a classifier can tell about a planning error: "" means nothing, and the
// pipeline would have to guess (it used to retry such errors as if they were transient).
func planErrorClass(err error) string {
	var ure *UnresolvedReferenceError
	switch {
	case errors.Is(err, ErrInvalidChange):
		return "invalid"
	case errors.Is(err, ErrModel):
		return "model"
	case errors.Is(err, ErrObjectNotFound):
		return "not found"
	case errors.Is(err, ErrTargetResponse):
		return "target response"
	case errors.As(err, &ure):
		return "unresolved"
	case errors.Is(err, errReader), errors.Is(err, context.Canceled):
		return "reader"
	}
	return ""
}

// TestPlanErrorsAreClassifiable drives every way Plan fails and checks that errors.Is/As finds the
// class of each (issue 7 item 15).
func TestPlanErrorsAreClassifiable(t *testing.T) {
	t.Parallel()
	m, err := ParseModel("classes.yaml", []byte(`objects:
  - name: User
    resource: Users
    properties:
      - {name: userName, isKey: true}
      - {name: title}
      - {name: manager, path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", referenceObject: Users, referenceLookupProperty: userName}
      - {name: "$.x"}
  - name: Safe
    resource: Safes
    properties:
      - {name: name, isKey: true}
      - {name: description}
    details: {ReconcileOnUpdate: true, UpdateMethod: put}
  - name: Keyless
    properties:
      - {name: title}
`))
	require.NoError(t, err)
	user := func(op Operation, attrs map[string]any) Change {
		return Change{Object: "User", Operation: op, Key: map[string]any{"userName": "jdoe"}, Attributes: attrs}
	}
	safe := Change{Object: "Safe", Operation: OpUpdate, Key: map[string]any{"name": "Payroll"}, Attributes: map[string]any{"description": "x"}}
	emptyID := func(string, []Match) (string, bool, error) { return "", true, nil }
	cases := []struct {
		name   string
		r      craftedReader
		ch     Change
		want   string
		inText string
	}{
		{name: "unknown object", ch: Change{Object: "Nope", Operation: OpCreate}, want: "invalid"},
		{name: "a value of the wrong type", ch: user(OpUpdate, map[string]any{"title": []any{"a"}}), want: "invalid"},
		{name: "no key to find the object by", ch: Change{Object: "Keyless", Operation: OpUpdate, Attributes: map[string]any{"title": "x"}}, want: "model"},
		{name: "a JSONPath that matches nothing", ch: user(OpCreate, map[string]any{"$.x": "y"}), want: "model"},
		{name: "the object is absent", ch: Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "ghost"}, Attributes: map[string]any{"title": "x"}}, want: "not found"},
		{name: "a reference that doesn't resolve", ch: user(OpUpdate, map[string]any{"manager": "nobody"}), want: "unresolved"},
		{name: "Resolve of the key fails", r: craftedReader{resolve: func(string, []Match) (string, bool, error) { return "", false, errReader }},
			ch: user(OpUpdate, map[string]any{"title": "x"}), want: "reader"},
		{name: "Resolve of a reference fails", r: craftedReader{resolve: func(_ string, m []Match) (string, bool, error) {
			if m[0].Value == "boss" {
				return "", false, errReader
			}
			return "u1", true, nil
		}}, ch: user(OpUpdate, map[string]any{"manager": "boss"}), want: "reader"},
		{name: "the context ends during a read", r: craftedReader{resolve: func(string, []Match) (string, bool, error) { return "", false, context.Canceled }},
			ch: user(OpUpdate, map[string]any{"title": "x"}), want: "reader"},
		{name: "Get of the current object fails", r: craftedReader{get: func(string, string) (map[string]any, error) { return nil, errReader }}, ch: safe, want: "reader"},
		{name: "the key resolves to an empty id", r: craftedReader{resolve: emptyID},
			ch: user(OpUpdate, map[string]any{"title": "x"}), want: "target response", inText: "a match without an id"},
		{name: "a reference resolves to an empty id", r: craftedReader{resolve: func(_ string, m []Match) (string, bool, error) {
			if m[0].Value == "boss" {
				return "", true, nil
			}
			return "u1", true, nil
		}}, ch: user(OpUpdate, map[string]any{"manager": "boss"}), want: "target response", inText: `reference "manager"`},
		{name: "Get returns no object", r: craftedReader{get: func(string, string) (map[string]any, error) { return nil, nil }},
			ch: safe, want: "target response", inText: "the target returned null, not an object"},
		{name: "Get returns an object that is not JSON", r: craftedReader{get: func(string, string) (map[string]any, error) {
			return map[string]any{"id": "s1", "size": math.Inf(1)}, nil
		}}, ch: safe, want: "target response", inText: "the object is not JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewPlanner(m, Options{}).Plan(context.Background(), c.r, c.ch)
			require.Error(t, err)
			assert.Equal(t, c.want, planErrorClass(err), "class of %v", err)
			assert.Contains(t, err.Error(), "plan "+string(c.ch.Operation)+" of "+c.ch.Object)
			if c.inText != "" {
				assert.Contains(t, err.Error(), c.inText)
			}
		})
	}
}
