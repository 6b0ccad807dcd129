// Command bench is scimflow's performance harness (make bench, issue 10). It builds the JetStream
// server, `worker run`, the CyberArk simulator and the bare loop (bench/bareloop), runs each as its
// own process on 127.0.0.1, and measures:
//
//   - overhead: the worker against the bare loop on the same mixed workload (user creates, updates,
//     group membership adds), rounds interleaved worker, bare, worker, bare, each on a fresh
//     JetStream server and simulator: events/s, CPU µs per event of the consumer and of the
//     JetStream server (/proc/<pid>/stat), NATS messages in per event (/varz in_msgs), peak RSS
//     (/proc/<pid>/status VmHWM), SCIM requests per event; and, in a separate round, which NATS
//     subjects those messages go to;
//   - ablation: the same drain by the worker built to leave out its applied record, its
//     provisioning log or both (internal/ablate), against the bare loop: what each costs;
//   - latency scaling: the simulator at 5, 50 and 200 ms with a concurrency cap, events/s against
//     Little's law's bound, 429s drawn; and lookups and writes at different latencies;
//   - end-to-end latency: publish to outcome, p50/p95/p99, at half the measured maximum rate;
//   - scale-out: 1, 2 and 3 workers (the pool) against a latency-bound target;
//   - soak (only when asked, make bench-all): one worker on a backlog of 300,000 events, its cost
//     per event early and late in the drain, so that a cost growing with its age shows;
//   - the Go micro-benchmarks of decoding, planning and filter building, with allocations.
//
// It prints one table, each target of issue 10 marked met or short with its figure, and rewrites
// the generated part of docs/benchmarks.md (figures, machine, date, commit). It exits 1 when it
// could not measure, and (with -strict) when a target is short.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scimflow/scimflow/internal/rig"
)

// options are the harness's knobs; the defaults fit `make bench` in under 10 minutes on 2 cores.
type options struct {
	pairs         int
	users, groups int
	cap           int
	latencies     []time.Duration
	latencyEvents int
	e2eDuration   time.Duration
	e2eRate       float64
	scaleLatency  time.Duration
	scaleEvents   int
	scaleSettle   time.Duration
	scaleWindow   time.Duration
	soakUsers     int
	bigGroup      int
	parts         map[string]bool
	docs          string
	keep          bool
	strict        bool
}

