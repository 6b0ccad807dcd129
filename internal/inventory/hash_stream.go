package inventory

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// hashTree is what hashStream walks: the member names on the way to the id, the keys and the
// managed attributes, and at the node where each path ends, where its values go. It hashes a
// target's answer as it reads it, building nothing but the values the hashes are made of: the
// applied log hashes an answer per write, and a group's answer lists every member, each of which
// the projection would build as a map of its own.
type hashTree struct {
	root *hashNode
	// sinks: 0 the id, 1 to len(keys) the keys, then the managed attributes in shape order.
	sinks int
	keys  int
}

type hashNode struct {
	name     []byte
	children []*hashNode
	sinks    []int // the paths that end here
}

// newHashTree is the tree of s, or nil when a path ends where another goes on (a whole value and
// a member of it: the projection reads those) or a key has no path: hashAnswer then reads through
// the projection.
func newHashTree(s *shape) *hashTree {
	t := &hashTree{root: &hashNode{}, keys: len(s.keys)}
	paths := [][]string{{"id"}}
	for _, k := range s.keys {
		if len(k.Segments()) == 0 {
			return nil
		}
		paths = append(paths, k.Segments())
	}
	for _, p := range s.props {
		paths = append(paths, p.Segments()) // a JSONPath property has none: it never hashes
	}
	t.sinks = len(paths)
	for i, segs := range paths {
		if len(segs) == 0 {
			continue
		}
		n := t.root
		for _, seg := range segs {
			n = n.child(seg)
		}
		n.sinks = append(n.sinks, i)
	}
	if !t.root.separate() || len(t.root.children) > 64 {
		return nil
	}
	return t
}

// child is n's child named name (exactly), added when n has none.
func (n *hashNode) child(name string) *hashNode {
	for _, c := range n.children {
		if string(c.name) == name {
			return c
		}
	}
	c := &hashNode{name: []byte(name)}
	n.children = append(n.children, c)
	return c
}

// separate reports that no path ends where another goes on, that no two children differ only in
// case (ValuesIn would take either for the other), and that no node has more children than a
// walk can tell apart (64).
func (n *hashNode) separate() bool {
	if len(n.sinks) > 0 && len(n.children) > 0 || len(n.children) > 64 {
		return false
	}
	for i, c := range n.children {
		for _, o := range n.children[:i] {
			if bytes.EqualFold(c.name, o.name) {
				return false
			}
		}
		if !c.separate() {
			return false
		}
	}
	return true
}

// hashWalk is one answer's walk: the id, how many values each key has, and the canonical texts of
// each managed attribute's values (spans of buf).
type hashWalk struct {
	t     *hashTree
	id    any
	ids   int
	keys  []int
	spans [][][2]int
	buf   []byte
	texts [][]byte    // one attribute's texts, as they are hashed
	keyed []keyedText // sortTexts' scratch
}

// hashStream is hashResource(s, the answer decoded) for the answers it reads with certainty, sure
// then true; sure is false where the answer holds anything it leaves to the whole reading: a name
// spelled otherwise than the model's (ValuesIn matches it ignoring case), a name given twice, an
// escape, an id that is not a plain string or number, a key without a value, or text that is not
// a JSON object.
func (t *hashTree) hashStream(s *shape, raw []byte) (hashes map[string]uint64, sure bool) {
	w := walks.Get().(*hashWalk)
	defer w.release()
	w.reset(t)
	if _, ok := jsonx.Read(raw, func(d *jsontext.Decoder) (struct{}, bool) {
		// What follows the object is not read, as encoding/json's Decoder does not read it.
		return struct{}{}, d.PeekKind() == '{' && w.read(t.root, d)
	}); !ok {
		return nil, false
	}
	switch id := w.id.(type) {
	case string:
		if id == "" || w.ids != 1 {
			return nil, false
		}
	case json.Number:
		if w.ids != 1 {
			return nil, false
		}
	default:
		return nil, false
	}
	for _, n := range w.keys {
		if n == 0 {
			return nil, false
		}
	}
	out := make(map[string]uint64, len(s.props))
	for i, p := range s.props {
		var h uint64
		if spans := w.spans[i]; len(spans) > 0 {
			w.texts = w.texts[:0]
			for _, sp := range spans {
				w.texts = append(w.texts, w.buf[sp[0]:sp[1]])
			}
			w.keyed = sortTexts(w.texts, w.keyed)
			h = hashSorted(w.texts)
		}
		out[p.Name()] = h
	}
	return out, true
}

// walks are the walks not in use: one answer's walk is a few buffers the next one reuses.
var walks = sync.Pool{New: func() any { return &hashWalk{} }}

