package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// projectionModel has paths that overlap (a whole value and a member of it), differ only in case,
// cross arrays and a schema URN, and an object with two keys (listed in the entry's key by name).
const projectionModel = `objects:
  - name: User
    resource: Users
    properties:
      - {name: userName, isKey: true}
      - {name: name}
      - {name: name.givenName}
      - {name: Title}
      - {name: title}
      - {name: "emails[].value"}
      - {name: "emails[].type"}
      - {name: active, type: bool}
      - {name: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", type: reference, referenceObject: Users, referenceLookupProperty: userName}
      - {name: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber"}
  - name: Group
    resource: Groups
    properties:
      - {name: displayName, isKey: true}
      - {name: "members[].value"}
  - name: Account
    resource: Accounts
    properties:
      - {name: userName, isKey: true}
      - {name: address, isKey: true}
      - {name: title}
`

func projectionShapes(t testing.TB) []*shape {
	t.Helper()
	var shs []*shape
	for _, src := range []struct{ name, text string }{
		{"projection.yaml", projectionModel},
		{"cyberark.yaml", string(mustReadFile(t, "../../deploy/examples/models/cyberark.yaml"))},
	} {
		m, err := reconcile.ParseModel(src.name, []byte(src.text))
		require.NoError(t, err)
		s, err := shapesOf(m, nil)
		require.NoError(t, err)
		shs = append(shs, s...)
	}
	return shs
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := readFile(path)
	require.NoError(t, err)
	return b
}

// agree checks that reading raw through the shape's projection gives ValuesIn the values the
// whole decoded object gives it, for the id, every key and every property, and the same hashes.
// When the shape's hash tree is sure of an answer, its hashes are those of the whole decode too;
// streamed says it was.
func agree(t testing.TB, sh *shape, raw []byte) (projected, streamed bool) {
	t.Helper()
	var whole map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	wholeErr := dec.Decode(&whole)
	if sh.hash != nil {
		if h, sure := sh.hash.hashStream(sh, raw); sure {
			require.NoError(t, wholeErr, "the hash tree was sure of what encoding/json refuses: %s", raw)
			wantH, wantOK := hashResource(sh, whole)
			require.True(t, wantOK, "the hash tree hashed what the whole decode does not: %s", raw)
			require.Equal(t, wantH, h, "%s", raw)
			streamed = true
		}
	}
	if wholeErr == nil {
		wantH, wantOK := hashResource(sh, whole)
		gotH, gotOK := hashAnswer(sh, raw)
		require.Equal(t, wantOK, gotOK, "%s", raw)
		require.Equal(t, wantH, gotH, "%s", raw)
	}
	part, ok := sh.proj.decode(raw)
	if !ok {
		return false, streamed // decoded whole by hashAnswer: nothing more to compare
	}
	require.NoError(t, wholeErr, "the projection read what encoding/json refuses: %s", raw)
	require.Equal(t, whole["id"], part["id"], "id of %s", raw)
	for _, p := range append(append([]*reconcile.Property{}, sh.keys...), sh.props...) {
		require.Equal(t, p.ValuesIn(whole), p.ValuesIn(part), "%s %s of %s", sh.object, p.Name(), raw)
	}
	wantH, wantOK := hashResource(sh, whole)
	gotH, gotOK := hashAnswer(sh, raw)
	require.Equal(t, wantOK, gotOK, "%s", raw)
	require.Equal(t, wantH, gotH, "%s", raw)
	// The inventory's entry (id, key, hashes, values) read from a page: the same as the one
	// json.Marshal and the whole decode give.
	wantE, wantErr := wholeEntry(sh, whole)
	gotE, gotErr := sh.entryOf(raw)
	require.Equal(t, wantErr, gotErr, "%s", raw)
	require.Equal(t, wantE, gotE, "%s", raw)
	return true, streamed
}

// wholeEntry is the entry of a decoded resource as the inventory wrote it with json.Marshal
// before entries were encoded by hand.
func wholeEntry(sh *shape, res map[string]any) (Entry, error) {
	e, err := sh.entry(res)
	if err != nil {
		return e, err
	}
	key := map[string]string{}
	for _, k := range sh.keys {
		key[k.Name()] = valueText(k.ValuesIn(res)[0])
	}
	kb, err := json.Marshal(key)
	if err != nil {
		return e, err
	}
	e.Key = string(kb)
	values := map[string]any{}
	for _, p := range sh.props {
		vs := p.ValuesIn(res)
		switch {
		case len(vs) == 0:
		case p.MultiValued():
			values[p.Name()] = vs
		default:
			values[p.Name()] = vs[0]
		}
	}
	if e.Values, err = json.Marshal(values); err != nil {
		return e, err
	}
	for i, p := range sh.props {
		e.Hashes[i] = 0
		if vs := p.ValuesIn(res); len(vs) > 0 {
			e.Hashes[i] = wholeHash(vs)
		}
	}
	return e, nil
}

