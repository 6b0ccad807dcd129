package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// apiCall sends method path with body (JSON) and the token ("" for none) to the worker and
// decodes the JSON answer.
func apiCall(t testing.TB, w *worker, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, w.httpURL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), "%s %s answered %d: %s", method, path, resp.StatusCode, raw)
	return resp.StatusCode, out
}

// The operator API does what the commands do: held deletes approved and rejected one by one, a
// parked key shown and released by a shorter sync window set for the pool, a dead letter replayed,
// the pool shown; every action refused without the token.
func TestOperatorAPI(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	for i := range 5 {
		require.NoError(t, sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("gone%d@example.com", i)}))
	}
	w := startWorkerGuarded(t, cyberarkTarget(srv.URL)+"retry:\n  attempts: 2\n  baseBackoff: 1ms\n  maxBackoff: 2ms\nbreaker:\n  consecutiveFailures: 1000\n",
		filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), "info",
		"syncWindow:\n  schedule: \"@every 24h\"\n  maxWindows: 5\ndeletionGuard:\n  maxDeletes: 2\n  maxPercent: 0\n")
	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	pub := events.NewPublisher(js)
	ctx := context.Background()
	publishChange := func(id string, ch events.Change) {
		_, err := pub.PublishEvent(ctx, events.NewEvent(id, "/hr/test", ch))
		require.NoError(t, err)
	}

	// The pool: one member owning the 8 partitions.
	code, pool := apiCall(t, w, "GET", "/pool", "", nil)
	require.Equal(t, http.StatusOK, code, pool)
	require.Len(t, pool["members"], 1)
	parts := pool["partitions"].([]any)
	require.Len(t, parts, 8)
	for _, p := range parts {
		assert.NotEmpty(t, p.(map[string]any)["owner"], "partition %v has an owner", p)
	}

	// Five deletes, two allowed in the window: three held.
	for i := range 5 {
		publishChange(fmt.Sprintf("gone-%d", i), events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": fmt.Sprintf("gone%d@example.com", i)}})
	}
	var held map[string]any
	require.Eventually(t, func() bool {
		_, held = apiCall(t, w, "GET", "/parked?hold=delete", "", nil)
		return held["total"] == 3.0
	}, 30*time.Second, 100*time.Millisecond, "three held deletes")
	keys := held["keys"].([]any)
	first := keys[0].(map[string]any)
	assert.Equal(t, "delete", first["hold"])
	assert.True(t, strings.HasPrefix(first["keyString"].(string), "User/userName=gone"), first["keyString"])
	require.Eventually(t, func() bool { return final.count() == 2 }, 20*time.Second, 50*time.Millisecond)
	assert.Equal(t, 2, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"])

	code, body := apiCall(t, w, "POST", "/deletes/approve", "", map[string]any{"all": true})
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, body = apiCall(t, w, "POST", "/deletes/approve", "wrong", map[string]any{"all": true})
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, body = apiCall(t, w, "POST", "/deletes/approve", testOperatorToken, map[string]any{})
	assert.Equal(t, http.StatusBadRequest, code, body)
	code, body = apiCall(t, w, "POST", "/deletes/approve", testOperatorToken, map[string]any{"keys": []string{"User/userName=nobody@example.com"}})
	assert.Equal(t, http.StatusNotFound, code, body)
	assert.Contains(t, body["error"], "nobody@example.com")
	assert.Equal(t, 2, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"], "refused requests sent nothing")

	code, body = apiCall(t, w, "POST", "/deletes/approve", testOperatorToken, map[string]any{"keys": []string{first["keyString"].(string)}})
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 1.0, body["keys"])
	require.Eventually(t, func() bool { return sim.Stats().Requests["DELETE /scim/v2/Users/{id}"] == 3 }, 20*time.Second, 50*time.Millisecond)
	code, body = apiCall(t, w, "POST", "/deletes/reject", testOperatorToken, map[string]any{"all": true})
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 2.0, body["keys"])
	require.Eventually(t, func() bool { return final.count() == 5 }, 20*time.Second, 50*time.Millisecond)
	rejected := 0
	for i := range 5 {
		if final.get(t, fmt.Sprintf("gone-%d", i)).Status == events.StatusRejected {
			rejected++
		}
	}
	assert.Equal(t, 2, rejected)
	assert.Equal(t, 3, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"], "a rejected delete sends nothing")

	// A key parked for the next window, a day away; a shorter schedule set for the pool runs it.
	sim.SetFaults(cyberarksim.Faults{Error5xxRate: 1})
	publishChange("slow-1", events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": "slow@example.com"}, Attributes: map[string]any{"title": "v1"}})
	publishChange("slow-2", events.Change{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": "slow@example.com"}, Attributes: map[string]any{"title": "v2"}})
	var parked map[string]any
	require.Eventually(t, func() bool {
		_, parked = apiCall(t, w, "GET", "/parked?hold=window", "", nil)
		if parked["total"] != 1.0 {
			return false
		}
		k := parked["keys"].([]any)[0].(map[string]any)
		return len(k["events"].([]any)) == 2
	}, 30*time.Second, 100*time.Millisecond, "the key parked with its two events")
	k := parked["keys"].([]any)[0].(map[string]any)
	next, err := time.Parse(time.RFC3339, k["nextWindow"].(string))
	require.NoError(t, err)
	assert.Greater(t, time.Until(next), 23*time.Hour, "parked for the next window of @every 24h")
	sim.SetFaults(cyberarksim.Faults{})

	code, body = apiCall(t, w, "PUT", "/syncwindow/schedule", testOperatorToken, map[string]any{"schedule": "every second"})
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Contains(t, body["error"], `"every second"`)
	code, body = apiCall(t, w, "PUT", "/syncwindow/schedule", "", map[string]any{"schedule": "@every 2s"})
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, body = apiCall(t, w, "PUT", "/syncwindow/schedule", testOperatorToken, map[string]any{"schedule": "@every 2s"})
	require.Equal(t, http.StatusOK, code, body)
	require.Eventually(t, func() bool {
		users := sim.Snapshot().Users
		for _, u := range users {
			if u["userName"] == "slow@example.com" {
				return u["title"] == "v2"
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond, "the parked key ran at the new schedule's window, in order")
	_, win := apiCall(t, w, "GET", "/syncwindow", "", nil)
	assert.Equal(t, "@every 2s", win["schedule"])
	assert.Equal(t, "operator", win["source"])
	assert.Equal(t, "@every 24h", win["configured"])
	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"window", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "schedule: @every 2s (set ")
	assert.Error(t, run(ctx, []string{"window", "schedule", "hourly", "--nats", w.natsURL}, &out, &errOut))
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"window", "schedule", "--reset", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "reset to the configuration's")
	require.Eventually(t, func() bool {
		_, win = apiCall(t, w, "GET", "/syncwindow", "", nil)
		return win["schedule"] == "@every 24h" && win["source"] == "config"
	}, 10*time.Second, 50*time.Millisecond, "the worker went back to the configured schedule: %v", win)

	// A dead letter (an object the model does not know), replayed: it fails again and returns to
	// the DLQ once.
	publishChange("bad-1", events.Change{Object: "Printer", Operation: events.OpCreate, Key: map[string]any{"name": "p1"}})
	var dlq map[string]any
	require.Eventually(t, func() bool {
		_, dlq = apiCall(t, w, "GET", "/dlq", "", nil)
		return dlq["total"] == 1.0
	}, 20*time.Second, 100*time.Millisecond)
	dl := dlq["deadLetters"].([]any)[0].(map[string]any)
	assert.Equal(t, "bad-1", dl["eventId"])
	code, body = apiCall(t, w, "POST", "/dlq/replay", "", map[string]any{"seq": dl["seq"]})
	assert.Equal(t, http.StatusUnauthorized, code, body)
	code, body = apiCall(t, w, "POST", "/dlq/replay", testOperatorToken, map[string]any{"seq": 9999})
	assert.Equal(t, http.StatusNotFound, code, body)
	code, body = apiCall(t, w, "POST", "/dlq/replay", testOperatorToken, map[string]any{"seq": dl["seq"]})
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, true, body["removed"], body)
	assert.Contains(t, body["republishedAs"], "bad-1")
	require.Eventually(t, func() bool {
		_, dlq = apiCall(t, w, "GET", "/dlq", "", nil)
		return dlq["total"] == 1.0 && dlq["deadLetters"].([]any)[0].(map[string]any)["seq"] != dl["seq"]
	}, 20*time.Second, 100*time.Millisecond, "the replayed event failed again and is back in the DLQ, once")
	code, body = apiCall(t, w, "GET", "/dlq?since=yesterday", "", nil)
	assert.Equal(t, http.StatusBadRequest, code, body)
}
