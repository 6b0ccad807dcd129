package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// repo is the repository root, where the example files live.
func repo(t testing.TB) string {
	t.Helper()
	abs, err := filepath.Abs("../..")
	require.NoError(t, err)
	return abs
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer is a bytes.Buffer safe for the worker's logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// worker is `worker run` started in process on a config file.
type worker struct {
	natsURL    string
	httpURL    string
	configFile string
	log        *syncBuffer
	cancel     context.CancelFunc
	done       chan error
}

// jetStream connects to the worker's NATS for the rest of the test.
func (w *worker) jetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	return jsAt(t, w.natsURL)
}

// startOneDeleteWorker starts the simulator with leavers users seeded, and a worker on the CyberArk
// example model whose deletion guard lets one delete through in its one (day-long) sync window
// and holds the rest.
func startOneDeleteWorker(t *testing.T, leavers int) (*cyberarksim.Server, *worker) {
	t.Helper()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	for i := range leavers {
		require.NoError(t, sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("leaver%d@example.com", i)}))
	}
	w := startWorkerGuarded(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), "info",
		"syncWindow:\n  schedule: \"@every 24h\"\ndeletionGuard:\n  maxDeletes: 1\n  maxPercent: 0\n")
	return sim, w
}

// startWorker writes a config for the given target section and model and runs `worker run` on it.
func startWorker(t testing.TB, target, model string) *worker {
	return startWorkerLogging(t, target, model, "debug")
}

// startWorkerLogging is startWorker with a log level (benchmarks log less).
func startWorkerLogging(t testing.TB, target, model, level string) *worker {
	t.Helper()
	return startWorkerGuarded(t, target, model, level, "deletionGuard:\n  maxPercent: 0\n")
}

// testOperatorToken is http.operatorToken of the test workers.
const testOperatorToken = "op-token-for-tests"

// startWorkerGuarded is startWorkerLogging with the deletionGuard section given (and the
// syncWindow section, when it holds one).
func startWorkerGuarded(t testing.TB, target, model, level, guardSection string) *worker {
	t.Helper()
	dir := t.TempDir()
	natsAddr, httpAddr := freePort(t), freePort(t)
	window := "syncWindow:\n  schedule: \"@every 2s\"\n  maxWindows: 2\n"
	if strings.Contains(guardSection, "syncWindow:") {
		window = "" // the caller's
	}
	if !strings.Contains(guardSection, "inventory:") {
		// The inventory runs once per sync window by default: keep it out of tests about other things.
		guardSection += "inventory:\n  schedule: \"@every 24h\"\n"
	}
	cfg := fmt.Sprintf(`nats:
  listen: %s
  storeDir: %s
  partitions: 8
target:
%s
model: %s
%sworker:
  drainTimeout: 5s
%s
http:
  listen: %s
  operatorToken: `+testOperatorToken+`
log:
  level: %s
`, natsAddr, filepath.Join(dir, "nats"), indent(target, "  "), model, window, guardSection, httpAddr, level)
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))

	w := &worker{natsURL: "nats://" + natsAddr, httpURL: "http://" + httpAddr, log: &syncBuffer{}, done: make(chan error, 1), configFile: file}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { w.done <- run(ctx, []string{"run", "--config", file}, w.log, w.log) }()
	t.Cleanup(func() { w.stop(t) })
	// Ready when the streams exist.
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(w.natsURL)
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		_, err = js.Consumer(context.Background(), events.EventsStream, "scimflow-p7")
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "worker did not start:\n%s", w.log.String())
	return w
}

