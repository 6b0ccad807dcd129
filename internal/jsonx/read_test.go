package jsonx

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/require"
)

// Value must read what encoding/json (UseNumber) reads, or say it can't.
func sameValue(t testing.TB, raw []byte) bool {
	t.Helper()
	got, ok := Read(raw, Value)
	if !ok {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var want any
	require.NoError(t, dec.Decode(&want), "Value read what encoding/json refuses: %q", raw)
	require.Equal(t, want, got, "%q", raw)
	return true
}

func TestValueIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	read := 0
	inputs := []string{
		`{"a":1,"a":{"b":2},"c":[],"d":{},"e":[1,-2.5e3,true,false,null,"x",{"f":[[]]}],"g":"é 😀"}`,
		`{"esc\u0061ped":"\u00e9\n\"\\\/","lone":"\ud800","pair":"\ud83d\ude00"}`,
		"{\"bad\xff\":\"\xc3\x28\"}", `"s"`, `12`, `null`, `[]`, ` {"x":1} `,
		`{`, `{"x":tru}`, `{"x":01}`, `{"x":1,}`, `[1,]`, ``, `{"x":"\x"}`,
	}
	for _, in := range inputs {
		if sameValue(t, []byte(in)) {
			read++
		}
	}
	require.GreaterOrEqual(t, read, 8)
	// Members hands each member's name over as its token; PlainName says when the token's text is
	// the name itself, and Value reads an escaped name as encoding/json does.
	var tokens []string
	var plains []bool
	_, ok := Read([]byte(`{"na\u006de":1,"plain":2}`), func(d *jsontext.Decoder) (bool, bool) {
		return true, Members(d, func(name []byte) bool {
			_, plain := PlainName(name)
			tokens, plains = append(tokens, string(name)), append(plains, plain)
			return d.SkipValue() == nil
		})
	})
	require.True(t, ok)
	require.Equal(t, []string{`"na\u006de"`, `"plain"`}, tokens)
	require.Equal(t, []bool{false, true}, plains, "an escaped name is not its text")
	v, ok := Read([]byte(`{"na\u006de":1}`), Value)
	require.True(t, ok)
	require.Equal(t, map[string]any{"name": json.Number("1")}, v)
}

// Value reads random documents (those encoding/json can write) as encoding/json reads them.
func TestValueAgreesOnRandomDocuments(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	read := 0
	for range 3000 {
		raw, err := json.Marshal(randomValue(rng, 0))
		if err != nil {
			continue // an invalid json.Number
		}
		if sameValue(t, raw) {
			read++
		}
	}
	require.Greater(t, read, 1000)
}

func FuzzValue(f *testing.F) {
	f.Add([]byte(`{"a":[1,"<",true,null,{"b":-2.5e3}],"c":"\u2028"}`))
	f.Add([]byte(`{"a":"\ud800","a":1}`))
	f.Add([]byte("{\"\xff\":1}"))
	f.Fuzz(func(t *testing.T, raw []byte) { sameValue(t, raw) })
}
