package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/scimflow/scimflow/internal/provision"
)

// Lister reads one page of a resource, resource by resource, each as its JSON text;
// *provision.Client implements it (through its limiter, breaker, authentication and retries).
type Lister interface {
	ListRaw(ctx context.Context, resource string, startIndex, count int, fn func(raw []byte) error) (provision.PageInfo, error)
}

var _ Lister = (*provision.Client)(nil)

// ErrShifted says a listing moved so much while it was paged that no page could be aligned with
// the one before it: the run fails and the next window tries again.
var ErrShifted = errors.New("the listing shifted too much while it was paged")

// scanStats counts what one resource's scan did.
type scanStats struct {
	Pages    int `json:"pages"`
	Rereads  int `json:"rereads"`
	Objects  int `json:"objects"`
	Skipped  int `json:"skipped"`  // resources without id or key
	Reported int `json:"reported"` // the last totalResults seen, -1 if none
}

// pager reads every object of a resource. Pages overlap by one object: page i starts at
// 1 + i·(size−1), so the last object of a page must be the first of the next. When it is not,
// objects were added or removed before it while paging; the page is aligned on the newest object
// of the previous page it holds, or read again from further back until it holds one (a creation-
// ordered listing, as CyberArk's, loses nothing that way). Pages are read concurrently, at most
// `width` at a time, and checked in order.
type pager struct {
	list     Lister
	size     int
	width    int
	progress func(pages int)
}

type page struct {
	start   int
	info    provision.PageInfo
	entries []Entry
	skipped int
}

func (p *pager) read(ctx context.Context, sh *shape, start, count int) (*page, error) {
	pg := &page{start: start}
	info, err := p.list.ListRaw(ctx, sh.resource, start, count, func(raw []byte) error {
		e, err := sh.entryOf(raw)
		if err != nil {
			pg.skipped++
			return nil
		}
		pg.entries = append(pg.entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s from %d: %w", sh.resource, start, err)
	}
	pg.info = info
	if p.progress != nil {
		p.progress(1)
	}
	return pg, nil
}

// full reports whether the page came back with as many objects as asked: a short page ends the
// listing.
func (pg *page) full() bool { return pg.info.Count >= pg.info.Asked }

// pageBytes is the answer size pages aim at: a page of groups with many members asks for fewer
// groups, so that memory does not grow with group sizes (the connector holds an answer whole).
const pageBytes = 2 << 20

// firstPage is the count of the first page of a resource, before its objects' size is known.
const firstPage = 100

// fit is the page size that makes pages of objects like pg's about pageBytes, within [2, max].
func fit(pg *page, limit int) int {
	if pg.info.Count == 0 || pg.info.Bytes <= 0 {
		return limit
	}
	per := max(pg.info.Bytes/pg.info.Count, 1)
	return min(max(pageBytes/per, 2), limit)
}

// scan reads every object of sh and hands each to emit once, in listing order.
func (p *pager) scan(ctx context.Context, sh *shape, emit func(Entry) error) (scanStats, error) {
	st := scanStats{Reported: -1}
	limit := max(p.size, 2)
	first, err := p.read(ctx, sh, 1, min(limit, firstPage))
	if err != nil {
		return st, err
	}
	st.Pages++
	if first.info.Count < first.info.Asked && first.info.Count > 1 && first.info.TotalResults > first.info.Count {
		// The target pages smaller than asked (its own maximum): page at its size at most.
		limit = first.info.Count
	}
	size := fit(first, limit)
	accept := func(pg *page, from int) error {
		st.Skipped += pg.skipped
		if pg.info.TotalResults >= 0 {
			st.Reported = pg.info.TotalResults
		}
		for _, e := range pg.entries[from:] {
			st.Objects++
			if err := emit(e); err != nil {
				return err
			}
		}
		return nil
	}
	if err := accept(first, 0); err != nil {
		return st, err
	}
	prev := first
	next := first.start + first.info.Count - 1
	for prev.full() {
		stride := size - 1
		// A batch of pages from next, read together.
		n := max(p.width, 1)
		if total := prev.info.TotalResults; total >= 0 {
			// Only the pages the total promises, and always one (objects may have been added).
			n = min(n, max(1, (total-next)/stride+1))
		}
		batch := make([]*page, n)
		g, gctx := errgroup.WithContext(ctx)
		for i := range batch {
			start := next + i*stride
			g.Go(func() error {
				pg, err := p.read(gctx, sh, start, size)
				batch[i] = pg
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return st, err
		}
		st.Pages += n
		realigned := false
		for _, pg := range batch {
			from, ok := anchor(prev, pg)
			if !ok {
				// Objects before this page went away while paging: read from further back until
				// the page holds one of the previous page's objects.
				var err error
				pg, from, err = p.realign(ctx, sh, prev, pg.start, size, &st)
				if err != nil {
					return st, err
				}
				realigned = true
			}
			if err := accept(pg, from); err != nil {
				return st, err
			}
			prev = pg
			if realigned || !pg.full() {
				break // the rest of the batch was read at offsets that no longer hold
			}
		}
		next = prev.start + prev.info.Count - 1
		size = fit(prev, limit)
	}
	return st, nil
}

// anchor finds where pg continues prev: just after the newest object of prev that pg holds.
// An empty page continues nothing and needs nothing: it ends the listing.
func anchor(prev, pg *page) (int, bool) {
	if len(pg.entries) == 0 {
		return 0, pg.info.Count == 0
	}
	if len(prev.entries) == 0 {
		return 0, true
	}
	for i := len(prev.entries) - 1; i >= 0; i-- {
		id := prev.entries[i].ID
		if j := slices.IndexFunc(pg.entries, func(e Entry) bool { return e.ID == id }); j >= 0 {
			return j + 1, true
		}
	}
	return 0, false
}

// realign reads from further and further back before start (a quarter page, then doubling, down
// to the first object) until the page holds an object of prev. When none of prev's objects is
// left at all, the listing can't be aligned: ErrShifted.
func (p *pager) realign(ctx context.Context, sh *shape, prev *page, start, size int, st *scanStats) (*page, int, error) {
	for back := max(size/4, 1); ; back *= 2 {
		from := max(1, start-back)
		pg, err := p.read(ctx, sh, from, size)
		if err != nil {
			return nil, 0, err
		}
		st.Pages++
		st.Rereads++
		if i, ok := anchor(prev, pg); ok {
			return pg, i, nil
		}
		if from == 1 {
			return nil, 0, fmt.Errorf("list %s near index %d: %w", sh.resource, start, ErrShifted)
		}
	}
}
