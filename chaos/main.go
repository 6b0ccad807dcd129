// Command chaos is scimflow's chaos suite (make chaos; docs/chaos.md): it builds the JetStream
// server, the worker and the CyberArk simulator, runs them as separate processes on 127.0.0.1,
// publishes a workload of known per-key sequences while it kills and restarts workers and the
// broker, lets the target fail and go down, and then checks, from the simulator's log of applied
// writes, its final state and the outcome stream, that every event has exactly one final outcome,
// no object exists twice, no key's writes were applied out of order, and the final state is the
// one the sequences imply. It prints its figures and the first violations, and exits 1 when there
// is any (2 when the suite itself could not run).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/rig"
)

// options are the suite's knobs (docs/chaos.md).
type options struct {
	seed          uint64
	keys, events  int
	rate          float64
	workers       int
	static        bool
	partitions    int
	lanes         int
	killEvery     time.Duration
	brokerRestart bool
	brokerDown    time.Duration
	scale         bool
	outage        time.Duration
	rate5xx       float64
	rate429       float64
	ratePhantom   float64
	latency       time.Duration
	jitter        time.Duration
	ackWait       time.Duration
	drainTimeout  time.Duration
	window        string
	maxWindows    int
	settle        time.Duration
	stall         time.Duration
	budget        time.Duration
	linger        time.Duration
	dir           string
	keep          bool
	bin           string
	show          int
	ownership     string
	configExtra   string
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Uint64Var(&o.seed, "seed", 0, "random seed of the workload and the chaos (0: from the clock; printed either way)")
	fs.IntVar(&o.keys, "keys", 2000, "object keys (a tenth of them groups)")
	fs.IntVar(&o.events, "events", 20000, "events in all")
	fs.Float64Var(&o.rate, "rate", 120, "events published per second")
	fs.IntVar(&o.workers, "workers", 3, "worker replicas at the start")
	fs.BoolVar(&o.static, "static", false, "give each worker a static share of the partitions (worker.partitions); default: no partition configuration")
	fs.IntVar(&o.partitions, "partitions", 32, "partitions of the events stream (nats.partitions)")
	fs.IntVar(&o.lanes, "lanes", 0, "worker.lanes (0: the worker's default)")
	fs.DurationVar(&o.killEvery, "kill-every", 6*time.Second, "mean time between kill -9 of a random worker (0: no kills)")
	fs.BoolVar(&o.brokerRestart, "broker-restart", true, "kill -9 the JetStream server once and start it again")
	fs.DurationVar(&o.brokerDown, "broker-down", 0, "how long the JetStream server stays down before it is started again (0: 1 to 3 s at random; past the pool entries' TTL of 10 s, the server comes back without them)")
	fs.BoolVar(&o.scale, "scale", true, "add a worker, later remove one with SIGTERM")
	fs.DurationVar(&o.outage, "outage", 20*time.Second, "one target outage of this length (0: none)")
	fs.Float64Var(&o.rate5xx, "rate-5xx", 0.05, "fraction of SCIM requests answered 500/502/503")
	fs.Float64Var(&o.rate429, "rate-429", 0.02, "fraction of SCIM requests answered 429 (Retry-After: 1)")
	fs.Float64Var(&o.ratePhantom, "rate-phantom", 0, "fraction of SCIM writes applied but answered 502 (the reply lost)")
	fs.DurationVar(&o.latency, "latency", 20*time.Millisecond, "target latency")
	fs.DurationVar(&o.jitter, "jitter", 30*time.Millisecond, "extra random target latency, 0..jitter")
	fs.DurationVar(&o.ackWait, "ack-wait", 10*time.Second, "worker.ackWait")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Second, "worker.drainTimeout")
	fs.StringVar(&o.window, "window", "@every 5s", "syncWindow.schedule")
	fs.IntVar(&o.maxWindows, "max-windows", 20, "syncWindow.maxWindows")
	fs.DurationVar(&o.settle, "settle", 10*time.Minute, "after publishing, how long to wait for every final outcome")
	fs.DurationVar(&o.stall, "stall", 2*time.Minute, "after publishing, stop waiting when no final outcome arrived for this long")
	fs.DurationVar(&o.budget, "budget", 9*time.Minute+30*time.Second, "wall-time budget of the whole run, build included: the wait for final outcomes ends in time to check within it (0: none)")
	fs.DurationVar(&o.linger, "linger", 0, "after the last final outcome, how long to keep watching for late writes (0: ack-wait + 5s)")
	fs.StringVar(&o.dir, "dir", "", "work folder for configs, stores and logs (default: a new temporary folder)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder even when the run passes")
	fs.StringVar(&o.bin, "bin", "", "folder with prebuilt nats-server, worker and cyberark-sim (default: build them)")
	fs.IntVar(&o.show, "show", 20, "violations printed (all of them go to report.txt)")
	fs.StringVar(&o.ownership, "ownership-pattern", ownershipPattern, "regexp of worker log messages that count as ownership moves")
	extra := fs.String("config-extra", "", "YAML appended to every worker configuration (top-level sections, e.g. a deletionGuard), or @FILE")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.configExtra = *extra
	if f, ok := strings.CutPrefix(o.configExtra, "@"); ok {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("-config-extra: %w", err)
		}
		o.configExtra = string(b)
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.rate <= 0:
		return nil, errors.New("-rate must be positive")
	case o.workers < 1:
		return nil, errors.New("-workers must be at least 1")
	case o.static && o.workers > o.partitions:
		return nil, errors.New("-static needs at least as many partitions as workers")
	}
	if o.linger == 0 {
		o.linger = o.ackWait + 5*time.Second
	}
	return o, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run returns the exit status: 0 no violation, 1 violations, 2 the suite could not run.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(stdout, "chaos: seed %d (rerun with -seed %d)\n", o.seed, o.seed)
	r, err := newRun(o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		return 2
	}
	defer r.c.stopAll()
	vs, err := r.execute(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "chaos:", err)
		fmt.Fprintf(stderr, "chaos: logs and stores are in %s\n", r.c.dir)
		return 2
	}
	if len(vs) == 0 && !o.keep && o.dir == "" {
		r.c.stopAll()
		_ = os.RemoveAll(r.c.dir)
	} else {
		fmt.Fprintf(stdout, "logs, stores and report.txt: %s\n", r.c.dir)
	}
	if len(vs) > 0 {
		return 1
	}
	return 0
}

