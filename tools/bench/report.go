package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/rig"
)

// report collects what was measured and renders it.
type report struct {
	opt      *options
	micro    []microResult
	workers  []*round
	bares    []*round
	census   []censusResult
	ablation []*ablationResult
	bigGroup *bigGroupRun
	latency  []latencyRun
	mixed    *latencyRun
	e2e      []e2eResult // the worker's, then the bare loop's at the same rate
	e2eGuess bool
	e2eGiven bool // -e2e-rate
	scale    []scaleRun
	soak     *soakRun
	elapsed  time.Duration
	machine  machineInfo
}

// row is one line of the table.
type row struct {
	section, measure, figure, target, verdict string
}

func median(rs []*round, f func(*round) float64) float64 {
	vs := make([]float64, len(rs))
	for i, r := range rs {
		vs[i] = f(r)
	}
	return rig.Median(vs)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "short"
}

func mib(b float64) float64 { return b / (1 << 20) }

// rows is the table: each target of issue 10 with its figure and verdict, and the figures that
// have no target.
func (r *report) rows() []row {
	var rows []row
	add := func(section, measure, figure, target, v string) {
		rows = append(rows, row{section, measure, figure, target, v})
	}
	if len(r.workers) > 0 && len(r.bares) > 0 {
		sec := fmt.Sprintf("overhead, 0 ms (%d events, median of %d rounds each)", r.workers[0].n, len(r.workers))
		rate := func(x *round) float64 { return x.d.rate() }
		cpu := func(x *round) float64 { return x.d.consumerCPUPerEvent() }
		natsCPU := func(x *round) float64 { return x.d.natsCPUPerEvent() }
		msgs := func(x *round) float64 { return x.d.inMsgsPerEvent() }
		rssC := func(x *round) float64 { return mib(float64(x.rssCons)) }
		rssN := func(x *round) float64 { return mib(float64(x.rssNATS)) }
		wr, br := median(r.workers, rate), median(r.bares, rate)
		add(sec, "events/s", fmt.Sprintf("worker %.0f, bare loop %.0f, ratio %.2f", wr, br, wr/br), "worker ≥ 0.9 × bare", verdict(wr >= 0.9*br))
		wc, bc := median(r.workers, cpu), median(r.bares, cpu)
		add(sec, "consumer CPU per event", fmt.Sprintf("worker %.0f µs, bare loop %.0f µs, ratio %.2f", wc, bc, wc/bc), "worker ≤ 1.5 × bare", verdict(wc <= 1.5*bc))
		add(sec, "nats-server CPU per event", fmt.Sprintf("worker %.0f µs, bare loop %.0f µs", median(r.workers, natsCPU), median(r.bares, natsCPU)), "", "")
		wm, bm := median(r.workers, msgs), median(r.bares, msgs)
		add(sec, "NATS messages in per event", fmt.Sprintf("worker %.2f, bare loop %.2f", wm, bm), "worker ≤ bare + 1", verdict(wm <= bm+1))
		add(sec, "peak RSS", fmt.Sprintf("worker %.0f MiB, bare loop %.0f MiB; nats-server %.0f / %.0f MiB", median(r.workers, rssC), median(r.bares, rssC),
			median(r.workers, rssN), median(r.bares, rssN)), "", "")
		add(sec, "SCIM requests per event", fmt.Sprintf("worker %s, bare loop %s", methods(r.workers), methods(r.bares)), "", "")
		add(sec, "one worker, end to end", fmt.Sprintf("%.0f events/s", wr), "≥ 2,000 events/s", verdict(wr >= 2000))
	}
	for _, c := range r.census {
		add("NATS messages per event, by subject", c.kind, fmt.Sprintf("%s (in_msgs %.2f)", c.summary(), c.inMsgs), "", "")
	}
	rows = append(rows, ablationRows(r.ablation)...)
	rows = append(rows, bigGroupRows(r.bigGroup, r.workers, r.bares)...)
	for _, l := range r.latency {
		sec := fmt.Sprintf("latency scaling (cap %d, creates)", l.cap)
		fig := fmt.Sprintf("%s: %.0f events/s of %.0f = %.2f; %.2f%% 429; %d in flight at most", l.kind, l.r.d.rate(), l.bound, l.fraction(), 100*l.r.rejected, l.r.maxInFlt)
		if l.r.limitMin >= 0 {
			fig += fmt.Sprintf("; limit min %.0f, last %.0f", l.r.limitMin, l.r.limitLast)
		}
		target, v := "", ""
		if l.kind == kindWorker && (l.label == "50ms" || l.label == "200ms") {
			target, v = "≥ 0.9 of the bound, < 1% 429", verdict(l.fraction() >= 0.9 && l.r.rejected < 0.01)
		}
		add(sec, l.label, fig, target, v)
	}
	if m := r.mixed; m != nil {
		add(fmt.Sprintf("mixed latencies (cap %d, mixed workload)", m.cap), m.label,
			fmt.Sprintf("worker: %.0f events/s of %.0f = %.2f; %.2f%% 429; limit min %.0f, last %.0f", m.r.d.rate(), m.bound, m.fraction(), 100*m.r.rejected, m.r.limitMin, m.r.limitLast),
			"", "")
	}
	for _, e := range r.e2e {
		sec := "end-to-end latency, 0 ms"
		load := fmt.Sprintf("%.0f events/s (half the overhead rounds' worker rate)", e.rate)
		switch {
		case r.e2eGiven:
			load = fmt.Sprintf("%.0f events/s (-e2e-rate)", e.rate)
		case r.e2eGuess:
			load = fmt.Sprintf("%.0f events/s (half of a guessed 1,000: the overhead rounds did not run)", e.rate)
		}
		figure := fmt.Sprintf("p50 %s, p95 %s, p99 %s, max %s (%d events, after %d warm-up creates and %s at the same rate)", ms(e.p50), ms(e.p95), ms(e.p99), ms(e.max), e.n, e2eWarmUp, e2eLead)
		if e.kind == kindWorker {
			add(sec, "publish → outcome, "+load, "worker: "+figure, "p99 < 50 ms", verdict(e.p99 < 50*time.Millisecond))
			var parts []string
			for _, w := range []string{"applied", "outcome", "ack", "idcache"} {
				if bs := e.writes[w]; len(bs) > 0 {
					parts = append(parts, fmt.Sprintf("%s p50 %s, p99 %s", w, ms(secs(quantile(.5, bs))), ms(secs(quantile(.99, bs)))))
				}
			}
			if len(parts) > 0 {
				add(sec, "the worker's JetStream round trips (its scimflow_jetstream_write_seconds, warm-up included)", strings.Join(parts, "; "), "", "")
			}
			continue
		}
		add(sec, "publish → outcome, same rate", e.kind+": "+figure, "", "")
	}
	if len(r.scale) > 0 {
		sec := fmt.Sprintf("scale-out (%s latency, no cap, creates)", r.opt.scaleLatency)
		base := r.scale[0].rate
		for _, s := range r.scale {
			target, v := "", ""
			if s.workers == 3 {
				target, v = "≥ 2.5 × one worker", verdict(s.rate >= 2.5*base)
			}
			add(sec, fmt.Sprintf("%d worker(s)", s.workers), fmt.Sprintf("%.0f events/s, %.2f × one worker; %.0f µs CPU per event; partitions run when counting started: %s", s.rate, s.rate/base, s.cpu, s.ownedText()), target, v)
		}
	}
	rows = append(rows, soakRows(r.soak)...)
	for _, m := range r.micro {
		fig := fmt.Sprintf("%s/op, %.0f B/op, %.0f allocs/op", nsText(m.nsPerOp), m.bPerOp, m.allocs)
		if len(m.extra) > 0 {
			fig += "; " + strings.Join(m.extra, ", ")
		}
		add("micro-benchmarks", strings.TrimPrefix(m.pkg, "github.com/scimflow/scimflow/")+" "+m.name, fig, "", "")
	}
	return rows
}

