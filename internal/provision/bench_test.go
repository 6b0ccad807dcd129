package provision

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
)

// BenchmarkCreateBurst is the load test: a simulator that admits 20 concurrent requests
// with 50 ms latency, and a burst of 5,000 user creations from 200 goroutines through one Client.
// The ideal is 20 / 0.05 s = 400 requests/s. It reports req/s, its share of the ideal, and the
// share of requests answered 429; it fails when throughput is below 80% of the ideal or 429s are
// 2% or more. Run with: go test -run '^$' -bench CreateBurst -benchtime 1x ./internal/provision
func BenchmarkCreateBurst(b *testing.B) {
	const (
		creates    = 5000
		goroutines = 200
		capacity   = 20
		latency    = 50 * time.Millisecond
	)
	ideal := float64(capacity) / latency.Seconds()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		sim, ts := simtest.MustStart(b, cyberarksim.Config{
			Faults: cyberarksim.Faults{MaxConcurrent: capacity, Latency: latency},
		})
		st := &suiteTarget{profile: ProfileCyberArk, sim: sim, ts: ts}
		cfg := st.config()
		cfg.Retry = RetryConfig{Attempts: 10, BaseBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}
		c, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.auth.Token(context.Background()); err != nil {
			b.Fatal(err)
		}
		sim.ResetStats()
		var next, failed atomic.Int64
		var firstErr atomic.Value
		var wg sync.WaitGroup
		b.StartTimer()
		start := time.Now()
		for range goroutines {
			wg.Go(func() {
				for n := next.Add(1); n <= creates; n = next.Add(1) {
					body := userBody(fmt.Sprintf("burst-%05d@example.com", n), map[string]any{"password": "Init-Pass-123!"})
					if _, err := c.Do(context.Background(), Request{Method: http.MethodPost, Path: "Users", Body: body}); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		s := sim.Stats()
		sent := 0
		for k, n := range s.Requests {
			if !strings.Contains(k, "oauth2") {
				sent += n
			}
		}
		rate := float64(creates) / elapsed.Seconds()
		share429 := float64(s.Rejected429) / float64(sent)
		b.ReportMetric(rate, "req/s")
		b.ReportMetric(100*rate/ideal, "%ideal")
		b.ReportMetric(100*share429, "%429")
		b.Logf("%d creates in %s: %.0f req/s (%.1f%% of the ideal %.0f/s), %d requests sent, %d answered 429 (%.2f%%), max in flight at the target %d, final limit %d, failed %d",
			creates, elapsed.Round(time.Millisecond), rate, 100*rate/ideal, ideal, sent, s.Rejected429, 100*share429, s.MaxInFlight, c.Limit(), failed.Load())
		_ = c.Close(context.Background())
		if failed.Load() > 0 {
			b.Fatalf("%d creates failed, first: %v", failed.Load(), firstErr.Load())
		}
		if got := sim.Len("Users"); got != creates {
			b.Fatalf("simulator holds %d users, want %d", got, creates)
		}
		if rate < 0.8*ideal {
			b.Errorf("throughput %.0f req/s is below 80%% of %.0f", rate, ideal)
		}
		if share429 >= 0.02 {
			b.Errorf("%.2f%% of requests answered 429, want < 2%%", 100*share429)
		}
		b.StartTimer()
	}
}