// allParts are the parts -parts takes; defaultParts are those make bench runs (the soak, 4–6
// minutes more, is make bench-all's).
var (
	allParts     = []string{"micro", "overhead", "census", "ablation", "biggroup", "latency", "e2e", "scale", "soak"}
	defaultParts = allParts[:len(allParts)-1]
)

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.pairs, "pairs", 2, "worker/bare-loop round pairs of the overhead measurement")
	fs.IntVar(&o.users, "users", 2500, "users of the mixed workload: each a create, two updates and a membership add")
	fs.IntVar(&o.groups, "groups", 100, "groups of the mixed workload")
	fs.IntVar(&o.cap, "cap", 20, "the simulator's concurrency cap in the latency measurements")
	lats := fs.String("latencies", "5ms,50ms,200ms", "simulator latencies of the latency scaling")
	fs.IntVar(&o.latencyEvents, "latency-events", 6000, "most creates per latency (fewer when 15 s at the bound needs fewer)")
	fs.DurationVar(&o.e2eDuration, "e2e", 15*time.Second, "how long the end-to-end latency measurement publishes")
	fs.Float64Var(&o.e2eRate, "e2e-rate", 0, "events/s the end-to-end measurement publishes (0: half the overhead rounds' worker rate)")
	fs.DurationVar(&o.scaleLatency, "scale-latency", 500*time.Millisecond, "simulator latency of the scale-out measurement (no cap: each worker is bound by its own limit)")
	fs.IntVar(&o.scaleEvents, "scale-events", 12000, "backlog of creates of each scale-out run")
	fs.DurationVar(&o.scaleSettle, "scale-settle", 12*time.Second, "scale-out: wait after every worker is ready, for the pool to settle (a member's TTL, 10 s, and a little)")
	fs.DurationVar(&o.scaleWindow, "scale-window", 15*time.Second, "scale-out: how long outcomes are counted")
	fs.IntVar(&o.soakUsers, "soak-users", 75000, "users of the soak's mixed workload (4 events each)")
	fs.IntVar(&o.bigGroup, "big-group", 2500, "members the large-group part's one group ends with (a user, 4 events, each)")
	parts := fs.String("parts", strings.Join(defaultParts, ","), "what to measure, comma-separated: "+strings.Join(allParts, ", "))
	fs.StringVar(&o.docs, "docs", "docs/benchmarks.md", "the file whose generated part is rewritten (empty: none)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (stores, configs, logs)")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when a target is short")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*lats, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-latencies: %q is not a positive duration", s)
		}
		o.latencies = append(o.latencies, d)
	}
	o.parts = map[string]bool{}
	for _, p := range strings.Split(*parts, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allParts, p) {
			return nil, fmt.Errorf("-parts: %q is not one of %s", p, strings.Join(allParts, ", "))
		}
		o.parts[p] = true
	}
	switch {
	case o.pairs < 1:
		return nil, errors.New("-pairs: at least 1")
	case o.users < 1 || o.groups < 1:
		return nil, errors.New("-users and -groups: at least 1")
	case o.bigGroup < 1:
		return nil, errors.New("-big-group: at least 1")
	case o.cap < 1:
		return nil, errors.New("-cap: at least 1")
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// harness is one run of the benchmark.
type harness struct {
	opt     *options
	repo    string
	dir     string // work folder
	bin     string
	keep    bool
	out     io.Writer
	started time.Time
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.out, "%6.1fs  "+format+"\n", append([]any{time.Since(h.started).Seconds()}, args...)...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	repo, dir, err := rig.Workspace("run the harness from the repository (make bench)", "scimflow-bench-")
	if err != nil {
		return err
	}
	h := &harness{opt: o, repo: repo, dir: dir, bin: filepath.Join(dir, "bin"), keep: o.keep, out: stdout, started: time.Now()}
	if o.keep {
		fmt.Fprintf(stdout, "work folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep := &report{opt: o}
	if err := h.measure(ctx, rep); err != nil {
		return err
	}
	rep.elapsed = time.Since(h.started)
	rep.machine = machine(repo)
	fmt.Fprintln(stdout)
	fmt.Fprint(stdout, rep.table())
	if o.docs != "" {
		path := o.docs
		if !filepath.IsAbs(path) {
			path = filepath.Join(repo, path)
		}
		if err := rep.writeDocs(path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", o.docs)
	}
	if short := rep.short(); o.strict && len(short) > 0 {
		return fmt.Errorf("targets short: %s", strings.Join(short, "; "))
	}
	return nil
}

// measure runs every part asked for, in order, filling rep.
func (h *harness) measure(ctx context.Context, rep *report) error {
	o := h.opt
	if o.parts["micro"] {
		h.logf("micro-benchmarks: go test -bench '%s' -benchmem %s", microPattern, strings.Join(microPackages, " "))
		rs, err := h.micro(ctx)
		if err != nil {
			return err
		}
		rep.micro = rs
		for _, r := range rs {
			h.logf("%-28s %10.0f ns/op %8.0f B/op %6.0f allocs/op", r.name, r.nsPerOp, r.bPerOp, r.allocs)
		}
	}
	if !slices.ContainsFunc(allParts, func(p string) bool { return p != "micro" && o.parts[p] }) {
		return nil // only the micro-benchmarks: no process to build or run
	}
	bins := []rig.Binary{rig.NATSServer, rig.Worker, rig.Simulator, {Name: "bareloop", Pkg: "./bench/bareloop"}}
	if o.parts["ablation"] {
		bins = append(bins, ablationWorker)
	}
	h.logf("building nats-server, worker, cyberark-sim and bareloop")
	if err := rig.Build(ctx, h.repo, h.bin, nil, bins...); err != nil {
		return err
	}
	if o.parts["overhead"] {
		var err error
		if rep.workers, rep.bares, err = h.overhead(ctx); err != nil {
			return err
		}
	}
	if o.parts["census"] {
		for _, kind := range []string{kindWorker, kindBare} {
			c, err := h.census(ctx, kind)
			if err != nil {
				return err
			}
			rep.census = append(rep.census, c)
		}
	}
	if o.parts["ablation"] {
		var err error
		if rep.ablation, err = h.ablation(ctx); err != nil {
			return err
		}
	}
	if o.parts["biggroup"] {
		var err error
		if rep.bigGroup, err = h.bigGroup(ctx); err != nil {
			return err
		}
	}
	if o.parts["latency"] {
		for _, lat := range o.latencies {
			r, err := h.latency(ctx, lat, kindWorker)
			if err != nil {
				return err
			}
			rep.latency = append(rep.latency, r)
		}
		r, err := h.latency(ctx, 50*time.Millisecond, kindBare)
		if err != nil {
			return err
		}
		rep.latency = append(rep.latency, r)
		if r, err = h.mixedLatency(ctx, 10*time.Millisecond, 60*time.Millisecond); err != nil {
			return err
		}
		rep.mixed = &r
	}
	if o.parts["e2e"] {
		maxRate := 1000.0 // without the overhead rounds: a fixed guess, said so in the table
		switch {
		case o.e2eRate > 0:
			maxRate, rep.e2eGiven = 2*o.e2eRate, true
		case len(rep.workers) > 0:
			maxRate = median(rep.workers, func(r *round) float64 { return r.d.rate() })
		default:
			rep.e2eGuess = true
		}
		// The worker at half its rate, and the bare loop at the same rate: the bare loop's tail is
		// what the host (the server's fsyncs, the disk) leaves to any consumer.
		for _, kind := range []string{kindWorker, kindBare} {
			res, err := h.endToEnd(ctx, maxRate/2, kind)
			if err != nil {
				return err
			}
			rep.e2e = append(rep.e2e, res)
		}
	}
	if o.parts["scale"] {
		for k := 1; k <= 3; k++ {
			r, err := h.scaleOut(ctx, k)
			if err != nil {
				return err
			}
			rep.scale = append(rep.scale, r)
		}
	}
	if o.parts["soak"] {
		var err error
		if rep.soak, err = h.soak(ctx); err != nil {
			return err
		}
	}
	return nil
}
