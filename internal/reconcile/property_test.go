package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// Property-based tests of the merge and the planner with pgregory.net/rapid.

var _ tb = (*rapid.T)(nil)

var (
	emailAlphabet = []string{"a@example.org", "b@example.org", "c@example.org", "A@example.org"}
	typeAlphabet  = []string{"work", "home"}
)

const propModelReconciled = `objects:
  - name: User
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: title}
      - {name: "emails[].value"}
      - {name: "emails[].type"}
      - {name: "roles[]"}
    details: {ReconcileOnUpdate: true, UpdateMethod: UPDATEMETHOD}
    taskMappings:
      Update:
        - {name: title, action: modify}
        - {name: "emails[].value", action: add, multivalue: true}
        - {name: "emails[].type", action: add, multivalue: true}
        - {name: "roles[]", action: add}
`

// drawMode draws the update modes in which the seed's merge semantics hold: reconciled (PUT or
// PATCH of the merged object) and non-reconciled PATCH. A non-reconciled PUT replaces the object
// with what the event carries, so it has none of them (docs/datamodel.md).
func drawMode(t *rapid.T) (reconcile bool, method string) {
	mode := rapid.SampledFrom([]string{"reconciled put", "reconciled patch", "patch"}).Draw(t, "mode")
	return strings.HasPrefix(mode, "reconciled"), mode[strings.LastIndexByte(mode, ' ')+1:]
}

func propModel(t tb, reconcile bool, method string) *Model {
	t.Helper()
	src := strings.Replace(propModelReconciled, "UPDATEMETHOD", method, 1)
	if !reconcile {
		src = strings.Replace(src, "ReconcileOnUpdate: true", "ReconcileOnUpdate: false", 1)
	}
	m, err := ParseModel("prop.yaml", []byte(src))
	require.NoError(t, err)
	return m
}

// drawUser draws a stored user: some emails (duplicates allowed, as real data has them), roles and
// maybe a title.
func drawUser(t *rapid.T) map[string]any {
	emails := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) any {
		e := map[string]any{"value": rapid.SampledFrom(emailAlphabet).Draw(t, "value")}
		if rapid.Bool().Draw(t, "typed") {
			e["type"] = rapid.SampledFrom(typeAlphabet).Draw(t, "type")
		}
		if rapid.Bool().Draw(t, "primary") {
			e["primary"] = true
		}
		return e
	}), 0, 4).Draw(t, "emails")
	u := map[string]any{"id": "u1", "schemas": []any{coreUserSchema}, "userName": "jdoe", "emails": emails}
	if roles := rapid.SliceOfN(rapid.SampledFrom([]any{"r1", "r2", "r3"}), 0, 3).Draw(t, "roles"); len(roles) > 0 {
		u["roles"] = roles
	}
	if rapid.Bool().Draw(t, "hasTitle") {
		u["title"] = rapid.SampledFrom([]string{"CTO", "Engineer"}).Draw(t, "title")
	}
	return u
}

// drawChange draws an Update of jdoe with an action per property.
func drawChange(t *rapid.T) Change {
	attrs := map[string]any{}
	actions := map[string]string{}
	n := rapid.IntRange(0, 3).Draw(t, "n")
	if n > 0 {
		var values, types []any
		for i := range n {
			values = append(values, rapid.SampledFrom(emailAlphabet).Draw(t, fmt.Sprintf("value%d", i)))
			types = append(types, rapid.SampledFrom(typeAlphabet).Draw(t, fmt.Sprintf("type%d", i)))
		}
		attrs["emails[].value"], attrs["emails[].type"] = values, types
		a := rapid.SampledFrom([]string{"add", "remove"}).Draw(t, "emailAction")
		actions["emails[].value"], actions["emails[].type"] = a, a
	}
	if rapid.Bool().Draw(t, "setTitle") {
		attrs["title"] = rapid.SampledFrom([]string{"CTO", "Engineer"}).Draw(t, "newTitle")
		actions["title"] = rapid.SampledFrom([]string{"add", "modify", "remove"}).Draw(t, "titleAction")
	}
	if rapid.Bool().Draw(t, "setRoles") {
		attrs["roles[]"] = rapid.SliceOfN(rapid.SampledFrom([]any{"r1", "r2", "r3"}), 1, 3).Draw(t, "newRoles")
		actions["roles[]"] = rapid.SampledFrom([]string{"add", "remove"}).Draw(t, "rolesAction")
	}
	return Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"}, Attributes: attrs, Actions: actions}
}

