package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// BenchmarkPipeline measures events per second end to end: published to the embedded JetStream
// (fsync on every write), consumed by `worker run`, provisioned to the CyberArk simulator over HTTP
// with OAuth 2.0, outcomes published and awaited. "instant" has no added latency (the worker's own
// cost); "cyberark-like" gives every SCIM request 50 ms and caps the simulator at 20 concurrent
// requests, where 400 requests/s is the ceiling.
// Run with: go test -run '^$' -bench Pipeline -benchtime 1x ./cmd/worker
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name   string
		events int
		faults cyberarksim.Faults
	}{
		{"instant", 5000, cyberarksim.Faults{}},
		{"cyberark-like", 5000, cyberarksim.Faults{Latency: 50 * time.Millisecond, MaxConcurrent: 20}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				sim, srv := simtest.MustStart(b, cyberarksim.Config{Faults: tc.faults})
				w := startWorkerLogging(b, cyberarkTarget(srv.URL), filepath.Join(repo(b), "deploy/examples/models/cyberark.yaml"), "warn")
				var src strings.Builder
				for i := range tc.events {
					ev := events.NewEvent(fmt.Sprintf("b%d", i), "/bench", events.Change{Object: "User", Operation: events.OpCreate,
						Key: map[string]any{"userName": fmt.Sprintf("user%06d@example.com", i)},
						Attributes: map[string]any{"name.givenName": "Bench", "name.familyName": fmt.Sprint(i), "title": "Engineer",
							"emails[].value": []any{fmt.Sprintf("user%06d@example.com", i)}, "active": true}})
					raw, _ := ev.Encode()
					src.Write(raw)
					src.WriteByte('\n')
				}
				items, err := publish.ReadJSONL(strings.NewReader(src.String()))
				if err != nil {
					b.Fatal(err)
				}
				nc, err := nats.Connect(w.natsURL)
				if err != nil {
					b.Fatal(err)
				}
				js, _ := jetstream.New(nc)
				start := time.Now()
				rep, err := publish.Run(context.Background(), js, items, publish.Options{Wait: true, Timeout: 5 * time.Minute})
				elapsed := time.Since(start)
				nc.Close()
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK() || sim.Len("Users") != tc.events {
					b.Fatalf("not every event succeeded: %v, %d users", rep.Counts(), sim.Len("Users"))
				}
				stats := sim.Stats()
				b.ReportMetric(float64(tc.events)/elapsed.Seconds(), "events/s")
				b.ReportMetric(float64(stats.ByStatus[429])*100/float64(max(total(stats.ByStatus), 1)), "%429")
				w.stop(b)
			}
		})
	}
}
