package cyberarksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
)

// record is one stored resource. Records are modified in place under the store's write lock;
// readers hold the read lock while they use one.
type record struct {
	id       string
	seq      uint64 // global creation sequence: paging order and index tie-break
	pos      int    // slot in the collection's creationOrder
	created  int64  // Unix nanoseconds
	modified int64
	version  uint64
	// doc is the canonical JSON object of the client-writable attributes: no id, meta, schemas,
	// password or members. Compact JSON costs about a third of the memory of a decoded map.
	doc      []byte
	exts     uint8       // extensions present in doc (bit i: rt.extensions[i])
	password string      // Users only; never rendered
	members  *memberList // Groups only
	// display is the name shown for the resource in members, groups and privilegedData values:
	// displayName, else userName or name.
	display string
}

// collection holds the records of one resource type with their indexes.
type collection struct {
	rt      *resourceType
	byID    map[string]*record
	order   creationOrder
	paths   []attrPath     // resolved rt.indexed
	keys    []string       // paths[i].key(), precomputed
	indexes []*sortedIndex // parallel to paths
}

func newCollection(rt *resourceType) *collection {
	c := &collection{rt: rt, byID: map[string]*record{}}
	for _, p := range rt.indexed {
		raw, err := parseRawPath(p)
		if err != nil {
			panic(fmt.Sprintf("cyberarksim: bad index path %q: %v", p, err)) // static definition
		}
		ap, err := resolvePath(rt, raw)
		if err != nil {
			panic(fmt.Sprintf("cyberarksim: bad index path %q: %v", p, err)) // static definition
		}
		c.paths = append(c.paths, ap)
		c.keys = append(c.keys, ap.key())
		c.indexes = append(c.indexes, &sortedIndex{})
	}
	return c
}

// index returns the sorted index for path, or nil when the path is not indexed.
func (c *collection) index(p attrPath) *sortedIndex { return c.indexByKey(p.key()) }

// indexOn returns the index of a path as written in rt.indexed; other paths are a programming
// error.
func (c *collection) indexOn(path string) *sortedIndex {
	if ix := c.indexByKey(path); ix != nil {
		return ix
	}
	panic("cyberarksim: " + c.rt.endpoint + " has no index on " + path)
}

func (c *collection) indexByKey(key string) *sortedIndex {
	for i, k := range c.keys {
		if k == key {
			return c.indexes[i]
		}
	}
	return nil
}

// indexKey is the key under which value v of path p is indexed.
func indexKey(p attrPath, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	if !p.leaf().caseExact {
		s = foldCase(s)
	}
	return s, true
}

