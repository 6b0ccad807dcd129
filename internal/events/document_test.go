package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

func TestReadDocumentAgreesOnRandomDocuments(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.IntN(10); {
		case depth > 5 || k < 4:
			return []any{"s", "é", json.Number("1.5"), json.Number("-12e-3"), true, false, nil, "", "a<b>&", 3}[rng.IntN(10)]
		case k < 7:
			m := map[string]any{}
			for i := range rng.IntN(5) {
				m[fmt.Sprintf("k%d", i*rng.IntN(3))] = gen(depth + 1)
			}
			return m
		default:
			a := []any{}
			for range rng.IntN(4) {
				a = append(a, gen(depth+1))
			}
			return a
		}
	}
	for range 3000 {
		raw, err := json.Marshal(gen(0))
		require.NoError(t, err)
		agreeDocument(t, raw)
	}
}

func FuzzReadDocument(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[true,null,"x"],"c":{"d":-1.5e2}}`))
	f.Add([]byte(`{"a":1}{"b":2}`))
	f.Add([]byte(`{"a":"\u00e9"}`))
	f.Fuzz(func(t *testing.T, raw []byte) { agreeDocument(t, raw) })
}
