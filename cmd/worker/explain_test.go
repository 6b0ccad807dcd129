package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// `worker explain` tells the whole story of a key created, updated, parked once and then
// deleted: each event with its requests, in order, and where the key stands now. GET
// /objects/{object}/history says the same as JSON.
func TestExplainTellsTheStoryOfAKey(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL)+"retry:\n  attempts: 2\n  baseBackoff: 1ms\n  maxBackoff: 2ms\nbreaker:\n  consecutiveFailures: 1000\n",
		filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	nc, err := nats.Connect(w.natsURL)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	final := collectOutcomeLog(t, js)
	pub := events.NewPublisher(js)
	ctx := context.Background()
	key := map[string]any{"userName": "jdoe@example.com"}
	publish := func(id string, ch events.Change) {
		_, err := pub.PublishEvent(ctx, events.NewEvent(id, "/hr/test", ch))
		require.NoError(t, err)
	}
	publish("jdoe-1", events.Change{Object: "User", Operation: events.OpCreate, Key: key, Attributes: map[string]any{"title": "Engineer"}})
	require.Eventually(t, func() bool { return final.count() == 1 }, 20*time.Second, 20*time.Millisecond)
	// The update meets a failing target: parked for the next window (every 2 s), then applied.
	sim.SetFaults(cyberarksim.Faults{Error5xxRate: 1})
	publish("jdoe-2", events.Change{Object: "User", Operation: events.OpUpdate, Key: key, Attributes: map[string]any{"title": "Manager"}})
	var out, errOut syncBuffer
	require.Eventually(t, func() bool {
		out = syncBuffer{}
		return run(ctx, []string{"parked", "list", "--nats", w.natsURL}, &out, &errOut) == nil && strings.Contains(out.String(), "jdoe-2")
	}, 20*time.Second, 50*time.Millisecond, "the update parked")
	// While parked, explain says so.
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"explain", "--object", "User", "--key", "userName=jdoe@example.com", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Regexp(t, `(?m)^now: parked since .* behind event jdoe-2 .*worker parked retry --key User/userName=jdoe@example.com$`, out.String())
	sim.SetFaults(cyberarksim.Faults{})
	require.Eventually(t, func() bool { return final.count() == 2 }, 20*time.Second, 20*time.Millisecond, "the update applied at the next window")
	publish("jdoe-3", events.Change{Object: "User", Operation: events.OpDelete, Key: key})
	require.Eventually(t, func() bool { return final.count() == 3 }, 20*time.Second, 20*time.Millisecond)

	var story string
	require.Eventually(t, func() bool {
		out = syncBuffer{}
		if run(ctx, []string{"explain", "--object", "User", "--key", "userName=jdoe@example.com", "--nats", w.natsURL}, &out, &errOut) != nil {
			return false
		}
		story = out.String()
		return strings.Contains(story, "now: deleted")
	}, 10*time.Second, 100*time.Millisecond, "the log is written asynchronously: %s", out.String())
	t.Logf("worker explain:\n%s", story)
	lines := strings.Split(strings.TrimSpace(story), "\n")
	assert.Regexp(t, `^User userName=jdoe@example.com: 4 entries in the provisioning log$`, lines[0])
	var headings []string
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "now:") {
			headings = append(headings, regexp.MustCompile(`^\S+ \S+  `).ReplaceAllString(l, ""))
		}
	}
	assert.Equal(t, []string{
		"jdoe-1  Create  succeeded (attempt 1, " + workerName(t, w) + ")",
		"jdoe-2  Update  deferred (attempt 1, " + workerName(t, w) + ")",
		"jdoe-2  Update  succeeded (attempt 2, " + workerName(t, w) + ")",
		"jdoe-3  Delete  succeeded (attempt 1, " + workerName(t, w) + ")",
	}, headings, story)
	assert.Regexp(t, `(?m)^    GET Users → 200 in [\d.]+ ms$`, story, "the lookup")
	assert.Regexp(t, `(?m)^    POST Users → 201 in [\d.]+ ms$`, story, "the create")
	assert.Regexp(t, `(?m)^    PATCH Users/[0-9a-f-]+ → 5\d\d in [\d.]+ ms`, story, "the failed update")
	assert.Regexp(t, `(?m)^    next try at the window of `, story)
	assert.Regexp(t, `(?m)^    DELETE Users/[0-9a-f-]+ → 204 in [\d.]+ ms$`, story)
	assert.Regexp(t, `(?m)^now: deleted from the target at .* by event jdoe-3$`, story)

	// The HTTP API answers the same.
	var x struct {
		Entries []events.Outcome `json:"entries"`
		Summary string           `json:"summary"`
	}
	_, body := apiCall(t, w, "GET", "/objects/User/history?key="+url.QueryEscape("userName=jdoe@example.com"), "", nil)
	raw, _ := json.Marshal(body)
	require.NoError(t, json.Unmarshal(raw, &x))
	require.Len(t, x.Entries, 4)
	assert.Equal(t, "jdoe-3", x.Entries[3].InputID)
	assert.Contains(t, x.Summary, "deleted from the target")
	code, body := apiCall(t, w, "GET", "/objects/User/history?key=jdoe", "", nil)
	assert.Equal(t, 400, code, body)

	// A key nobody provisioned says so.
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"explain", "--object", "User", "--key", "userName=nobody@example.com", "--nats", w.natsURL}, &out, &errOut))
	assert.Contains(t, out.String(), "now: no event of User userName=nobody@example.com in the provisioning log")
}

