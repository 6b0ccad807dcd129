package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

const enterpriseExt = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// newHireFeed is what an HR feed sends on a busy morning, all at once: users whose managers are
// created by other events of the same batch (often after them), groups, and memberships naming
// users created in the same batch (half of them before the user's create). It returns the events with the state they imply.
func newHireFeed(users, groups int, seed uint64) (items []publish.Item, manager map[string]string, members map[string][]string) {
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("hire%04d@example.com", i)
	}
	manager = map[string]string{}
	members = map[string][]string{}
	var evs []*events.Event
	add := func(ch events.Change) {
		evs = append(evs, events.NewEvent(fmt.Sprintf("nh-%06d", len(evs)+1), "/hr/test", ch))
	}
	for g := range groups {
		members[fmt.Sprintf("team-%d", g)] = nil
		add(events.Change{Object: "Group", Operation: events.OpCreate, Key: map[string]any{"displayName": fmt.Sprintf("team-%d", g)}})
	}
	for i, u := range names {
		attrs := map[string]any{"title": "Engineer", "emails[].value": []any{u}}
		if i > 0 {
			// Often a later hire: the manager's create comes after the report's.
			m := names[rnd.IntN(users)]
			if m != u {
				manager[u] = m
				attrs[enterpriseExt+":manager.value"] = m
			}
		}
		add(events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": u}, Attributes: attrs})
		if g := rnd.IntN(groups + 1); g < groups && i%3 == 0 {
			// Half the memberships are published before their user's create.
			grp := fmt.Sprintf("team-%d", g)
			members[grp] = append(members[grp], u)
			member := events.Change{Object: "Group", Operation: events.OpAddAssignment, Key: map[string]any{"displayName": grp},
				Attributes: map[string]any{"members[].value": []any{u}}}
			if rnd.IntN(2) == 0 {
				n := len(evs)
				add(member)
				evs[n-1], evs[n] = evs[n], evs[n-1] // before the user's create
			} else {
				add(member)
			}
		}
	}
	for i, ev := range evs {
		raw, _ := ev.Encode()
		items = append(items, publish.Item{Line: i + 1, ID: ev.ID, Subject: events.EventSubject(ev.Data.Object, ev.Data.Key), Raw: raw,
			Object: ev.Data.Object, Key: ev.Data.Key})
	}
	return items, manager, members
}

// A new-hire feed whose managers and group members are created in the same batch completes: every
// object is created at once and its references are set as soon as their targets exist; none is
// deferred to a later window or dead-lettered (issue 7 item 2).
func TestNewHireFeedSetsEveryReference(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	items, manager, members := newHireFeed(1000, 5, 7)

	js := w.jetStream(t)
	start := time.Now()
	rep, err := publish.Run(context.Background(), js, items, publish.Options{Wait: true, Timeout: 3 * time.Minute})
	require.NoError(t, err)
	t.Logf("%d events in %s", len(items), time.Since(start).Round(time.Millisecond))
	require.Empty(t, rep.Missing, "events without an outcome")
	for _, it := range items {
		o := rep.Outcomes[it.ID]
		require.NotNil(t, o, it.ID)
		assert.Equal(t, events.StatusSucceeded, o.Status, "%s %s %v: %s", it.ID, it.Object, it.Key, o.Reason)
		assert.Equal(t, 1, o.Attempt, "%s waited for a later sync window", it.ID)
	}

	st := sim.Snapshot()
	byID := map[string]string{}
	got := map[string]string{}
	for _, u := range st.Users {
		byID[u["id"].(string)] = u["userName"].(string)
	}
	for _, u := range st.Users {
		if ext, ok := u[enterpriseExt].(map[string]any); ok {
			if m, ok := ext["manager"].(map[string]any); ok {
				got[u["userName"].(string)] = byID[m["value"].(string)]
			}
		}
	}
	assert.Len(t, st.Users, 1000)
	assert.Equal(t, manager, got, "every manager reference is set, to the manager's id")
	gotMembers := map[string][]string{}
	for _, g := range st.Groups {
		var ms []string
		list, _ := g["members"].([]any)
		for _, m := range list {
			ms = append(ms, byID[m.(map[string]any)["value"].(string)])
		}
		sort.Strings(ms)
		gotMembers[g["displayName"].(string)] = ms
	}
	for g := range members {
		sort.Strings(members[g])
	}
	assert.Equal(t, members, gotMembers, "every membership is set")
}

// An update published right after its user's create waits for the create to finish, references
// included, and applies last (issue 7 item 3: an Update overtook its key's Create that waited for
// a manager, was dead-lettered not_found, and the Create later applied the old title).
func TestUpdateNeverOvertakesItsCreateWaitingForAManager(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	var items []publish.Item
	for i, ch := range []events.Change{
		{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": "rep@example.com"},
			Attributes: map[string]any{"title": "Old title", enterpriseExt + ":manager.value": "boss@example.com"}},
		{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": "rep@example.com"},
			Attributes: map[string]any{"title": "New title"}},
		{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": "boss@example.com"},
			Attributes: map[string]any{"title": "Boss"}},
	} {
		ev := events.NewEvent(fmt.Sprintf("ord-%d", i+1), "/hr/test", ch)
		raw, err := ev.Encode()
		require.NoError(t, err)
		items = append(items, publish.Item{Line: i + 1, ID: ev.ID, Subject: events.EventSubject(ch.Object, ch.Key), Raw: raw, Object: ch.Object, Key: ch.Key})
	}
	js := w.jetStream(t)
	rep, err := publish.Run(context.Background(), js, items, publish.Options{Wait: true, Timeout: time.Minute})
	require.NoError(t, err)
	for _, it := range items {
		o := rep.Outcomes[it.ID]
		require.NotNil(t, o, it.ID)
		assert.Equal(t, events.StatusSucceeded, o.Status, "%s: %s %+v", it.ID, o.Reason, o.Error)
	}
	create, update := rep.Outcomes["ord-1"], rep.Outcomes["ord-2"]
	assert.True(t, update.Time.After(create.Time), "the update finished before its create: %s vs %s", update.Time, create.Time)
	users := map[string]map[string]any{}
	for _, u := range sim.Snapshot().Users {
		users[u["userName"].(string)] = u
	}
	rep1 := users["rep@example.com"]
	require.NotNil(t, rep1)
	assert.Equal(t, "New title", rep1["title"], "the create applied the old title after the update")
	mgr := rep1[enterpriseExt].(map[string]any)["manager"].(map[string]any)
	assert.Equal(t, users["boss@example.com"]["id"], mgr["value"], "the manager is set once the boss exists")
}
