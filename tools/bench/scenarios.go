package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
)

// Consumers under test.
const (
	kindWorker = "worker"
	kindBare   = "bare loop"
)

// round is one drain of a prefilled workload by one kind of consumer.
type round struct {
	kind       string
	n          int
	d          drain
	rssCons    int64
	rssNATS    int64
	requests   map[string]float64 // SCIM requests per event by method (token requests left out)
	scim       float64            // SCIM requests per event
	scimOK     float64            // of them, not answered 429 (a 429 of the cap costs no latency)
	rejected   float64            // fraction of SCIM requests answered 429
	maxInFlt   int                // most SCIM requests in flight at the simulator
	limitMin   float64            // the worker's adaptive limit: lowest and last seen (-1: not read)
	limitLast  float64
	limitCount int
}

// startConsumer starts kind's process(es) in e.
func (e *env) startConsumer(ctx context.Context, kind string, workers int) error {
	if kind == kindBare {
		return e.startBare(ctx)
	}
	for i := range workers {
		if err := e.startWorker("w" + strconv.Itoa(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// runDrain runs one round: a fresh env (setup, when set, adjusts it), items prefilled, the
// consumer started, the drain measured, the simulator's counters read.
func (h *harness) runDrain(ctx context.Context, name, kind string, items []item, simArgs []string, setup func(e *env) error, sampleLimit bool) (*round, error) {
	e, m, done, err := h.startDrain(ctx, name, kind, items, simArgs, setup)
	if err != nil {
		return nil, err
	}
	defer done()
	r := &round{kind: kind, n: len(items), limitMin: -1, limitLast: -1}
	stopLimit := func() {}
	if kind == kindWorker && sampleLimit {
		stopLimit = e.sampleLimit(ctx, r)
	}
	r.d, err = e.waitDrain(ctx, m, len(items), 60*time.Second)
	stopLimit()
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", name, kind, err)
	}
	if r.rssCons, r.rssNATS, err = e.rss(); err != nil {
		return nil, err
	}
	st, err := e.simStats(ctx)
	if err != nil {
		return nil, err
	}
	r.requests, r.scim, r.rejected = perMethod(st, len(items))
	r.scimOK = r.scim - float64(st.Rejected429)/float64(len(items))
	if e.proxy != nil {
		total := r.scim*float64(len(items)) + float64(e.proxy.rejected.Load())
		r.rejected = (r.rejected*r.scim*float64(len(items)) + float64(e.proxy.rejected.Load())) / max(total, 1)
	}
	r.maxInFlt = st.MaxInFlight
	return r, nil
}

// startDrain readies one drain: a fresh env (setup, when set, adjusts it), items prefilled, a
// monitor of the outcomes, one consumer of kind started. done closes the monitor and the env.
func (h *harness) startDrain(ctx context.Context, name, kind string, items []item, simArgs []string, setup func(e *env) error) (e *env, m *monitor, done func(), err error) {
	if e, err = h.newEnv(ctx, name, simArgs); err != nil {
		return nil, nil, nil, err
	}
	fail := func(err error) (*env, *monitor, func(), error) {
		if m != nil {
			m.close()
		}
		e.close()
		return nil, nil, nil, err
	}
	if setup != nil {
		if err := setup(e); err != nil {
			return fail(err)
		}
	}
	if err := prefill(ctx, e.js, items); err != nil {
		return fail(err)
	}
	if m, err = newMonitor(e.nc); err != nil {
		return fail(err)
	}
	if err := e.startConsumer(ctx, kind, 1); err != nil {
		return fail(err)
	}
	return e, m, func() { m.close(); e.close() }, nil
}

// sampleLimit reads worker 1's adaptive limit every 250 ms until the returned stop is called.
func (e *env) sampleLimit(ctx context.Context, r *round) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			v := e.metric(ctx, 0, "scimflow_target_concurrency_limit")
			if v < 0 {
				continue
			}
			if r.limitMin < 0 || v < r.limitMin {
				r.limitMin = v
			}
			r.limitLast = v
			r.limitCount++
		}
	}()
	return func() { close(done); wg.Wait() }
}

// perMethod is the SCIM requests per event by method, in all, and the fraction answered 429.
func perMethod(st cyberarksim.Stats, n int) (map[string]float64, float64, float64) {
	by := map[string]float64{}
	total := 0
	for k, c := range st.Requests {
		method, path, _ := strings.Cut(k, " ")
		if !strings.HasPrefix(path, "/scim/") {
			continue // token requests
		}
		by[method] += float64(c) / float64(n)
		total += c
	}
	return by, float64(total) / float64(n), float64(st.Rejected429) / float64(max(total, 1))
}

