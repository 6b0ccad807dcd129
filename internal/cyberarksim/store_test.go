package cyberarksim

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestSortedIndexModel compares sortedIndex with a sorted slice under random inserts and removes,
// enough of them to split blocks.
func TestSortedIndexModel(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		ix := &sortedIndex{}
		var model []indexEntry
		var seq uint64
		keyGen := rapid.StringMatching(`[a-c]{0,3}`)
		n := rapid.IntRange(1, 3000).Draw(t, "n")
		for range n {
			if len(model) > 0 && rapid.IntRange(0, 3).Draw(t, "remove?") == 0 {
				e := model[rapid.IntRange(0, len(model)-1).Draw(t, "victim")]
				require.True(t, ix.remove(e.key, e.rec))
				model = slices.DeleteFunc(model, func(x indexEntry) bool { return x == e })
				require.False(t, ix.remove(e.key, e.rec), "removing twice")
				continue
			}
			seq++
			e := indexEntry{key: keyGen.Draw(t, "key"), rec: &record{seq: seq}}
			ix.insert(e.key, e.rec)
			model = append(model, e)
		}
		sort.Slice(model, func(i, j int) bool { return model[i].less(model[j]) })
		require.Equal(t, len(model), ix.size)
		var all []indexEntry
		ix.each(func(e indexEntry) bool { all = append(all, e); return true })
		requireSameSeq(t, model, all)
		for _, b := range ix.blocks {
			require.NotEmpty(t, b)
			require.LessOrEqual(t, len(b), maxBlock)
		}
		probe := keyGen.Draw(t, "probe")
		var eq, pre []*record
		ix.equal(probe, func(r *record) bool { eq = append(eq, r); return true })
		ix.prefix(probe, func(r *record) bool { pre = append(pre, r); return true })
		var wantEq, wantPre []*record
		for _, e := range model {
			if e.key == probe {
				wantEq = append(wantEq, e.rec)
			}
			if strings.HasPrefix(e.key, probe) {
				wantPre = append(wantPre, e.rec)
			}
		}
		requireSameSeq(t, wantEq, eq)
		requireSameSeq(t, wantPre, pre)
		if len(wantEq) > 0 {
			require.Same(t, wantEq[0], ix.first(probe))
		} else {
			require.Nil(t, ix.first(probe))
		}
	})
}

// TestCreationOrderModel compares creationOrder's paging with a slice under random pushes and
// drops, enough of them to compact.
func TestCreationOrderModel(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		var o creationOrder
		var model []*record
		n := rapid.IntRange(1, 5000).Draw(t, "n")
		for i := range n {
			if len(model) > 0 && rapid.IntRange(0, 2).Draw(t, "drop?") == 0 {
				k := rapid.IntRange(0, len(model)-1).Draw(t, "victim")
				o.drop(model[k])
				model = slices.Delete(model, k, k+1)
				continue
			}
			r := &record{seq: uint64(i)}
			o.push(r)
			model = append(model, r)
		}
		require.Equal(t, len(model), o.live)
		start := rapid.IntRange(0, len(model)+2).Draw(t, "start")
		count := rapid.IntRange(0, 50).Draw(t, "count")
		var page []*record
		o.page(start, count, func(r *record) { page = append(page, r) })
		var want []*record
		if start < len(model) {
			want = model[start:min(start+count, len(model))]
		}
		requireSameSeq(t, want, page)
		var all []*record
		o.each(func(r *record) bool { all = append(all, r); return true })
		requireSameSeq(t, model, all)
	})
}

// requireSameSeq compares sequences, treating nil and empty as equal.
func requireSameSeq[E any](t require.TestingT, want, got []E) {
	if len(want) == 0 && len(got) == 0 {
		return
	}
	require.Equal(t, want, got)
}

func TestMemberList(t *testing.T) {
	t.Parallel()
	m := newMemberList()
	for i := range 200 {
		require.True(t, m.add(string(rune('A'+i%26))+strings.Repeat("x", i/26)))
	}
	require.False(t, m.add("A"))
	for i := range 150 {
		require.True(t, m.remove(string(rune('A'+i%26))+strings.Repeat("x", i/26)))
	}
	require.False(t, m.remove("A"))
	require.Equal(t, 50, m.len())
	list := m.list()
	require.Len(t, list, 50)
	require.Equal(t, string(rune('A'+150%26))+strings.Repeat("x", 150/26), list[0], "insertion order survives compaction")
	for _, id := range list {
		require.True(t, m.has(id))
	}
}

// TestIndexAndOrderAtScale drives both structures through block splits, block removals, Fenwick
// growth and compaction, which small random cases rarely reach.
func TestIndexAndOrderAtScale(t *testing.T) {
	t.Parallel()
	ix := &sortedIndex{}
	var o creationOrder
	recs := make([]*record, 20000)
	for i := range recs {
		recs[i] = &record{seq: uint64(i + 1)}
		ix.insert(strings.Repeat("k", i%7)+string(rune('a'+(i*7919)%26)), recs[i])
		o.push(recs[i])
	}
	require.Greater(t, len(ix.blocks), 20000/maxBlock)
	for i := 0; i < len(recs); i += 3 { // drop two thirds
		for j := i; j < i+2 && j < len(recs); j++ {
			require.True(t, ix.remove(strings.Repeat("k", j%7)+string(rune('a'+(j*7919)%26)), recs[j]))
			o.drop(recs[j])
		}
	}
	var kept []*record
	for i := 2; i < len(recs); i += 3 {
		kept = append(kept, recs[i])
	}
	require.Equal(t, len(kept), ix.size)
	require.Equal(t, len(kept), o.live)
	require.Less(t, len(o.recs), len(recs), "compacted")
	var prev indexEntry
	n := 0
	ix.each(func(e indexEntry) bool {
		if n > 0 {
			require.True(t, prev.less(e))
		}
		prev = e
		n++
		return true
	})
	require.Equal(t, len(kept), n)
	for _, start := range []int{0, 1, 777, len(kept) - 5} {
		var page []*record
		o.page(start, 10, func(r *record) { page = append(page, r) })
		require.Equal(t, kept[start:min(start+10, len(kept))], page)
	}
}
