package inventory

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/scimflow/scimflow/internal/jsonx"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// shape is what the inventory reads of one data-model object: where it lives, its key and the
// attributes the model manages (every property that is neither a key nor a JSONPath).
type shape struct {
	index    uint8
	object   string
	resource string
	keys     []*reconcile.Property
	keyOrder []int // indexes of keys by name, as an entry's key lists them
	props    []*reconcile.Property
	proj     *projection // what of a resource the id, keys and props are read from
	hash     *hashTree   // how an answer is hashed as it is read (nil: through proj)
	// sortedProps are the props' names sorted: an applied state's hashes are encoded in that order.
	sortedProps []string
}

// shapesOf returns the shapes of the named objects of m, in the order given; no names means every
// object of the model that has a key, one per resource (the first object naming it).
func shapesOf(m *reconcile.Model, names []string) ([]*shape, error) {
	var objs []*reconcile.Object
	if len(names) == 0 {
		seen := map[string]bool{}
		for _, o := range m.Objects() {
			if len(o.Keys()) == 0 || seen[strings.ToLower(o.Resource())] {
				continue
			}
			seen[strings.ToLower(o.Resource())] = true
			objs = append(objs, o)
		}
	} else {
		for i, n := range names {
			o, ok := m.Object(n)
			if !ok {
				return nil, fmt.Errorf("inventory.objects[%d]: %q is not an object of the data model", i, n)
			}
			if len(o.Keys()) == 0 {
				return nil, fmt.Errorf("inventory.objects[%d]: %s has no isKey property, so drift could not name it", i, n)
			}
			objs = append(objs, o)
		}
	}
	if len(objs) == 0 {
		return nil, errors.New("inventory: the data model has no object with a key to inventory")
	}
	if len(objs) > 255 {
		return nil, errors.New("inventory: more than 255 objects")
	}
	out := make([]*shape, len(objs))
	for i, o := range objs {
		s := &shape{index: uint8(i), object: o.Name(), resource: o.Resource(), keys: o.Keys()}
		var paths [][]string
		for _, p := range o.Properties() {
			if !p.IsKey() && !p.IsJSONPath() {
				s.props = append(s.props, p)
			}
			paths = append(paths, p.Segments())
		}
		s.proj = newProjection(paths)
		s.hash = newHashTree(s)
		s.sortedProps = s.propNames()
		slices.Sort(s.sortedProps)
		s.keyOrder = make([]int, len(s.keys))
		for i := range s.keyOrder {
			s.keyOrder[i] = i
		}
		slices.SortFunc(s.keyOrder, func(a, b int) int { return strings.Compare(s.keys[a].Name(), s.keys[b].Name()) })
		out[i] = s
	}
	return out, nil
}

// propNames lists the managed attributes.
func (s *shape) propNames() []string {
	out := make([]string, len(s.props))
	for i, p := range s.props {
		out[i] = p.Name()
	}
	return out
}

// entry reads one resource of the target. A resource without an id or without a key value is
// refused: it could be neither tracked nor named.
func (s *shape) entry(res map[string]any) (Entry, error) {
	e := Entry{Object: s.index}
	switch id := res["id"].(type) {
	case string:
		e.ID = id
	case json.Number:
		e.ID = id.String()
	}
	if e.ID == "" {
		return e, fmt.Errorf("a %s without an id", s.object)
	}
	texts := make([]string, len(s.keys))
	for i, k := range s.keys {
		vs := k.ValuesIn(res)
		if len(vs) == 0 {
			return e, fmt.Errorf("%s %s has no %s", s.object, e.ID, k.Name())
		}
		texts[i] = valueText(vs[0])
	}
	// The key as json.Marshal writes a map[string]string: names sorted.
	kb := make([]byte, 0, 64)
	kb = append(kb, '{')
	for n, i := range s.keyOrder {
		if n > 0 {
			kb = append(kb, ',')
		}
		kb = jsonx.AppendString(kb, s.keys[i].Name(), true)
		kb = append(kb, ':')
		kb = jsonx.AppendString(kb, texts[i], true)
	}
	e.Key = string(append(kb, '}'))
	e.Hashes = make([]uint64, len(s.props))
	values := make(map[string]any, len(s.props))
	for i, p := range s.props {
		vs := p.ValuesIn(res)
		if len(vs) == 0 {
			continue
		}
		e.Hashes[i] = hashValues(vs)
		if p.MultiValued() {
			values[p.Name()] = vs
		} else {
			values[p.Name()] = vs[0]
		}
	}
	e.Values, _ = jsonx.Append(nil, values, true)
	return e, nil
}

// entryOf is the entry of a resource given as JSON text (see entry), read through the shape's
// projection.
func (s *shape) entryOf(raw []byte) (Entry, error) {
	res, ok := s.decode(raw)
	if !ok {
		return Entry{Object: s.index}, fmt.Errorf("a %s that is not a JSON object", s.object)
	}
	return s.entry(res)
}