func storeUser(t tb, u map[string]any) *memoryReader {
	r := newMemoryReader()
	raw, err := json.Marshal(u)
	require.NoError(t, err)
	r.add(t, "Users", string(raw))
	return r
}

func mustPlan(t tb, m *Model, r Reader, ch Change) *Plan {
	t.Helper()
	p, err := NewPlanner(m, Options{}).Plan(context.Background(), r, ch)
	require.NoError(t, err)
	return p
}

// TestPropertySameEventTwice: planning a change twice gives the same requests, and once its
// requests are applied, planning it again changes nothing: a reconciled object needs no request,
// and a non-reconciled PATCH applied a second time leaves the object as the first time left it.
func TestPropertySameEventTwice(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		reconcile, method := drawMode(t)
		m := propModel(t, reconcile, method)
		u, ch := drawUser(t), drawChange(t)
		r := storeUser(t, u)

		first := mustPlan(t, m, r, ch)
		again := mustPlan(t, m, r, ch)
		require.Equal(t, first.Requests, again.Requests, "planning is deterministic")

		for _, req := range first.Requests {
			r.apply(t, req)
		}
		once := r.object(t, "Users", "u1")
		second := mustPlan(t, m, r, ch)
		if reconcile {
			require.Empty(t, second.Requests, "a reconciled change applied once needs nothing more: %s", describeRequests(second.Requests))
			return
		}
		require.Equal(t, first.Requests, second.Requests, "a non-reconciled plan does not depend on the object")
		for _, req := range second.Requests {
			r.apply(t, req)
		}
		require.Equal(t, once, r.object(t, "Users", "u1"), "the second application changes nothing")
	})
}

// TestPropertyAddNeverDuplicates: after an add, every added entry is in the object exactly as many
// times as before, or once when it was absent.
func TestPropertyAddNeverDuplicates(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		reconcile, method := drawMode(t)
		m := propModel(t, reconcile, method)
		u := drawUser(t)
		ch := drawChange(t)
		for k := range ch.Actions {
			ch.Actions[k] = "add"
		}
		if _, ok := ch.Attributes["title"]; ok {
			ch.Actions["title"] = "modify"
		}
		before := slices.Clone(u["emails"].([]any))
		r := storeUser(t, u)
		for _, req := range mustPlan(t, m, r, ch).Requests {
			r.apply(t, req)
		}
		after, _ := r.object(t, "Users", "u1")["emails"].([]any)
		values, _ := ch.Attributes["emails[].value"].([]any)
		types, _ := ch.Attributes["emails[].type"].([]any)
		for i := range values {
			entry := map[string]any{"value": values[i], "type": types[i]}
			was := countContaining(before, entry)
			require.Equal(t, max(was, 1), countContaining(after, entry), "entry %v in %v (before %v)", entry, after, before)
		}
		require.Equal(t, before, after[:len(before)], "add keeps what was there, in place")
		for _, e := range after[len(before):] {
			require.Equal(t, 1, countContaining(after[len(before):], e), "added twice: %v", e)
		}
	})
}

func countContaining(list []any, entry any) int {
	n := 0
	for _, e := range list {
		if contains(normalizeForTest(e), normalizeForTest(entry)) {
			n++
		}
	}
	return n
}

func normalizeForTest(v any) any {
	n, err := normalizeJSON(v)
	if err != nil {
		panic(err)
	}
	return n
}

