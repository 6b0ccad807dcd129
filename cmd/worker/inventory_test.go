package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
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
