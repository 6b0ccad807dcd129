package jsonx

import (
	"bytes"
	"encoding/json"
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
	// Name and NameBytes read member names as Value does.
	name, ok := Read([]byte(`{"na\u006de":1}`), func(d *jsontext.Decoder) (string, bool) {
		d.ReadToken()
		return Name(d)
	})
	require.True(t, ok)
	require.Equal(t, "name", name)
	plain, ok := Read([]byte(`{"na\u006de":1}`), func(d *jsontext.Decoder) (bool, bool) {
		d.ReadToken()
		_, plain, ok := NameBytes(d)
		return plain, ok
	})
	require.True(t, ok)
	require.False(t, plain, "an escaped name is not its text")
}

func FuzzValue(f *testing.F) {
	f.Add([]byte(`{"a":[1,"<",true,null,{"b":-2.5e3}],"c":"\u2028"}`))
	f.Add([]byte(`{"a":"\ud800","a":1}`))
	f.Add([]byte("{\"\xff\":1}"))
	f.Fuzz(func(t *testing.T, raw []byte) { sameValue(t, raw) })
}
