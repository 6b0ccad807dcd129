package jsonx

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func encodingJSON(t testing.TB, v any, escapeHTML bool) ([]byte, error) {
	t.Helper()
	if escapeHTML {
		return json.Marshal(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), err
}

func same(t testing.TB, v any) {
	t.Helper()
	for _, esc := range []bool{true, false} {
		want, wantErr := encodingJSON(t, v, esc)
		got, err := Append([]byte("prefix"), v, esc)
		if wantErr != nil {
			require.Error(t, err, "%#v", v)
			continue
		}
		require.NoError(t, err, "%#v", v)
		require.Equal(t, "prefix"+string(want), string(got), "%#v (escapeHTML %v)", v, esc)
	}
}

func TestAppendIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	values := []any{
		nil, true, false, "", "plain", "a<b>&c", "quote \" back \\ slash", "tab\tnl\ncr\r", "\b\f\x00\x1f\x7f", "é ü 😀", "\u2028\u2029",
		"bad \xff utf8", json.Number("12"), json.Number("-0.5e+10"), json.Number("1E5"), json.Number(""), json.Number("01"),
		json.Number("1."), json.Number(".5"), json.Number("-"), json.Number("1e"), json.Number("NaN"), json.Number("0.0e-0"),
		1.5, 1e21, 1e-7, 0.0, -3, int64(7), uint8(2), math.NaN(), math.Inf(1),
		map[string]any{}, map[string]any(nil), []any{}, []any(nil), map[string]string{"b": "1", "a": "<"}, []string{"x"},
		map[string]any{"z": 1.0, "a": []any{"<", json.Number("3"), nil, map[string]any{"k&": true}}, "É": "x", "": ""},
		struct {
			A string `json:"a"`
		}{"<x>"},
	}
	for _, v := range values {
		same(t, v)
	}
}

func TestAppendAgreesOnRandomValues(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		same(t, randomValue(rng, 0))
	}
}

// randomValue is a random generic JSON value: nested maps and slices (nil and empty ones too),
// strings that need escaping, json.Numbers valid or not, floats, booleans and nulls.
func randomValue(rng *rand.Rand, depth int) any {
	strs := []string{"", "a", "<b>", "é", "\n", "\"", "\\", "\xff", "\u2028", "&amp;", strings.Repeat("x", 40)}
	nums := []json.Number{"0", "-1", "2.5", "1e3", "", "x", "00"}
	switch k := rng.IntN(12); {
	case depth > 4 || k < 5:
		switch rng.IntN(6) {
		case 0:
			return strs[rng.IntN(len(strs))]
		case 1:
			return nums[rng.IntN(len(nums))]
		case 2:
			return rng.IntN(2) == 0
		case 3:
			return nil
		case 4:
			return rng.Float64() * 1e6
		default:
			return strs[rng.IntN(len(strs))] + strs[rng.IntN(len(strs))]
		}
	case k < 9:
		m := map[string]any{}
		for range rng.IntN(5) {
			m[strs[rng.IntN(len(strs))]] = randomValue(rng, depth+1)
		}
		return m
	default:
		var a []any
		if rng.IntN(4) > 0 {
			a = []any{}
		}
		for range rng.IntN(4) {
			a = append(a, randomValue(rng, depth+1))
		}
		return a
	}
}

func FuzzAppend(f *testing.F) {
	f.Add([]byte(`{"a":[1,"<",true,null,{"b":-2.5e3}],"c":"\u2028"}`))
	f.Add([]byte(`"\ud800"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) != nil {
			return
		}
		same(t, v)
	})
}

func TestAppendFloatAndTimeAreEncodingJSONs(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 9.99e-7, 1e20, 1e21, 123456789.125, 5e-324, math.MaxFloat64, 1.5e-9, -2e-10}
	for range 2000 {
		floats = append(floats, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(60)-30)))
	}
	for _, f := range floats {
		same(t, f)
	}
	_, err := AppendFloat(nil, math.NaN())
	require.Error(t, err)
	for _, tm := range []time.Time{{}, time.Date(2026, 12, 4, 8, 0, 0, 1, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.FixedZone("x", -5*3600-30*60))} {
		want, _ := json.Marshal(tm)
		got, err := AppendTime(nil, tm)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	}
	_, err = AppendTime(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Error(t, err)
}
