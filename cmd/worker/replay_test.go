package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// reconciledModel is the CyberArk users and groups with reconciliation on update: an event is
// planned against the object as the target holds it, so one whose state already matches sends
// nothing (skipped). Replays rely on that to converge without extra writes.
const reconciledModel = `description: users and groups, reconciled on update
objects:
  - name: User
    resource: Users
    schemas: [urn:ietf:params:scim:schemas:core:2.0:User]
    properties:
      - {name: userName, isKey: true}
      - {name: name.givenName}
      - {name: title}
    details:
      UpdateMethod: patch
      ReconcileOnUpdate: true
    taskMappings:
      Create:
        - {name: name.givenName, action: add}
        - {name: title, action: add}
      Update:
        - {name: name.givenName, action: modify}
        - {name: title, action: modify}
  - name: Group
    resource: Groups
    schemas: [urn:ietf:params:scim:schemas:core:2.0:Group]
    properties:
      - {name: displayName, isKey: true}
      - name: members[].value
        type: reference
        referenceObject: Users
        referenceLookupProperty: userName
    details:
      UpdateMethod: patch
      ReconcileOnUpdate: true
    taskMappings:
      Create:
        - {name: "members[].value", action: add}
      AddAssignment:
        - {name: "members[].value", action: add}
`

// scimAdmin changes the simulator directly, behind the worker's back, as another administrator
// would.
type scimAdmin struct {
	t     testing.TB
	base  string
	token string
}

func newSCIMAdmin(t testing.TB, srvURL string) *scimAdmin {
	t.Helper()
	resp, err := http.PostForm(srvURL+"/oauth2/token/scimflow", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"scimflow-client"}, "client_secret": {"scimflow-secret"}, "scope": {"scim"},
	})
	require.NoError(t, err)
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)
	return &scimAdmin{t: t, base: srvURL + "/scim/v2/", token: tok.AccessToken}
}

func (a *scimAdmin) do(method, path string, body any) {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(a.t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.base+path, r)
	require.NoError(a.t, err)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	require.Less(a.t, resp.StatusCode, 300, "%s %s: %s", method, path, out)
}

