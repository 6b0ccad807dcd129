package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/events"
)

// listenHTTP prepares /healthz (the process is up), /readyz (connected to NATS, every partition's
// consumer bound), /status (JSON) and /metrics (Prometheus text format) on http.listen; the caller
// serves ln.
func listenHTTP(a *app) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", a.cfg.HTTP.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("http.listen %s: %w", a.cfg.HTTP.Listen, err)
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.nc.IsConnected() {
			http.Error(w, "not connected to NATS", http.StatusServiceUnavailable)
			return
		}
		if err := a.consumer.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{
			"worker":    a.cfg.Worker.Name,
			"startedAt": started.UTC(),
			"nats":      map[string]any{"url": a.natsURL(), "connected": a.nc.IsConnected(), "embedded": a.embedded != nil},
			"consumer":  a.consumer.Stats(),
			"target":    map[string]any{"baseURI": a.cfg.Target.BaseURI, "breaker": a.target.BreakerState(), "concurrencyLimit": a.target.Limit()},
			"syncWindow": map[string]any{
				"schedule": a.cfg.SyncWindow.Schedule, "maxWindows": a.cfg.SyncWindow.MaxWindows,
				"referenceRetries": max(a.cfg.SyncWindow.ReferenceRetries, 0), "referenceBackoff": a.cfg.SyncWindow.ReferenceBackoff.String(),
			},
			"partitions":    a.cfg.NATS.Partitions,
			"ownPartitions": a.cfg.Worker.Partitions,
			"inventory":     inventoryStatus(r.Context(), a),
		})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		writeMetrics(w, a)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return srv, ln, nil
}

func writeMetrics(w interface{ Write([]byte) (int, error) }, a *app) {
	st := a.consumer.Stats()
	var b strings.Builder
	b.WriteString("# HELP scimflow_events_received_total Events delivered to this worker.\n# TYPE scimflow_events_received_total counter\n")
	fmt.Fprintf(&b, "scimflow_events_received_total %d\n", st.Received)
	b.WriteString("# HELP scimflow_outcomes_total Outcomes published, by status.\n# TYPE scimflow_outcomes_total counter\n")
	statuses := make([]string, 0, len(st.ByStatus))
	for s := range st.ByStatus {
		statuses = append(statuses, string(s))
	}
	sort.Strings(statuses)
	for _, s := range statuses {
		fmt.Fprintf(&b, "scimflow_outcomes_total{status=%q} %d\n", s, st.ByStatus[events.Status(s)])
	}
	b.WriteString("# HELP scimflow_events_in_flight Events being processed now.\n# TYPE scimflow_events_in_flight gauge\n")
	fmt.Fprintf(&b, "scimflow_events_in_flight %d\n", st.InFlight)
	b.WriteString("# HELP scimflow_outcome_publish_errors_total Outcomes that could not be published (the event is redelivered).\n# TYPE scimflow_outcome_publish_errors_total counter\n")
	fmt.Fprintf(&b, "scimflow_outcome_publish_errors_total %d\n", st.PublishErr)
	b.WriteString("# HELP scimflow_target_concurrency_limit Requests the adaptive limiter lets in flight.\n# TYPE scimflow_target_concurrency_limit gauge\n")
	fmt.Fprintf(&b, "scimflow_target_concurrency_limit %d\n", a.target.Limit())
	b.WriteString("# HELP scimflow_target_breaker_state Circuit breaker state (1 for the current state).\n# TYPE scimflow_target_breaker_state gauge\n")
	cur := a.target.BreakerState()
	for _, s := range []string{"closed", "half-open", "open"} {
		v := 0
		if s == cur {
			v = 1
		}
		fmt.Fprintf(&b, "scimflow_target_breaker_state{state=%q} %d\n", s, v)
	}
	w.Write([]byte(b.String()))
}
