package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// An operator's pause holds every event, survives a restart, shows on /status and /readyz, and
// `resume` lets the events go in order: the simulator's record says nothing was written meanwhile.
func TestOperatorPauseHoldsEverythingUntilResumed(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	ctx := context.Background()
	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"pause", "--reason", "CyberArk maintenance", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "provisioning paused on every worker")
	require.Eventually(t, func() bool {
		_, st := apiCall(t, w, "GET", "/status", "", nil)
		p, _ := st["pause"].(map[string]any)
		return p["paused"] == true && p["reason"] == "CyberArk maintenance"
	}, 10*time.Second, 50*time.Millisecond, "the worker took the pause")

	// The pause outlives a restart of the worker.
	w.stop(t)
	w = restartWorker(t, w)
	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	pub := events.NewPublisher(js)
	key := map[string]any{"userName": "held@example.com"}
	for i, ch := range []events.Change{
		{Object: "User", Operation: events.OpCreate, Key: key, Attributes: map[string]any{"title": "v1"}},
		{Object: "User", Operation: events.OpUpdate, Key: key, Attributes: map[string]any{"title": "v2"}},
		{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": "other@example.com"}},
	} {
		_, err := pub.PublishEvent(ctx, events.NewEvent(fmt.Sprintf("held-%d", i), "/hr/test", ch))
		require.NoError(t, err)
	}
	// The worker has the three events in hand (it would run them now, were it not paused): nothing
	// of them has reached the target, and nothing has an outcome.
	require.Eventually(t, func() bool {
		_, st := apiCall(t, w, "GET", "/status", "", nil)
		c, _ := st["consumer"].(map[string]any)
		held, _ := c["held"].(float64)
		return held == 3 || final.count() > 0 || sim.Writes(0, 1).Last > 0
	}, 10*time.Second, 20*time.Millisecond, "the paused worker holds the three events")
	assert.Zero(t, sim.Writes(0, 1).Last, "nothing reaches the target while paused")
	assert.Zero(t, final.count(), "no outcome while paused")
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"explain", "--object", "User", "--key", "userName=held@example.com", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Regexp(t, `(?m)^now: no event of User userName=held@example.com in the provisioning log.*; provisioning is paused on every worker since .* by worker pause@.* \(CyberArk maintenance\): the key's newer events wait, unprocessed, until worker resume$`, out.String())
	resp, err := http.Get(w.httpURL + "/readyz")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a chosen pause is no failure: %s", body)
	assert.Regexp(t, `provisioning: paused by worker pause@.* since .*: CyberArk maintenance \(worker resume\)`, string(body))
	assert.Contains(t, string(body), "intake: held: provisioning paused by an operator")

	code, res := apiCall(t, w, "POST", "/resume", "", nil)
	assert.Equal(t, http.StatusUnauthorized, code, res)
	resumed := time.Now()
	code, res = apiCall(t, w, "POST", "/resume", testOperatorToken, nil)
	require.Equal(t, http.StatusOK, code, res)
	require.Eventually(t, func() bool { return final.count() == 3 }, 20*time.Second, 50*time.Millisecond, "the held events went once resumed")
	writes := sim.Writes(0, 100).Writes
	require.NotEmpty(t, writes)
	for _, wr := range writes {
		assert.False(t, wr.Time.Before(resumed), "a write before the resume: %+v", wr)
	}
	for i := range 3 {
		assert.Equal(t, events.StatusSucceeded, final.get(t, fmt.Sprintf("held-%d", i)).Status)
	}
	assert.Equal(t, "v2", userByName(t, sim, "held@example.com")["title"], "in order")
	_, st := apiCall(t, w, "GET", "/status", "", nil)
	assert.Equal(t, false, st["pause"].(map[string]any)["paused"])

	// Pause over HTTP, resume from the command line.
	code, res = apiCall(t, w, "POST", "/pause", testOperatorToken, map[string]any{"reason": "audit"})
	require.Equal(t, http.StatusOK, code, res)
	assert.Contains(t, res["pause"].(map[string]any)["by"], "http@")
	require.NoError(t, run(ctx, []string{"resume", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Error(t, run(ctx, []string{"resume", "--reason", "x", "--nats", w.natsURL}, &out, &errOut), "--reason is for pause")
}

// restartWorker runs `worker run` again on w's configuration (and so its JetStream store).
func restartWorker(t *testing.T, w *worker) *worker {
	t.Helper()
	n := &worker{natsURL: w.natsURL, httpURL: w.httpURL, configFile: w.configFile, log: &syncBuffer{}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() { n.done <- run(ctx, []string{"run", "--config", n.configFile}, n.log, n.log) }()
	t.Cleanup(func() { n.stop(t) })
	require.Eventually(t, func() bool {
		resp, err := http.Get(n.httpURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "the worker did not start again:\n%s", n.log.String())
	return n
}