// overhead runs the interleaved A/B rounds: worker, bare loop, worker, bare loop ...
func (h *harness) overhead(ctx context.Context) (workers, bares []*round, err error) {
	for i := range h.opt.pairs {
		for _, kind := range []string{kindWorker, kindBare} {
			items, err := mixed(fmt.Sprintf("ab%d", i), h.opt.users, h.opt.groups)
			if err != nil {
				return nil, nil, err
			}
			name := fmt.Sprintf("overhead-%d-%s", i+1, strings.ReplaceAll(kind, " ", ""))
			// Not scraped: reading /metrics four times a second would cost the worker CPU the bare
			// loop does not spend.
			r, err := h.runDrain(ctx, name, kind, items, nil, nil, false)
			if err != nil {
				return nil, nil, err
			}
			h.logf("%-28s %6d events  %7.0f events/s  consumer %5.0f µs/event  nats-server %5.0f µs/event  %4.1f NATS msgs in/event  %4.2f SCIM requests/event",
				name, r.n, r.d.rate(), r.d.consumerCPUPerEvent(), r.d.natsCPUPerEvent(), r.d.inMsgsPerEvent(), r.scim)
			if kind == kindWorker {
				workers = append(workers, r)
			} else {
				bares = append(bares, r)
			}
		}
	}
	return workers, bares, nil
}

// latencyRun is one latency-scaling measurement.
type latencyRun struct {
	label    string
	kind     string
	cap      int
	bound    float64 // events/s Little's law allows: cap / (latency per event)
	r        *round
	getDelay time.Duration // mixed-latency case only
}

func (l latencyRun) fraction() float64 { return l.r.d.rate() / l.bound }

// latency drains user creates against the simulator at each latency with a concurrency cap.
func (h *harness) latency(ctx context.Context, lat time.Duration, kind string) (latencyRun, error) {
	// About 15 s of work at the bound (a create is one POST), at most opt.latencyEvents.
	n := min(h.opt.latencyEvents, int(float64(h.opt.cap)/lat.Seconds()*15))
	items, err := creates("lat"+lat.String(), n)
	if err != nil {
		return latencyRun{}, err
	}
	name := fmt.Sprintf("latency-%s-%s", lat, strings.ReplaceAll(kind, " ", ""))
	// The bare loop has no adaptive limit: it is given the cap as a fixed one.
	r, err := h.runDrain(ctx, name, kind, items, []string{"--latency", lat.String(), "--max-concurrent", strconv.Itoa(h.opt.cap)}, func(e *env) error {
		e.bareArgs = []string{"-max-in-flight", strconv.Itoa(h.opt.cap)}
		return nil
	}, true)
	if err != nil {
		return latencyRun{}, err
	}
	run := latencyRun{label: lat.String(), kind: kind, cap: h.opt.cap, r: r, bound: float64(h.opt.cap) / (lat.Seconds() * r.scimOK)}
	h.logf("%-28s %6d events  %7.1f events/s = %.2f of the bound %.0f  %.2f%% 429  at most %d in flight  limit min %.0f last %.0f",
		name, n, r.d.rate(), run.fraction(), run.bound, 100*r.rejected, r.maxInFlt, r.limitMin, r.limitLast)
	return run, nil
}

// mixedLatency is the limiter's mixed case of issue 10: lookups at getDelay, writes at writeDelay,
// one cap, the mixed workload.
func (h *harness) mixedLatency(ctx context.Context, getDelay, writeDelay time.Duration) (latencyRun, error) {
	items, err := mixed("mix", h.opt.users/3, h.opt.groups)
	if err != nil {
		return latencyRun{}, err
	}
	var proxy *latencyProxy
	r, err := h.runDrain(ctx, "latency-mixed", kindWorker, items, nil, func(e *env) error {
		var err error
		proxy, err = newLatencyProxy(e.simBase, getDelay, writeDelay, h.opt.cap)
		e.proxy, e.target = proxy, proxy.url
		return err
	}, true)
	if err != nil {
		return latencyRun{}, err
	}
	perEvent := r.requests["GET"]*getDelay.Seconds() + (r.scim-r.requests["GET"])*writeDelay.Seconds()
	run := latencyRun{label: fmt.Sprintf("GET %s, writes %s", getDelay, writeDelay), kind: kindWorker, cap: h.opt.cap, r: r,
		bound: float64(h.opt.cap) / perEvent, getDelay: getDelay}
	h.logf("%-28s %6d events  %7.1f events/s = %.2f of the bound %.0f  %.2f%% 429  limit min %.0f last %.0f",
		"latency-mixed", len(items), r.d.rate(), run.fraction(), run.bound, 100*r.rejected, r.limitMin, r.limitLast)
	return run, nil
}

