package cyberarksim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"sync"
	"testing"
	"time"
)

// benchUsers is how many users BenchmarkFilterEq seeds.
const benchUsers = 1_000_000

var bench struct {
	once         sync.Once
	s            *Server
	bytesPerUser float64
	seedTime     time.Duration
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchServer seeds one server with benchUsers synthetic users for every benchmark of the run,
// measuring the heap it takes.
func benchServer(b *testing.B) *Server {
	b.Helper()
	bench.once.Do(func() {
		off := false
		before := heapInUse()
		s, err := New(Config{RequireAuth: &off})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := s.SeedSyntheticUsers(benchUsers); err != nil {
			b.Fatal(err)
		}
		bench.seedTime = time.Since(start)
		bench.bytesPerUser = float64(heapInUse()-before) / benchUsers
		bench.s = s
	})
	if bench.s == nil {
		b.Fatal("seeding failed")
	}
	return bench.s
}

// timed runs op n times per benchmark iteration and reports the mean as unit, so the figures
// mean something under "make bench" (-benchtime 1x) too.
func timed(b *testing.B, n int, unit string, op func(i int)) {
	b.ReportAllocs()
	var total time.Duration
	ops := 0
	for b.Loop() {
		start := time.Now()
		for i := range n {
			op(i)
		}
		total += time.Since(start)
		ops += n
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(ops), unit)
}

// BenchmarkFilterEq resolves users by userName among a million, the worker's hottest query:
// through the whole HTTP handler (query parsing, auth off, index lookup, rendering) and at the
// store. It also reports the heap the million users take per user and the seeding time.
func BenchmarkFilterEq(b *testing.B) {
	s := benchServer(b)
	b.Run("http", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(1, 2))
		timed(b, 10000, "ns/lookup", func(int) {
			q := url.QueryEscape(fmt.Sprintf(`userName eq "%s"`, SyntheticUserName(rng.IntN(benchUsers)+1)))
			rec := serveDirect(s, httptest.NewRequest(http.MethodGet, "/scim/v2/Users?filter="+q, nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
		})
		b.ReportMetric(bench.bytesPerUser, "heapB/user")
		b.ReportMetric(bench.seedTime.Seconds(), "seed-s/1Musers")
	})
	b.Run("store", func(b *testing.B) {
		rng := rand.New(rand.NewPCG(3, 4))
		timed(b, 100000, "ns/lookup", func(int) {
			i := rng.IntN(benchUsers) + 1
			f, _ := ParseFilter(fmt.Sprintf(`userName eq "%s"`, SyntheticUserName(i)))
			cf, _ := compileFilter(userType, f)
			s.mu.RLock()
			total, page := s.query(s.db.cols[Users], cf, 1, 1, "")
			s.mu.RUnlock()
			if total != 1 || len(page) != 1 {
				b.Fatalf("user %d: %d results", i, total)
			}
		})
	})
}

// BenchmarkFilterSw is a prefix filter matching 100 users of a million, first page of 10.
func BenchmarkFilterSw(b *testing.B) {
	s := benchServer(b)
	rng := rand.New(rand.NewPCG(5, 6))
	timed(b, 2000, "ns/query", func(int) {
		prefix := fmt.Sprintf("user%05d", rng.IntN(benchUsers/100)) // 100 matches each
		q := url.QueryEscape(fmt.Sprintf(`userName sw "%s"`, prefix))
		rec := serveDirect(s, httptest.NewRequest(http.MethodGet, "/scim/v2/Users?count=10&filter="+q, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	})
}

// BenchmarkListPage reads pages of 1000 users at random offsets of a million, as the inventory
// does.
func BenchmarkListPage(b *testing.B) {
	s := benchServer(b)
	rng := rand.New(rand.NewPCG(7, 8))
	timed(b, 20, "ns/page", func(int) {
		start := rng.IntN(benchUsers-maxCount) + 1
		rec := serveDirect(s, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=%d", start, maxCount), nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	})
}

// TestSyntheticUsersMatchNormalizedForm checks that the fast synthetic seeding stores exactly
// what a client POSTing the same user would get stored.
func TestSyntheticUsersMatchNormalizedForm(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Generic: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SeedSyntheticUsers(3); err != nil {
		t.Fatal(err)
	}
	for _, u := range s.Snapshot().Users {
		body := map[string]any{}
		for k, v := range u {
			if k != "id" && k != "meta" {
				body[k] = v
			}
		}
		raw, _ := json.Marshal(body)
		m, err := decodeBody(raw)
		if err != nil {
			t.Fatal(err)
		}
		n, err := normalizeResource(userType, m, modeCreate)
		if err != nil {
			t.Fatalf("synthetic user does not validate: %v", err)
		}
		s.mu.RLock()
		stored := s.db.cols[Users].byID[u["id"].(string)].doc
		s.mu.RUnlock()
		if got := encodeDoc(n.doc); string(got) != string(stored) {
			t.Fatalf("synthetic doc %s differs from normalized %s", stored, got)
		}
	}
	if err := s.SeedSyntheticUsers(2); err != nil {
		t.Fatal(err)
	}
	if s.Len(Users) != 5 {
		t.Fatalf("len %d", s.Len(Users))
	}
}
