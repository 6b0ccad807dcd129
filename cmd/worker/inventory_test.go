package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// `worker inventory --once` runs one from the command line beside a running worker, --status
// lists it, `schedule SPEC` changes the running worker's schedule, and /status shows it all.
func TestInventoryCommands(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	for _, n := range []string{"ada@x", "alan@x"} {
		require.NoError(t, sim.Seed("Users", map[string]any{"userName": n}))
	}
	require.NoError(t, sim.Seed("Groups", map[string]any{"displayName": "staff"}))
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	ctx := context.Background()

	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "inventory run 1: baseline")
	assert.Contains(t, out.String(), "objects:   Container=0 ContainerPermission=0 Group=1 PrivilegedData=0 User=2")

	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"inventory", "--status", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "snapshot in force: run 1")
	assert.Contains(t, out.String(), "1 job(s)")
	lines := strings.Split(out.String(), "\n")
	require.GreaterOrEqual(t, len(lines), 4)
	assert.True(t, strings.HasPrefix(lines[3], "1 "), "the job row: %q", lines[3])

	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"inventory", "schedule", "@every 6h", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), `inventory schedule set to "@every 6h"`)
	require.Error(t, run(ctx, []string{"inventory", "schedule", "every hour", "--nats", w.natsURL}, &out, &errOut))

	require.Eventually(t, func() bool {
		resp, err := http.Get(w.httpURL + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Inventory struct {
				Schedule string `json:"schedule"`
				NextRun  time.Time
				Jobs     []struct {
					Run    int    `json:"run"`
					Status string `json:"status"`
				} `json:"jobs"`
			} `json:"inventory"`
		}
		if json.NewDecoder(resp.Body).Decode(&st) != nil {
			return false
		}
		return st.Inventory.Schedule == "@every 6h" && len(st.Inventory.Jobs) == 1 && st.Inventory.Jobs[0].Status == "baseline" &&
			time.Until(st.Inventory.NextRun) > 5*time.Hour
	}, 10*time.Second, 50*time.Millisecond, "the running worker takes the stored schedule")
}

// `revert` restores a hand-edited attribute through an ordinary event with its own outcome, and
// the restored value is ours: the next run reports nothing.
func TestInventoryRevertsThroughAnOrdinaryOutcome(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorkerGuarded(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), "info",
		"deletionGuard:\n  maxPercent: 0\ninventory:\n  schedule: \"@every 24h\"\n  onDrift:\n    User: revert\n")
	js := jsAt(t, w.natsURL)
	outcomes := collectOutcomeLog(t, js)
	key := map[string]any{"userName": "ada@x"}
	publishEvent(t, js, events.NewEvent("hire-ada", "/hr/test", events.Change{Object: "User", Operation: events.OpCreate, Key: key,
		Attributes: map[string]any{"title": "Engineer", "name.givenName": "Ada"}}))
	require.Equal(t, events.StatusSucceeded, outcomes.wait(t, 20*time.Second, "hire-ada")["hire-ada"].Status)

	ctx := context.Background()
	var out, errOut syncBuffer
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "baseline")

	// A hand edit in the target.
	ada := userByName(t, sim, "ada@x")
	c := &http.Client{}
	tok := simToken(t, srv.URL)
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/scim/v2/Users/"+ada["id"].(string), strings.NewReader(
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Hacker"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "Hacker", userByName(t, sim, "ada@x")["title"])

	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "drift:     external-change=1")
	assert.Contains(t, out.String(), "published: 1 drift event(s), 1 revert(s)")
	revertID := "inventory-revert-2-User-" + events.KeyToken(key)
	o := outcomes.wait(t, 20*time.Second, revertID)[revertID]
	assert.Equal(t, events.StatusSucceeded, o.Status, "%+v", o)
	assert.Equal(t, "Update", o.Operation)
	assert.Equal(t, "Engineer", userByName(t, sim, "ada@x")["title"], "the hand edit is reverted")

	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"inventory", "--once", "--config", w.configFile}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "drift:     ours=1", "the revert was our own write")
	assert.Contains(t, out.String(), "published: 0 drift event(s)")
}

// simToken obtains a token from the simulator with its default client.
func simToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/token/scimflow", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"scimflow-client"}, "client_secret": {"scimflow-secret"}, "scope": {"scim"},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

// The HTTP API shows the inventory to anyone and lets an operator (http.operatorToken) change its
// schedule and run one now; a wrong schedule is refused with what is wrong.
func TestInventoryHTTPAPI(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "ada@x"}))
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))

	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, w.httpURL+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	type inv struct {
		Schedule string `json:"schedule"`
		Jobs     []struct {
			Trigger string `json:"trigger"`
			Status  string `json:"status"`
		} `json:"jobs"`
	}
	get := func() inv {
		t.Helper()
		resp, err := http.Get(w.httpURL + "/inventory")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v inv
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return v
	}
	assert.Equal(t, "@every 24h", get().Schedule, "the configured schedule")

	code, body := call(http.MethodPut, "/inventory/schedule", "", `{"schedule": "@every 6h"}`)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body["error"], "operator token is required")
	code, _ = call(http.MethodPut, "/inventory/schedule", "wrong", `{"schedule": "@every 6h"}`)
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body = call(http.MethodPut, "/inventory/schedule", testOperatorToken, `{"schedule": "every hour"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body["error"], `schedule "every hour"`)
	code, _ = call(http.MethodPut, "/inventory/schedule", testOperatorToken, `{"schedule": "@every 6h"}`)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return get().Schedule == "@every 6h" }, 10*time.Second, 50*time.Millisecond)

	code, _ = call(http.MethodPost, "/inventory/run", "", "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, body = call(http.MethodPost, "/inventory/run", testOperatorToken, "")
	require.Equal(t, http.StatusAccepted, code, "%v", body)
	require.Eventually(t, func() bool {
		v := get()
		return len(v.Jobs) == 1 && v.Jobs[0].Trigger == "request" && v.Jobs[0].Status == "baseline"
	}, 20*time.Second, 100*time.Millisecond, "the requested run is recorded")
}

// Without http.operatorToken the API is read-only: every change is refused with the reason.
func TestOperatorActionsAreRefusedWithoutAToken(t *testing.T) {
	a := &app{cfg: &config.Config{}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/inventory/run", nil)
	req.Header.Set("Authorization", "Bearer anything")
	assert.False(t, operator(rec, req, a))
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Contains(t, rec.Body.String(), "read-only: http.operatorToken is not set")
}