// decode reads a resource given as JSON text through the shape's projection (only the id, the
// keys and the managed attributes built), or whole where the projection cannot read it exactly.
func (s *shape) decode(raw []byte) (map[string]any, bool) {
	if res, ok := s.proj.decode(raw); ok {
		return res, true
	}
	var res map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&res) != nil || res == nil {
		return nil, false
	}
	return res, true
}

// hashValues is the content hash of one attribute: FNV-1a over the canonical JSON of each value,
// sorted (a multi-valued attribute is a set), never 0 (0 means absent).
func hashValues(vs []any) uint64 {
	var one [1][]byte
	texts := one[:0]
	if len(vs) > 1 {
		texts = make([][]byte, 0, len(vs))
	}
	for _, v := range vs {
		texts = append(texts, canonical(v))
	}
	return hashTexts(texts)
}

// hashTexts is hashValues of values already written as canonical JSON (texts is sorted in place).
func hashTexts(texts [][]byte) uint64 {
	sortTexts(texts, nil)
	return hashSorted(texts)
}

// hashSorted is FNV-1a over texts, each followed by a zero byte, never 0.
func hashSorted(texts [][]byte) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, t := range texts {
		for _, c := range t {
			h ^= uint64(c)
			h *= prime64
		}
		h *= prime64 // the separator: h ^= 0
	}
	return max(h, 1)
}

// keyedText is a text with its first 8 bytes read as a big-endian number (zero-padded when it is
// shorter). Two texts whose numbers differ are ordered by them as bytes.Compare orders the texts:
// the first byte that differs decides, and a padding zero is never above the byte it stands
// against. Equal numbers are ordered by the whole texts.
type keyedText struct {
	key  uint64
	text []byte
}

// sortTexts sorts texts as bytes.Compare orders them. Many texts (a group's members) are sorted by
// their first 8 bytes as numbers, comparing whole texts only where those are equal: ids such as
// UUIDs differ early, so a sort of 5,000 members does a fraction of the work. scratch is reused
// for the keys and returned, grown, for the next call.
func sortTexts(texts [][]byte, scratch []keyedText) []keyedText {
	switch {
	case len(texts) < 2:
		return scratch
	case len(texts) <= 16:
		slices.SortFunc(texts, bytes.Compare)
		return scratch
	}
	ks := scratch[:0]
	for _, t := range texts {
		var b [8]byte
		copy(b[:], t)
		ks = append(ks, keyedText{binary.BigEndian.Uint64(b[:]), t})
	}
	slices.SortFunc(ks, func(a, b keyedText) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		return bytes.Compare(a.text, b.text)
	})
	for i, k := range ks {
		texts[i] = k.text
	}
	return ks
}

// canonical is the JSON of v (strings without the cost of encoding/json).
func canonical(v any) []byte {
	if s, ok := v.(string); ok {
		return appendQuoted(make([]byte, 0, len(s)+2), s)
	}
	b, _ := jsonx.Append(nil, v, true) // json.Marshal's bytes
	return b
}

// appendQuoted is strconv.AppendQuote(buf, string(s)), without its rune-by-rune work (nor, for
// bytes, the conversion) when s is printable ASCII without a quote or a backslash: an id, a
// userName, a group's name.
func appendQuoted[T string | []byte](buf []byte, s T) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(buf, string(s))
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// HashResource returns the managed attributes' hashes of a resource of object, by property name,
// as an inventory would compute them; ok is false when the object is not inventoried or the
// resource is not one (no id). The applied log uses it to record what a write left behind.
func hashResource(s *shape, res map[string]any) (map[string]uint64, bool) {
	// What entry checks and hashes, without the key and values it also encodes.
	switch id := res["id"].(type) {
	case string:
		if id == "" {
			return nil, false
		}
	case json.Number:
		if id == "" {
			return nil, false
		}
	default:
		return nil, false
	}
	for _, k := range s.keys {
		if len(k.ValuesIn(res)) == 0 {
			return nil, false
		}
	}
	out := make(map[string]uint64, len(s.props))
	for _, p := range s.props {
		var h uint64
		if vs := p.ValuesIn(res); len(vs) > 0 {
			h = hashValues(vs)
		}
		out[p.Name()] = h
	}
	return out, true
}

// hashAnswer hashes a target's answer (a resource in JSON), reading only what the hashes need.
func hashAnswer(s *shape, raw []byte) (map[string]uint64, bool) {
	if s.hash != nil {
		if h, sure := s.hash.hashStream(s, raw); sure {
			return h, true
		}
	}
	res, ok := s.decode(raw)
	if !ok {
		return nil, false
	}
	return hashResource(s, res)
}

// keyMap decodes an entry's key.
func keyMap(key string) map[string]any {
	var m map[string]any
	_ = json.Unmarshal([]byte(key), &m)
	return m
}

// match is how the connector resolves the key (its IDCache entries).
func (s *shape) match(key map[string]any) []provision.Match {
	out := make([]provision.Match, len(s.keys))
	for i, k := range s.keys {
		out[i] = provision.Match{Attr: k.ReferenceLookupProperty(), Value: valueText(key[k.Name()])}
	}
	return out
}

func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	case json.Number:
		return v.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}
