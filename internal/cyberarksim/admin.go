package cyberarksim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// serveAdmin serves the unauthenticated admin endpoints on the same listener:
//
//	GET  /admin/state   Snapshot as JSON
//	GET  /admin/stats   Stats as JSON
//	POST /admin/reset   drop every resource and zero the counters (tokens stay valid)
//	GET  /admin/faults  current Faults
//	PUT  /admin/faults  replace the Faults (JSON; durations as "250ms"; invalid values → 400)
//
// Admin requests are never faulted nor counted.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	if s.serveWriteLog(w, r) { // GET/DELETE /admin/writes: write_log.go
		return
	}
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET /admin/state":
		writeAdminJSON(w, http.StatusOK, s.Snapshot())
	case "GET /admin/stats":
		writeAdminJSON(w, http.StatusOK, s.Stats())
	case "POST /admin/reset":
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case "GET /admin/faults":
		writeAdminJSON(w, http.StatusOK, s.Faults())
	case "PUT /admin/faults":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes))
		if err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the body failed"})
			return
		}
		var f Faults
		if err := json.Unmarshal(body, &f); err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "faults: " + err.Error()})
			return
		}
		if err := f.Validate(); err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		s.SetFaults(f)
		s.log.Info().Interface("faults", f).Msg("faults changed")
		writeAdminJSON(w, http.StatusOK, f)
	default:
		switch r.URL.Path {
		case "/admin/state", "/admin/stats", "/admin/reset", "/admin/faults":
			writeAdminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed"})
		default:
			writeAdminJSON(w, http.StatusNotFound, map[string]string{"error": "no admin endpoint at " + r.URL.Path})
		}
	}
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
