package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/rig"
)

// cluster is the system under test, as real processes: one JetStream server, one simulator,
// and the worker replicas.
type cluster struct {
	opt  *options
	dir  string // work folder: configs, stores, logs
	bin  string // binaries
	repo string
	log  io.Writer

	natsPort, natsHTTP int
	nats               *proc
	simBase            string
	simProc            *proc

	mu      sync.Mutex
	slots   []*slot
	counter counters
}

// slot is one worker replica: its name, config and log stay the same across restarts.
type slot struct {
	name       string
	cfgPath    string
	logPath    string
	httpPort   int
	partitions []int // static mode only
	want       bool  // should be running
	p          *proc
	starts     []time.Time // when each of its processes started
	// notBefore delays the restart of a worker that keeps exiting on its own.
	notBefore time.Time
	exits     int // consecutive exits on its own
}

// counters are the chaos figures.
type counters struct {
	kills, workerRestarts, brokerRestarts, added, removed, unexpectedExits int
	outages                                                                int
	sigtermSlow                                                            int // SIGTERM'd workers that did not exit within drainTimeout + 10 s
	unexpected                                                             []string
}

func (c *cluster) natsURL() string { return "nats://127.0.0.1:" + strconv.Itoa(c.natsPort) }

func (c *cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// startNATS starts (or restarts, on the same store and port) the JetStream server.
func (c *cluster) startNATS(ctx context.Context) error {
	conf := filepath.Join(c.dir, "nats.conf")
	if _, err := os.Stat(conf); err != nil {
		text := fmt.Sprintf(`# chaos suite broker: JetStream file store, every write fsynced before it is acknowledged.
server_name: chaos
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 8MB
jetstream {
  store_dir: %q
  sync_interval: always
}
`, c.natsPort, c.natsHTTP, filepath.Join(c.dir, "jetstream"))
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return err
		}
	}
	p, err := startProc("nats-server", filepath.Join(c.bin, "nats-server"), []string{"-c", conf}, nil, filepath.Join(c.dir, "nats.log"))
	if err != nil {
		return err
	}
	c.nats = p
	base := "http://127.0.0.1:" + strconv.Itoa(c.natsHTTP)
	if err := rig.WaitHTTP(ctx, base+"/healthz?js-enabled-only=true", p.exitErr, 60*time.Second); err != nil {
		return fmt.Errorf("nats-server: %w (log: %s)", err, filepath.Join(c.dir, "nats.log"))
	}
	return nil
}

