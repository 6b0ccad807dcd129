//go:build containers

// Package containers runs the deploy/ stack as containers with testcontainers-go: a 3-node
// JetStream cluster, the CyberArk simulator and two workers, all from one image built FROM scratch
// out of the static binaries (deploy/docker/Dockerfile.prebuilt), with host networking (every
// container on the host's 127.0.0.1, no image pulled, the reaper off). `make test-containers`
// starts a Docker engine (tools/docker-engine.sh) and runs it with -tags containers.
package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"

	"github.com/scimflow/scimflow/internal/events"
)

const image = "scimflow-containers:test"

func TestMain(m *testing.M) {
	// The reaper is an image from a registry, which this machine cannot reach; every container
	// this test starts is terminated by the test itself.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	os.Exit(m.Run())
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// buildContext lays out the build context of Dockerfile.prebuilt: static binaries and rootfs/.
func buildContext(t *testing.T) string {
	root := repoRoot(t)
	dir := t.TempDir()
	for name, pkg := range map[string]string{"worker": "./cmd/worker", "publisher": "./cmd/publisher", "cyberark-sim": "./cmd/cyberark-sim", "nats-server": "./tools/nats-server"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go build %s: %s", pkg, out)
	}
	for _, d := range []string{"rootfs/etc", "rootfs/tmp", "rootfs/data"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	require.NoError(t, os.Chmod(filepath.Join(dir, "rootfs/tmp"), 0o1777))
	require.NoError(t, os.Chmod(filepath.Join(dir, "rootfs/data"), 0o1777))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rootfs/etc/passwd"), []byte("nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rootfs/etc/group"), []byte("nonroot:x:65532:\n"), 0o644))
	raw, err := os.ReadFile(filepath.Join(root, "deploy/docker/Dockerfile.prebuilt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), raw, 0o644))
	return dir
}

// box is one running container.
type box struct {
	name string
	c    testcontainers.Container
}

// start runs the image with entrypoint and args on the host's network, the files copied in first.
func start(t *testing.T, ctx context.Context, name string, build string, entrypoint []string, files map[string]string) *box {
	t.Helper()
	// JetStream's store on a host folder, as a volume would be: fsync in the container's own
	// overlay layer made creating a replicated stream take seconds instead of milliseconds.
	data := t.TempDir()
	require.NoError(t, os.Chmod(data, 0o1777))
	req := testcontainers.ContainerRequest{
		Name:       fmt.Sprintf("scimflow-ct-%s-%d", name, time.Now().UnixNano()),
		Image:      image,
		Entrypoint: entrypoint,
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.NetworkMode = "host"
			hc.Binds = append(hc.Binds, data+":/data")
			if name != "sim" && !strings.HasPrefix(name, "nats") {
				// As compose's restart: on-failure and a Deployment's restartPolicy do.
				hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure}
			}
		},
	}
	if build != "" {
		req.Image = ""
		req.FromDockerfile = testcontainers.FromDockerfile{Context: build, Dockerfile: "Dockerfile", Repo: "scimflow-containers", Tag: "test", KeepImage: true}
	}
	for dst, content := range files {
		req.Files = append(req.Files, testcontainers.ContainerFile{Reader: strings.NewReader(content), ContainerFilePath: dst, FileMode: 0o644})
	}
	// The engine runs with --bridge=none: "host" is the default network, so that testcontainers
	// does not create a bridge of its own for the container.
	provider, err := testcontainers.NewDockerProvider(testcontainers.WithDefaultBridgeNetwork("host"))
	require.NoError(t, err)
	c, err := provider.CreateContainer(ctx, req)
	require.NoError(t, err, "create %s", name)
	require.NoError(t, c.Start(ctx), "start %s", name)
	b := &box{name: name, c: c}
	t.Cleanup(func() {
		if t.Failed() {
			if logs, err := c.Logs(context.Background()); err == nil {
				raw, _ := io.ReadAll(logs)
				t.Logf("--- %s logs (tail) ---\n%s", name, tail(string(raw), 3000))
			}
		}
		_ = c.Terminate(context.Background())
	})
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func waitHTTP(t *testing.T, url string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, within, 100*time.Millisecond, "%s did not answer 200", url)
}

// The deploy/ stack in containers: 3 JetStream nodes (R3 streams, sync_interval always), the
// simulator, 2 workers sharing the partitions as a pool. Events are published while one NATS
// container and one worker container are stopped; every event gets its final outcome and the
// simulator ends in the state the events imply.
func TestStackInContainers(t *testing.T) {
	ctx := context.Background()
	began := time.Now()
	build := buildContext(t)
	ports := freePorts(t, 3*3+1+2)
	client, route, mon := ports[0:3], ports[3:6], ports[6:9]
	simPort, workerHTTP := ports[9], ports[10:12]

	var routes []string
	for _, p := range route {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	natsBoxes := make([]*box, 3)
	imageBuilt := ""
	buildStart := time.Now()
	var buildTime time.Duration
	for i := range 3 {
		conf := fmt.Sprintf(`server_name: ct-n%[1]d
listen: 127.0.0.1:%[2]d
http: 127.0.0.1:%[3]d
jetstream {
  store_dir: "/data/n%[1]d"
  sync_interval: always
}
cluster {
  name: scimflow-ct
  listen: 127.0.0.1:%[4]d
  routes: [%[5]s]
}
`, i+1, client[i], mon[i], route[i], strings.Join(routes, ", "))
		b := build
		if i > 0 {
			b = ""
		}
		natsBoxes[i] = start(t, ctx, fmt.Sprintf("nats%d", i+1), b, []string{"/nats-server", "-c", "/etc/nats.conf"}, map[string]string{"/etc/nats.conf": conf})
		if i == 0 {
			buildTime = time.Since(buildStart)
			imageBuilt = image
		}
	}
	require.Equal(t, image, imageBuilt)
	for i := range 3 {
		// Healthy: routed, and JetStream current with an elected meta leader.
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", mon[i]), time.Minute)
	}
	start(t, ctx, "sim", "", []string{"/cyberark-sim", "--listen", fmt.Sprintf("127.0.0.1:%d", simPort)}, nil)
	simURL := fmt.Sprintf("http://127.0.0.1:%d", simPort)
	waitHTTP(t, simURL+"/admin/stats", 30*time.Second)

	model, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy/examples/models/cyberark.yaml"))
	require.NoError(t, err)
	var urls []string
	for _, p := range client {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	workers := make([]*box, 2)
	for i := range 2 {
		cfg := fmt.Sprintf(`nats:
  url: %[1]s
  replicas: 3
  partitions: 8
target:
  profile: cyberark
  baseURI: %[2]s/scim/v2
  auth:
    mode: oauth2
    oauth2:
      tokenURL: %[2]s/oauth2/token/scimflow
      revokeURL: %[2]s/oauth2/revoke/scimflow
      clientID: scimflow-client
      clientSecret: scimflow-secret
      scopes: [scim]
model: /etc/scimflow/models/cyberark.yaml
worker:
  name: ct-w%[3]d
  drainTimeout: 5s
http:
  listen: 127.0.0.1:%[4]d
log:
  level: info
`, strings.Join(urls, ","), simURL, i+1, workerHTTP[i])
		workers[i] = start(t, ctx, fmt.Sprintf("worker%d", i+1), "", []string{"/worker", "run", "--config", "/etc/scimflow/config.yaml"},
			map[string]string{"/etc/scimflow/config.yaml": cfg, "/etc/scimflow/models/cyberark.yaml": string(model)})
	}
	workersStart := time.Now()
	for i := range 2 {
		// A fresh cluster takes a while to create the replicated streams and buckets.
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/readyz", workerHTTP[i]), 3*time.Minute)
	}
	t.Logf("workers ready %s after they started", time.Since(workersStart).Round(time.Millisecond))
	stackUp := time.Since(began)

	// Publish: 150 users, each created then updated twice (450 events), from outside the
	// containers, through the cluster.
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	const users = 150
	var ids []string
	final := map[string]*events.Outcome{}
	var mu sync.Mutex
	sub, err := nc.Subscribe(events.OutcomesPrefix+".>", func(m *nats.Msg) {
		if o, err := events.DecodeOutcome(m.Data); err == nil && o.Final {
			mu.Lock()
			final[o.InputID] = o
			mu.Unlock()
		}
	})
	require.NoError(t, err)
	defer sub.Unsubscribe()
	pub := events.NewPublisher(js)
	publishStart := time.Now()
	stopped := false
	for round := range 3 {
		for u := range users {
			key := map[string]any{"userName": fmt.Sprintf("ct%03d@example.com", u)}
			ch := events.Change{Object: "User", Operation: events.OpUpdate, Key: key, Attributes: map[string]any{"title": fmt.Sprintf("v%d", round+1)}}
			if round == 0 {
				ch.Operation = events.OpCreate
			}
			id := fmt.Sprintf("ct-%03d-%d", u, round+1)
			ids = append(ids, id)
			require.Eventually(t, func() bool {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_, err := pub.PublishEvent(pctx, events.NewEvent(id, "/hr/containers", ch))
				return err == nil
			}, time.Minute, 200*time.Millisecond, "publish %s", id)
			if round == 1 && u == users/2 && !stopped {
				// Mid-run: one JetStream node and one worker go away.
				stopped = true
				timeout := 10 * time.Second
				require.NoError(t, natsBoxes[2].c.Stop(ctx, &timeout))
				require.NoError(t, workers[1].c.Stop(ctx, &timeout))
				t.Logf("stopped nats3 and worker2 after %d events", len(ids))
			}
		}
	}
	publishTime := time.Since(publishStart)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(final) >= len(ids)
	}, 3*time.Minute, 200*time.Millisecond, "final outcomes: got %d of %d", len(final), len(ids))
	drained := time.Since(publishStart)

	mu.Lock()
	for _, id := range ids {
		o := final[id]
		if assert.NotNil(t, o, id) {
			assert.Equal(t, events.StatusSucceeded, o.Status, "%s: %s", id, o.Reason)
		}
	}
	mu.Unlock()
	resp, err := http.Get(simURL + "/admin/state")
	require.NoError(t, err)
	defer resp.Body.Close()
	var state struct {
		Users []map[string]any
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&state))
	assert.Len(t, state.Users, users, "one user per key, no duplicate")
	for _, u := range state.Users {
		assert.Equal(t, "v3", u["title"], "%v ends with its last update", u["userName"])
	}
	// The surviving worker took every partition.
	resp2, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/status", workerHTTP[0]))
	require.NoError(t, err)
	defer resp2.Body.Close()
	var st struct {
		Consumer events.ConsumerStats `json:"consumer"`
	}
	require.NoError(t, json.NewDecoder(resp2.Body).Decode(&st))
	assert.Len(t, st.Consumer.Partitions, 8, "the remaining worker owns every partition")

	restarts := 0
	for _, w := range workers {
		if info, err := w.c.Inspect(ctx); err == nil {
			restarts += info.RestartCount
		}
	}
	fmt.Printf("containers: %d worker restart(s) by the engine's on-failure policy; image build %s, stack up %s (3 NATS nodes, simulator, 2 workers); %d events published in %s with nats3 and worker2 stopped mid-run; every final outcome after %s; %d users in the simulator\n",
		restarts, buildTime.Round(time.Millisecond), stackUp.Round(time.Millisecond), len(ids), publishTime.Round(time.Millisecond), drained.Round(time.Millisecond), len(state.Users))
}
