package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/metrics"
	"github.com/scimflow/scimflow/internal/natstest"
)

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// hasSeries reports whether family name has a series whose labels include want.
func hasSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) bool {
	f := fams[name]
	if f == nil {
		return false
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return true
		}
	}
	return false
}

// value is the value of the series of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	require.NotNil(t, fams[name], "no family %s", name)
	total, found := sum(fams, name, want)
	require.True(t, found, "no series %s%v", name, want)
	return total
}

// sum adds up the series of family name whose labels include want (a histogram counts its
// samples); found is false when there is none.
func sum(fams map[string]*dto.MetricFamily, name string, want map[string]string) (total float64, found bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			ok := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					ok = true
				}
			}
			if !ok {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total, found
}

// /metrics exports every family of internal/metrics with its type, and the figures agree with
// what the simulator received and the outcomes published.
func TestMetricsExposition(t *testing.T) {
	sim, w := startOneDeleteWorker(t, 2)
	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	publishChange := func(id string, ch events.Change) { publishEvent(t, js, events.NewEvent(id, "/hr/test", ch)) }
	const creates = 10
	for i := range creates {
		publishChange(fmt.Sprintf("m-%d", i), events.Change{Object: "User", Operation: events.OpCreate,
			Key: map[string]any{"userName": fmt.Sprintf("m%d@example.com", i)}, Attributes: map[string]any{"title": "Engineer"}})
	}
	for i := range 2 {
		publishChange(fmt.Sprintf("leave-%d", i), events.Change{Object: "User", Operation: events.OpDelete,
			Key: map[string]any{"userName": fmt.Sprintf("leaver%d@example.com", i)}})
	}
	publishChange("bad-1", events.Change{Object: "Printer", Operation: events.OpCreate, Key: map[string]any{"name": "p1"}})
	// 10 creates, 1 delete allowed, 1 dead letter; the other delete held.
	require.Eventually(t, func() bool { return final.count() == creates+2 }, 30*time.Second, 50*time.Millisecond)
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = scrape(t, w.httpURL)
		// The hold is stored before its outcome is published and counted: wait for both. A
		// subscriber sees an outcome before the worker has counted it and acknowledged its event:
		// wait for the last of those too.
		outcomes, _ := sum(fams, "scimflow_outcomes_total", nil)
		samples, _ := sum(fams, "scimflow_event_latency_seconds", nil)
		acks, _ := sum(fams, "scimflow_jetstream_write_seconds", map[string]string{"write": "ack"})
		return fams["scimflow_held_deletes"] != nil && fams["scimflow_held_deletes"].Metric[0].Gauge.GetValue() == 1 &&
			hasSeries(fams, "scimflow_outcomes_total", map[string]string{"operation": "Delete", "status": "held"}) &&
			outcomes >= creates+3 && samples >= creates+2 && acks >= creates+2
	}, 20*time.Second, 100*time.Millisecond, "one held delete, and every outcome counted and its event acknowledged")

	types := map[string]dto.MetricType{"counter": dto.MetricType_COUNTER, "gauge": dto.MetricType_GAUGE, "histogram": dto.MetricType_HISTOGRAM}
	for _, f := range metrics.Families {
		if strings.HasPrefix(f.Name, "scimflow_inventory_") && f.Name != "scimflow_inventory_running" {
			continue // no inventory has run: the last job's families are absent until one has
		}
		got := fams[f.Name]
		if !assert.NotNil(t, got, "family %s is not exported", f.Name) {
			continue
		}
		assert.Equal(t, types[f.Type], got.GetType(), f.Name)
		assert.NotEmpty(t, got.GetHelp(), f.Name)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		assert.NotNil(t, fams[name], "the Go and process collectors: %s", name)
	}

	assert.Equal(t, float64(creates), value(t, fams, "scimflow_outcomes_total", map[string]string{"object": "User", "operation": "Create", "status": "succeeded"}))
	assert.Equal(t, 1.0, value(t, fams, "scimflow_outcomes_total", map[string]string{"object": "User", "operation": "Delete", "status": "succeeded"}))
	assert.Equal(t, 1.0, value(t, fams, "scimflow_outcomes_total", map[string]string{"operation": "Delete", "status": "held"}))
	assert.Equal(t, 1.0, value(t, fams, "scimflow_dead_letters_total", map[string]string{"object": "Printer", "class": "invalid"}))
	assert.Equal(t, float64(creates+3), value(t, fams, "scimflow_outcomes_total", nil), "one outcome per event published (the held delete's is held)")
	assert.Equal(t, float64(creates+2), value(t, fams, "scimflow_event_latency_seconds", nil), "one latency sample per final outcome")
	assert.Equal(t, float64(sim.Stats().Requests["POST /scim/v2/Users"]), value(t, fams, "scimflow_scim_requests_total", map[string]string{"method": "POST", "resource": "Users", "status": "201"}))
	assert.Equal(t, 1.0, value(t, fams, "scimflow_scim_requests_total", map[string]string{"method": "DELETE", "resource": "Users", "status": "204"}))
	assert.Equal(t, float64(creates), value(t, fams, "scimflow_scim_request_duration_seconds", map[string]string{"method": "POST", "resource": "Users"}))
	// Every outcome published is a JetStream write on its event's path; every write of ours to the
	// target (10 creates, 1 delete) an applied record; every finished event a confirmed ack.
	assert.Equal(t, float64(creates+3), value(t, fams, "scimflow_jetstream_write_seconds", map[string]string{"write": "outcome"}))
	assert.Equal(t, float64(creates+1), value(t, fams, "scimflow_jetstream_write_seconds", map[string]string{"write": "applied"}))
	assert.GreaterOrEqual(t, value(t, fams, "scimflow_jetstream_write_seconds", map[string]string{"write": "ack"}), float64(creates+2))
	// Every created user's new id is written to the key → id bucket (the deletes' fresh lookups
	// may write theirs too).
	assert.GreaterOrEqual(t, value(t, fams, "scimflow_jetstream_write_seconds", map[string]string{"write": "idcache"}), float64(creates))
	assert.GreaterOrEqual(t, value(t, fams, "scimflow_token_requests_total", map[string]string{"result": "ok"}), 1.0)
	assert.Equal(t, 1.0, value(t, fams, "scimflow_target_breaker_state", map[string]string{"state": "closed"}))
	assert.Equal(t, 8.0, value(t, fams, "scimflow_partitions_owned", nil))
	assert.Len(t, fams["scimflow_consumer_pending_events"].Metric, 8, "lag of each owned partition")
	assert.Equal(t, 0.0, value(t, fams, "scimflow_parked_keys", nil), "a held delete is not a parked key")
	assert.GreaterOrEqual(t, value(t, fams, "scimflow_events_received_total", nil), float64(creates+3))

	// The inventory's families appear once one has run: the worker runs it, so it also observes
	// the job's duration.
	code, res := apiCall(t, w, "POST", "/inventory/run", testOperatorToken, nil)
	require.Equal(t, http.StatusAccepted, code, res)
	require.Eventually(t, func() bool {
		fams = scrape(t, w.httpURL)
		return fams["scimflow_inventory_objects"] != nil && fams["scimflow_inventory_duration_seconds"] != nil
	}, 20*time.Second, 200*time.Millisecond, "the last inventory's figures")
	assert.Equal(t, float64(creates+1), value(t, fams, "scimflow_inventory_objects", map[string]string{"object": "User"}), "10 created, 1 left of 2 minus the deleted one")
	assert.Equal(t, 1.0, value(t, fams, "scimflow_inventory_last_status", map[string]string{"status": "baseline"}))
	assert.Equal(t, 1.0, value(t, fams, "scimflow_inventory_duration_seconds", map[string]string{"status": "baseline"}), "one job observed")
	assert.Equal(t, 0.0, value(t, fams, "scimflow_inventory_running", nil))
	assert.Equal(t, 0.0, value(t, fams, "scimflow_inventory_drift", map[string]string{"class": "missing"}), "a baseline reports no drift, as 0")
	assert.Positive(t, value(t, fams, "scimflow_inventory_last_duration_seconds", nil))
	for _, f := range metrics.Families {
		got := fams[f.Name]
		if assert.NotNil(t, got, "family %s is not exported after an inventory", f.Name) {
			assert.Equal(t, types[f.Type], got.GetType(), f.Name)
		}
	}
	// Nothing is exported beside the table but the Go and process collectors.
	inTable := map[string]bool{}
	for _, f := range metrics.Families {
		inTable[f.Name] = true
	}
	for name := range fams {
		assert.True(t, inTable[name] || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_"),
			"%s is exported but not in metrics.Families (the dashboard and docs checks read the table)", name)
	}
}