// checkSyncAlways reads the server's JetStream configuration: the suite's promise is durability.
func (c *cluster) checkSyncAlways(ctx context.Context) error {
	var v struct {
		JetStream struct {
			Config struct {
				SyncAlways bool `json:"sync_always"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	if err := (sim{base: "http://127.0.0.1:" + strconv.Itoa(c.natsHTTP)}).getJSON(ctx, "/varz", &v); err != nil {
		return err
	}
	if !v.JetStream.Config.SyncAlways {
		return fmt.Errorf("the JetStream server does not report sync_always: the test would not be about durable acknowledgements")
	}
	return nil
}

func (c *cluster) startSim(ctx context.Context) error {
	port, err := rig.FreePort()
	if err != nil {
		return err
	}
	o := c.opt
	args := []string{
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--seed", strconv.FormatUint(o.seed|1, 10),
		"--latency", o.latency.String(), "--jitter", o.jitter.String(),
		"--log-level", "warn",
	}
	p, err := startProc("cyberark-sim", filepath.Join(c.bin, "cyberark-sim"), args, nil, filepath.Join(c.dir, "sim.log"))
	if err != nil {
		return err
	}
	c.simProc = p
	c.simBase = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := rig.WaitHTTP(ctx, c.simBase+"/admin/faults", p.exitErr, 30*time.Second); err != nil {
		return fmt.Errorf("cyberark-sim: %w", err)
	}
	return c.sim().setFaults(ctx, c.faults(time.Time{}))
}

func (c *cluster) sim() sim { return sim{base: c.simBase} }

// newSlot adds a worker replica (not started) and writes its configuration.
func (c *cluster) newSlot(partitions []int) (*slot, error) {
	port, err := rig.FreePort()
	if err != nil {
		return nil, err
	}
	s := &slot{
		name:       "w" + strconv.Itoa(len(c.slots)+1),
		httpPort:   port,
		partitions: partitions,
	}
	s.cfgPath = filepath.Join(c.dir, s.name+".yaml")
	s.logPath = filepath.Join(c.dir, s.name+".log")
	c.slots = append(c.slots, s)
	return s, c.writeConfig(s)
}

func (c *cluster) writeConfig(s *slot) error {
	o := c.opt
	var parts string
	if o.static {
		ps := make([]string, len(s.partitions))
		for i, p := range s.partitions {
			ps[i] = strconv.Itoa(p)
		}
		parts = "\n  partitions: [" + strings.Join(ps, ", ") + "]"
	}
	var lanes string
	if o.lanes > 0 {
		lanes = "\n  lanes: " + strconv.Itoa(o.lanes)
	}
	extra := o.configExtra
	if extra != "" {
		extra = "# -config-extra:\n" + strings.TrimRight(extra, "\n") + "\n"
	}
	text := fmt.Sprintf(`# chaos suite worker %[1]s (written by chaos/cluster.go)
nats:
  url: %[2]s
  partitions: %[3]d
target:
  profile: cyberark
  baseURI: %[4]s/scim/v2
  entityRoot: ""
  queryAddress: ""
  rootResourcePath: $.Resources[0]
  auth:
    mode: oauth2
    oauth2:
      grantType: client_credentials
      tokenURL: %[4]s/oauth2/token/scimflow
      revokeURL: %[4]s/oauth2/revoke/scimflow
      clientID: scimflow-client
      clientSecret: scimflow-secret
      scopes: [scim]
      tokenCache: always
  contentType: application/scim+json
  accept: application/scim+json
  testConnection: false
  timeout: 10s
model: %[5]s
syncWindow:
  schedule: %[6]q
  maxWindows: %[7]d
worker:
  name: %[1]s
  ackWait: %[8]s
  drainTimeout: %[9]s%[10]s%[11]s
# The suite checks delivery, not the deletion guard (which has its own tests): its deletes are
# never held for an operator.
deletionGuard:
  maxDeletes: 0
  maxPercent: 0
http:
  listen: 127.0.0.1:%[12]d
log:
  level: info
  format: json
%[13]s`, s.name, c.natsURL(), o.partitions, c.simBase, filepath.Join(c.repo, "deploy/examples/models/cyberark.yaml"),
		o.window, o.maxWindows, o.ackWait, o.drainTimeout, lanes, parts, s.httpPort, extra)
	return os.WriteFile(s.cfgPath, []byte(text), 0o644)
}

// start starts s's worker process. The caller holds c.mu.
func (c *cluster) start(s *slot) error {
	if s.p != nil && !s.p.Exited() {
		return fmt.Errorf("%s is running", s.name)
	}
	if err := c.writeConfig(s); err != nil {
		return err
	}
	p, err := startProc(s.name, filepath.Join(c.bin, "worker"), []string{"run", "--config", s.cfgPath}, nil, s.logPath)
	if err != nil {
		return err
	}
	s.p, s.want = p, true
	s.starts = append(s.starts, p.Started)
	return nil
}

func (c *cluster) readyz(ctx context.Context, s *slot, timeout time.Duration) error {
	return rig.WaitHTTP(ctx, "http://127.0.0.1:"+strconv.Itoa(s.httpPort)+"/readyz", s.p.exitErr, timeout)
}

// running lists the slots whose worker runs. The caller holds c.mu.
func (c *cluster) running() []*slot {
	var out []*slot
	for _, s := range c.slots {
		if s.want && s.p != nil && !s.p.Exited() {
			out = append(out, s)
		}
	}
	return out
}

// supervise restarts a worker that exited on its own (as a process supervisor would), and
// records it. It returns when ctx ends.
func (c *cluster) supervise(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		for _, s := range c.slots {
			if !s.want || s.p == nil || !s.p.Exited() || s.p.wasExpected() || time.Now().Before(s.notBefore) {
				continue
			}
			c.counter.unexpectedExits++
			what := fmt.Sprintf("%s exited on its own (%v): last log line %q", s.name, s.p.Err(), lastLine(s.logPath))
			c.counter.unexpected = append(c.counter.unexpected, what)
			// Back off when it keeps exiting: 0.5 s, 1 s, 2 s ... 8 s.
			if time.Since(s.p.Started) < 10*time.Second {
				s.exits++
			} else {
				s.exits = 0
			}
			s.notBefore = time.Now().Add(min(250*time.Millisecond<<min(s.exits, 5), 8*time.Second))
			c.logf("%s; restarting it", what)
			if err := c.start(s); err != nil {
				c.logf("restarting %s: %v", s.name, err)
			}
		}
		c.mu.Unlock()
	}
}

// lastLine is the last line of a worker's own output in its log.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if !strings.HasPrefix(lines[i], "=== ") {
			return clip(lines[i], 300)
		}
	}
	return ""
}

// killOne kills a random running worker with SIGKILL and starts it again after a pause.
func (c *cluster) killOne(ctx context.Context, rng *rand.Rand) {
	c.mu.Lock()
	run := c.running()
	if len(run) == 0 {
		c.mu.Unlock()
		return
	}
	s := run[rng.IntN(len(run))]
	s.p.kill9()
	c.counter.kills++
	c.mu.Unlock()
	pause := time.Duration(300+rng.IntN(1700)) * time.Millisecond
	c.logf("kill -9 %s (pid %d); starting it again in %s", s.name, s.p.PID(), pause)
	sleep(ctx, pause)
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.want && s.p.Exited() {
		if err := c.start(s); err != nil {
			c.logf("restarting %s: %v", s.name, err)
			return
		}
		c.counter.workerRestarts++
	}
}

// restartBroker kills the JetStream server with SIGKILL and starts it again on the same store
// and port, after down (0: 1 to 3 s at random).
func (c *cluster) restartBroker(ctx context.Context, rng *rand.Rand, down time.Duration) error {
	pause := time.Duration(1000+rng.IntN(2000)) * time.Millisecond
	if down > 0 {
		pause = down
	}
	c.logf("kill -9 nats-server (pid %d); starting it again on the same store and port in %s", c.nats.PID(), pause)
	c.nats.kill9()
	sleep(ctx, pause)
	if err := c.startNATS(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.counter.brokerRestarts++
	c.mu.Unlock()
	c.logf("nats-server is back")
	return nil
}

// addWorker starts one more replica. In static mode a running replica's partitions are split
// with it: that replica is stopped (SIGTERM) and both start with half of them each.
func (c *cluster) addWorker(ctx context.Context, rng *rand.Rand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.opt.static {
		s, err := c.newSlot(nil)
		if err == nil {
			err = c.start(s)
		}
		if err != nil {
			c.logf("adding a worker: %v", err)
			return
		}
		c.counter.added++
		c.logf("added worker %s", s.name)
		return
	}
	run := c.running()
	if len(run) == 0 {
		return
	}
	victim := run[rng.IntN(len(run))]
	half := len(victim.partitions) / 2
	if half == 0 {
		c.logf("not adding a worker: %s has a single partition", victim.name)
		return
	}
	c.stopSlot(victim)
	keep, give := slices.Clone(victim.partitions[:half]), slices.Clone(victim.partitions[half:])
	victim.partitions = keep
	s, err := c.newSlot(give)
	if err == nil {
		err = c.start(victim)
	}
	if err == nil {
		err = c.start(s)
	}
	if err != nil {
		c.logf("adding a worker: %v", err)
		return
	}
	c.counter.added++
	c.logf("added worker %s with partitions %v taken from %s (restarted with %v)", s.name, give, victim.name, keep)
}

// removeWorker stops a random replica with SIGTERM. In static mode its partitions go to another
// replica, which is restarted with them.
func (c *cluster) removeWorker(ctx context.Context, rng *rand.Rand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.running()
	if len(run) < 2 {
		c.logf("not removing a worker: %d running", len(run))
		return
	}
	i := rng.IntN(len(run))
	s := run[i]
	c.stopSlot(s)
	s.want = false
	c.counter.removed++
	if !c.opt.static {
		c.logf("removed worker %s (SIGTERM)", s.name)
		return
	}
	heir := run[(i+1)%len(run)]
	c.stopSlot(heir)
	heir.partitions = append(heir.partitions, s.partitions...)
	slices.Sort(heir.partitions)
	s.partitions = nil
	if err := c.start(heir); err != nil {
		c.logf("restarting %s: %v", heir.name, err)
	}
	c.logf("removed worker %s (SIGTERM); %s restarted with its partitions: %v", s.name, heir.name, heir.partitions)
}

// stopSlot stops a worker with SIGTERM, waiting for its drain. The caller holds c.mu.
func (c *cluster) stopSlot(s *slot) {
	if !c.term(s) {
		c.counter.sigtermSlow++
	}
}

// term stops a worker with SIGTERM and reports whether it exited within drainTimeout + 10 s
// (else it was killed).
func (c *cluster) term(s *slot) bool {
	if s.p == nil || s.p.Exited() {
		return true
	}
	if !s.p.term(c.opt.drainTimeout + 10*time.Second) {
		c.logf("%s did not exit within drainTimeout + 10s of SIGTERM: killed", s.name)
		return false
	}
	return true
}

// outage starts the simulator's outage now, for opt.outage.
func (c *cluster) outage(ctx context.Context) {
	now := time.Now()
	if err := c.sim().setFaults(ctx, c.faults(now)); err != nil {
		c.logf("starting the outage: %v", err)
		return
	}
	c.mu.Lock()
	c.counter.outages++
	c.mu.Unlock()
	c.logf("target outage for %s (every SCIM and token request answered 503)", c.opt.outage)
}

// faults are the simulator's faults, with an outage from `from` when it is not zero.
func (c *cluster) faults(from time.Time) (f cyberarksim.Faults) {
	f.Error5xxRate, f.RateLimit429, f.RetryAfter = c.opt.rate5xx, c.opt.rate429, time.Second
	f.PhantomWriteRate = c.opt.ratePhantom
	f.Latency, f.LatencyJitter = c.opt.latency, c.opt.jitter
	if !from.IsZero() {
		f.OutageFrom, f.OutageUntil = from, from.Add(c.opt.outage)
	}
	return f
}

// stopWorkers stops every worker with SIGTERM, at once, and waits for them.
func (c *cluster) stopWorkers() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var wg sync.WaitGroup
	slow := make(chan bool, len(c.slots))
	for _, s := range c.slots {
		s.want = false
		wg.Add(1)
		go func() {
			defer wg.Done()
			slow <- !c.term(s)
		}()
	}
	wg.Wait()
	close(slow)
	for sl := range slow {
		if sl {
			c.counter.sigtermSlow++
		}
	}
}

// stopAll stops the workers (SIGTERM), the simulator and the broker.
func (c *cluster) stopAll() {
	c.stopWorkers()
	for _, p := range []*proc{c.simProc, c.nats} {
		if p != nil && !p.Exited() {
			p.term(10 * time.Second)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