// runState is one run of the suite.
type runState struct {
	o       *options
	out     io.Writer
	c       *cluster
	w       *Workload
	started time.Time
	rng     *rand.Rand
}

func newRun(o *options, out io.Writer) (*runState, error) {
	repo, err := rig.FindRepo("run the suite from the repository (make chaos)")
	if err != nil {
		return nil, err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "scimflow-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	natsPort, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	natsHTTP, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	c := &cluster{opt: o, dir: dir, repo: repo, log: out, natsPort: natsPort, natsHTTP: natsHTTP, bin: o.bin}
	return &runState{o: o, out: out, c: c, started: time.Now(), rng: rand.New(rand.NewPCG(o.seed, 0xc4a05))}, nil
}

func (r *runState) execute(ctx context.Context) ([]Violation, error) {
	o, c := r.o, r.c
	if c.bin == "" {
		c.bin = filepath.Join(c.dir, "bin")
		if err := rig.Build(ctx, c.repo, c.bin, r.out, rig.NATSServer, rig.Worker, rig.Simulator); err != nil {
			return nil, err
		}
	}
	w, err := Generate(WorkloadConfig{Seed: o.seed, Keys: o.keys, Events: o.events, RunID: fmt.Sprintf("%x", o.seed&0xffffff)})
	if err != nil {
		return nil, err
	}
	r.w = w
	fmt.Fprintf(r.out, "workload: %d events over %d keys (%d users, %d of them the never-deleted member pool; %d groups)\n",
		len(w.Order), len(w.Keys), w.Users, w.Pool, w.Group)

	if err := c.startNATS(ctx); err != nil {
		return nil, err
	}
	if err := c.checkSyncAlways(ctx); err != nil {
		return nil, err
	}
	if err := c.startSim(ctx); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.natsURL(), nats.Name("chaos suite"), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := (events.Topology{Partitions: o.partitions}).Ensure(ctx, js); err != nil {
		return nil, err
	}

	c.mu.Lock()
	for i := range o.workers {
		var parts []int
		if o.static {
			for p := i; p < o.partitions; p += o.workers {
				parts = append(parts, p)
			}
		}
		s, err := c.newSlot(parts)
		if err == nil {
			err = c.start(s)
		}
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	slots := append([]*slot(nil), c.slots...)
	c.mu.Unlock()
	for _, s := range slots {
		if err := c.readyz(ctx, s, 60*time.Second); err != nil {
			return nil, fmt.Errorf("worker %s not ready: %w (log: %s: %s)", s.name, err, s.logPath, lastLine(s.logPath))
		}
	}
	mode := "no partition configuration"
	if o.static {
		mode = "static partition splits"
	}
	fmt.Fprintf(r.out, "running: nats-server (pid %d), cyberark-sim (pid %d), %d workers (%s); target faults %.0f%% 5xx, %.0f%% 429, latency %s+%s\n",
		c.nats.PID(), c.simProc.PID(), o.workers, mode, 100*o.rate5xx, 100*o.rate429, o.latency, o.jitter)

	superCtx, stopSuper := context.WithCancel(ctx)
	defer stopSuper()
	go c.supervise(superCtx)

	// Publish, with the chaos alongside.
	pub := newPublisher(js, o.rate)
	pubStart := time.Now()
	planned := time.Duration(float64(len(w.Order)) / o.rate * float64(time.Second))
	chaosDone := make(chan error, 1)
	chaosCtx, stopChaos := context.WithCancel(ctx)
	defer stopChaos()
	go func() { chaosDone <- r.chaos(chaosCtx, pubStart, planned) }()
	progressCtx, stopProgress := context.WithCancel(ctx)
	go r.progress(progressCtx, js, pub, len(w.Order))
	pubErr := pub.run(ctx, w.Order)
	pubTime := time.Since(pubStart)
	if err := <-chaosDone; err != nil {
		stopProgress()
		return nil, fmt.Errorf("chaos: %w", err)
	}
	if pubErr != nil {
		stopProgress()
		return nil, fmt.Errorf("publishing: %w", pubErr)
	}
	c.logf("published %d events in %s (%d publish retries)", pub.count.Load(), pubTime.Round(time.Second), pub.retries.Load())

	// Wait for every final outcome, then keep watching for late writes.
	published := pub.publishedIDs()
	settleStart := time.Now()
	done, stalled := false, false
	lastFinal, lastChange := -1, time.Now()
	waitUntil := settleStart.Add(o.settle)
	if o.budget > 0 {
		// Leave time to linger, stop the workers and check.
		if b := r.started.Add(o.budget - o.linger - o.drainTimeout - 45*time.Second); b.Before(waitUntil) {
			waitUntil = b
		}
	}
	for time.Now().Before(waitUntil) && ctx.Err() == nil {
		counts, err := outcomeCounts(ctx, js)
		if err == nil {
			n := finalCount(counts)
			if n >= len(published) {
				done = true
				break
			}
			if n != lastFinal {
				lastFinal, lastChange = n, time.Now()
			}
		}
		if time.Since(lastChange) > o.stall {
			stalled = true
			break
		}
		sleep(ctx, time.Second)
	}
	settleTime := time.Since(settleStart)
	var waitEnd string
	switch {
	case done:
		waitEnd = "every event had a final outcome"
		c.logf("every event has a final outcome %s after publishing ended; watching for late writes for %s", settleTime.Round(time.Second), o.linger)
	case stalled:
		waitEnd = fmt.Sprintf("stalled: no new final outcome for %s, %d of %d had one", o.stall, lastFinal, len(published))
		c.logf("%s; collecting what there is", waitEnd)
	default:
		waitEnd = fmt.Sprintf("out of time (-settle %s, -budget %s) while final outcomes still arrived: %d of %d had one", o.settle, o.budget, lastFinal, len(published))
		c.logf("%s; collecting what there is", waitEnd)
	}
	sleep(ctx, o.linger)
	stopProgress()
	stopSuper()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	c.stopWorkers()

	// Collect the evidence.
	ev := &Evidence{Published: published, StreamMsgs: -1, OutOfTime: !done && !stalled, Starts: map[string][]time.Time{}}
	c.mu.Lock()
	for _, s := range c.slots {
		ev.Starts[s.name] = s.starts
	}
	c.mu.Unlock()
	if n, err := streamMsgs(ctx, js, events.EventsStream); err == nil {
		ev.StreamMsgs = n
	}
	if ev.Outcomes, err = readOutcomes(ctx, js); err != nil {
		return nil, fmt.Errorf("reading the outcome stream: %w", err)
	}
	if ev.Writes, _, ev.WritesMissed, err = c.sim().writes(ctx, 0); err != nil {
		return nil, fmt.Errorf("reading the write log: %w", err)
	}
	if ev.Users, ev.Groups, err = c.sim().state(ctx); err != nil {
		return nil, fmt.Errorf("reading the target's state: %w", err)
	}
	simStats, _ := c.sim().stats(ctx)
	if err := dumpEvidence(c.dir, ev); err != nil {
		c.logf("writing outcomes.jsonl and writes.jsonl: %v", err)
	}
	var logPaths []string
	for _, s := range c.slots {
		logPaths = append(logPaths, s.logPath)
	}
	lf := scanLogs(logPaths, o.ownership)

	vs, t := Check(w, ev)
	for _, crash := range lf.Crashes {
		vs = append([]Violation{{Kind: "crash", Text: crash}}, vs...)
	}
	for _, u := range c.counter.unexpected {
		if strings.Contains(u, "panic") {
			vs = append([]Violation{{Kind: "crash", Text: u}}, vs...)
		}
	}

	f := figures{
		seed: o.seed, events: len(published), keys: len(w.Keys), users: w.Users, groups: w.Group,
		c: c.counter, t: t, lf: lf, writes: len(ev.Writes), outcomes: len(ev.Outcomes),
		pubTime: pubTime, settleTime: settleTime, wall: time.Since(r.started), retries: pub.retries.Load(),
		workers: len(c.slots), static: o.static, waitEnd: waitEnd,
		sim5xx: simStats.Injected5xx, sim429: simStats.Rejected429, sim503: simStats.Outage503,
	}
	report := f.render() + renderViolations(vs, len(vs))
	_ = os.WriteFile(filepath.Join(c.dir, "report.txt"), []byte(report), 0o644)
	fmt.Fprint(r.out, f.render())
	fmt.Fprint(r.out, renderViolations(vs, o.show))
	return vs, nil
}

// dumpEvidence writes the outcomes and the write log into the work folder, one JSON object a
// line, for a post-mortem (jq 'select(.key.userName == "…")' outcomes.jsonl).
func dumpEvidence(dir string, ev *Evidence) error {
	for _, d := range []struct {
		name string
		n    int
		item func(int) any
	}{
		{"outcomes.jsonl", len(ev.Outcomes), func(i int) any { return ev.Outcomes[i] }},
		{"writes.jsonl", len(ev.Writes), func(i int) any { return ev.Writes[i] }},
	} {
		f, err := os.Create(filepath.Join(dir, d.name))
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		enc := json.NewEncoder(bw)
		for i := range d.n {
			if err := enc.Encode(d.item(i)); err != nil {
				f.Close()
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func finalCount(counts map[events.Status]int) int {
	n := 0
	for s, k := range counts {
		if s.Final() {
			n += k
		}
	}
	return n
}

// progress prints a line every 10 seconds.
func (r *runState) progress(ctx context.Context, js jetstream.JetStream, pub *publisher, total int) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		counts, err := outcomeCounts(ctx, js)
		r.c.mu.Lock()
		up := len(r.c.running())
		r.c.mu.Unlock()
		if err != nil {
			r.c.logf("published %d/%d; outcomes unknown (%v); %d workers up", pub.count.Load(), total, err, up)
			continue
		}
		r.c.logf("published %d/%d; final outcomes %d, deferred %d, dead-lettered %d; %d workers up",
			pub.count.Load(), total, finalCount(counts), counts[events.StatusDeferred], counts[events.StatusDeadLettered], up)
	}
}

// action is one scheduled act of chaos.
type action struct {
	at   time.Duration
	name string
	do   func(context.Context) error
}

// chaos runs the seeded timeline: kills every few seconds, the outage, adding and removing a
// worker, restarting the broker; all within the planned publishing time.
func (r *runState) chaos(ctx context.Context, start time.Time, planned time.Duration) error {
	o, c, rng := r.o, r.c, r.rng
	var acts []action
	at := func(frac float64) time.Duration { return time.Duration(frac * float64(planned)) }
	if o.killEvery > 0 {
		for t := at(0.05); ; {
			t += time.Duration((0.5 + rng.Float64()) * float64(o.killEvery))
			if t >= planned {
				break
			}
			acts = append(acts, action{t, "kill", func(ctx context.Context) error { c.killOne(ctx, rng); return nil }})
		}
	}
	if o.outage > 0 {
		acts = append(acts, action{at(0.30), "outage", func(ctx context.Context) error { c.outage(ctx); return nil }})
	}
	if o.scale {
		acts = append(acts, action{at(0.40), "add", func(ctx context.Context) error { c.addWorker(ctx, rng); return nil }})
		acts = append(acts, action{at(0.70), "remove", func(ctx context.Context) error { c.removeWorker(ctx, rng); return nil }})
	}
	if o.brokerRestart {
		acts = append(acts, action{at(0.55), "broker", func(ctx context.Context) error { return c.restartBroker(ctx, rng, o.brokerDown) }})
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].at < acts[j].at })
	for _, a := range acts {
		sleep(ctx, time.Until(start.Add(a.at)))
		if ctx.Err() != nil {
			return nil
		}
		if err := a.do(ctx); err != nil {
			return fmt.Errorf("%s: %w", a.name, err)
		}
	}
	return nil
}

// figures are what the suite prints.
type figures struct {
	seed                        uint64
	events, keys, users, groups int
	c                           counters
	t                           Tally
	lf                          LogFigures
	writes, outcomes            int
	pubTime, settleTime, wall   time.Duration
	retries                     int64
	workers                     int
	static                      bool
	waitEnd                     string
	sim5xx, sim429, sim503      int
}

func (f figures) render() string {
	var b strings.Builder
	row := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "  %-22s "+format+"\n", append([]any{name}, args...)...)
	}
	mode := "no partition configuration"
	if f.static {
		mode = "static partition splits"
	}
	b.WriteString("\nchaos figures\n")
	row("seed", "%d", f.seed)
	row("events", "%d published (%d publish retries)", f.events, f.retries)
	row("keys", "%d (%d users, %d groups)", f.keys, f.users, f.groups)
	row("workers", "%d replicas over the run (%s)", f.workers, mode)
	row("kills", "%d kill -9 of a worker (%d restarted by the suite, %d exits on their own)", f.c.kills, f.c.workerRestarts, f.c.unexpectedExits)
	row("restarts", "%d JetStream server kill -9 and restart", f.c.brokerRestarts)
	row("scaling", "%d added, %d removed by SIGTERM (%d did not exit within drainTimeout + 10s)", f.c.added, f.c.removed, f.c.sigtermSlow)
	row("target faults", "%d injected 5xx, %d 429, %d outage 503 (%d outage)", f.sim5xx, f.sim429, f.sim503, f.c.outages)
	own := "-"
	if f.lf.OwnershipMoves >= 0 {
		own = fmt.Sprint(f.lf.OwnershipMoves)
	}
	row("ownership moves", "%s from worker logs; %d worker changes along the partitions' outcomes", own, f.t.PartitionWorkerMoves)
	row("shared partitions", "%d times two workers worked one partition at once (a worker back within %s, another in between, no restart), on %d partitions", f.t.Overlaps, overlapWindow, f.t.OverlapPartitions)
	for _, e := range f.t.OverlapExamples {
		row("", "e.g. %s", e)
	}
	row("redeliveries", "%d events processed by more than one worker; %d outcomes with attempt > 1; %d recovered after a handover (logs)", f.t.MultiWorkerEvents, f.t.WindowRetries, f.lf.Recovered)
	row("parked/deferred", "%d deferred outcomes for %d events; %d held", f.t.ByStatus[events.StatusDeferred], f.t.DeferredEvents, f.t.ByStatus[events.StatusHeld])
	row("dead-lettered", "%d%s", f.t.ByStatus[events.StatusDeadLettered], byClass(f.t.DeadLetteredByClass))
	row("outcomes", "%d read (%d final: %d succeeded, %d skipped, %d rejected)", f.outcomes, f.t.Final, f.t.ByStatus[events.StatusSucceeded], f.t.ByStatus[events.StatusSkipped], f.t.ByStatus[events.StatusRejected])
	row("writes", "%d applied by the target", f.writes)
	row("worker log", "%d errors, %d drain deadlines passed, %d crashes", f.lf.Errors, f.lf.DrainDeadlines, len(f.lf.Crashes))
	row("wall time", "%s (publishing %s, then %s waiting for final outcomes)", f.wall.Round(time.Second), f.pubTime.Round(time.Second), f.settleTime.Round(time.Second))
	row("wait ended", "%s", f.waitEnd)
	return b.String()
}

