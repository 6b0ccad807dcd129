package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validEvent() map[string]any {
	return map[string]any{
		"specversion": "1.0",
		"id":          "evt-1",
		"source":      "/hr/test",
		"type":        "identity.user.update",
		"time":        "2026-11-23T10:00:00Z",
		"data": map[string]any{
			"object":     "User",
			"operation":  "Update",
			"key":        map[string]any{"userName": "jdoe@example.com"},
			"attributes": map[string]any{"name.givenName": "John", "title": "CTO", "emails[].value": []any{"jdoe@example.com"}},
			"actions":    map[string]any{"emails[].value": "add"},
		},
	}
}

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	raw, _ := json.Marshal(validEvent())
	ev, err := Decode(raw)
	require.NoError(t, err)
	assert.Equal(t, "evt-1", ev.ID)
	assert.Equal(t, "User", ev.Data.Object)
	assert.Equal(t, "Update", ev.Data.Operation)
	assert.Equal(t, "jdoe@example.com", ev.Data.Key["userName"])
	assert.Equal(t, "add", ev.Data.Actions["emails[].value"])
	assert.Equal(t, []any{"jdoe@example.com"}, ev.Data.Attributes["emails[].value"])
}

func TestDecodeInvalid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		mutate  func(m map[string]any)
		raw     string
		pointer string
		want    string
	}{
		{name: "not JSON", raw: `{"specversion": "1.0", `, want: "not a JSON document"},
		{name: "missing id", mutate: func(m map[string]any) { delete(m, "id") }, want: "id"},
		{name: "wrong specversion", mutate: func(m map[string]any) { m["specversion"] = "0.3" }, pointer: "/specversion"},
		{name: "unknown operation", mutate: func(m map[string]any) {
			m["data"].(map[string]any)["operation"] = "Promote"
			m["type"] = "identity.user.promote"
		}, want: "/data/operation"},
		{name: "empty key", mutate: func(m map[string]any) { m["data"].(map[string]any)["key"] = map[string]any{} }, pointer: "/data/key"},
		{name: "object key value", mutate: func(m map[string]any) {
			m["data"].(map[string]any)["key"] = map[string]any{"userName": map[string]any{"x": 1}}
		}, pointer: "/data/key/userName"},
		{name: "bad action", mutate: func(m map[string]any) {
			m["data"].(map[string]any)["actions"] = map[string]any{"title": "replace"}
		}, pointer: "/data/actions/title"},
		{name: "unknown data field", mutate: func(m map[string]any) { m["data"].(map[string]any)["extra"] = 1 }, want: "extra"},
		{name: "bad time", mutate: func(m map[string]any) { m["time"] = "yesterday" }, pointer: "/time"},
		{name: "type disagrees with data", mutate: func(m map[string]any) { m["type"] = "identity.user.delete" }, pointer: "/type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tc.raw)
			if tc.mutate != nil {
				m := validEvent()
				tc.mutate(m)
				raw, _ = json.Marshal(m)
			}
			_, err := Decode(raw)
			require.Error(t, err)
			var de *DecodeError
			require.True(t, errors.As(err, &de), "error %T is not a *DecodeError", err)
			if tc.pointer != "" {
				assert.Equal(t, tc.pointer, de.Pointer, err.Error())
			}
			if tc.want != "" {
				assert.Contains(t, err.Error(), tc.want)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "invalid event"), err.Error())
		})
	}
}

func TestDecodeKeepsWhatItCanRead(t *testing.T) {
	t.Parallel()
	m := validEvent()
	m["data"].(map[string]any)["operation"] = "Promote"
	raw, _ := json.Marshal(m)
	ev, err := Decode(raw)
	require.Error(t, err)
	require.NotNil(t, ev)
	assert.Equal(t, "evt-1", ev.ID)
	assert.Equal(t, "User", ev.Data.Object)
}

func TestNewEventRoundTrip(t *testing.T) {
	t.Parallel()
	ev := NewEvent("e-2", "/iam", Change{Object: "Group", Operation: OpAddAssignment,
		Key: map[string]any{"displayName": "Admins"}, Attributes: map[string]any{"members[].value": []any{"a", "b"}}})
	raw, err := ev.Encode()
	require.NoError(t, err)
	got, err := Decode(raw)
	require.NoError(t, err)
	assert.Equal(t, "identity.group.addassignment", got.Type)
	assert.Equal(t, "Group/displayName=Admins", got.Subject)
	assert.Equal(t, ev.Data.Key, got.Data.Key)
}

func FuzzDecode(f *testing.F) {
	raw, _ := json.Marshal(validEvent())
	f.Add(raw)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"a":1}}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err == nil {
			// Anything accepted is a complete event whose type matches its data.
			if ev.ID == "" || ev.Data.Object == "" || len(ev.Data.Key) == 0 || ev.Type != EventType(ev.Data.Object, ev.Data.Operation) {
				t.Fatalf("accepted an incomplete event: %+v", ev)
			}
			return
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("error %T is not a *DecodeError: %v", err, err)
		}
	})
}
