package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/inventory"
)

// listenHTTP prepares /healthz (the process is up), /readyz (connected to NATS, every partition's
// consumer bound), /status (JSON), /inventory (inventoryAPI) and /metrics (Prometheus text
// format) on http.listen; the caller serves ln.
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
		status, body := readiness(a)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		w.Write([]byte(body))
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
				"schedule": a.window.status(time.Now()).Schedule, "nextWindow": a.window.status(time.Now()).NextWindow, "maxWindows": a.cfg.SyncWindow.MaxWindows,
				"referenceRetries": max(a.cfg.SyncWindow.ReferenceRetries, 0), "referenceBackoff": a.cfg.SyncWindow.ReferenceBackoff.String(),
			},
			"partitions":    a.cfg.NATS.Partitions,
			"ownPartitions": a.cfg.Worker.Partitions,
			"inventory":     inventoryStatus(r.Context(), a),
			"http":          map[string]any{"operatorActions": a.cfg.HTTP.OperatorToken.Reveal() != ""},
			"pause":         a.pauseStatus(),
			"history":       a.history.Stats(),
		})
	})
	inventoryAPI(mux, a)
	operatorAPI(mux, a)
	historyAPI(mux, a)
	servePage(mux)
	mux.Handle("GET /metrics", a.metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return srv, ln, nil
}

// readiness is /readyz: 200 when the worker is connected to JetStream, every partition it owns
// has its consumer bound and intake is not paused, else 503; the first line says which, and the
// lines after it state NATS, the consumers, the target's breaker and intake either way.
func readiness(a *app) (int, string) {
	status, verdict := http.StatusOK, "ready"
	st := a.consumer.Stats()
	if !a.nc.IsConnected() {
		status, verdict = http.StatusServiceUnavailable, "not ready: not connected to NATS at "+a.natsURL()
	} else if err := a.consumer.Ready(); err != nil {
		status, verdict = http.StatusServiceUnavailable, "not ready: "+err.Error()
	}
	nats := "connected to " + a.natsURL()
	if !a.nc.IsConnected() {
		nats = "disconnected from " + a.natsURL() + " (reconnecting)"
	}
	intake := "running"
	switch {
	case st.Paused != "":
		intake = fmt.Sprintf("paused since %s: %s (a failure no event can fix; a probe of the target resumes it)",
			st.PausedSince.UTC().Format(time.RFC3339), st.Paused)
	case a.paused.Load() != nil:
		intake = "held: provisioning paused by an operator"
	}
	body := fmt.Sprintf("%s\nnats: %s\nconsumers: %d partitions bound\ntarget: breaker %s, concurrency limit %d, %d requests in flight\nintake: %s\n",
		verdict, nats, len(st.Partitions), a.target.BreakerState(), a.target.Limit(), a.target.InFlight(), intake)
	if p := a.paused.Load(); p != nil {
		// A chosen state, not a failure: the worker stays ready.
		why := ""
		if p.Reason != "" {
			why = ": " + p.Reason
		}
		body += fmt.Sprintf("provisioning: paused by %s since %s%s (worker resume)\n", p.By, p.Since.UTC().Format(time.RFC3339), why)
	}
	return status, body
}

// pauseStatus is /status's pause: whether an operator paused provisioning, who, when and why.
func (a *app) pauseStatus() any {
	if p := a.paused.Load(); p != nil {
		return p
	}
	return pauseRecord{}
}

// operator says whether r may change what the worker does: it presents http.operatorToken as a
// bearer token. It answers the refusal itself: 403 when no token is configured (the API is
// read-only), 401 when the token is missing or wrong.
func operator(w http.ResponseWriter, r *http.Request, a *app) bool {
	want := a.cfg.HTTP.OperatorToken.Reveal()
	if want == "" {
		httpError(w, http.StatusForbidden, "read-only: http.operatorToken is not set in the worker's configuration")
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scimflow"`)
		httpError(w, http.StatusUnauthorized, "an operator token is required: Authorization: Bearer <http.operatorToken>")
		return false
	}
	return true
}

// httpError answers {"error": msg} with status.
func httpError(w http.ResponseWriter, status int, msg string) {
	writeHTTPJSON(w, status, map[string]string{"error": msg})
}

func writeHTTPJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// inventoryAPI serves the inventory: GET /inventory (schedule, next run, the run in progress, the
// last jobs), and for an operator PUT /inventory/schedule {"schedule": SPEC} (kept in KV, taken by
// every replica at once, like `worker inventory schedule`) and POST /inventory/run (one run now).
func inventoryAPI(mux *http.ServeMux, a *app) {
	mux.HandleFunc("GET /inventory", func(w http.ResponseWriter, r *http.Request) {
		st := inventoryStatusJobs(r.Context(), a, 20)
		if st == nil {
			httpError(w, http.StatusNotFound, "the inventory is not running in this worker")
			return
		}
		writeHTTPJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("PUT /inventory/schedule", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		if a.scheduler == nil {
			httpError(w, http.StatusNotFound, "the inventory is not running in this worker")
			return
		}
		var body struct {
			Schedule string `json:"schedule"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
			httpError(w, http.StatusBadRequest, `body: want {"schedule": "<cron or @every>"}: `+err.Error())
			return
		}
		if err := a.invStore.SetSchedule(r.Context(), body.Schedule, "http@"+r.RemoteAddr); err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("schedule %q: %v", body.Schedule, err))
			return
		}
		writeHTTPJSON(w, http.StatusOK, map[string]string{"schedule": body.Schedule, "message": "inventory schedule set; every worker takes it now"})
	})
	mux.HandleFunc("POST /inventory/run", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		if a.scheduler == nil {
			httpError(w, http.StatusNotFound, "the inventory is not running in this worker")
			return
		}
		err := a.scheduler.RunNow("http@" + r.RemoteAddr)
		switch {
		case errors.Is(err, inventory.ErrLeaseHeld):
			httpError(w, http.StatusConflict, err.Error())
		case err != nil:
			httpError(w, http.StatusServiceUnavailable, err.Error())
		default:
			writeHTTPJSON(w, http.StatusAccepted, map[string]string{"message": "inventory run started; GET /inventory shows its progress"})
		}
	})
}