// byClass renders dead letters by class: " (not_found 40, invalid 2)".
func byClass(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	classes := make([]string, 0, len(m))
	for c := range m {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for i, c := range classes {
		classes[i] = fmt.Sprintf("%s %d", c, m[c])
	}
	return " (" + strings.Join(classes, ", ") + ")"
}

func renderViolations(vs []Violation, show int) string {
	var b strings.Builder
	if len(vs) == 0 {
		b.WriteString("\nPASS: no violation\n")
		return b.String()
	}
	byKind := map[string]int{}
	var kinds []string
	for _, v := range vs {
		if byKind[v.Kind] == 0 {
			kinds = append(kinds, v.Kind)
		}
		byKind[v.Kind]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, byKind[k]))
	}
	fmt.Fprintf(&b, "\nFAIL: %d violations (%s)\n", len(vs), strings.Join(parts, ", "))
	// Show every kind: take from each kind in turn, in the order of the kinds.
	queues := map[string][]Violation{}
	for _, v := range vs {
		queues[v.Kind] = append(queues[v.Kind], v)
	}
	shown := 0
	for shown < min(show, len(vs)) {
		for _, k := range kinds {
			if len(queues[k]) > 0 && shown < show {
				fmt.Fprintf(&b, "  %s\n", queues[k][0])
				queues[k] = queues[k][1:]
				shown++
			}
		}
	}
	if shown < len(vs) {
		fmt.Fprintf(&b, "  … and %d more (report.txt lists them all)\n", len(vs)-shown)
	}
	return b.String()
}
