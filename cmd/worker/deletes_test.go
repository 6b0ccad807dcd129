package main

import (
	"context"
	"fmt"
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

// 500 deletes above a guard of 50: the 450 beyond it send no request until approval; `worker
// deletes approve --all` applies each exactly once; `reject` yields rejected outcomes; a protected
// key is rejected at once (issue 8, "Mass delete").
func TestMassDeleteIsHeldUntilApproved(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	const users, deletes, limit = 520, 500, 50
	for i := range users {
		require.NoError(t, sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("leaver%03d@example.com", i)}))
	}
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "breakglass-01@example.com"}))
	w := startWorkerGuarded(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), "info",
		// One window for the whole test: the guard's count starts again in every window.
		fmt.Sprintf("syncWindow:\n  schedule: \"@every 24h\"\ndeletionGuard:\n  maxDeletes: %d\n  maxPercent: 0\n  protected:\n    - {object: User, property: userName, pattern: \"breakglass-*\"}\n", limit))

	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	pub := events.NewPublisher(js)
	ctx := context.Background()
	for i := range deletes {
		_, err := pub.PublishEvent(ctx, events.NewEvent(fmt.Sprintf("del-%03d", i), "/hr/test",
			events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": fmt.Sprintf("leaver%03d@example.com", i)}}))
		require.NoError(t, err)
	}
	_, err := pub.PublishEvent(ctx, events.NewEvent("del-breakglass", "/hr/test",
		events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": "breakglass-01@example.com"}}))
	require.NoError(t, err)

	var out, errOut syncBuffer
	require.Eventually(t, func() bool {
		out = syncBuffer{}
		return run(ctx, []string{"deletes", "list", "--nats", w.natsURL}, &out, &errOut) == nil &&
			strings.Contains(out.String(), fmt.Sprintf("%d held delete(s)", deletes-limit))
	}, 60*time.Second, 200*time.Millisecond, "expected %d held deletes:\n%s%s", deletes-limit, tail(out.String()), errOut.String())
	require.Eventually(t, func() bool { return final.count() == limit+1 }, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, limit, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"], "only the allowed deletes were sent")
	assert.Equal(t, events.StatusRejected, final.get(t, "del-breakglass").Status, "a protected key is rejected at once")

	// Reject five of the held ones, approve the rest.
	store, err := events.OpenParkStore(ctx, js, 1)
	require.NoError(t, err)
	held, err := store.States(ctx, -1)
	require.NoError(t, err)
	require.Len(t, held, deletes-limit)
	var rejected []string
	rejectedIDs := map[string]bool{}
	for _, st := range held[:5] {
		assert.Equal(t, events.HoldDelete, st.Hold)
		rejected = append(rejected, "--key", fmt.Sprintf("User/userName=%s", st.Key["userName"]))
		rejectedIDs[st.HeadEvent] = true
	}
	out = syncBuffer{}
	require.NoError(t, run(ctx, append([]string{"deletes", "reject", "--nats", w.natsURL}, rejected...), &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "5 key(s) released")
	require.Eventually(t, func() bool { return final.count() == limit+1+5 }, 30*time.Second, 50*time.Millisecond)
	assert.Equal(t, limit, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"], "a rejected delete sends nothing")

	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"deletes", "approve", "--all", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	require.Eventually(t, func() bool { return final.count() == deletes+1 }, 60*time.Second, 50*time.Millisecond)
	for i := range deletes {
		id := fmt.Sprintf("del-%03d", i)
		o := final.get(t, id)
		require.NotNil(t, o, id)
		if rejectedIDs[id] {
			assert.Equal(t, events.StatusRejected, o.Status, id)
		} else {
			assert.Equal(t, events.StatusSucceeded, o.Status, "%s: %s", id, o.Reason)
		}
	}
	assert.Equal(t, deletes-5, sim.Stats().Requests["DELETE /scim/v2/Users/{id}"], "each approved delete applied exactly once")
	assert.Len(t, sim.Snapshot().Users, users-deletes+5+1, "the rejected and protected users remain")
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// get returns the final outcome of id.
func (l *outcomeLog) get(t testing.TB, id string) *events.Outcome {
	t.Helper()
	return l.wait(t, 10*time.Second, id)[id]
}