// TestPropertyRemoveAbsentIsNoOp: removing values the object doesn't hold changes nothing.
func TestPropertyRemoveAbsentIsNoOp(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		reconcile, method := drawMode(t)
		m := propModel(t, reconcile, method)
		u := drawUser(t)
		var held []string
		for _, e := range u["emails"].([]any) {
			held = append(held, e.(map[string]any)["value"].(string))
		}
		var absent []any
		for _, v := range emailAlphabet {
			if !slices.Contains(held, v) {
				absent = append(absent, v)
			}
		}
		if len(absent) == 0 {
			t.Skip("every value is held")
		}
		pick := rapid.SliceOfNDistinct(rapid.SampledFrom(absent), 1, len(absent), func(v any) any { return v }).Draw(t, "remove")
		ch := Change{Object: "User", Operation: OpUpdate, Key: map[string]any{"userName": "jdoe"},
			Attributes: map[string]any{"emails[].value": pick}, Actions: map[string]string{"emails[].value": "remove"}}
		r := storeUser(t, u)
		before := r.object(t, "Users", "u1")
		p := mustPlan(t, m, r, ch)
		if reconcile {
			require.Empty(t, p.Requests)
			require.Equal(t, "already in the desired state", p.Skipped)
		}
		for _, req := range p.Requests {
			r.apply(t, req)
		}
		require.Equal(t, before, r.object(t, "Users", "u1"))
	})
}

// TestPropertyInputOrderDoesNotMatter: the order of fields in the event and in the current object
// never changes the requests.
func TestPropertyInputOrderDoesNotMatter(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		reconcile, method := drawMode(t)
		m := propModel(t, reconcile, method)
		u, ch := drawUser(t), drawChange(t)
		event, err := json.Marshal(map[string]any{"object": ch.Object, "operation": ch.Operation, "key": ch.Key, "attributes": ch.Attributes, "actions": ch.Actions})
		require.NoError(t, err)
		stored, err := json.Marshal(u)
		require.NoError(t, err)

		plan := func(eventJSON, storedJSON string) *Plan {
			var e struct {
				Object     string
				Operation  Operation
				Key        map[string]any
				Attributes map[string]any
				Actions    map[string]string
			}
			dec := json.NewDecoder(strings.NewReader(eventJSON))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&e))
			r := newMemoryReader()
			r.add(t, "Users", storedJSON)
			return mustPlan(t, m, r, Change{Object: e.Object, Operation: e.Operation, Key: e.Key, Attributes: e.Attributes, Actions: e.Actions})
		}
		want := plan(string(event), string(stored))
		got := plan(shuffledJSON(t, "event", string(event)), shuffledJSON(t, "stored", string(stored)))
		require.Equal(t, len(want.Requests), len(got.Requests))
		for i := range want.Requests {
			require.True(t, bytes.Equal(want.Requests[i].Body, got.Requests[i].Body), "%s\n%s", want.Requests[i].Body, got.Requests[i].Body)
			require.Equal(t, want.Requests[i], got.Requests[i])
		}
		require.Equal(t, want.Skipped, got.Skipped)
	})
}

// shuffledJSON re-encodes a JSON document with every object's fields in a drawn order.
func shuffledJSON(t *rapid.T, label, doc string) string {
	v, err := decodeJSON([]byte(doc))
	require.NoError(t, err)
	var b strings.Builder
	n := 0
	var write func(v any)
	write = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			n++
			keys := rapid.Permutation(sortedKeys(v)).Draw(t, fmt.Sprintf("%s-order-%d", label, n))
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				kb, _ := json.Marshal(k)
				b.Write(kb)
				b.WriteByte(':')
				write(v[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				write(e)
			}
			b.WriteByte(']')
		default:
			raw, _ := json.Marshal(v)
			b.Write(raw)
		}
	}
	write(v)
	return b.String()
}
