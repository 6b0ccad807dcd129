package inventory

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// projection is the part of a resource the hashes are computed from: the member names on the
// way to the id, the keys and the managed attributes. Reading a target's answer through it skips
// everything else (meta, schemas, a user's groups, a member's display and $ref) without building
// it; the applied log reads an answer per write, and a group's answer lists every member.
type projection struct {
	name     []byte
	leaf     bool // the whole value is needed
	children []*projection
}

// newProjection is the projection of the id and the given paths.
func newProjection(paths [][]string) *projection {
	root := &projection{}
	for _, segs := range append(paths, []string{"id"}) {
		if len(segs) == 0 {
			continue
		}
		n := root
		for _, seg := range segs {
			n = n.child(seg)
		}
		n.leaf = true
	}
	return root
}

// child is n's child named like name, added when n has none. Names compare as ValuesIn compares
// them (exactly, or failing that, ignoring case), so one child stands for every spelling.
func (n *projection) child(name string) *projection {
	if c := n.childNamed([]byte(name)); c != nil {
		return c
	}
	c := &projection{name: []byte(name)}
	n.children = append(n.children, c)
	return c
}

// childNamed is n's child named like name, nil when there is none.
func (n *projection) childNamed(name []byte) *projection {
	for _, c := range n.children {
		if bytes.EqualFold(name, c.name) {
			return c
		}
	}
	return nil
}

// decode reads the JSON object raw as encoding/json (numbers as json.Number) would, keeping only
// what p names: ValuesIn finds the same values in the result as in the whole object. ok is false
// when raw is not a JSON object, or holds text this reader does not take the way encoding/json
// does: the caller decodes it whole.
func (p *projection) decode(raw []byte) (map[string]any, bool) {
	return jsonx.Read(raw, func(d *jsontext.Decoder) (map[string]any, bool) {
		if d.PeekKind() != '{' {
			return nil, false
		}
		v, ok := p.read(d)
		res, isMap := v.(map[string]any)
		return res, ok && isMap
	})
}

// read reads the next value under p: whole when p is a leaf, else only its objects' members that
// p names (a member p does not lead anywhere from is skipped) and its arrays' objects and arrays.
func (p *projection) read(d *jsontext.Decoder) (any, bool) {
	if p.leaf {
		return jsonx.Value(d)
	}
	switch d.PeekKind() {
	case '{':
		m := map[string]any{}
		return m, jsonx.Members(d, func(name []byte) bool {
			text, plain := jsonx.PlainName(name)
			if !plain {
				return false // escapes, or text encoding/json would mangle: read whole
			}
			c := p.childNamed(text)
			if c == nil {
				return d.SkipValue() == nil
			}
			k := string(text) // now: text is the decoder's buffer, which the next read reuses
			v, ok := c.read(d)
			m[k] = v
			return ok
		})
	case '[':
		a := []any{}
		return a, jsonx.Elements(d, func() bool {
			switch d.PeekKind() {
			case '{', '[':
				v, ok := p.read(d)
				a = append(a, v)
				return ok
			}
			// A scalar where p leads further holds nothing ValuesIn collects.
			return d.SkipValue() == nil
		})
	case 0:
		return nil, false
	default:
		// A scalar where p leads further: present (so a member named exactly still wins over one
		// that only matches ignoring case), but holding nothing.
		if d.SkipValue() != nil {
			return nil, false
		}
		return nil, true
	}
}