// e2eResult is the publish-to-outcome latency at a steady publish rate.
type e2eResult struct {
	kind          string
	writes        map[string][]bucket // the worker's scimflow_jetstream_write_seconds, by write
	rate          float64             // published per second
	n             int
	p50, p95, p99 time.Duration
	max           time.Duration
}

// endToEnd publishes the mixed workload at rate events/s for opt.e2eDuration to one running worker
// and measures, per event, the time from just before its publish to its final outcome.
// e2eWarmUp is how many creates a worker runs before the end-to-end measurement starts, and
// e2eLead how long the workload is published at the rate before the events measured: a worker
// at half load, not one catching up with the warm-up's burst (drained as fast as it goes) or
// meeting the workload's first kinds of event.
const (
	e2eWarmUp = 300
	e2eLead   = 2 * time.Second
)

func (h *harness) endToEnd(ctx context.Context, rate float64, kind string) (e2eResult, error) {
	lead, n := int(rate*e2eLead.Seconds()), int(rate*h.opt.e2eDuration.Seconds())
	items, err := mixed("e2e", lead+n, h.opt.groups)
	if err != nil {
		return e2eResult{}, err
	}
	items = items[:lead+n]
	e, err := h.newEnv(ctx, "end-to-end "+kind, nil)
	if err != nil {
		return e2eResult{}, err
	}
	defer e.close()
	m, err := newMonitor(e.nc)
	if err != nil {
		return e2eResult{}, err
	}
	defer m.close()
	if err := e.startConsumer(ctx, kind, 1); err != nil {
		return e2eResult{}, err
	}
	if err := e.waitWorkers(ctx); err != nil {
		return e2eResult{}, err
	}
	// Warm-up, not measured: the worker's first events also fetch its token, open its
	// connections and take its concurrency limit from its initial value; the target is the latency
	// of a worker that is running.
	warm, err := creates("e2e-warm", e2eWarmUp)
	if err != nil {
		return e2eResult{}, err
	}
	if err := prefill(ctx, e.js, warm); err != nil {
		return e2eResult{}, err
	}
	if _, err := e.waitDrain(ctx, m, len(warm), 60*time.Second); err != nil {
		return e2eResult{}, fmt.Errorf("end-to-end warm-up: %w", err)
	}
	sent := make([]time.Time, len(items))
	start := time.Now()
	for i, it := range items {
		if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		msg := nats.NewMsg(it.subject)
		msg.Data = it.raw
		sent[i] = time.Now()
		if _, err := e.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			return e2eResult{}, fmt.Errorf("publish %s: %w", it.id, err)
		}
	}
	achieved := float64(len(items)) / time.Since(start).Seconds()
	if _, err := e.waitDrain(ctx, m, len(warm)+len(items), 60*time.Second); err != nil {
		return e2eResult{}, fmt.Errorf("end-to-end: %w", err)
	}
	var writes map[string][]bucket
	if kind == kindWorker {
		// One scrape after the run: the worker's own account of its JetStream round trips.
		writes = e.histograms(ctx, 0, "scimflow_jetstream_write_seconds", "write")
	}
	lat := make([]time.Duration, len(items))
	work := make([]time.Duration, len(items))
	scim := make([]time.Duration, len(items))
	m.mu.Lock()
	for i, it := range items {
		lat[i] = m.finished[it.id].Sub(sent[i])
		work[i], scim[i] = m.handled[it.id].work, m.handled[it.id].scim
	}
	m.mu.Unlock()
	// Second by second of publishing, in the log: where the tail comes from (the lead's seconds
	// too, marked: they are not measured).
	for from := 0; from < len(items); {
		sec := int(sent[from].Sub(start) / time.Second)
		to := from
		for to < len(items) && int(sent[to].Sub(start)/time.Second) == sec {
			to++
		}
		part := slices.Clone(lat[from:to])
		w, sc := slices.Clone(work[from:to]), slices.Clone(scim[from:to])
		mark := ""
		if from < lead {
			mark = " (lead)"
		}
		h.logf("  second %2d%s: %5d events  p50 %s  p99 %s  max %s; of which at work p50 %s p99 %s, in SCIM calls p50 %s p99 %s", sec, mark, len(part),
			percentile(part, 50).Round(100*time.Microsecond), percentile(part, 99).Round(100*time.Microsecond), slices.Max(part).Round(100*time.Microsecond),
			percentile(w, 50).Round(100*time.Microsecond), percentile(w, 99).Round(100*time.Microsecond),
			percentile(sc, 50).Round(100*time.Microsecond), percentile(sc, 99).Round(100*time.Microsecond))
		from = to
	}
	lat = lat[lead:]
	res := e2eResult{kind: kind, writes: writes, rate: achieved, n: len(lat), p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99), max: slices.Max(lat)}
	h.logf("%-28s %6d events at %.0f/s  p50 %s  p95 %s  p99 %s  max %s", "end-to-end "+kind, res.n, res.rate,
		res.p50.Round(100*time.Microsecond), res.p95.Round(100*time.Microsecond), res.p99.Round(100*time.Microsecond), res.max.Round(time.Millisecond))
	return res, nil
}