// wholeHash is hashValues with every value that is not a string written by json.Marshal.
func wholeHash(vs []any) uint64 {
	var texts [][]byte
	for _, v := range vs {
		if s, ok := v.(string); ok {
			texts = append(texts, strconv.AppendQuote(nil, s))
			continue
		}
		b, _ := json.Marshal(v)
		texts = append(texts, b)
	}
	return hashTexts(texts)
}

var projectionAnswers = []string{
	`{"id":"u1","userName":"ada","name":{"givenName":"Ada","familyName":"L"},"title":"CTO","Title":"cto","active":true,
	  "emails":[{"value":"a@x","type":"work","primary":true},{"value":"b@x"},"loose",[{"value":"nested@x"}],null],
	  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"u2","displayName":"B"},"employeeNumber":42.50},
	  "meta":{"resourceType":"User","version":"W/\"3\""},"groups":[{"value":"g1"}],"schemas":["urn:x"]}`,
	`{"id":12,"USERNAME":"bob","NAME":{"GIVENNAME":"Bob"},"EMAILS":[{"VALUE":"b@x","TYPE":"home"}],"ACTIVE":false}`,
	`{"id":"u3","userName":"dup","title":"first","title":"second","name":"just text","emails":{"value":"not an array"}}`,
	`{"id":"u4","userName":"esc","title":"a\"b\\c\u00e9\ud83d\ude00","name":{"givenName":"\u0041da"}}`,
	`{"id":"u5","user\u004eame":"escaped name","title":"x"}`,
	"{\"id\":\"u6\",\"userName\":\"bad \xff utf8\",\"title\":\"\xc3\x28\"}",
	"{\"id\":\"u7\",\"user\xffName\":\"bad name\"}",
	`{"id":"u8","userName":"n","emails":[],"name":{},"active":null,"title":[]}`,
	`{"id":"u9","userName":"deep","emails":[[[{"value":"deep@x"}]]],"name":{"givenName":{"a":[1,2,{"b":null}]}}}`,
	`{"id":"u10","userName":"nums","title":-0.5e10,"active":1}`,
	`{"id":"g1","displayName":"Admins","members":[{"value":"u2","display":"b"},{"value":"u1","$ref":"x"},{"display":"no value"}]}`,
	`{"id":"g2","displayName":"Empty","members":[]}  trailing text`,
	`{"displayName":"no id","members":[{"value":"u1"}]}`,
	`{"id":"","userName":"empty id"}`,
	`{"id":true,"userName":"odd id"}`,
	`[{"id":"not an object"}]`,
	`"text"`,
	`{"id":"u11","userName":"unterminated"`,
	`{"id":"u12","userName":"ok","title":tru}`,
	``,
	`{"id":"a1","userName":"two <keys>","address":"10.0.0.1","title":"x"}`,
	`{"id":"a2","address":"only one key","title":"x"}`,
	`{"id":"u13","userName":"K\u212aelvin","name":{"givenName":"x"},"ſtatus":"long s"}`,
}

func TestProjectionReadsWhatValuesInReads(t *testing.T) {
	t.Parallel()
	projected, streamed := 0, 0
	for _, sh := range projectionShapes(t) {
		for _, a := range projectionAnswers {
			p, s := agree(t, sh, []byte(a))
			if p {
				projected++
			}
			if s {
				streamed++
			}
		}
	}
	require.Greater(t, projected, len(projectionAnswers), "the projection read most answers itself")
	require.Greater(t, streamed, 10, "the hash tree hashed answers itself")
}

// The example model's objects are hashed as their answers are read; a model whose paths overlap
// (name and name.givenName) or differ only in case (Title and title) is read through the
// projection instead.
func TestHashTreeWhereItCanBeSure(t *testing.T) {
	t.Parallel()
	trees := func(name, text string) map[string]bool {
		m, err := reconcile.ParseModel(name, []byte(text))
		require.NoError(t, err)
		shs, err := shapesOf(m, nil)
		require.NoError(t, err)
		out := map[string]bool{}
		for _, sh := range shs {
			out[sh.object] = sh.hash != nil
		}
		return out
	}
	require.Equal(t, map[string]bool{"User": false, "Group": true, "Account": true}, trees("projection.yaml", projectionModel))
	for object, tree := range trees("cyberark.yaml", string(mustReadFile(t, "../../deploy/examples/models/cyberark.yaml"))) {
		require.True(t, tree, "%s of the example model", object)
	}
}

