package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// switchableTarget is the simulator on a fixed loopback address that can be taken down (connection
// refused) and brought back on the same address.
type switchableTarget struct {
	sim  *cyberarksim.Server
	addr string
	srv  *http.Server
}

func startSwitchable(t *testing.T) *switchableTarget {
	t.Helper()
	sim, err := cyberarksim.New(cyberarksim.Config{})
	require.NoError(t, err)
	st := &switchableTarget{sim: sim, addr: freePort(t)}
	sim.UseURL("http://" + st.addr)
	st.up(t)
	t.Cleanup(st.down)
	return st
}

func (s *switchableTarget) up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	require.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", s.addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	s.srv = &http.Server{Handler: s.sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
}

func (s *switchableTarget) down() {
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// A target that can't be reached pauses the worker instead of failing events: nothing is
// dead-lettered or deferred, /readyz says why, and when the target is back every event succeeds
// on its first attempt (issue 8: "A broken target dead-letters everything").
func TestUnreachableTargetPausesInsteadOfFailing(t *testing.T) {
	target := startSwitchable(t)
	w := startWorker(t, cyberarkTarget("http://"+target.addr)+"breaker:\n  openTimeout: 2s\n", filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	target.down()

	var items []publish.Item
	for i := range 20 {
		ch := events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": fmt.Sprintf("p%02d@example.com", i)},
			Attributes: map[string]any{"title": "T"}}
		ev := events.NewEvent(fmt.Sprintf("pause-%02d", i), "/hr/test", ch)
		raw, err := ev.Encode()
		require.NoError(t, err)
		items = append(items, publish.Item{Line: i + 1, ID: ev.ID, Subject: events.EventSubject(ch.Object, ch.Key), Raw: raw, Object: ch.Object, Key: ch.Key})
	}
	js := w.jetStream(t)
	type result struct {
		rep *publish.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := publish.Run(context.Background(), js, items, publish.Options{Wait: true, Timeout: 2 * time.Minute})
		done <- result{rep, err}
	}()

	// Paused, and says so.
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(w.httpURL + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(body, "paused")
	}, 30*time.Second, 50*time.Millisecond, "the worker did not pause:\n%s", w.log.String())
	t.Logf("readyz while the target is down: %s", strings.TrimSpace(body))
	assert.Regexp(t, `(?m)^not ready: paused since .*\n(.*\n)*target: breaker (open|half-open|closed), concurrency limit \d+`, body)
	assert.Regexp(t, `(?m)^intake: paused since .*: .*\(a failure no event can fix; a probe of the target resumes it\)$`, body)

	target.up(t)
	res := <-done
	require.NoError(t, res.err)
	require.Empty(t, res.rep.Missing)
	for _, it := range items {
		o := res.rep.Outcomes[it.ID]
		require.NotNil(t, o, it.ID)
		assert.Equal(t, events.StatusSucceeded, o.Status, "%s: %s %+v", it.ID, o.Reason, o.Error)
		assert.Equal(t, 1, o.Attempt, "%s spent a window while the target was down", it.ID)
	}
	assert.Len(t, target.sim.Snapshot().Users, 20)
	// No deferral, no dead letter was published for the outage.
	st, err := js.Stream(context.Background(), events.OutcomesStream)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 20, info.State.Msgs, "only the 20 final outcomes")
	require.Eventually(t, func() bool {
		resp, err := http.Get(w.httpURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "ready again after the probe")
}
