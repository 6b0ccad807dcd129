package events

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPublishDurability measures what sync_interval: always (DESIGN.md §5) costs a publisher:
// the same 2,000 events published one by one (each waiting for its ack) and pipelined (async, up to
// 256 in flight), into the embedded server with fsync on every write and with the NATS default of
// a flush every two minutes. Run with: go test -run '^$' -bench PublishDurability -benchtime 1x ./internal/events
func BenchmarkPublishDurability(b *testing.B) {
	const events = 2000
	for _, mode := range []struct {
		name string
		sync time.Duration
	}{{"sync=always", 0}, {"sync=2m", 2 * time.Minute}} {
		for _, pipelined := range []bool{false, true} {
			name := mode.name + "/one-by-one"
			if pipelined {
				name = mode.name + "/pipelined"
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					srv, err := StartEmbedded(EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), SyncInterval: mode.sync})
					if err != nil {
						b.Fatal(err)
					}
					nc, err := nats.Connect(srv.ClientURL())
					if err != nil {
						b.Fatal(err)
					}
					js, _ := jetstream.New(nc)
					ctx := context.Background()
					if err := (Topology{}).Ensure(ctx, js); err != nil {
						b.Fatal(err)
					}
					raws := make([][]byte, events)
					subjects := make([]string, events)
					for i := range raws {
						ev := NewEvent(fmt.Sprintf("e%d", i), "/bench", Change{Object: "User", Operation: OpUpdate,
							Key: map[string]any{"userName": fmt.Sprintf("u%d@example.com", i)}, Attributes: map[string]any{"title": "Engineer"}})
						raws[i], _ = ev.Encode()
						subjects[i] = EventSubject("User", ev.Data.Key)
					}
					start := time.Now()
					if pipelined {
						futs := make([]jetstream.PubAckFuture, 0, 256)
						for i := range raws {
							f, err := js.PublishMsgAsync(&nats.Msg{Subject: subjects[i], Data: raws[i]}, jetstream.WithMsgID(fmt.Sprintf("e%d", i)))
							if err != nil {
								b.Fatal(err)
							}
							futs = append(futs, f)
							if len(futs) == cap(futs) || i == len(raws)-1 {
								for _, f := range futs {
									select {
									case <-f.Ok():
									case err := <-f.Err():
										b.Fatal(err)
									}
								}
								futs = futs[:0]
							}
						}
					} else {
						for i := range raws {
							if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subjects[i], Data: raws[i]}, jetstream.WithMsgID(fmt.Sprintf("e%d", i))); err != nil {
								b.Fatal(err)
							}
						}
					}
					elapsed := time.Since(start)
					b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
					b.ReportMetric(float64(elapsed.Microseconds())/events, "µs/event")
					nc.Close()
					srv.Shutdown()
				}
			})
		}
	}
}
