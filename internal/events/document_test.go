package events

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
)

// readDocument must read what the validator's own reader reads, or say it can't.
func agreeDocument(t testing.TB, raw []byte) (fast bool) {
	t.Helper()
	doc, ok := readDocument(raw)
	want, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if !ok {
		return false
	}
	require.NoError(t, err, "readDocument read what the validator refuses: %q", raw)
	require.Equal(t, want, doc, "%q", raw)
	return true
}

func TestReadDocumentIsWhatTheValidatorReads(t *testing.T) {
	t.Parallel()
	fast := 0
	inputs := [][]byte{
		[]byte(`{"a":1,"a":2,"b":[],"c":{},"d":[1,-2.5e3,true,false,null,"x",{"e":[[]]}],"f":"é ü 😀","g":0}`),
		[]byte(`  {"x":1}  `), []byte(`{"x":1} {"y":2}`), []byte(`{"x":1}x`), []byte(`{"x":01}`), []byte(`{"x":1,}`),
		[]byte(`{"x":"a\"b"}`), []byte("{\"x\":\"\xff\"}"), []byte(`[1,2]`), []byte(`"s"`), []byte(`12`), []byte(`null`),
		[]byte(``), []byte(`{`), []byte(`{"x":tru}`), []byte(`{"x":"tab	inside"}`), []byte("{\"x\":\"nl\ninside\"}"), []byte(`{"x":1e400}`),
		[]byte(`{"":""}`), []byte(`{"x":-0}`), []byte(`{"x":.5}`), []byte(`{"x":5.}`), []byte(`{"x":NaN}`),
	}
	inputs = append(inputs, exampleEvents(t)...)
	for _, m := range conformsCases() {
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		inputs = append(inputs, raw)
	}
	for _, raw := range inputs {
		if agreeDocument(t, raw) {
			fast++
		}
	}
	require.Greater(t, fast, len(inputs)/2, "most inputs take the fast reader")
	for _, l := range exampleEvents(t) {
		if !bytes.Contains(l, []byte(`\`)) {
			_, ok := readDocument(l)
			require.True(t, ok, "a sample event takes the slow reader: %s", l)
		}
	}
}

func FuzzReadDocument(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[true,null,"x"],"c":{"d":-1.5e2}}`))
	f.Add([]byte(`{"a":1}{"b":2}`))
	f.Add([]byte(`{"a":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, raw []byte) { agreeDocument(t, raw) })
}
