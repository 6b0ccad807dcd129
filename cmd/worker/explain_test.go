package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

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
	js := w.jetStream(t)
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

// What operators and the inventory did to a key is in its story too: drift the inventory found
// (and what it says about where the key stands), a delete the guard held, who approved it, and
// the delete that followed.
func TestExplainNamesTheInventoryAndTheOperator(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorkerGuarded(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), "info",
		// One window for the whole test (the guard counts per window): one delete, then hold.
		"syncWindow:\n  schedule: \"@every 24h\"\ndeletionGuard:\n  maxDeletes: 1\n  maxPercent: 0\n")
	js := jsAt(t, w.natsURL)
	outcomes := collectOutcomeLog(t, js)
	ctx := context.Background()
	key := map[string]any{"userName": "ada@example.com"}
	publishEvent(t, js, events.NewEvent("hire-ada", "/hr/test", events.Change{Object: "User", Operation: events.OpCreate, Key: key,
		Attributes: map[string]any{"title": "Engineer"}}))
	require.Equal(t, events.StatusSucceeded, outcomes.wait(t, 20*time.Second, "hire-ada")["hire-ada"].Status)
	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())

	// A hand edit in the target, found by the next inventory.
	simPatch(t, srv.URL, userByName(t, sim, "ada@example.com")["id"].(string), `{"op":"replace","path":"title","value":"Hacker"}`)
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "drift:     external-change=1")
	explainOut := func() string {
		t.Helper()
		out := syncBuffer{}
		require.NoError(t, run(ctx, []string{"explain", "--object", "User", "--key", "userName=ada@example.com", "--nats", w.natsURL}, &out, &errOut), errOut.String())
		return out.String()
	}
	assert.Regexp(t, `(?m)^now: in the target as id \S+: last written at .* by event hire-ada \(Create\); since then inventory run 2 found at .*: external-change: changed in the target \S+ \(title\), not by us; our last write was event hire-ada \(Create\) at \S+; reported$`,
		explainOut())

	// One delete passes the guard; ada's is held until approved.
	publishEvent(t, js, events.NewEvent("hire-bob", "/hr/test", events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": "bob@example.com"}}))
	publishEvent(t, js, events.NewEvent("fire-bob", "/hr/test", events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": "bob@example.com"}}))
	require.Equal(t, events.StatusSucceeded, outcomes.wait(t, 20*time.Second, "fire-bob")["fire-bob"].Status)
	publishEvent(t, js, events.NewEvent("fire-ada", "/hr/test", events.Change{Object: "User", Operation: events.OpDelete, Key: key}))
	var story string
	require.Eventually(t, func() bool { story = explainOut(); return strings.Contains(story, "now: held: event fire-ada") }, 20*time.Second, 100*time.Millisecond)
	assert.Contains(t, story, "worker deletes approve --key User/userName=ada@example.com")
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"deletes", "approve", "--key", "User/userName=ada@example.com", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	require.Equal(t, events.StatusSucceeded, outcomes.wait(t, 20*time.Second, "fire-ada")["fire-ada"].Status)
	assert.Nil(t, userByName(t, sim, "ada@example.com"))

	require.Eventually(t, func() bool { story = explainOut(); return strings.Contains(story, "now: deleted") }, 10*time.Second, 100*time.Millisecond)
	t.Logf("worker explain:\n%s", story)
	var headings []string
	for _, l := range strings.Split(strings.TrimSpace(story), "\n")[1:] {
		if !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "now:") {
			headings = append(headings, regexp.MustCompile(`^\S+ \S+  `).ReplaceAllString(l, ""))
		}
	}
	name := workerName(t, w)
	host, _ := os.Hostname()
	assert.Equal(t, []string{
		"hire-ada  Create  succeeded (attempt 1, " + name + ")",
		"hire-ada  -  drift found by inventory run 2 (" + name + ")",
		"fire-ada  Delete  held (attempt 1, " + name + ")",
		"fire-ada  -  approved by worker deletes approve@" + host + " (" + name + ")",
		"fire-ada  Delete  succeeded (attempt 1, " + name + ")",
	}, headings, story)
	assert.Contains(t, story, "    the held delete was approved: it runs now\n")
	assert.Regexp(t, `(?m)^now: deleted from the target at .* by event fire-ada$`, story, "the drift is older than the delete: no longer news")

	// /status counts the log's writes.
	_, st := apiCall(t, w, "GET", "/status", "", nil)
	h, _ := st["history"].(map[string]any)
	assert.Greater(t, h["written"], 0.0, "%v", st["history"])
	assert.Equal(t, 0.0, h["failed"], "%v", st["history"])
}

// simPatch applies one PATCH operation to a user in the simulator, as someone editing the target
// by hand would.
func simPatch(t *testing.T, base, id, op string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, base+"/scim/v2/Users/"+id, strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[`+op+`]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+simToken(t, base))
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