// /readyz answers 503 with the reason when NATS is stopped, and names the breaker either way.
func TestReadyzSaysWhyWhenNATSIsDown(t *testing.T) {
	ns := natstest.MustStart(t)
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	dir := t.TempDir()
	httpAddr := freePort(t)
	cfg := fmt.Sprintf("nats:\n  url: %s\n  partitions: 4\ntarget:\n%s\nmodel: %s\nworker:\n  drainTimeout: 2s\nhttp:\n  listen: %s\n",
		ns.URL, indent(cyberarkTarget(srv.URL), "  "), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"), httpAddr)
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", file}, logs, logs) }()
	defer func() {
		// With NATS down, nothing of the shutdown may wait on it: a drain of each partition's
		// pull, the pool's farewell, a pin or a watch's consumer would each wait out its own
		// timeout (10 s, 2 s, 5 s, 5 s) where the drain deadline is 2 s.
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("the worker did not stop within 10 s of its signal with NATS down (drainTimeout 2s):\n%s", logs)
		}
	}()
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var code int
	var body string
	require.Eventually(t, func() bool { code, body = readyz(); return code == http.StatusOK }, 20*time.Second, 50*time.Millisecond, "ready:\n%s", logs)
	assert.Contains(t, body, "ready\nnats: connected to "+ns.URL)
	assert.Contains(t, body, "consumers: 4 partitions bound")
	assert.Contains(t, body, "target: breaker closed")
	assert.Contains(t, body, "intake: running")

	ns.Stop()
	require.Eventually(t, func() bool { code, body = readyz(); return code == http.StatusServiceUnavailable }, 20*time.Second, 50*time.Millisecond,
		"not ready once NATS is down: %d %s", code, body)
	assert.True(t, strings.HasPrefix(body, "not ready: not connected to NATS at "+ns.URL), body)
	assert.Contains(t, body, "nats: disconnected from")
	assert.Contains(t, body, "target: breaker closed", "the breaker is stated either way")
	assert.Contains(t, body, "intake: ")
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "alive all the same")
}