func methods(rs []*round) string {
	var ms []string
	for m := range rs[0].requests {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s %.2f", m, median(rs, func(r *round) float64 { return r.requests[m] }))
	}
	return strings.Join(parts, " + ")
}

// secs is a duration from seconds.
func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func nsText(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.1f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// short lists the targets that are short.
func (r *report) short() []string {
	var out []string
	for _, x := range r.rows() {
		if x.verdict == "short" {
			out = append(out, x.section+", "+x.measure+": "+x.figure)
		}
	}
	return out
}

// table renders the rows as one Markdown table (readable on a terminal too).
func (r *report) table() string {
	var b strings.Builder
	b.WriteString("| part | measure | figure | target | verdict |\n| --- | --- | --- | --- | --- |\n")
	for _, x := range r.rows() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", x.section, x.measure, x.figure, x.target, x.verdict)
	}
	return b.String()
}

// machineInfo says where and on what the figures were measured.
type machineInfo struct {
	cpu      string
	cores    int
	memory   string
	kernel   string
	goVer    string
	commit   string
	measured time.Time
}

func machine(repo string) machineInfo {
	m := machineInfo{cpu: "unknown", memory: "unknown", kernel: "unknown", goVer: runtime.Version(), commit: "unknown", measured: time.Now().UTC()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				m.cpu = strings.TrimSpace(v)
			case "processor":
				m.cores++
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
					m.memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "-C", repo, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.commit += " with uncommitted changes"
		}
	}
	return m
}