// Random resources built from the paths the shapes name (in every case), with noise around them.
func TestProjectionAgreesOnRandomResources(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"id", "userName", "USERNAME", "name", "Name", "givenName", "title", "Title", "TITLE", "emails", "value", "type",
		"active", "members", "displayName", "meta", "display", "$ref", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
		"manager", "employeeNumber", "department", "phoneNumbers", "address", "x"}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.IntN(10); {
		case depth > 4 || k < 3:
			return []any{"s", "é", json.Number("1.5"), true, false, nil, "", "a<b>&"}[rng.IntN(8)]
		case k < 6:
			m := map[string]any{}
			for range rng.IntN(5) {
				n := names[rng.IntN(len(names))]
				if spelledOtherwise(m, n) {
					// Two spellings of one name, neither exact: ValuesIn picks either (map
					// order), whole or projected.
					continue
				}
				m[n] = gen(depth + 1)
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
	shs := projectionShapes(t)
	projected, streamed := 0, 0
	for i := range 3000 {
		m, _ := gen(0).(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if i%2 == 0 {
			m["id"] = fmt.Sprintf("id-%d", i)
		}
		raw, err := json.Marshal(m)
		require.NoError(t, err)
		for _, sh := range shs {
			p, s := agree(t, sh, raw)
			if p {
				projected++
			}
			if s {
				streamed++
			}
		}
	}
	require.Greater(t, projected, 3000)
	require.Greater(t, streamed, 100, "the hash tree hashed answers itself")
}

// Random answers as a target writes them: every path of the shape spelled as the model spells it,
// with values of every kind (strings that need escapes, numbers, nulls, arrays, objects) and noise
// around them. The hash tree is sure of most and agrees with the whole decode on each.
func TestHashTreeAgreesOnRandomAnswers(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	value := func() any {
		return []any{"s", "é\"q\"", "a<b>&\u2028", json.Number("-1.5e3"), true, nil, "", []any{"x", nil, []any{"y"}},
			map[string]any{"b": 1, "a": []any{}}, fmt.Sprintf("u-%08d", rng.IntN(1e8))}[rng.IntN(10)]
	}
	var put func(m map[string]any, segs []string)
	put = func(m map[string]any, segs []string) {
		if len(segs) == 1 {
			m[segs[0]] = value()
			return
		}
		switch next := m[segs[0]].(type) {
		case map[string]any:
			put(next, segs[1:])
		case []any:
			for _, e := range next {
				if em, ok := e.(map[string]any); ok {
					put(em, segs[1:])
				}
			}
		default:
			if rng.IntN(2) == 0 {
				arr := []any{}
				for range 1 + rng.IntN(4) {
					em := map[string]any{"display": "noise"}
					put(em, segs[1:])
					arr = append(arr, em, "loose")
				}
				m[segs[0]] = arr
				return
			}
			em := map[string]any{"$ref": "noise"}
			put(em, segs[1:])
			m[segs[0]] = em
		}
	}
	streamed := 0
	for _, sh := range projectionShapes(t) {
		for i := range 300 {
			m := map[string]any{"id": fmt.Sprintf("id-%d", i), "meta": map[string]any{"version": "W/\"1\""}}
			for _, k := range sh.keys {
				put(m, k.Segments())
			}
			for _, p := range sh.props {
				if segs := p.Segments(); len(segs) > 0 && rng.IntN(4) > 0 {
					put(m, segs)
				}
			}
			raw, err := json.Marshal(m)
			require.NoError(t, err)
			if _, s := agree(t, sh, raw); s {
				streamed++
			}
		}
	}
	require.Greater(t, streamed, 1000, "the hash tree hashed answers itself")
}

func FuzzProjectionAgreesWithTheWholeDecode(f *testing.F) {
	for _, a := range projectionAnswers {
		f.Add([]byte(a))
	}
	shs := projectionShapes(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, sh := range shs {
			agree(t, sh, raw)
		}
	})
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func spelledOtherwise(m map[string]any, name string) bool {
	for k := range m {
		if k != name && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
