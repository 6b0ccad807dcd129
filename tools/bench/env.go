package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/rig"
)

// env is one measurement's system: a JetStream server (its own process, file store, every write
// fsynced), the simulator (its own process), optionally a latency proxy in front of it, and the
// consumers under test. Each measurement gets a fresh one, so no stream, consumer or cache state
// carries over from the one before.
type env struct {
	h        *harness
	dir      string
	natsPort int
	natsHTTP int
	nats     *proc
	sim      *proc
	simBase  string // the simulator
	target   string // what the consumers talk to: the simulator, or the proxy in front of it
	proxy    *latencyProxy
	nc       *nats.Conn
	js       jetstream.JetStream

	consumers []*proc
	httpPorts []int    // per worker: its /readyz, /metrics
	bareArgs  []string // extra flags of the bare loop
	workerBin string   // the worker's binary when not the ordinary build (the ablation part)
	workerEnv []string // more environment of the worker
}

func (h *harness) newEnv(ctx context.Context, name string, simArgs []string) (*env, error) {
	e := &env{h: h, dir: filepath.Join(h.dir, name)}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if e.natsPort, err = rig.FreePort(); err != nil {
		return nil, err
	}
	if e.natsHTTP, err = rig.FreePort(); err != nil {
		return nil, err
	}
	conf := filepath.Join(e.dir, "nats.conf")
	text := fmt.Sprintf("# make bench: JetStream file store, every write fsynced before it is acknowledged.\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n",
		e.natsPort, e.natsHTTP, filepath.Join(e.dir, "jetstream"))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	if e.nats, err = startProc("nats-server", filepath.Join(h.bin, "nats-server"), []string{"-c", conf}, filepath.Join(e.dir, "nats.log"), nil); err != nil {
		return nil, err
	}
	if err := rig.WaitHTTP(ctx, e.natsMon()+"/healthz?js-enabled-only=true", e.nats.ExitErr, time.Minute); err != nil {
		e.close()
		return nil, err
	}
	simPort, err := rig.FreePort()
	if err != nil {
		e.close()
		return nil, err
	}
	args := append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(simPort), "--log-level", "warn", "--seed", "7"}, simArgs...)
	if e.sim, err = startProc("cyberark-sim", filepath.Join(h.bin, "cyberark-sim"), args, filepath.Join(e.dir, "sim.log"), nil); err != nil {
		e.close()
		return nil, err
	}
	e.simBase = "http://127.0.0.1:" + strconv.Itoa(simPort)
	e.target = e.simBase
	if err := rig.WaitHTTP(ctx, e.simBase+"/admin/stats", e.sim.ExitErr, time.Minute); err != nil {
		e.close()
		return nil, err
	}
	if e.nc, err = nats.Connect("nats://127.0.0.1:"+strconv.Itoa(e.natsPort), nats.Name("bench-harness")); err != nil {
		e.close()
		return nil, fmt.Errorf("connect to the JetStream server: %w", err)
	}
	if e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(2000)); err != nil {
		e.close()
		return nil, err
	}
	// The streams as the worker creates them, so that the bare loop finds the same ones.
	if err := (events.Topology{}).Ensure(ctx, e.js); err != nil {
		e.close()
		return nil, fmt.Errorf("create the streams: %w", err)
	}
	return e, nil
}

func (e *env) natsMon() string { return "http://127.0.0.1:" + strconv.Itoa(e.natsHTTP) }

