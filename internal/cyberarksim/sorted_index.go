package cyberarksim

import (
	"sort"
	"strings"
)

// indexEntry is one (key, record) pair of a sortedIndex.
type indexEntry struct {
	key string
	rec *record
}

// less orders entries by key, then by creation order, so equal keys list oldest first.
func (e indexEntry) less(o indexEntry) bool {
	if e.key != o.key {
		return e.key < o.key
	}
	return e.rec.seq < o.rec.seq
}

// maxBlock is the largest block of a sortedIndex; a full block splits in two.
const maxBlock = 512

// sortedIndex is an ordered multiset of (key, record) pairs kept as a list of sorted blocks of at
// most maxBlock entries. Lookups binary-search the blocks, then the block: O(log n). Inserts and
// deletes move at most one block plus the block list: O(maxBlock + n/maxBlock), about a
// microsecond at a million entries. It costs 24 bytes per entry plus the key, half the memory
// of a pointer-based tree, and needs no rebalancing.
type sortedIndex struct {
	blocks [][]indexEntry
	size   int
}

// findBlock returns the index of the first block whose last entry is not less than e, or the last
// block when e is beyond every entry.
func (ix *sortedIndex) findBlock(e indexEntry) int {
	i := sort.Search(len(ix.blocks), func(i int) bool {
		b := ix.blocks[i]
		return !b[len(b)-1].less(e)
	})
	if i == len(ix.blocks) && i > 0 {
		i--
	}
	return i
}

func (ix *sortedIndex) insert(key string, rec *record) {
	e := indexEntry{key: key, rec: rec}
	ix.size++
	if len(ix.blocks) == 0 {
		ix.blocks = append(ix.blocks, append(make([]indexEntry, 0, 16), e))
		return
	}
	bi := ix.findBlock(e)
	if len(ix.blocks[bi]) == maxBlock {
		// Split a full block before inserting: the left half keeps the array, the right half
		// gets a new one, so no block ever grows beyond maxBlock.
		b := ix.blocks[bi]
		half := maxBlock / 2
		right := append(make([]indexEntry, 0, maxBlock), b[half:]...)
		clear(b[half:])
		ix.blocks[bi] = b[:half]
		ix.blocks = append(ix.blocks, nil)
		copy(ix.blocks[bi+2:], ix.blocks[bi+1:])
		ix.blocks[bi+1] = right
		if b[half-1].less(e) {
			bi++ // e sorts after the left half
		}
	}
	b := ix.blocks[bi]
	j := sort.Search(len(b), func(j int) bool { return !b[j].less(e) })
	b = append(b, indexEntry{})
	copy(b[j+1:], b[j:])
	b[j] = e
	ix.blocks[bi] = b
}

// remove deletes the (key, rec) entry; it reports whether it was present.
func (ix *sortedIndex) remove(key string, rec *record) bool {
	if len(ix.blocks) == 0 {
		return false
	}
	e := indexEntry{key: key, rec: rec}
	bi := ix.findBlock(e)
	b := ix.blocks[bi]
	j := sort.Search(len(b), func(j int) bool { return !b[j].less(e) })
	if j == len(b) || b[j].key != key || b[j].rec != rec {
		return false
	}
	copy(b[j:], b[j+1:])
	b[len(b)-1] = indexEntry{}
	b = b[:len(b)-1]
	ix.size--
	if len(b) == 0 {
		copy(ix.blocks[bi:], ix.blocks[bi+1:])
		ix.blocks[len(ix.blocks)-1] = nil
		ix.blocks = ix.blocks[:len(ix.blocks)-1]
		return true
	}
	ix.blocks[bi] = b
	return true
}

// ascendFrom calls fn for every entry whose key is >= from, in order, until fn returns false.
func (ix *sortedIndex) ascendFrom(from string, fn func(indexEntry) bool) {
	bi := sort.Search(len(ix.blocks), func(i int) bool {
		b := ix.blocks[i]
		return b[len(b)-1].key >= from
	})
	for ; bi < len(ix.blocks); bi++ {
		b := ix.blocks[bi]
		j := sort.Search(len(b), func(j int) bool { return b[j].key >= from })
		for ; j < len(b); j++ {
			if !fn(b[j]) {
				return
			}
		}
		from = ""
	}
}

// each calls fn for every entry in order until fn returns false.
func (ix *sortedIndex) each(fn func(indexEntry) bool) {
	for _, b := range ix.blocks {
		for _, e := range b {
			if !fn(e) {
				return
			}
		}
	}
}

// equal calls fn for every record whose key equals key, oldest first.
func (ix *sortedIndex) equal(key string, fn func(*record) bool) {
	ix.ascendFrom(key, func(e indexEntry) bool {
		return e.key == key && fn(e.rec)
	})
}

// prefix calls fn for every record whose key starts with p, in key order.
func (ix *sortedIndex) prefix(p string, fn func(*record) bool) {
	ix.ascendFrom(p, func(e indexEntry) bool {
		return strings.HasPrefix(e.key, p) && fn(e.rec)
	})
}

// first returns the oldest record with key, or nil.
func (ix *sortedIndex) first(key string) *record {
	var found *record
	ix.equal(key, func(r *record) bool { found = r; return false })
	return found
}