// percentile is the nearest-rank percentile p of ds (ds is sorted in place).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	rank := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[min(max(rank, 0), len(ds)-1)]
}

// scaleRun is the steady rate of k workers against the latency-bound target.
type scaleRun struct {
	workers int
	rate    float64
	cpu     float64   // workers' CPU µs per event, summed
	owned   []float64 // partitions each worker ran when the window opened (-1: unknown)
}

// ownedText is "11+11+10 of 32".
func (s scaleRun) ownedText() string {
	parts := make([]string, len(s.owned))
	for i, o := range s.owned {
		parts[i] = strconv.FormatFloat(o, 'f', -1, 64)
	}
	return strings.Join(parts, "+") + " of " + strconv.Itoa(events.DefaultPartitions)
}

// scaleOut prefills a backlog of creates, starts k workers at once, waits until every one is ready
// and opt.scaleSettle more, then counts final outcomes over opt.scaleWindow.
func (h *harness) scaleOut(ctx context.Context, k int) (scaleRun, error) {
	items, err := creates(fmt.Sprintf("scale%d", k), h.opt.scaleEvents)
	if err != nil {
		return scaleRun{}, err
	}
	e, err := h.newEnv(ctx, fmt.Sprintf("scale-out-%d", k), []string{"--latency", h.opt.scaleLatency.String()})
	if err != nil {
		return scaleRun{}, err
	}
	defer e.close()
	if err := prefill(ctx, e.js, items); err != nil {
		return scaleRun{}, err
	}
	m, err := newMonitor(e.nc)
	if err != nil {
		return scaleRun{}, err
	}
	defer m.close()
	if err := e.startConsumer(ctx, kindWorker, k); err != nil {
		return scaleRun{}, err
	}
	if err := e.waitWorkers(ctx); err != nil {
		return scaleRun{}, err
	}
	time.Sleep(h.opt.scaleSettle)
	// What each worker runs when the window opens: under a deep backlog a partition handed over
	// stays with its old owner until that one has handed back what it pulled, so the sum can
	// exceed the partitions for a while (docs/benchmarks.md).
	owned := e.partitionsOwned(ctx, k)
	limits := func() string {
		var parts []string
		for i := range k {
			parts = append(parts, fmt.Sprintf("%.0f/%.0f", e.metric(ctx, i, "scimflow_target_requests_in_flight"), e.metric(ctx, i, "scimflow_target_concurrency_limit")))
		}
		return strings.Join(parts, " ")
	}
	limitsFrom := limits()
	from, err := e.snapshot(ctx, m)
	if err != nil {
		return scaleRun{}, err
	}
	time.Sleep(h.opt.scaleWindow)
	to, err := e.snapshot(ctx, m)
	if err != nil {
		return scaleRun{}, err
	}
	h.logf("%-28s requests in flight / limit per worker: %s at the start, %s at the end", fmt.Sprintf("scale-out-%d", k), limitsFrom, limits())
	if to.done >= len(items) {
		return scaleRun{}, fmt.Errorf("scale-out with %d workers: the backlog of %d ran out within the window; raise -scale-events", k, len(items))
	}
	d := drain{from: from, to: to}
	res := scaleRun{workers: k, rate: d.rate(), cpu: d.consumerCPUPerEvent(), owned: owned}
	h.logf("%-28s %6d events in %s  %7.1f events/s  partitions run at the start: %s",
		fmt.Sprintf("scale-out-%d", k), d.events(), d.elapsed().Round(time.Millisecond), res.rate, res.ownedText())
	return res, nil
}
