// Command bench-writes measures the JetStream server's cost of what the worker stores per event,
// laid out three ways and against the floor, to inform the choice docs/design-notes.md leaves
// open under "One durable write per event":
//
//   - floor: the outcome alone, fsynced (the bare loop's one write; no record at all);
//   - today: the outcome and the applied record, each fsynced, and the provisioning log's entry,
//     persisted asynchronously (what the worker does);
//   - keyed: one fsynced outcome under a subject that names its key, carrying the record in a
//     header; the log and the records sourced from it by the server, persisted asynchronously
//     (needs DESIGN.md's outcome subject changed);
//   - ledger: as keyed, but republished as idm.outcomes.<object>.<status> once stored, and the
//     outcomes stream sourced from it too, so subscribers see the subjects they see today.
//
// No worker runs: -publishers goroutines write -events events of -keys keys as fast as the server
// stores them, to a fresh server (tools/nats-server, file store, sync_interval: always) per
// layout and round, and the server's CPU per event (utime + stime) is taken once its derived
// stores have caught up. It prints one line per round and a table of medians.
//
//	go run ./tools/bench-writes [-rounds 3] [-events 20000]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scimflow/scimflow/internal/rig"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-writes:", err)
		os.Exit(1)
	}
}

type options struct {
	rounds, events, keys, publishers int
}

// result is one layout's round.
type result struct {
	rate   float64 // events/s, until the last write was acknowledged
	cpuPer float64 // server CPU µs per event, derived stores caught up
}

func run(ctx context.Context, args []string, out io.Writer) error {
	var opt options
	fs := flag.NewFlagSet("bench-writes", flag.ContinueOnError)
	fs.IntVar(&opt.rounds, "rounds", 3, "rounds; each runs every layout once, in turn")
	fs.IntVar(&opt.events, "events", 20000, "events per layout and round")
	fs.IntVar(&opt.keys, "keys", 2500, "object keys the events are spread over")
	fs.IntVar(&opt.publishers, "publishers", 64, "events written at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	repo, work, err := rig.Workspace("run it as go run ./tools/bench-writes from the repository", "bench-writes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := rig.Build(ctx, repo, work, out, rig.NATSServer); err != nil {
		return err
	}
	res := map[string][]result{}
	for r := range opt.rounds {
		for _, l := range layouts {
			got, err := measure(ctx, filepath.Join(work, rig.NATSServer.Name), filepath.Join(work, fmt.Sprintf("%s-%d", l.name, r)), l, opt)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", l.name, r+1, err)
			}
			fmt.Fprintf(out, "round %d  %-6s  %6.0f events/s  server %4.0f µs/event\n", r+1, l.name, got.rate, got.cpuPer)
			res[l.name] = append(res[l.name], got)
		}
	}
	fmt.Fprintf(out, "\n| layout | events/s | server CPU per event | what an event writes |\n| --- | --- | --- | --- |\n")
	for _, l := range layouts {
		fmt.Fprintf(out, "| %s | %.0f | %.0f µs | %s |\n", l.name,
			median(res[l.name], func(r result) float64 { return r.rate }), median(res[l.name], func(r result) float64 { return r.cpuPer }), l.what)
	}
	return nil
}

// measure runs one layout on a fresh server.
func measure(ctx context.Context, server, dir string, l layout, opt options) (result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	port, err := rig.FreePort()
	if err != nil {
		return result{}, err
	}
	conf := filepath.Join(dir, "server.conf")
	text := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n", port, filepath.Join(dir, "store"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return result{}, err
	}
	p, err := rig.Start("nats-server", server, []string{"-c", conf}, nil, filepath.Join(dir, "server.log"), nil)
	if err != nil {
		return result{}, err
	}
	defer p.Stop(5 * time.Second)
	nc, err := connect("nats://127.0.0.1:"+strconv.Itoa(port), p)
	if err != nil {
		return result{}, err
	}
	defer nc.Close()
	w, err := newWriter(nc)
	if err != nil {
		return result{}, err
	}
	if err := l.setup(ctx, w.js); err != nil {
		return result{}, err
	}
	// A subscriber of every outcome, as the pool's consumers of outcomes would be.
	sub, err := nc.Subscribe("idm.outcomes.>", func(*nats.Msg) {})
	if err != nil {
		return result{}, err
	}
	defer sub.Unsubscribe()

	cpu0, err := rig.CPUTime(p.PID())
	if err != nil {
		return result{}, err
	}
	t0 := time.Now()
	if err := writeAll(ctx, w, l, opt); err != nil {
		return result{}, err
	}
	rate := float64(opt.events) / time.Since(t0).Seconds()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := caughtUp(ctx, w.js, l, opt.events)
		if err != nil {
			return result{}, err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return result{}, errors.New("the derived stores did not catch up within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu1, err := rig.CPUTime(p.PID())
	if err != nil {
		return result{}, err
	}
	return result{rate: rate, cpuPer: float64((cpu1 - cpu0).Microseconds()) / float64(opt.events)}, nil
}

// writeAll writes opt.events events from opt.publishers goroutines and waits for the log's
// asynchronous writes.
func writeAll(ctx context.Context, w *writer, l layout, opt options) error {
	jobs := make(chan int)
	errs := make(chan error, opt.publishers)
	var wg sync.WaitGroup
	for range opt.publishers {
		wg.Go(func() {
			for i := range jobs {
				if err := l.write(ctx, w, i, fmt.Sprintf("k%05d", i%opt.keys)); err != nil {
					errs <- fmt.Errorf("event %d: %w", i, err)
					return
				}
			}
		})
	}
	for i := range opt.events {
		select {
		case jobs <- i:
		case err := <-errs:
			close(jobs)
			wg.Wait()
			return err
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	case <-w.async.PublishAsyncComplete():
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("the provisioning log's writes were not acknowledged within 30s")
	}
}

func connect(url string, p *rig.Proc) (*nats.Conn, error) {
	var err error
	for range 100 {
		var nc *nats.Conn
		if nc, err = nats.Connect(url); err == nil {
			return nc, nil
		}
		if p.Exited() {
			return nil, fmt.Errorf("nats-server exited: %v (its log: %s)", p.ExitErr(), p.Log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("connect %s: %w", url, err)
}

func median(rs []result, f func(result) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return rig.Median(vs)
}