// reset readies w for an answer hashed through t.
func (w *hashWalk) reset(t *hashTree) {
	w.t, w.id, w.ids = t, nil, 0
	w.keys = append(w.keys[:0], make([]int, t.keys)...)
	props := t.sinks - 1 - t.keys
	if cap(w.spans) < props {
		w.spans = make([][][2]int, props)
	}
	w.spans = w.spans[:props]
	for i := range w.spans {
		w.spans[i] = w.spans[i][:0]
	}
	w.buf = w.buf[:0]
}

// maxWalkBuf bounds the buffer of a walk kept for the next answer: a group of about 25,000
// members (UUIDs). A walk of a larger answer is left to the garbage collector.
const maxWalkBuf = 1 << 20

// release returns w to walks, unless an answer made its buffer larger than maxWalkBuf.
func (w *hashWalk) release() {
	w.t, w.id = nil, nil // texts and keyed point into buf, which the walk keeps anyway
	if cap(w.buf) <= maxWalkBuf {
		walks.Put(w)
	}
}

// read reads the value that comes next under n; false: the walk cannot be sure of the answer.
func (w *hashWalk) read(n *hashNode, d *jsontext.Decoder) bool {
	if len(n.sinks) > 0 {
		if d.PeekKind() == '"' {
			// A plain string (the common value: a member's id) is quoted from the decoder's bytes
			// without being made a string first.
			tok, err := d.ReadValue()
			if err != nil {
				return false
			}
			if text, plain := jsonx.PlainName(tok); plain {
				for _, s := range n.sinks {
					w.addText(s, text)
				}
				return true
			}
			str, ok := jsonx.Unquote(tok)
			return ok && w.addAll(n, str)
		}
		v, ok := jsonx.Value(d)
		return ok && w.addAll(n, v)
	}
	switch d.PeekKind() {
	case '{':
		var seen uint64
		return jsonx.Members(d, func(name []byte) bool {
			text, plain := jsonx.PlainName(name)
			if !plain {
				return false
			}
			i := -1
			for j, c := range n.children {
				if bytes.Equal(text, c.name) {
					i = j
					break
				}
				if bytes.EqualFold(text, c.name) {
					return false // spelled otherwise: which spelling ValuesIn takes depends on the rest
				}
			}
			if i < 0 {
				return d.SkipValue() == nil
			}
			if seen&(1<<i) != 0 {
				return false // given twice: the whole reading keeps the last
			}
			seen |= 1 << i
			return w.read(n.children[i], d)
		})
	case '[':
		return jsonx.Elements(d, func() bool {
			switch d.PeekKind() {
			case '{', '[':
				return w.read(n, d)
			}
			// A scalar where n leads further holds nothing ValuesIn collects.
			return d.SkipValue() == nil
		})
	case 0:
		return false
	default:
		// A scalar where n leads further holds nothing.
		return d.SkipValue() == nil
	}
}

// addAll gives v to every sink of n.
func (w *hashWalk) addAll(n *hashNode, v any) bool {
	for _, s := range n.sinks {
		w.add(s, v)
	}
	return true
}

// add gives v to sink s: the id as it is; a key's and an attribute's values as ValuesIn collects
// them (arrays flattened, nulls left out).
func (w *hashWalk) add(s int, v any) {
	switch {
	case s == 0:
		w.id, w.ids = v, w.ids+1
	case s <= w.t.keys:
		w.keys[s-1] += count(v)
	default:
		w.collect(s-1-w.t.keys, v)
	}
}

// addText is add of a string value given as its plain text.
func (w *hashWalk) addText(s int, text []byte) {
	if s > w.t.keys {
		i := s - 1 - w.t.keys
		from := len(w.buf)
		w.buf = appendQuoted(slices.Grow(w.buf, len(text)+2), text)
		w.spans[i] = append(w.spans[i], [2]int{from, len(w.buf)})
		return
	}
	if s == 0 {
		w.id, w.ids = string(text), w.ids+1
		return
	}
	w.keys[s-1]++
}

func (w *hashWalk) collect(i int, v any) {
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			w.collect(i, e)
		}
	case nil:
	case string:
		from := len(w.buf)
		// strconv grows a full buffer to the size it needs and no more: grown here, it doubles.
		w.buf = appendQuoted(slices.Grow(w.buf, len(t)+2), t)
		w.spans[i] = append(w.spans[i], [2]int{from, len(w.buf)})
	default:
		from := len(w.buf)
		w.buf = append(w.buf, canonical(v)...)
		w.spans[i] = append(w.spans[i], [2]int{from, len(w.buf)})
	}
}

// count is how many values ValuesIn collects from v at the end of a path.
func count(v any) int {
	switch t := v.(type) {
	case []any:
		n := 0
		for _, e := range t {
			n += count(e)
		}
		return n
	case nil:
		return 0
	}
	return 1
}
