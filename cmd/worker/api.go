package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/events"
)

// The operator API behind the page and the commands: the pool, parked keys, held deletes, dead
// letters and the sync-window schedule as JSON, and the actions on them for an operator (the
// bearer token http.operatorToken; see operator). Each action does what its command does and
// answers what it did.

// apiListLimit is how many parked keys or dead letters a list returns unless ?limit= says
// otherwise; the answer's total says how many there are.
const apiListLimit = 200

// operatorAPI registers the endpoints on mux.
func operatorAPI(mux *http.ServeMux, a *app) {
	mux.HandleFunc("GET /pool", func(w http.ResponseWriter, r *http.Request) {
		v, err := readPool(r.Context(), a.js, a.cfg.NATS.Consumer)
		if err != nil {
			if a.cfg.Worker.Partitions != nil {
				// A static split has no pool: show the partitions this worker was given.
				writeHTTPJSON(w, http.StatusOK, map[string]any{"static": true, "partitions": a.cfg.Worker.Partitions})
				return
			}
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("GET /parked", func(w http.ResponseWriter, r *http.Request) {
		limit, err := listLimit(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		list, total, err := parkedKeys(r.Context(), a.park, r.URL.Query().Get("hold"), r.URL.Query().Get("object"), limit, a.window.Next(time.Now()))
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, map[string]any{"total": total, "keys": list})
	})
	mux.HandleFunc("POST /parked/retry", func(w http.ResponseWriter, r *http.Request) {
		a.controlKeys(w, r, "retry")
	})
	mux.HandleFunc("POST /deletes/approve", func(w http.ResponseWriter, r *http.Request) {
		a.controlKeys(w, r, "approve")
	})
	mux.HandleFunc("POST /deletes/reject", func(w http.ResponseWriter, r *http.Request) {
		a.controlKeys(w, r, "reject")
	})
	mux.HandleFunc("GET /dlq", func(w http.ResponseWriter, r *http.Request) {
		limit, err := listLimit(r)
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		q := r.URL.Query()
		f := events.DLQFilter{Object: q.Get("object"), Class: q.Get("class")}
		if s := q.Get("since"); s != "" {
			if f.Since, err = parseSince(s, time.Now()); err != nil {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("since %q: %v", s, err))
				return
			}
		}
		list, err := events.NewDLQ(a.js).List(r.Context(), f, false)
		if err != nil && !errors.Is(err, events.ErrNoDeadLetter) {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		total := len(list)
		// The newest first, as an operator reads them.
		slices.Reverse(list)
		if len(list) > limit {
			list = list[:limit]
		}
		if list == nil {
			list = []*events.DeadLetterEntry{}
		}
		writeHTTPJSON(w, http.StatusOK, map[string]any{"total": total, "deadLetters": list})
	})
	mux.HandleFunc("POST /dlq/replay", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		var body struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil || body.Seq == 0 {
			httpError(w, http.StatusBadRequest, `body: want {"seq": <the dead letter's IDM_DLQ sequence>}`)
			return
		}
		q := events.NewDLQ(a.js)
		e, err := q.Get(r.Context(), body.Seq)
		if err != nil {
			httpError(w, http.StatusNotFound, fmt.Sprintf("dead letter %d: %v", body.Seq, err))
			return
		}
		rep, err := q.Replay(r.Context(), e)
		if rep == nil {
			httpError(w, http.StatusConflict, fmt.Sprintf("dead letter %d: not replayed: %v", body.Seq, err))
			return
		}
		res := map[string]any{"seq": body.Seq, "eventId": e.EventID, "republishedAs": rep.MsgID, "eventsSeq": rep.NewSeq,
			"duplicate": rep.Duplicate, "removed": err == nil}
		if err != nil {
			res["error"] = err.Error()
		}
		a.log.Info().Str("by", "http@"+r.RemoteAddr).Uint64("dlqSeq", body.Seq).Str("event", e.EventID).Str("object", e.Object).
			Str("key", events.KeyString(e.Key)).Msg("dead letter replayed")
		writeHTTPJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /pause", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		var body struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
				httpError(w, http.StatusBadRequest, `body: want {"reason": "..."} or nothing: `+err.Error())
				return
			}
		}
		rec := pauseRecord{Paused: true, Reason: body.Reason, By: "http@" + r.RemoteAddr, Since: time.Now().UTC()}
		if err := a.settings.setPause(r.Context(), rec); err != nil {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, map[string]any{"pause": rec, "message": "provisioning paused on every worker: no event starts until resumed"})
	})
	mux.HandleFunc("POST /resume", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		if err := a.settings.setPause(r.Context(), pauseRecord{}); err != nil {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, map[string]any{"message": "provisioning resumed on every worker"})
	})
	mux.HandleFunc("GET /syncwindow", func(w http.ResponseWriter, _ *http.Request) {
		writeHTTPJSON(w, http.StatusOK, a.window.status(time.Now()))
	})
	mux.HandleFunc("PUT /syncwindow/schedule", func(w http.ResponseWriter, r *http.Request) {
		if !operator(w, r, a) {
			return
		}
		var body struct {
			Schedule string `json:"schedule"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
			httpError(w, http.StatusBadRequest, `body: want {"schedule": "<cron or @every>"}: `+err.Error())
			return
		}
		if err := a.settings.setWindowSchedule(r.Context(), body.Schedule, "http@"+r.RemoteAddr); err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, map[string]string{"schedule": body.Schedule, "message": "sync window schedule set; every worker takes it now"})
	})
}

// controlKeys answers POST /parked/retry and /deletes/approve|reject: body {"keys": [...]} (as
// `worker parked list` prints them, or Object/name=value) or {"all": true}.
func (a *app) controlKeys(w http.ResponseWriter, r *http.Request, op string) {
	if !operator(w, r, a) {
		return
	}
	var body struct {
		Keys []string `json:"keys"`
		All  bool     `json:"all"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || (len(body.Keys) == 0) == !body.All {
		httpError(w, http.StatusBadRequest, `body: want {"keys": ["User/userName=ada@example.com", ...]} or {"all": true}`)
		return
	}
	var subjects []string
	if !body.All {
		var err error
		if subjects, err = keySubjects(r.Context(), a.park, body.Keys); err != nil {
			httpError(w, http.StatusNotFound, strings.Replace(err.Error(), "--key", "key", 1))
			return
		}
	}
	replies, err := events.RequestControl(r.Context(), a.nc, events.Control{Op: op, Subjects: subjects, All: body.All, By: "http@" + r.RemoteAddr}, time.Second)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	acted := map[string][]string{}
	total := 0
	for _, rep := range replies {
		acted[rep.Worker] = rep.Keys
		total += len(rep.Keys)
	}
	a.log.Info().Str("by", "http@"+r.RemoteAddr).Str("op", op).Int("keys", total).Msg("operator request on parked keys")
	status := http.StatusOK
	if total == 0 {
		status = http.StatusConflict // nothing matched that a running worker holds
	}
	writeHTTPJSON(w, status, map[string]any{"op": op, "keys": total, "byWorker": acted})
}

// parkedKey is one parked or held key in GET /parked.
type parkedKey struct {
	*events.KeyState
	KeyString string   `json:"keyString"`
	Events    []string `json:"events"`
}

// parkedKeys lists parked keys, oldest first: hold "window" or "delete" (or "" for both), object
// "" for all; at most limit with their waiting events, and the number that matched. A key waits
// no later than window, the next window of the schedule in force (it may have been parked under a
// longer one).
func parkedKeys(ctx context.Context, store *events.ParkStore, hold, object string, limit int, window time.Time) ([]parkedKey, int, error) {
	states, err := store.States(ctx, -1)
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(states, func(a, b *events.KeyState) int { return a.Since.Compare(b.Since) })
	out := []parkedKey{}
	total := 0
	for _, st := range states {
		if (hold != "" && st.Hold != hold) || (object != "" && !strings.EqualFold(st.Object, object)) {
			continue
		}
		total++
		if len(out) == limit {
			continue
		}
		evs, err := store.Parked(ctx, st.Subject)
		if err != nil {
			return nil, 0, err
		}
		if st.Hold == events.HoldWindow && st.NextWindow.After(window) {
			st.NextWindow = window.UTC()
		}
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = e.MsgID
		}
		out = append(out, parkedKey{KeyState: st, KeyString: st.Object + "/" + events.KeyString(st.Key), Events: ids})
	}
	return out, total, nil
}

func listLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return apiListLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 10000 {
		return 0, fmt.Errorf("limit %q: want a number from 1 to 10000", s)
	}
	return n, nil
}