// The generated part of docs/benchmarks.md lies between these lines; what is outside them is
// written by people and kept.
const (
	beginMark = "<!-- make bench: generated from here to the end mark; edit outside it -->"
	endMark   = "<!-- make bench: end of the generated part -->"
)

// generated renders the generated part of the document, marks included.
func (r *report) generated() string {
	var b strings.Builder
	m := r.machine
	b.WriteString(beginMark + "\n")
	fmt.Fprintf(&b, "Measured %s at commit %s on %d × %s, %s memory, Linux %s, %s; the run took %s.\n\n",
		m.measured.Format("2006-01-02 15:04 UTC"), m.commit, m.cores, m.cpu, m.memory, m.kernel, m.goVer, r.elapsed.Round(time.Second))
	b.WriteString(r.table())
	if len(r.workers) > 0 {
		b.WriteString("\nEvery overhead round, in the order run (each on a fresh JetStream server and simulator):\n\n")
		b.WriteString("| round | consumer | events | events/s | consumer µs/event | nats-server µs/event | NATS msgs in/event | peak RSS consumer | SCIM requests/event |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for i := range r.workers {
			for _, x := range []*round{r.workers[i], r.bares[i]} {
				fmt.Fprintf(&b, "| %d | %s | %d | %.0f | %.0f | %.0f | %.2f | %.0f MiB | %.2f |\n", i+1, x.kind, x.n, x.d.rate(), x.d.consumerCPUPerEvent(),
					x.d.natsCPUPerEvent(), x.d.inMsgsPerEvent(), mib(float64(x.rssCons)), x.scim)
			}
		}
	}
	b.WriteString(endMark + "\n")
	return b.String()
}

// writeDocs replaces the generated part of path (creating the file when it does not exist).
func (r *report) writeDocs(path string) error {
	gen := r.generated()
	old, err := os.ReadFile(path)
	var text string
	switch {
	case os.IsNotExist(err):
		text = "# Benchmarks\n\n`make bench` rewrites the part between the marks below.\n\n" + gen
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	default:
		text, err = replaceGenerated(string(old), gen)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// replaceGenerated puts gen in place of the marked part of doc, or at its end when it has none.
func replaceGenerated(doc, gen string) (string, error) {
	i := strings.Index(doc, beginMark)
	j := strings.Index(doc, endMark)
	switch {
	case i < 0 && j < 0:
		return strings.TrimRight(doc, "\n") + "\n\n" + gen, nil
	case i < 0 || j < i:
		return "", fmt.Errorf("the generated part's marks are broken (begin at %d, end at %d): restore them or remove both", i, j)
	}
	return doc[:i] + gen + strings.TrimPrefix(doc[j+len(endMark):], "\n"), nil
}