// startWorker starts one `worker run`; it does not wait for it.
func (e *env) startWorker(name string) error {
	port, err := rig.FreePort()
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# make bench worker %[1]s (written by tools/bench)
nats:
  url: nats://127.0.0.1:%[2]d
target:
  profile: cyberark
  baseURI: %[3]s/scim/v2
  auth:
    mode: oauth2
    oauth2:
      grantType: client_credentials
      tokenURL: %[3]s/oauth2/token/scimflow
      clientID: scimflow-client
      clientSecret: scimflow-secret
      scopes: [scim]
      tokenCache: always
  testConnection: false
model: %[4]s
worker:
  name: %[1]s
http:
  listen: 127.0.0.1:%[5]d
log:
  level: warn
  format: json
`, name, e.natsPort, e.target, filepath.Join(e.h.repo, "deploy/examples/models/cyberark.yaml"), port)
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	bin := filepath.Join(e.h.bin, rig.Worker.Name)
	if e.workerBin != "" {
		bin = e.workerBin
	}
	p, err := rig.Start(name, bin, []string{"run", "--config", path}, e.workerEnv, filepath.Join(e.dir, name+".log"), nil)
	if err != nil {
		return err
	}
	e.consumers = append(e.consumers, p)
	e.httpPorts = append(e.httpPorts, port)
	return nil
}

// waitWorkers waits until every worker answers /readyz.
func (e *env) waitWorkers(ctx context.Context) error {
	for i, port := range e.httpPorts {
		if err := rig.WaitHTTP(ctx, "http://127.0.0.1:"+strconv.Itoa(port)+"/readyz", e.consumers[i].ExitErr, 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// startBare starts the bare loop and waits for its "ready" line.
func (e *env) startBare(ctx context.Context) error {
	pr, pw := io.Pipe()
	p, err := startProc("bareloop", filepath.Join(e.h.bin, "bareloop"), append([]string{"-nats", "nats://127.0.0.1:" + strconv.Itoa(e.natsPort), "-target", e.target}, e.bareArgs...),
		filepath.Join(e.dir, "bareloop.log"), pw)
	if err != nil {
		return err
	}
	e.consumers = append(e.consumers, p)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			if sc.Text() == "ready" && !signalled {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() { <-p.Done(); pw.Close() }()
	select {
	case <-ready:
		return nil
	case <-p.Done():
		return fmt.Errorf("bareloop exited (%v) before it was ready; its log: %s", p.Err(), p.Log)
	case <-time.After(time.Minute):
		return fmt.Errorf("bareloop not ready within a minute; its log: %s", p.Log)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// varz are the JetStream server's message counters.
type varz struct {
	InMsgs  int64 `json:"in_msgs"`
	OutMsgs int64 `json:"out_msgs"`
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, clip(string(body), 200))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

func (e *env) varz(ctx context.Context) (varz, error) {
	var v varz
	err := getJSON(ctx, e.natsMon()+"/varz", &v)
	return v, err
}

func (e *env) simStats(ctx context.Context) (cyberarksim.Stats, error) {
	var st cyberarksim.Stats
	err := getJSON(ctx, e.simBase+"/admin/stats", &st)
	return st, err
}

// metric reads one unlabelled gauge from worker i's /metrics (-1 when absent).
func (e *env) metric(ctx context.Context, i int, name string) float64 {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(e.httpPorts[i])+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// histograms reads the buckets of one histogram family, labelled by label, from worker i's
// /metrics: for each label value, the cumulative counts by upper bound, in order.
func (e *env) histograms(ctx context.Context, i int, name, label string) map[string][]bucket {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(e.httpPorts[i])+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string][]bucket{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+"_bucket{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var key, le string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case label:
				key = v
			case "le":
				le = v
			}
		}
		upper, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err1 == nil && err2 == nil {
			out[key] = append(out[key], bucket{upper, n})
		}
	}
	return out
}

// bucket is one cumulative bucket of a histogram.
type bucket struct{ upper, count float64 }

// quantile is q of a histogram's buckets as Prometheus's histogram_quantile computes it (linear
// within the bucket; the highest finite bound when it falls in +Inf).
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].count == 0 {
		return 0
	}
	rank := q * bs[len(bs)-1].count
	lower, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.upper, 1) {
				return lower
			}
			if b.count == below {
				return b.upper
			}
			return lower + (b.upper-lower)*(rank-below)/(b.count-below)
		}
		lower, below = b.upper, b.count
	}
	return lower
}

// partitionsOwned is scimflow_partitions_owned of each of the k workers.
func (e *env) partitionsOwned(ctx context.Context, k int) []float64 {
	out := make([]float64, k)
	for i := range k {
		out[i] = e.metric(ctx, i, "scimflow_partitions_owned")
	}
	return out
}

// close stops everything, consumers first.
func (e *env) close() {
	for _, p := range e.consumers {
		p.Stop(15 * time.Second)
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.proxy != nil {
		e.proxy.close()
	}
	e.sim.Stop(10 * time.Second)
	e.nats.Stop(10 * time.Second)
	if !e.h.keep {
		_ = os.RemoveAll(e.dir)
	}
}
