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

// A key whose create keeps failing with 5xx is parked with its later events; `worker parked list`
// shows it and `worker parked retry` runs it now, in order.
func TestParkedListAndRetry(t *testing.T) {
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL)+"retry:\n  attempts: 2\n  baseBackoff: 1ms\n  maxBackoff: 2ms\nbreaker:\n  consecutiveFailures: 1000\n",
		filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	sim.SetFaults(cyberarksim.Faults{Error5xxRate: 1})

	js := w.jetStream(t)
	pub := events.NewPublisher(js)
	ctx := context.Background()
	key := map[string]any{"userName": "slow@example.com"}
	for i, ch := range []events.Change{
		{Object: "User", Operation: events.OpCreate, Key: key, Attributes: map[string]any{"title": "v1"}},
		{Object: "User", Operation: events.OpUpdate, Key: key, Attributes: map[string]any{"title": "v2"}},
		{Object: "User", Operation: events.OpUpdate, Key: key, Attributes: map[string]any{"title": "v3"}},
	} {
		_, err := pub.PublishEvent(ctx, events.NewEvent(fmt.Sprintf("slow-%d", i+1), "/hr/test", ch))
		require.NoError(t, err)
	}
	var out, errOut syncBuffer
	require.Eventually(t, func() bool {
		out, errOut = syncBuffer{}, syncBuffer{}
		err := run(ctx, []string{"parked", "list", "--nats", w.natsURL}, &out, &errOut)
		return err == nil && strings.Contains(out.String(), "slow-1,slow-2,slow-3")
	}, 30*time.Second, 100*time.Millisecond, "the key was not parked with its three events:\n%s%s\n%s", out.String(), errOut.String(), w.log.String())
	assert.Contains(t, out.String(), "userName=slow@example.com")
	assert.Contains(t, out.String(), "1 parked key(s)")
	assert.Empty(t, sim.Snapshot().Users)

	sim.SetFaults(cyberarksim.Faults{})
	out = syncBuffer{}
	require.NoError(t, run(ctx, []string{"parked", "retry", "--key", "User/userName=slow@example.com", "--nats", w.natsURL}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "1 key(s) released")
	require.Eventually(t, func() bool {
		users := sim.Snapshot().Users
		return len(users) == 1 && users[0]["title"] == "v3"
	}, 20*time.Second, 50*time.Millisecond, "the parked events did not apply, in order:\n%s", w.log.String())
	require.Eventually(t, func() bool {
		out = syncBuffer{}
		return run(ctx, []string{"parked", "list", "--nats", w.natsURL}, &out, &errOut) == nil && strings.Contains(out.String(), "0 parked key(s)")
	}, 10*time.Second, 50*time.Millisecond, out.String())
}
