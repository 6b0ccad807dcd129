package inventory

import (
	"bufio"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// sorter sorts a run's entries by object and id in bounded memory: entries collect in a buffer
// of at most limit bytes, which is sorted and spilled to a scratch file when full; iterate merges
// the files. Duplicates (one id read twice while paging) keep the entry read last.
type sorter struct {
	dir   string
	limit int
	buf   []Entry
	size  int
	runs  []string
	seq   uint64
	enc   []byte
}

func newSorter(dir string, limit int) *sorter { return &sorter{dir: dir, limit: limit} }

// add takes e; it may spill the buffer to disk.
func (s *sorter) add(e Entry) error {
	s.seq++
	e.Seq = s.seq
	s.buf = append(s.buf, e)
	s.size += e.size()
	if s.size >= s.limit {
		return s.spill()
	}
	return nil
}

func (s *sorter) sortBuf() {
	slices.SortFunc(s.buf, func(a, b Entry) int {
		switch {
		case a.less(&b):
			return -1
		case b.less(&a):
			return 1
		}
		return int(a.Seq) - int(b.Seq)
	})
}

func (s *sorter) spill() error {
	if len(s.buf) == 0 {
		return nil
	}
	s.sortBuf()
	name := filepath.Join(s.dir, fmt.Sprintf("run-%04d", len(s.runs)))
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("inventory scratch: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	for i := range s.buf {
		s.enc = encodeEntry(s.enc[:0], &s.buf[i])
		if _, err := w.Write(s.enc); err != nil {
			f.Close()
			return fmt.Errorf("inventory scratch: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("inventory scratch: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("inventory scratch: %w", err)
	}
	s.runs = append(s.runs, name)
	clear(s.buf)
	s.buf, s.size = s.buf[:0], 0
	return nil
}

// entryIter yields entries in order; next returns io.EOF at the end.
type entryIter interface {
	next() (Entry, error)
	close() error
}

// iterate spills what is left and returns the merged, deduplicated stream.
func (s *sorter) iterate() (entryIter, error) {
	if err := s.spill(); err != nil {
		return nil, err
	}
	m := &mergeIter{}
	for _, name := range s.runs {
		f, err := os.Open(name)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("inventory scratch: %w", err)
		}
		m.files = append(m.files, f)
		src := &mergeSrc{r: newEntryReader(f)}
		if err := src.advance(); err != nil {
			m.close()
			return nil, err
		}
		if !src.done {
			m.h = append(m.h, src)
		}
	}
	heap.Init(&m.h)
	return &dedupIter{in: m}, nil
}

type mergeSrc struct {
	r    *entryReader
	cur  Entry
	done bool
}

func (s *mergeSrc) advance() error {
	e, err := s.r.next()
	if errors.Is(err, io.EOF) {
		s.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("inventory scratch: %w", err)
	}
	s.cur = e
	return nil
}

type srcHeap []*mergeSrc

func (h srcHeap) Len() int { return len(h) }
func (h srcHeap) Less(i, j int) bool {
	a, b := &h[i].cur, &h[j].cur
	if a.same(b) {
		return a.Seq < b.Seq
	}
	return a.less(b)
}
func (h srcHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *srcHeap) Push(x any)   { *h = append(*h, x.(*mergeSrc)) }
func (h *srcHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeIter is a k-way merge of sorted runs.
type mergeIter struct {
	h     srcHeap
	files []*os.File
}

func (m *mergeIter) next() (Entry, error) {
	if len(m.h) == 0 {
		return Entry{}, io.EOF
	}
	top := m.h[0]
	e := top.cur
	if err := top.advance(); err != nil {
		return Entry{}, err
	}
	if top.done {
		heap.Pop(&m.h)
	} else {
		heap.Fix(&m.h, 0)
	}
	return e, nil
}

func (m *mergeIter) close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	m.files, m.h = nil, nil
	return errors.Join(errs...)
}

// dedupIter keeps, of consecutive entries with the same object and id, the one read last.
type dedupIter struct {
	in      entryIter
	pending *Entry
	dups    int
}

func (d *dedupIter) next() (Entry, error) {
	if d.pending == nil {
		e, err := d.in.next()
		if err != nil {
			return e, err
		}
		d.pending = &e
	}
	for {
		e, err := d.in.next()
		if errors.Is(err, io.EOF) {
			out := *d.pending
			d.pending = nil
			if out.ID == "" {
				return out, io.EOF
			}
			return out, nil
		}
		if err != nil {
			return e, err
		}
		if e.same(d.pending) {
			d.dups++
			d.pending = &e // read later: newer
			continue
		}
		out := *d.pending
		d.pending = &e
		return out, nil
	}
}

func (d *dedupIter) close() error { return d.in.close() }
