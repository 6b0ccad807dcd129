package cyberarksim

// creationOrder keeps a collection's records in creation order for paging. Deleted records leave a
// hole that a Fenwick tree of live counts skips, so finding the k-th live record (startIndex) is
// O(log n) however many records were deleted; the slice is compacted when holes outnumber
// records.
type creationOrder struct {
	recs  []*record // nil where a record was deleted
	tree  []int32   // Fenwick tree over recs: 1 per live slot; len(tree) = capacity+1
	live  int
	holes int
}

// push appends rec as the newest record.
func (o *creationOrder) push(rec *record) {
	rec.pos = len(o.recs)
	o.recs = append(o.recs, rec)
	if len(o.recs) >= len(o.tree) {
		o.rebuild(2*len(o.recs) + 16)
	} else {
		o.add(rec.pos, 1)
	}
	o.live++
}

// drop removes rec.
func (o *creationOrder) drop(rec *record) {
	o.recs[rec.pos] = nil
	o.add(rec.pos, -1)
	o.live--
	o.holes++
	if o.holes > 1024 && o.holes > o.live {
		o.compact()
	}
}

// nth returns the position in recs of the k-th live record (0-based), or -1.
func (o *creationOrder) nth(k int) int {
	if k < 0 || k >= o.live {
		return -1
	}
	target := int32(k + 1)
	pos := 0
	step := 1
	for step*2 < len(o.tree) {
		step *= 2
	}
	for ; step > 0; step /= 2 {
		next := pos + step
		if next < len(o.tree) && o.tree[next] < target {
			pos = next
			target -= o.tree[next]
		}
	}
	return pos // the 1-based tree index pos+1 is slot pos
}

// page calls fn for up to count live records starting at the 0-based live index start.
func (o *creationOrder) page(start, count int, fn func(*record)) {
	i := o.nth(start)
	if i < 0 {
		return
	}
	for ; i < len(o.recs) && count > 0; i++ {
		if r := o.recs[i]; r != nil {
			fn(r)
			count--
		}
	}
}

// each calls fn for every live record, oldest first, until fn returns false.
func (o *creationOrder) each(fn func(*record) bool) {
	for _, r := range o.recs {
		if r != nil && !fn(r) {
			return
		}
	}
}

func (o *creationOrder) add(slot int, delta int32) {
	for i := slot + 1; i < len(o.tree); i += i & -i {
		o.tree[i] += delta
	}
}

// rebuild recomputes the tree with room for capacity slots in O(capacity).
func (o *creationOrder) rebuild(capacity int) {
	o.tree = make([]int32, capacity+1)
	for i, r := range o.recs {
		if r != nil {
			o.tree[i+1]++
		}
	}
	for i := 1; i < len(o.tree); i++ {
		if j := i + (i & -i); j < len(o.tree) {
			o.tree[j] += o.tree[i]
		}
	}
}

func (o *creationOrder) compact() {
	kept := o.recs[:0]
	for _, r := range o.recs {
		if r != nil {
			r.pos = len(kept)
			kept = append(kept, r)
		}
	}
	clear(o.recs[len(kept):])
	o.recs = kept
	o.holes = 0
	o.rebuild(2*len(o.recs) + 16)
}