// TestReplayConvergesTheTarget: events went through; then someone deleted a user, changed
// another's title and took a member out of a group directly in the target. `worker replay`
// republishes the retained events; the worker plans each against the target as it is now: the
// target converges to what the events say, nothing is duplicated, and the events whose state
// already matches end skipped with no write the target accepted.
func TestReplayConvergesTheTarget(t *testing.T) {
	t.Parallel()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	model := filepath.Join(t.TempDir(), "model.yaml")
	require.NoError(t, os.WriteFile(model, []byte(reconciledModel), 0o600))
	w := startWorker(t, cyberarkTarget(srv.URL), model)
	js := jsAt(t, w.natsURL)
	outcomes := collectOutcomeLog(t, js)

	user := func(id, op, name string, attrs map[string]any) *events.Event {
		return events.NewEvent(id, "/hr/test", events.Change{Object: "User", Operation: op, Key: map[string]any{"userName": name}, Attributes: attrs})
	}
	group := func(id, op string, members ...any) *events.Event {
		return events.NewEvent(id, "/hr/test", events.Change{Object: "Group", Operation: op, Key: map[string]any{"displayName": "Eng"},
			Attributes: map[string]any{"members[].value": members}})
	}
	evs := []*events.Event{
		user("r1", events.OpCreate, "alice@example.com", map[string]any{"name.givenName": "Alice", "title": "Engineer"}),
		user("r2", events.OpCreate, "bob@example.com", map[string]any{"name.givenName": "Bob", "title": "Analyst"}),
		user("r3", events.OpCreate, "carol@example.com", map[string]any{"name.givenName": "Carol", "title": "Designer"}),
		// A routine re-sync that changes nothing.
		user("r4", events.OpUpdate, "alice@example.com", map[string]any{"title": "Engineer"}),
		group("r5", events.OpCreate, "alice@example.com", "bob@example.com"),
		group("r6", events.OpAddAssignment, "carol@example.com"),
		user("r7", events.OpCreate, "dave@example.com", map[string]any{"title": "Intern"}),
		user("r8", events.OpDelete, "dave@example.com", nil),
	}
	var ids []string
	var firstSeq uint64
	for i, ev := range evs {
		seq := publishEvent(t, js, ev)
		if i == 0 {
			firstSeq = seq
		}
		ids = append(ids, ev.ID)
		// One at a time: the group needs its members to exist, as an HR feed would send it.
		outcomes.wait(t, 20*time.Second, ev.ID)
	}
	for id, o := range outcomes.wait(t, time.Second, ids...) {
		want := events.StatusSucceeded
		if id == "r4" {
			want = events.StatusSkipped // the title is already Engineer
		}
		require.Equal(t, want, o.Status, "%s: %s", id, o.Reason)
	}
	want := map[string]string{"alice@example.com": "Engineer", "bob@example.com": "Analyst", "carol@example.com": "Designer"}
	assertConverged(t, sim, want, []string{"alice@example.com", "bob@example.com", "carol@example.com"})

	// Behind the worker's back.
	admin := newSCIMAdmin(t, srv.URL)
	alice, bob, carol := userByName(t, sim, "alice@example.com"), userByName(t, sim, "bob@example.com"), userByName(t, sim, "carol@example.com")
	admin.do("DELETE", "Users/"+bob["id"].(string), nil)
	admin.do("PATCH", "Users/"+carol["id"].(string), map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "title", "value": "Tampered"}},
	})
	eng := sim.Snapshot().Groups[0]
	admin.do("PATCH", "Groups/"+eng["id"].(string), map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, alice["id"])}},
	})
	require.Nil(t, userByName(t, sim, "bob@example.com"))
	require.Equal(t, "Tampered", userByName(t, sim, "carol@example.com")["title"])

	// A dry run shows what would go and sends nothing: once it returned, whatever it published
	// would be in the stream (publishes are acknowledged), and the stream holds nothing new.
	lastSeq := streamLastSeq(t, js, events.EventsStream)
	out, errOut, err := runCmd(t, "replay", "--from-seq", fmt.Sprint(firstSeq), "--dry-run", "--nats", w.natsURL)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "would republish as r1/replay/")
	assert.Contains(t, out, "would republish 8")
	assert.Equal(t, lastSeq, streamLastSeq(t, js, events.EventsStream), "a dry run publishes nothing")

	sim.ResetStats()
	out, errOut, err = runCmd(t, "replay", "--from-seq", fmt.Sprint(firstSeq), "--wait", "30s", "--nats", w.natsURL)
	require.NoError(t, err, "%s\n%s", out, errOut)
	t.Logf("$ worker replay --from-seq %d --wait 30s\n%s", firstSeq, out)
	assert.Contains(t, out, "republished 8")
	assert.Contains(t, out, "by object: Group 2, User 6")
	assert.Contains(t, out, "succeeded 5, skipped 3")
	replayed := map[string]*events.Outcome{}
	for i, ev := range evs {
		id := events.ReplayMsgID(ev.ID, firstSeq+uint64(i))
		replayed[ev.ID] = outcomes.wait(t, 5*time.Second, id)[id]
		assert.Equal(t, ev.ID, replayed[ev.ID].InputID)
	}
	status := func(id string) events.Status { return replayed[id].Status }
	// Already as the events say (alice untouched, carol still in the group): nothing written.
	for _, id := range []string{"r1", "r4", "r6"} {
		assert.Equal(t, events.StatusSkipped, status(id), "%s: %s", id, replayed[id].Reason)
	}
	// bob created again, carol's title and the group's members put back, dave created and
	// deleted again in order.
	for _, id := range []string{"r2", "r3", "r5", "r7", "r8"} {
		assert.Equal(t, events.StatusSucceeded, status(id), "%s: %s", id, replayed[id].Reason)
	}
	for id, o := range replayed {
		if o.Status != events.StatusSkipped {
			continue
		}
		for _, c := range o.Requests {
			if c.Method != "GET" {
				assert.GreaterOrEqual(t, c.Status, 400, "%s was skipped yet %s %s was accepted (%d)", id, c.Method, c.Path, c.Status)
			}
		}
	}
	assertConverged(t, sim, want, []string{"alice@example.com", "bob@example.com", "carol@example.com"})
	assert.NotEqual(t, bob["id"], userByName(t, sim, "bob@example.com")["id"], "bob was created again")

	// A second replay of the same range within the duplicate window republishes nothing.
	out, errOut, err = runCmd(t, "replay", "--from-seq", fmt.Sprint(firstSeq), "--to-seq", fmt.Sprint(firstSeq+7), "--nats", w.natsURL)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "republished 0, 8 already replayed")

	// Usage errors.
	for _, args := range [][]string{
		{"replay", "--nats", w.natsURL},
		{"replay", "--since", "1h", "--from-seq", "1", "--nats", w.natsURL},
		{"replay", "--from-seq", "5", "--to-seq", "2", "--nats", w.natsURL},
		{"replay", "--since", "soon", "--nats", w.natsURL},
		{"replay", "--from-seq", "1", "--object", "User.>", "--nats", w.natsURL},
	} {
		_, _, err := runCmd(t, args...)
		assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}), "%v", args)
	}
}

// assertConverged checks the simulator holds exactly the users of want with their titles (each
// once), and one group Eng whose members are exactly members, each once.
func assertConverged(t *testing.T, sim *cyberarksim.Server, want map[string]string, members []string) {
	t.Helper()
	st := sim.Snapshot()
	got := map[string]string{}
	byID := map[string]string{}
	for _, u := range st.Users {
		name := u["userName"].(string)
		require.NotContains(t, got, name, "a second user %s", name)
		title, _ := u["title"].(string)
		got[name] = title
		byID[u["id"].(string)] = name
	}
	assert.Equal(t, want, got)
	require.Len(t, st.Groups, 1, "one group")
	var names []string
	ms, _ := st.Groups[0]["members"].([]any)
	for _, m := range ms {
		names = append(names, byID[m.(map[string]any)["value"].(string)])
	}
	sort.Strings(names)
	assert.Equal(t, members, names, "each member once, none dangling")
}
