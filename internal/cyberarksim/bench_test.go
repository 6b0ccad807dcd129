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

// BenchmarkFilterEq resolves a user by userName among a million, the worker's hottest query:
// through the whole HTTP handler (query parsing, index lookup, rendering), and at the store.
// It reports the heap the million users take per user.
func BenchmarkFilterEq(b *testing.B) {
	s := benchServer(b)
	b.Logf("seeded %d users in %s; %.0f heap bytes per user (%.0f MiB per million)",
		benchUsers, bench.seedTime.Round(time.Millisecond), bench.bytesPerUser, bench.bytesPerUser*1e6/(1<<20))

	b.Run("http", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			i := rng.IntN(benchUsers) + 1
			q := url.QueryEscape(fmt.Sprintf(`userName eq "%s"`, SyntheticUserName(i)))
			req := httptest.NewRequest(http.MethodGet, "/scim/v2/Users?filter="+q, nil)
			rec := serveDirect(s, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
			}
		}
		b.ReportMetric(bench.bytesPerUser, "heapB/user")
	})
	b.Run("store", func(b *testing.B) {
		b.ReportAllocs()
		rng := rand.New(rand.NewPCG(3, 4))
		for b.Loop() {
			i := rng.IntN(benchUsers) + 1
			f, _ := ParseFilter(fmt.Sprintf(`userName eq "%s"`, SyntheticUserName(i)))
			cf, _ := compileFilter(userType, f)
			s.mu.RLock()
			total, page := s.query(s.db.cols[Users], cf, 1, 1, "")
			s.mu.RUnlock()
			if total != 1 || len(page) != 1 {
				b.Fatalf("user %d: %d results", i, total)
			}
		}
	})
}

// BenchmarkFilterSw and the paging benchmark show the other shapes the inventory and the
// worker use at the same scale.
func BenchmarkFilterSw(b *testing.B) {
	s := benchServer(b)
	b.ReportAllocs()
	rng := rand.New(rand.NewPCG(5, 6))
	for b.Loop() {
		prefix := fmt.Sprintf("user%05d", rng.IntN(benchUsers/100)) // 100 matches each
		q := url.QueryEscape(fmt.Sprintf(`userName sw "%s"`, prefix))
		rec := serveDirect(s, httptest.NewRequest(http.MethodGet, "/scim/v2/Users?count=10&filter="+q, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkListPage(b *testing.B) {
	s := benchServer(b)
	b.ReportAllocs()
	rng := rand.New(rand.NewPCG(7, 8))
	for b.Loop() {
		start := rng.IntN(benchUsers-maxCount) + 1
		rec := serveDirect(s, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/scim/v2/Users?startIndex=%d&count=%d", start, maxCount), nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
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