func (w *worker) stop(t testing.TB) {
	if w.cancel == nil {
		return
	}
	w.cancel()
	w.cancel = nil
	select {
	case err := <-w.done:
		assert.NoError(t, err, "worker run ended with an error:\n%s", w.log.String())
	case <-time.After(20 * time.Second):
		t.Error("worker did not stop after SIGTERM's cancellation")
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

func publishFile(t *testing.T, w *worker, file string) *publish.Report {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	items, err := publish.ReadJSONL(f)
	require.NoError(t, err)
	js := w.jetStream(t)
	rep, err := publish.Run(context.Background(), js, items, publish.Options{Wait: true, Timeout: 60 * time.Second})
	require.NoError(t, err)
	return rep
}

// expectDemoState checks the simulator holds exactly what deploy/examples/events.jsonl describes.
func expectDemoState(t *testing.T, sim *cyberarksim.Server) {
	t.Helper()
	st := sim.Snapshot()
	users := map[string]map[string]any{}
	byID := map[string]string{}
	for _, u := range st.Users {
		users[u["userName"].(string)] = u
		byID[u["id"].(string)] = u["userName"].(string)
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"ada.lovelace@example.com", "alan.turing@example.com", "barbara.liskov@example.com",
		"grace.hopper@example.com", "margaret.hamilton@example.com"}, names, "edsger was deleted, margaret upserted")

	assert.Equal(t, "Distinguished Engineer", users["alan.turing@example.com"]["title"])
	assert.Equal(t, "Chief Technology Officer", users["ada.lovelace@example.com"]["title"], "Upsert of an existing user updates it")
	grace := users["grace.hopper@example.com"]
	assert.Equal(t, "Hopper-Murray", grace["name"].(map[string]any)["familyName"])
	assert.Equal(t, "Grace", grace["name"].(map[string]any)["givenName"], "an update leaves other attributes alone")
	const ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	barbara := users["barbara.liskov@example.com"]
	assert.Equal(t, "Security Engineering", barbara[ext].(map[string]any)["department"])
	alan := users["alan.turing@example.com"]
	mgr := alan[ext].(map[string]any)["manager"].(map[string]any)
	assert.Equal(t, "ada.lovelace@example.com", byID[mgr["value"].(string)], "the manager reference resolves to Ada's id")
	emails := alan["emails"].([]any)
	require.Len(t, emails, 1)
	assert.Equal(t, map[string]any{"value": "alan.turing@example.com", "type": "work"}, pick(emails[0].(map[string]any), "value", "type"),
		"emails[].value and emails[].type are grouped into one element")

	groups := map[string][]string{}
	for _, g := range st.Groups {
		var members []string
		ms, _ := g["members"].([]any)
		for _, m := range ms {
			members = append(members, byID[m.(map[string]any)["value"].(string)])
		}
		sort.Strings(members)
		groups[g["displayName"].(string)] = members
	}
	assert.Equal(t, map[string][]string{
		"Engineering": {"alan.turing@example.com", "grace.hopper@example.com", "margaret.hamilton@example.com"},
		"Security":    {"barbara.liskov@example.com"},
	}, groups, "Contractors deleted; Edsger removed; Ada removed from Security")
}

func pick(m map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func expectDemoOutcomes(t *testing.T, rep *publish.Report) {
	t.Helper()
	require.Empty(t, rep.Missing, "events without an outcome")
	for _, it := range rep.Items {
		o := rep.Outcomes[it.ID]
		require.NotNil(t, o, it.ID)
		if it.Invalid != nil {
			assert.Equal(t, events.StatusDeadLettered, o.Status, "line %d", it.Line)
			require.NotNil(t, o.Error)
			assert.Equal(t, "invalid", o.Error.Class)
			assert.Contains(t, o.Error.Message, "/data/operation")
			continue
		}
		assert.True(t, publish.Succeeded(o), "line %d (%s): %s %+v", it.Line, it.ID, o.Status, o.Error)
		assert.NotEmpty(t, o.TargetID, "line %d: the outcome names the target object", it.Line)
		assert.Equal(t, 1, o.Attempt)
	}
}

// cyberarkTarget is the target section for the CyberArk simulator at url.
func cyberarkTarget(url string) string {
	return fmt.Sprintf(`profile: cyberark
baseURI: %[1]s/scim/v2
auth:
  mode: oauth2
  oauth2:
    tokenURL: %[1]s/oauth2/token/scimflow
    revokeURL: %[1]s/oauth2/revoke/scimflow
    clientID: scimflow-client
    clientSecret: scimflow-secret
    scopes: [scim]
testConnection: true
testQuery: Users?count=1
`, url)
}

// TestRunEndToEnd drives the real pipeline in process: `worker run` with an embedded JetStream, the
// CyberArk simulator over HTTP with OAuth 2.0, and the sample events published and awaited.
func TestRunEndToEnd(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	rep := publishFile(t, w, filepath.Join(repo(t), "deploy/examples/events.jsonl"))
	expectDemoOutcomes(t, rep)
	expectDemoState(t, sim)

	// Every POST of a user carried a generated password (CyberArk requires one) and one token
	// served every request.
	stats := sim.Stats()
	assert.Equal(t, 1, stats.TokensIssued, "the token is reused until it expires")
	w.stop(t)
	assert.Equal(t, 1, sim.Stats().TokensRevoked, "the token is revoked on shutdown")
}

// TestRunAgainstGenericSCIM shows the worker unchanged against a plain RFC 7644 server (strictly
// quoted filters, PATCH removal by members[value eq "..."]): with the demo's own data model only the
// target section of the configuration differs; the generic model works the same.
func TestRunAgainstGenericSCIM(t *testing.T) {
	for _, model := range []string{"cyberark.yaml", "scim-generic.yaml"} {
		t.Run(model, func(t *testing.T) {
			sim, srv := simtest.MustStart(t, cyberarksim.Config{Generic: true})
			target := fmt.Sprintf(`profile: generic
baseURI: %[1]s
entityRoot: scim/v2
queryAddress: scim/v2
auth:
  mode: oauth2
  oauth2:
    tokenURL: %[1]s/oauth2/token/scimflow
    clientID: scimflow-client
    clientSecret: scimflow-secret
    scopes: [scim]
`, srv.URL)
			w := startWorker(t, target, filepath.Join(repo(t), "deploy/examples/models", model))
			rep := publishFile(t, w, filepath.Join(repo(t), "deploy/examples/events.jsonl"))
			expectDemoOutcomes(t, rep)
			expectDemoState(t, sim)
			if t.Failed() {
				t.Log(w.log.String())
			}
			stats := sim.Stats()
			assert.Positive(t, stats.Requests["PATCH /scim/v2/Groups/{id}"])
			assert.Zero(t, stats.ByStatus[400], "the strict server refused nothing")
		})
	}
}

// TestDemo runs `worker demo` as `make demo` does.
func TestDemo(t *testing.T) {
	var out, errOut syncBuffer
	err := run(context.Background(), []string{"demo",
		"--config", filepath.Join(repo(t), "deploy/examples/config.yaml"),
		"--events", filepath.Join(repo(t), "deploy/examples/events.jsonl")}, &out, &errOut)
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
	text := out.String()
	assert.Contains(t, text, "DEMO PASSED")
	assert.Regexp(t, `succeeded\s+\d+`, text)
	assert.Regexp(t, `dead_lettered\s+1\n`, text)
	assert.Contains(t, text, "margaret.hamilton@example.com")
}