// keysOf returns the index keys of doc for index i, deduplicated.
func (c *collection) keysOf(i int, doc map[string]any) []string {
	vals := c.paths[i].values(doc, false)
	if len(vals) == 0 {
		return nil
	}
	keys := make([]string, 0, len(vals))
	for _, v := range vals {
		if k, ok := indexKey(c.paths[i], v); ok && !containsString(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// store is the whole in-memory directory. The Server's mutex guards it, except cols, which is
// never modified after newStore.
type store struct {
	cols map[string]*collection // by endpoint
	// memberOf maps a member id (User or Group) to the set of Groups it is a direct member of.
	memberOf map[string]map[string]struct{}
	seq      uint64
}

func newStore() *store {
	s := &store{cols: map[string]*collection{}, memberOf: map[string]map[string]struct{}{}}
	for _, rt := range allResourceTypes {
		s.cols[rt.endpoint] = newCollection(rt)
	}
	return s
}

// decode returns the record's document as a fresh map (numbers as json.Number).
func decodeDoc(doc []byte) map[string]any {
	m := map[string]any{}
	if len(doc) == 0 {
		return m
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("cyberarksim: stored document does not decode: %v", err)) // stored by us
	}
	return m
}

// encodeDoc encodes a document into a slice of exactly its length: a million stored documents
// must not carry append's spare capacity.
func encodeDoc(doc map[string]any) []byte {
	buf := encodeBuffers.Get().(*[]byte)
	*buf = appendJSONValue((*buf)[:0], doc)
	out := bytes.Clone(*buf)
	encodeBuffers.Put(buf)
	return out
}

var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// extensionsOf returns the bitmask of rt's extensions present in doc (bit i: rt.extensions[i]).
func extensionsOf(rt *resourceType, doc map[string]any) uint8 {
	var mask uint8
	for i, ext := range rt.extensions {
		if _, ok := doc[ext.id]; ok {
			mask |= 1 << i
		}
	}
	return mask
}

// insert stores a new record with document doc.
func (s *store) insert(c *collection, rec *record, doc map[string]any) {
	s.seq++
	rec.seq = s.seq
	rec.doc = encodeDoc(doc)
	rec.exts = extensionsOf(c.rt, doc)
	c.byID[rec.id] = rec
	c.order.push(rec)
	for i, ix := range c.indexes {
		for _, k := range c.keysOf(i, doc) {
			ix.insert(k, rec)
		}
	}
}

// replaceDoc swaps rec's document from old to doc, updating the indexes.
func (s *store) replaceDoc(c *collection, rec *record, old, doc map[string]any) {
	for i, ix := range c.indexes {
		before, after := c.keysOf(i, old), c.keysOf(i, doc)
		for _, k := range before {
			if !containsString(after, k) {
				ix.remove(k, rec)
			}
		}
		for _, k := range after {
			if !containsString(before, k) {
				ix.insert(k, rec)
			}
		}
	}
	rec.doc = encodeDoc(doc)
	rec.exts = extensionsOf(c.rt, doc)
}

// remove deletes rec from c and from every group it was a member of. It returns the ids of the
// groups whose membership changed.
func (s *store) remove(c *collection, rec *record) []string {
	doc := decodeDoc(rec.doc)
	for i, ix := range c.indexes {
		for _, k := range c.keysOf(i, doc) {
			ix.remove(k, rec)
		}
	}
	delete(c.byID, rec.id)
	c.order.drop(rec)
	groups := s.groupsOf(rec.id)
	for _, gid := range groups {
		if g := s.cols[Groups].byID[gid]; g != nil {
			g.members.remove(rec.id)
		}
	}
	delete(s.memberOf, rec.id)
	if rec.members != nil {
		for _, mid := range rec.members.list() {
			s.unlinkMember(rec.id, mid)
		}
	}
	return groups
}

// groupsOf returns the ids of the groups id is a direct member of, oldest group first.
func (s *store) groupsOf(id string) []string {
	set := s.memberOf[id]
	if len(set) == 0 {
		return nil
	}
	groups := s.cols[Groups]
	out := make([]string, 0, len(set))
	for gid := range set {
		out = append(out, gid)
	}
	sort.Slice(out, func(i, j int) bool {
		gi, gj := groups.byID[out[i]], groups.byID[out[j]]
		if gi == nil || gj == nil {
			return out[i] < out[j]
		}
		return gi.seq < gj.seq
	})
	return out
}

// linkMember records that member belongs to group.
func (s *store) linkMember(groupID, memberID string) {
	set := s.memberOf[memberID]
	if set == nil {
		set = map[string]struct{}{}
		s.memberOf[memberID] = set
	}
	set[groupID] = struct{}{}
}

func (s *store) unlinkMember(groupID, memberID string) {
	if set := s.memberOf[memberID]; set != nil {
		delete(set, groupID)
		if len(set) == 0 {
			delete(s.memberOf, memberID)
		}
	}
}

// setMembers replaces group's members with ids (already validated).
func (s *store) setMembers(group *record, ids []string) {
	keep := make(map[string]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	for _, id := range group.members.list() {
		if !keep[id] {
			group.members.remove(id)
			s.unlinkMember(group.id, id)
		}
	}
	for _, id := range ids {
		if group.members.add(id) {
			s.linkMember(group.id, id)
		}
	}
}

// memberKind says whether id is a User or a Group, or "" when it is neither.
func (s *store) memberKind(id string) (string, *record) {
	if r := s.cols[Users].byID[id]; r != nil {
		return "User", r
	}
	if r := s.cols[Groups].byID[id]; r != nil {
		return "Group", r
	}
	return "", nil
}

// reset drops every resource. Collections are emptied in place: handlers look them up before
// taking the lock, so the *collection values must stay the same.
func (s *store) reset() {
	for _, c := range s.cols {
		// Only the data changes: rt, paths and keys are read by handlers before they take the lock.
		fresh := newCollection(c.rt)
		c.byID, c.order, c.indexes = fresh.byID, fresh.order, fresh.indexes
	}
	s.memberOf = map[string]map[string]struct{}{}
	s.seq = 0
}
