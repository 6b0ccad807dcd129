package events

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/schemas"
)

// schemaAccepts is the oracle: the general validator's verdict on raw.
func schemaAccepts(t testing.TB, doc any) bool {
	t.Helper()
	vs, err := schemas.Validate(eventSchema, doc)
	require.NoError(t, err)
	return len(vs) == 0
}

func readDoc(t testing.TB, raw []byte) (any, bool) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	return doc, err == nil
}

// conformsCases are the variants of a valid event that conforms must judge: each field of the
// schema given values of every JSON type and the edges of its rules.
func conformsCases() []map[string]any {
	values := []any{nil, true, false, 0, 1.5, -3, "", "x", "1.0", []any{}, []any{"a"}, map[string]any{}, map[string]any{"a": 1}}
	times := []string{"2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123456789+01:00", "2026-11-23t10:00:00z", "2026-11-23 10:00:00Z",
		"2026-02-30T10:00:00Z", "2026-11-23T24:00:00Z", "2016-12-31T23:59:60Z", "2026-11-23T10:00:00+24:00", "2026-11-23T10:00:00+01:60",
		"2026-11-23T10:00:00.Z", "2026-11-23T10:00:00.1234567891Z", "2026-11-23T10:00:00", "26-11-23T10:00:00Z", "2026-13-01T00:00:00Z",
		"0000-01-01T00:00:00Z", "2026-11-23T10:00:00-00:00", "２026-11-23T10:00:00Z"}
	strs := []string{"identity.user.create", "identity.user_2.addassignment", "identity.User.create", "identity..create", "identity.user.create ",
		"identity.user.created", "xidentity.user.create", "User", "user", "Us-er", "_User", "U1_", "1User", "Create", "create",
		"AddAssignment", "add", "modify", "remove", "Add", "application/json", "text/plain",
		"identity.a.b.create", "identity.user.", "identity.user.Create", "identity.9_x.removeassignment", "identity.é.create", "a", "A_", "_", "aé", "Z9", strings.Repeat("é", 256), strings.Repeat("é", 257)}
	var out []map[string]any
	variant := func(edit func(m, data map[string]any)) {
		m := validEvent()
		data := maps.Clone(m["data"].(map[string]any))
		m["data"] = data
		edit(m, data)
		out = append(out, m)
	}
	variant(func(m, data map[string]any) {})
	all := append(append([]any{}, values...), anyOf(times)...)
	all = append(all, anyOf(strs)...)
	for _, field := range []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "extra"} {
		variant(func(m, data map[string]any) { delete(m, field) })
		for _, v := range all {
			variant(func(m, data map[string]any) { m[field] = v })
		}
	}
	for _, field := range []string{"object", "operation", "key", "attributes", "actions", "extra"} {
		variant(func(m, data map[string]any) { delete(data, field) })
		for _, v := range all {
			variant(func(m, data map[string]any) { data[field] = v })
		}
	}
	for _, v := range all {
		variant(func(m, data map[string]any) { data["key"] = map[string]any{"userName": v} })
		variant(func(m, data map[string]any) { data["key"] = map[string]any{"userName": "a", "n": v} })
		variant(func(m, data map[string]any) { data["actions"] = map[string]any{"title": v} })
		variant(func(m, data map[string]any) { data["attributes"] = map[string]any{"title": v} })
	}
	// Every operation with its type, the way publishers write them.
	for _, op := range []string{OpCreate, OpUpdate, OpDelete, OpUpsert, OpAddAssignment, OpRemoveAssignment} {
		variant(func(m, data map[string]any) { data["operation"], m["type"] = op, EventType("User", op) })
	}
	return out
}

func anyOf(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// conforms may only ever say yes to what the schema accepts, and must say yes to the events
// publishers send (or the fast path would be dead code).
func TestConformsAgreesWithTheSchema(t *testing.T) {
	t.Parallel()
	var accepted, fast int
	for _, m := range conformsCases() {
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		doc, ok := readDoc(t, raw)
		require.True(t, ok)
		valid := schemaAccepts(t, doc)
		if conforms(doc) {
			fast++
			require.True(t, valid, "conforms accepted what the schema refuses: %s", raw)
		}
		if valid {
			accepted++
		}
	}
	// The oracle accepted many of the variants, and conforms recognised most of them.
	require.Greater(t, accepted, 60)
	require.Greater(t, fast, accepted*3/4, "conforms said no to too many valid events")

	for _, l := range exampleEvents(t) {
		doc, ok := readDoc(t, l)
		if !ok || !schemaAccepts(t, doc) {
			continue
		}
		require.True(t, conforms(doc), "a sample event takes the slow path: %s", l)
	}
}

// exampleEvents are the lines of the sample event file.
func exampleEvents(t testing.TB) [][]byte {
	t.Helper()
	raw, err := readExample()
	require.NoError(t, err)
	var out [][]byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && l[0] == '{' {
			out = append(out, l)
		}
	}
	require.NotEmpty(t, out)
	return out
}

func FuzzConformsAgreesWithTheSchema(f *testing.F) {
	for _, m := range conformsCases()[:40] {
		raw, _ := json.Marshal(m)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, ok := readDoc(t, raw)
		if !ok {
			return
		}
		if conforms(doc) && !schemaAccepts(t, doc) {
			t.Fatalf("conforms accepted what the schema refuses: %s", raw)
		}
	})
}

func readExample() ([]byte, error) { return os.ReadFile("../../deploy/examples/events.jsonl") }
