package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

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

// eventWith returns a valid event's JSON with placeholder replaced by the raw bytes of text: a JSON
// string body that may hold bytes or escapes encoding/json would never produce.
func eventWith(t testing.TB, placeholderPath func(m map[string]any), text string) []byte {
	t.Helper()
	m := validEvent()
	placeholderPath(m)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	out := bytes.Replace(raw, []byte("PLACEHOLDER"), []byte(text), 1)
	require.NotEqual(t, raw, out, "the placeholder is in the event")
	return out
}

func TestDecodeRefusesTextThatIsNotUnicode(t *testing.T) {
	t.Parallel()
	data := func(m map[string]any) map[string]any { return m["data"].(map[string]any) }
	inKey := func(m map[string]any) { data(m)["key"] = map[string]any{"userName": "PLACEHOLDER"} }
	inTitle := func(m map[string]any) { data(m)["attributes"].(map[string]any)["title"] = "PLACEHOLDER" }
	inEmail := func(m map[string]any) {
		data(m)["attributes"].(map[string]any)["emails[].value"] = []any{"a@example.com", "PLACEHOLDER"}
	}
	inAttrName := func(m map[string]any) { data(m)["attributes"].(map[string]any)["PLACEHOLDER"] = "x" }
	inID := func(m map[string]any) { m["id"] = "PLACEHOLDER" }
	inSource := func(m map[string]any) { m["source"] = "PLACEHOLDER" }
	inSlashName := func(m map[string]any) { data(m)["attributes"].(map[string]any)["a/b~c"] = "PLACEHOLDER" }
	cases := []struct {
		name    string
		where   func(m map[string]any)
		text    string
		pointer string
		want    string
	}{
		{"invalid byte in a key value", inKey, "jdoe\xff@example.com", "/data/key/userName", "not valid UTF-8"},
		{"truncated sequence in a key value", inKey, "jdo\xc3", "/data/key/userName", "not valid UTF-8"},
		{"overlong encoding in an attribute", inTitle, "C\xc0\xafO", "/data/attributes/title", "not valid UTF-8"},
		{"encoded surrogate bytes in an attribute", inTitle, "\xed\xa0\x80", "/data/attributes/title", "not valid UTF-8"},
		{"invalid byte in an array element", inEmail, "b\xfe@example.com", "/data/attributes/emails[].value/1", "not valid UTF-8"},
		{"invalid byte in the id", inID, "evt-\x80", "/id", "not valid UTF-8"},
		{"lone high surrogate in a key value", inKey, `x\ud800y`, "/data/key/userName", `lone surrogate \ud800`},
		{"lone low surrogate in an attribute", inTitle, `\uDC00`, "/data/attributes/title", `lone surrogate \uDC00`},
		{"high surrogate at the end of a string", inKey, `jdoe\uD83D`, "/data/key/userName", "lone surrogate"},
		{"high surrogate followed by another high one", inTitle, `\ud83d\ud83d`, "/data/attributes/title", "lone surrogate"},
		{"high surrogate followed by a plain escape", inSource, `\ud83d\n`, "/source", "lone surrogate"},
		{"invalid byte in a member name", inAttrName, "ti\xfftle", "/data/attributes", "member name"},
		{"lone surrogate in a member name", inAttrName, `t\udfffitle`, "/data/attributes", "member name"},
		{"pointer escapes ~ and /", inSlashName, "\xff", "/data/attributes/a~1b~0c", "not valid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := eventWith(t, tc.where, tc.text)
			ev, err := Decode(raw)
			require.Error(t, err, "accepted %q", raw)
			var de *DecodeError
			require.True(t, errors.As(err, &de), "error %T is not a *DecodeError", err)
			assert.Equal(t, tc.pointer, de.Pointer, err.Error())
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "invalid event at "+tc.pointer+": "), err.Error())
			require.NotNil(t, ev, "what can be read is returned for the dead letter")
			assert.Equal(t, "User", ev.Data.Object)
		})
	}
}

func TestDecodeAcceptsValidUnicode(t *testing.T) {
	t.Parallel()
	inTitle := func(m map[string]any) {
		m["data"].(map[string]any)["attributes"].(map[string]any)["title"] = "PLACEHOLDER"
	}
	for _, text := range []string{
		"Chef d’équipe – 日本語 😀",    // raw UTF-8, up to four bytes
		`\u00e9\u65e5`,             // escapes of BMP characters
		`\ud83d\ude00`,             // a surrogate pair: one character
		`\uD83D\uDE00 and \\ud800`, // upper-case hex; an escaped backslash before "ud800" is no escape
		"\ufffd literally",         // U+FFFD written by the source is a character like any other
	} {
		raw := eventWith(t, inTitle, text)
		ev, err := Decode(raw)
		require.NoError(t, err, "%s", raw)
		var want string
		require.NoError(t, json.Unmarshal([]byte(`"`+text+`"`), &want))
		assert.Equal(t, want, ev.Data.Attributes["title"])
	}
}

// FuzzDecodeText holds that an accepted event carries only the text its source wrote: every string
// is valid UTF-8, and a U+FFFD appears only where the input wrote one, never as the replacement of a
// byte or escape that is not Unicode.
func FuzzDecodeText(f *testing.F) {
	raw, _ := json.Marshal(validEvent())
	f.Add(raw)
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":"a\ud800b"}}}`))
	f.Add([]byte("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"identity.user.create\",\"data\":{\"object\":\"User\",\"operation\":\"Create\",\"key\":{\"userName\":\"a\xffb\"}}}"))
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"s","type":"identity.user.create","data":{"object":"User","operation":"Create","key":{"userName":"a\ud83d\ude00"},"attributes":{"t\udc00":"\\ud800"}}}`))
	f.Add([]byte("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"identity.user.create\",\"data\":{\"object\":\"User\",\"operation\":\"Create\",\"key\":{\"userName\":\"a\"},\"attributes\":{\"t\":[\"\xed\xa0\x80\",{\"\xc0\":1}]}}}"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := Decode(raw)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			return
		}
		if !utf8.Valid(raw) {
			t.Fatalf("accepted an event that is not UTF-8: %q", raw)
		}
		written := bytes.Count(raw, []byte("\ufffd")) + bytes.Count(bytes.ToLower(raw), []byte(`\ufffd`))
		got := 0
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case string:
				if !utf8.ValidString(v) {
					t.Fatalf("accepted a string that is not UTF-8: %q", v)
				}
				got += strings.Count(v, "\ufffd")
			case map[string]any:
				for k, e := range v {
					walk(k)
					walk(e)
				}
			case []any:
				for _, e := range v {
					walk(e)
				}
			}
		}
		walk(ev.ID)
		walk(ev.Source)
		walk(ev.Subject)
		walk(ev.Data.Key)
		walk(ev.Data.Attributes)
		for k, v := range ev.Data.Actions {
			walk(k)
			walk(v)
		}
		if got > written {
			t.Fatalf("accepted an event whose decoding replaced text with U+FFFD (%d written, %d decoded): %q", written, got, raw)
		}
	})
}
