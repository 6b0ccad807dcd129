// Command bench-inventory measures the full inventory at directory scale (make bench-inventory):
// a JetStream server (sync_interval always) and the CyberArk simulator each in their own process,
// the simulator preloaded with synthetic users, groups and memberships, and `worker inventory
// --once` run twice per size, as a process of its own: the first run is the baseline, the second
// diffs against it. It prints wall time, objects per second and the worker's peak RSS, and exits 1
// when a target of issue 9 is missed (100k users + 10k groups under 20 s, peak RSS under 256 MiB,
// RSS growing less than 1.5x from 100k to 1M users).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scimflow/scimflow/internal/rig"
)

type size struct {
	name                       string
	users, groups, memberships int
}

type result struct {
	size
	run     int
	wall    time.Duration
	objects int
	rss     int64 // KiB
	status  string
}

func main() {
	sizes := flag.String("sizes", "100000:10000:1000000,1000000:0:0", "comma-separated users:groups:memberships")
	keep := flag.Bool("keep", false, "keep the working folder")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *sizes, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench-inventory:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, spec string, keep bool) error {
	var sizes []size
	for _, s := range strings.Split(spec, ",") {
		var z size
		if _, err := fmt.Sscanf(s, "%d:%d:%d", &z.users, &z.groups, &z.memberships); err != nil {
			return fmt.Errorf("-sizes %q: %w", s, err)
		}
		z.name = fmt.Sprintf("%d users + %d groups (%d memberships)", z.users, z.groups, z.memberships)
		sizes = append(sizes, z)
	}
	repo, dir, err := rig.Workspace("run it from the repository (make bench-inventory)", "bench-inventory-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	bin := filepath.Join(dir, "bin")
	if err := rig.Build(ctx, repo, bin, nil, rig.NATSServer, rig.Worker, rig.Simulator); err != nil {
		return err
	}
	var results []result
	for i, z := range sizes {
		rs, err := measure(ctx, repo, bin, filepath.Join(dir, strconv.Itoa(i)), z)
		if err != nil {
			return fmt.Errorf("%s: %w", z.name, err)
		}
		results = append(results, rs...)
	}
	fmt.Printf("\n%-52s %-4s %-9s %10s %10s %12s %10s\n", "SIZE", "RUN", "STATUS", "WALL", "OBJECTS", "OBJECTS/S", "PEAK RSS")
	for _, r := range results {
		fmt.Printf("%-52s %-4d %-9s %10s %10d %12.0f %7.1f MiB\n", r.name, r.run, r.status, r.wall.Round(10*time.Millisecond), r.objects,
			float64(r.objects)/r.wall.Seconds(), float64(r.rss)/1024)
	}
	return check(results)
}

// check compares with the targets of issue 9.
func check(rs []result) error {
	var errs []error
	var rss100k, rss1m int64
	for _, r := range rs {
		if r.rss > 256*1024 {
			errs = append(errs, fmt.Errorf("%s run %d: peak RSS %.1f MiB is over 256 MiB", r.name, r.run, float64(r.rss)/1024))
		}
		if r.users == 100000 && r.groups == 10000 && r.wall > 20*time.Second {
			errs = append(errs, fmt.Errorf("%s run %d: %s is over 20 s", r.name, r.run, r.wall))
		}
		if r.users == 100000 {
			rss100k = max(rss100k, r.rss)
		}
		if r.users == 1000000 {
			rss1m = max(rss1m, r.rss)
		}
	}
	if rss100k > 0 && rss1m > 0 {
		ratio := float64(rss1m) / float64(rss100k)
		fmt.Printf("peak RSS 1M / 100k users: %.2fx (target < 1.5x)\n", ratio)
		if ratio >= 1.5 {
			errs = append(errs, fmt.Errorf("peak RSS grows %.2fx from 100k to 1M users", ratio))
		}
	}
	return errors.Join(errs...)
}

func start(ctx context.Context, name string, args []string, logFile string) (*exec.Cmd, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	return cmd, nil
}

func stopProc(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

var objectsLine = regexp.MustCompile(`objects:\s+(.*) \(`)

func measure(ctx context.Context, repo, bin, dir string, z size) ([]result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		var err error
		if ports[i], err = rig.FreePort(); err != nil {
			return nil, err
		}
	}
	natsPort, natsHTTP, simPort := ports[0], ports[1], ports[2]
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\nmax_payload: 8MB\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n",
		natsPort, natsHTTP, filepath.Join(dir, "js"))), 0o644); err != nil {
		return nil, err
	}
	ns, err := start(ctx, filepath.Join(bin, "nats-server"), []string{"-c", conf}, filepath.Join(dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	defer stopProc(ns)
	if err := rig.WaitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", natsHTTP), nil, time.Minute); err != nil {
		return nil, err
	}
	seedStart := time.Now()
	sim, err := start(ctx, filepath.Join(bin, "cyberark-sim"), []string{"-listen", fmt.Sprintf("127.0.0.1:%d", simPort), "-log-level", "warn",
		"-seed-users", strconv.Itoa(z.users), "-seed-groups", strconv.Itoa(z.groups), "-seed-memberships", strconv.Itoa(z.memberships)},
		filepath.Join(dir, "sim.log"))
	if err != nil {
		return nil, err
	}
	defer stopProc(sim)
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	if err := rig.WaitHTTP(ctx, simURL+"/admin/stats", nil, 5*time.Minute); err != nil {
		return nil, err
	}
	fmt.Printf("%s: simulator seeded in %s\n", z.name, time.Since(seedStart).Round(100*time.Millisecond))
	cfg := fmt.Sprintf(`nats:
  url: nats://127.0.0.1:%d
target:
  profile: cyberark
  baseURI: %[2]s/scim/v2
  auth:
    mode: oauth2
    oauth2:
      tokenURL: %[2]s/oauth2/token/scimflow
      clientID: scimflow-client
      clientSecret: scimflow-secret
      scopes: [scim]
model: %[3]s
inventory:
  objects: [User, Group]
  scratchDir: %[4]q
log:
  level: warn
`, natsPort, simURL, filepath.Join(repo, "deploy/examples/models/cyberark.yaml"), dir)
	file := filepath.Join(dir, "scimflow.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var out []result
	for run := 1; run <= 2; run++ {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "worker"), "inventory", "--once", "--config", file)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		begin := time.Now()
		err := cmd.Run()
		wall := time.Since(begin)
		if err != nil {
			return nil, fmt.Errorf("worker inventory --once: %w\n%s%s", err, stdout.String(), stderr.String())
		}
		ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		r := result{size: z, run: run, wall: wall}
		if ru != nil {
			r.rss = ru.Maxrss // KiB on Linux
		}
		text := stdout.String()
		fmt.Printf("%s, run %d:\n%s", z.name, run, text)
		if m := objectsLine.FindStringSubmatch(text); m != nil {
			for _, kv := range strings.Fields(m[1]) {
				if _, v, ok := strings.Cut(kv, "="); ok {
					n, _ := strconv.Atoi(v)
					r.objects += n
				}
			}
		}
		if _, after, ok := strings.Cut(text, ": "); ok {
			r.status, _, _ = strings.Cut(after, " ")
		}
		out = append(out, r)
	}
	return out, nil
}
