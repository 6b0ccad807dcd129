package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/natstest"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// configFor writes a config for the simulator at url with the given client secret.
func configFor(t *testing.T, url, secret string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`target:
  profile: cyberark
  baseURI: %[1]s/scim/v2
  auth:
    mode: oauth2
    oauth2:
      tokenURL: %[1]s/oauth2/token/scimflow
      clientID: scimflow-client
      clientSecret: %[2]s
      scopes: [scim]
  testConnection: true
  testQuery: Users?count=1
model: %[3]s
nats:
  storeDir: %[4]s
  listen: %[5]s
http:
  listen: ""
`, url, secret, filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), filepath.Join(dir, "nats"), freePort(t))
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	return file
}

func runCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	out, _, err := runCmd(t, "check", "--config", configFor(t, srv.URL, "scimflow-secret"))
	require.NoError(t, err, out)
	assert.Contains(t, out, "[OK  ] serviceProviderConfig")
	assert.Contains(t, out, "Users?count=1")
	assert.NotContains(t, out, "scimflow-secret")

	out, _, err = runCmd(t, "check", "--config", configFor(t, srv.URL, "wrong-secret"))
	require.Error(t, err)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, out, "invalid_client", "the report says why the token was refused")
	assert.NotContains(t, out, "wrong-secret")
}

func TestRunRefusesToStartWhenTheConnectionTestFails(t *testing.T) {
	t.Parallel()
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	_, errOut, err := runCmd(t, "run", "--config", configFor(t, srv.URL, "wrong-secret"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the connection test failed")
	assert.Contains(t, errOut, "invalid_client")
}

func TestPlanCommandWritesNothing(t *testing.T) {
	t.Parallel()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	require.NoError(t, sim.Seed("Users", map[string]any{"id": "u-1", "userName": "ada@example.com", "password": "Passw0rdPassw0rd", "title": "Engineer"}))
	event := filepath.Join(t.TempDir(), "event.json")
	require.NoError(t, os.WriteFile(event, []byte(`{"specversion":"1.0","id":"p1","source":"/t","type":"identity.user.update",
"data":{"object":"User","operation":"Update","key":{"userName":"ada@example.com"},"attributes":{"title":"CTO"}}}`), 0o600))
	sim.ResetStats()
	out, _, err := runCmd(t, "plan", "--config", configFor(t, srv.URL, "scimflow-secret"), "--event", event)
	require.NoError(t, err, out)
	assert.Contains(t, out, "PATCH "+srv.URL+"/scim/v2/Users/u-1", "the exact URL")
	assert.Contains(t, out, `"replace"`)
	assert.Contains(t, out, `"CTO"`)
	assert.Contains(t, out, `task mapping "title"`, "the rule behind each part of the body")
	assert.Contains(t, out, "reads made while planning")
	for key, n := range sim.Stats().Requests {
		assert.True(t, strings.HasPrefix(key, "GET ") || strings.HasPrefix(key, "POST /oauth2/"), "plan sent %d× %s", n, key)
	}

	// The data object alone is accepted too, and validated like an event.
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"object":"User","operation":"Promote","key":{"userName":"x"}}`), 0o600))
	_, _, err = runCmd(t, "plan", "--config", configFor(t, srv.URL, "scimflow-secret"), "--event", bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/data/operation")
}

func TestModelImportCommand(t *testing.T) {
	t.Parallel()
	xml := filepath.Join(repo(t), "deploy/examples/models/omada-example.xml")
	out, _, err := runCmd(t, "model", "import", "--omada", xml)
	require.NoError(t, err)
	m, err := reconcile.ParseModel("imported.yaml", []byte(out))
	require.NoError(t, err, out)
	u, ok := m.Object("User")
	require.True(t, ok)
	assert.Equal(t, "Users", u.Resource())
	assert.True(t, u.ReconcileOnUpdate())

	file := filepath.Join(t.TempDir(), "model.yaml")
	_, errOut, err := runCmd(t, "model", "import", "--omada", xml, "--out", file)
	require.NoError(t, err)
	assert.Contains(t, errOut, "wrote "+file)
	_, err = reconcile.LoadModel(file)
	require.NoError(t, err)

	broken := filepath.Join(t.TempDir(), "broken.xml")
	require.NoError(t, os.WriteFile(broken, []byte("<dataModel>\n<object name=\"U\">\n<property name=\"x\"\n</dataModel>"), 0o600))
	_, _, err = runCmd(t, "model", "import", "--omada", broken)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broken.xml:")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	_, errOut, err := runCmd(t)
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, "usage: worker")
	_, errOut, err = runCmd(t, "frobnicate")
	assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, `unknown command "frobnicate"`)
}

// TestRunConnectsToAConfiguredNATS shows that with nats.url set the worker uses that server, and
// starts no embedded one.
func TestRunConnectsToAConfiguredNATS(t *testing.T) {
	t.Parallel()
	ns := natstest.MustStart(t)
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	dir := t.TempDir()
	embeddedAddr := freePort(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\n  listen: %s\n  partitions: 4\ntarget:\n%s\nmodel: %s\nhttp:\n  listen: \"\"\n",
		ns.URL, embeddedAddr, indent(cyberarkTarget(srv.URL), "  "), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { done <- run(ctx, []string{"run", "--config", file}, &logs, &logs) }()
	require.Eventually(t, func() bool {
		_, err := ns.JS.Consumer(context.Background(), "IDM_EVENTS", "scimflow-p3")
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the worker did not set up its streams on the configured server:\n%s", logs.String())
	_, err := net.DialTimeout("tcp", embeddedAddr, 200*time.Millisecond)
	assert.Error(t, err, "no embedded server listens when nats.url is set")
	cancel()
	require.NoError(t, <-done, logs.String())
}
