package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
)

// `worker provision --direct` applies one event from the command line straight to the target, with
// no NATS and no worker: each request with its status, the outcome, and exit 1 when the target
// fails it (nothing parks it here).
func TestProvisionDirect(t *testing.T) {
	t.Parallel()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	cfg := configFor(t, srv.URL, "scimflow-secret")
	event := func(body string) string {
		f := filepath.Join(t.TempDir(), "event.json")
		require.NoError(t, os.WriteFile(f, []byte(body), 0o600))
		return f
	}

	out, errOut, err := runCmd(t, "provision", "--direct", "--config", cfg, "--event", event(`{"specversion":"1.0","id":"direct-1","source":"/ops","type":"identity.user.upsert",
		"data":{"object":"User","operation":"Upsert","key":{"userName":"ada@example.com"},"attributes":{"title":"CTO"}}}`))
	require.NoError(t, err, "%s%s", out, errOut)
	t.Logf("worker provision --direct:\n%s", out)
	assert.Regexp(t, `(?m)^event direct-1: Upsert User userName=ada@example.com, applied directly to http://\S+/scim/v2$`, out)
	assert.Regexp(t, `(?m)^    GET Users → 200 in [\d.]+ ms$`, out, "the lookup by key")
	assert.Regexp(t, `(?m)^    POST Users → 201 in [\d.]+ ms$`, out)
	assert.Regexp(t, `(?m)^\S+ \S+  succeeded \(attempt 1 by worker provision --direct@\S+, [\d.]+ ms\)$`, out)
	assert.Regexp(t, `(?m)^    target id [0-9a-f-]+$`, out)
	assert.Equal(t, "CTO", userByName(t, sim, "ada@example.com")["title"])

	update := event(`{"object":"User","operation":"Update","key":{"userName":"ada@example.com"},"attributes":{"title":"CEO"}}`)
	out, errOut, err = runCmd(t, "provision", "--direct", "--config", cfg, "--event", update)
	require.NoError(t, err, "%s%s", out, errOut)
	assert.Regexp(t, `(?m)^    PATCH Users/[0-9a-f-]+ → 20[04] in [\d.]+ ms$`, out)
	assert.Equal(t, "CEO", userByName(t, sim, "ada@example.com")["title"])

	// A failing target: the requests and the failure are printed, the exit status says so.
	sim.SetFaults(cyberarksim.Faults{Error5xxRate: 1})
	failing := event(`{"object":"User","operation":"Update","key":{"userName":"ada@example.com"},"attributes":{"title":"CFO"}}`)
	out, errOut, err = runCmd(t, "provision", "--direct", "--config", cfg, "--event", failing)
	require.Error(t, err, "%s%s", out, errOut)
	assert.Equal(t, 1, exitCode(err, io.Discard))
	assert.Regexp(t, `(?m)^\S+ \S+  deferred \(attempt 1 by worker provision --direct@`, out)
	assert.Regexp(t, `(?m)^    \S+ Users\S* → 5\d\d in [\d.]+ ms`, out)
	assert.Contains(t, out, "not applied: a worker would park it until the next sync window; nothing more is tried here")
	sim.SetFaults(cyberarksim.Faults{})
	assert.Equal(t, "CEO", userByName(t, sim, "ada@example.com")["title"])

	_, _, err = runCmd(t, "provision", "--direct", "--config", cfg, "--nats", "nats://127.0.0.1:4222", "--event", update)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--direct talks to the target only")
}