// workerName is the name the worker gives itself in outcomes.
func workerName(t *testing.T, w *worker) string {
	t.Helper()
	_, st := apiCall(t, w, "GET", "/status", "", nil)
	return fmt.Sprint(st["worker"])
}

// `worker provision` applies one event through the workers and prints its requests and outcome;
// a second run of the same event file is refused as a duplicate, naming explain.
func TestProvisionOnDemand(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	file := filepath.Join(t.TempDir(), "ada.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"specversion":"1.0","id":"ondemand-1","source":"/ops","type":"identity.user.upsert",
		"data":{"object":"User","operation":"Upsert","key":{"userName":"ada@example.com"},"attributes":{"title":"CTO"}}}`), 0o600))
	ctx := context.Background()
	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"provision", "--event", file, "--nats", w.natsURL}, &out, &errOut), "%s%s", out.String(), errOut.String())
	text := out.String()
	assert.Regexp(t, `(?m)^event ondemand-1: Upsert User userName=ada@example.com, published as sequence \d+ of IDM_EVENTS$`, text)
	assert.Regexp(t, `(?m)^\S+ \S+  succeeded \(attempt 1 by \S+, [\d.]+ ms\)$`, text)
	assert.Regexp(t, `(?m)^    POST Users → 201 in [\d.]+ ms$`, text)
	assert.Regexp(t, `(?m)^    target id [0-9a-f-]+$`, text)
	assert.Equal(t, "CTO", userByName(t, sim, "ada@example.com")["title"], "applied to the target")

	out = syncBuffer{}
	err := run(ctx, []string{"provision", "--event", file, "--nats", w.natsURL}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "was published before")
	assert.Contains(t, err.Error(), "worker explain --object User --key userName=ada@example.com")

	// A data object alone gets an id of its own; an invalid one is refused before anything is sent.
	data := filepath.Join(t.TempDir(), "data.json")
	require.NoError(t, os.WriteFile(data, []byte(`{"object":"User","operation":"Update","key":{"userName":"ada@example.com"},"attributes":{"title":"CEO"}}`), 0o600))
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"provision", "--event", data, "--nats", w.natsURL}, &out, &errOut), out.String())
	assert.Regexp(t, `(?m)^event provision-\d{8}T[\d.]+: Update User`, out.String())
	assert.Equal(t, "CEO", userByName(t, sim, "ada@example.com")["title"])
	require.NoError(t, os.WriteFile(data, []byte(`{"object":"User","operation":"Promote","key":{"userName":"ada@example.com"}}`), 0o600))
	err = run(ctx, []string{"provision", "--event", data, "--nats", w.natsURL}, &out, &errOut)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/data/operation")
}
