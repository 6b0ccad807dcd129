package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpExplain = &cli.Command{
	Name:    "worker explain",
	Summary: "tell the story of one object key: every event, request and outcome, and where it stands",
	Usage:   "worker explain --object OBJECT --key NAME=VALUE[,NAME=VALUE] [--json] [--limit N]  [--config FILE | --nats URL]",
	Description: `Reads the key's provisioning log (the stream IDM_HISTORY keeps the last 50 entries of every key
for 30 days: nats.historyPerKey, nats.historyMaxAge) and prints it as a timeline, oldest first: when,
which event, the operation, what became of it and why, and each SCIM request it made with its status
and round trip; and what operators did to the key (a parked key run now, a held delete approved or
rejected, and by whom) and drift the inventory found. The last line says where the key stands: in
the target (with its id), deleted, parked until a sync window, held for an operator, dead-lettered
or rejected, with the command that acts on it, and whether an operator's pause holds the pool. The
key is written as events name it: --key userName=jdoe@example.com.
GET /objects/{object}/history?key=... answers the same as JSON. See docs/operations-log.md.`,
	Examples: []string{
		"worker explain --object User --key userName=jdoe@example.com --config deploy/examples/config.yaml",
		"worker explain --object Group --key displayName=Finance --nats nats://127.0.0.1:4222 --json",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// explanation is a key's provisioning log and where the key stands.
type explanation struct {
	Object string         `json:"object"`
	Key    map[string]any `json:"key"`
	// Entries are outcomes, and notes of what operators and the inventory did, oldest first.
	Entries []*events.HistoryEntry `json:"entries"`
	// Parked is the key's parked state now, when it is parked or held.
	Parked *events.KeyState `json:"parked,omitempty"`
	// Paused is an operator's pause of the whole pool, when one is in force: no event runs.
	Paused  *pauseRecord `json:"paused,omitempty"`
	Summary string       `json:"summary"`
}

// parseKey reads NAME=VALUE[,NAME=VALUE].
func parseKey(s string) (map[string]any, error) {
	key := map[string]any{}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("key %q: want NAME=VALUE (userName=jdoe@example.com), several joined by commas", s)
		}
		key[name] = value
	}
	return key, nil
}

// explain reads the log of one key and the park store's state of it.
func explain(ctx context.Context, js jetstream.JetStream, object string, key map[string]any, limit int) (*explanation, error) {
	entries, err := events.ReadHistory(ctx, js, object, key, limit)
	if err != nil {
		return nil, err
	}
	x := &explanation{Object: object, Key: key, Entries: entries}
	if x.Entries == nil {
		x.Entries = []*events.HistoryEntry{}
	}
	if store, err := events.OpenParkStore(ctx, js, 0); err == nil {
		if states, err := store.States(ctx, -1); err == nil {
			tok := events.KeyToken(key)
			for _, st := range states {
				if strings.EqualFold(st.Object, object) && strings.HasSuffix(st.Subject, "."+tok) {
					x.Parked = st
				}
			}
		}
	}
	if kv, err := js.KeyValue(ctx, settingsBucket); err == nil {
		x.Paused, _ = (&settings{kv: kv}).pauseRecord(ctx)
	}
	x.Summary = x.summarise()
	if p := x.Paused; p != nil {
		why := ""
		if p.Reason != "" {
			why = " (" + p.Reason + ")"
		}
		x.Summary += fmt.Sprintf("; provisioning is paused on every worker since %s by %s%s: the key's newer events wait, unprocessed, until worker resume",
			stamp(p.Since), p.By, why)
	}
	return x, nil
}

// summarise says where the key stands, from its newest outcome and its parked state.
func (x *explanation) summarise() string {
	keyArg := x.Object + "/" + events.KeyString(x.Key)
	if p := x.Parked; p != nil {
		if p.Hold == events.HoldDelete {
			return fmt.Sprintf("held: event %s, a delete the deletion guard holds since %s (%s); worker deletes approve --key %s, or reject",
				p.HeadEvent, stamp(p.Since), p.Reason, keyArg)
		}
		return fmt.Sprintf("parked since %s behind event %s (%d window(s) spent): %s; next try at the window of %s, or now: worker parked retry --key %s",
			stamp(p.Since), p.HeadEvent, p.Windows, p.Reason, stamp(p.NextWindow), keyArg)
	}
	if len(x.Entries) == 0 {
		return fmt.Sprintf("no event of %s %s in the provisioning log: none was processed in its retention (30 days by default), or the key is written differently (keys compare case-insensitively)",
			x.Object, events.KeyString(x.Key))
	}
	var last, newest *events.Outcome
	for i := len(x.Entries) - 1; i >= 0; i-- {
		o := x.Entries[i].Outcome
		if o == nil {
			continue
		}
		newest = cmp.Or(newest, o)
		if o.Final {
			last = o
			break
		}
	}
	// Drift the inventory found after the last outcome is the newest word on the key.
	var drift *events.HistoryNote
	for _, e := range x.Entries {
		if n := e.Note; n != nil && n.Kind == events.NoteDrift && (last == nil || n.Time.After(last.Time)) {
			drift = n
		}
	}
	s := x.standing(last, newest)
	if drift != nil {
		s += fmt.Sprintf("; since then %s found at %s: %s", drift.By, stamp(drift.Time), drift.Detail)
	}
	return s
}

// standing says where the key stands after its last final outcome (newest: its newest outcome).
func (x *explanation) standing(last, newest *events.Outcome) string {
	if last == nil && newest == nil {
		return fmt.Sprintf("no event of %s %s in the provisioning log, only the notes above", x.Object, events.KeyString(x.Key))
	}
	if last == nil {
		o := newest
		return fmt.Sprintf("event %s is %s since %s and has no final outcome yet: %s", o.InputID, o.Status, stamp(o.Time), o.Reason)
	}
	switch last.Status {
	case events.StatusSucceeded:
		if last.Operation == events.OpDelete {
			return fmt.Sprintf("deleted from the target at %s by event %s", stamp(last.Time), last.InputID)
		}
		id := ""
		if last.TargetID != "" {
			id = " as id " + last.TargetID
		}
		return fmt.Sprintf("in the target%s: last written at %s by event %s (%s)", id, stamp(last.Time), last.InputID, last.Operation)
	case events.StatusSkipped:
		return fmt.Sprintf("as event %s wants it since %s: %s", last.InputID, stamp(last.Time), last.Reason)
	case events.StatusDeadLettered:
		class := ""
		if last.Error != nil {
			class = " (" + last.Error.Class + ")"
		}
		return fmt.Sprintf("event %s was dead-lettered at %s%s: %s; to try it again: worker dlq replay --id %s",
			last.InputID, stamp(last.Time), class, last.Reason, last.InputID)
	case events.StatusRejected:
		return fmt.Sprintf("event %s was rejected at %s: %s", last.InputID, stamp(last.Time), last.Reason)
	}
	return fmt.Sprintf("event %s ended %s at %s", last.InputID, last.Status, stamp(last.Time))
}

// millis prints a round trip: a tenth of a millisecond below 10 ms, whole ones above.
func millis(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// render prints the timeline.
func (x *explanation) render(w io.Writer) {
	fmt.Fprintf(w, "%s %s: %d entr%s in the provisioning log\n", x.Object, events.KeyString(x.Key), len(x.Entries), map[bool]string{true: "y", false: "ies"}[len(x.Entries) == 1])
	for _, e := range x.Entries {
		if n := e.Note; n != nil {
			renderNote(w, n)
			continue
		}
		o := e.Outcome
		where := o.Worker
		if where != "" {
			where = ", " + where
		}
		if r := events.ReplayOf(o.ID); r != "" {
			where += ", replay of " + r
		}
		fmt.Fprintf(w, "%s  %s  %s  %s (attempt %d%s)\n", stamp(o.Time), o.InputID, cmpOr(o.Operation, "-"), o.Status, o.Attempt, where)
		printDetails(w, o)
	}
	fmt.Fprintf(w, "now: %s\n", x.Summary)
}

// noteVerbs say what a note's kind did, for the timeline.
var noteVerbs = map[string]string{
	events.NoteRetry: "retried now", events.NoteApprove: "approved", events.NoteReject: "rejected", events.NoteDrift: "drift found",
}

// renderNote prints a note of the log: what was done and by whom, then its detail, indented.
func renderNote(w io.Writer, n *events.HistoryNote) {
	where := ""
	if n.Worker != "" {
		where = " (" + n.Worker + ")"
	}
	fmt.Fprintf(w, "%s  %s  -  %s by %s%s\n", stamp(n.Time), cmpOr(n.Event, "-"), cmpOr(noteVerbs[n.Kind], n.Kind), cmpOr(n.By, "-"), where)
	if n.Detail != "" {
		fmt.Fprintf(w, "    %s\n", cell(n.Detail, 300))
	}
}

// cmdExplain is `worker explain`.
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpExplain.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	object := fs.String("object", "", "the data-model `OBJECT` (User, Group, ...)")
	keyFlag := fs.String("key", "", "the key as events give it: `NAME=VALUE` (several joined by commas)")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 0, "only the newest `N` entries (0: every entry kept)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *object == "" || *keyFlag == "" {
		return fs.Fail("explain needs --object and --key")
	}
	key, err := parseKey(*keyFlag)
	if err != nil {
		return fs.Fail("--%v", err)
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	x, err := explain(ctx, js, *object, key, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, x)
	}
	x.render(stdout)
	return nil
}

// historyAPI is GET /objects/{object}/history?key=NAME=VALUE[&limit=N].
func historyAPI(mux *http.ServeMux, a *app) {
	mux.HandleFunc("GET /objects/{object}/history", func(w http.ResponseWriter, r *http.Request) {
		key, err := parseKey(r.URL.Query().Get("key"))
		if err != nil {
			httpError(w, http.StatusBadRequest, err.Error())
			return
		}
		limit := 0
		if r.URL.Query().Get("limit") != "" {
			if limit, err = listLimit(r); err != nil {
				httpError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		x, err := explain(r.Context(), a.js, r.PathValue("object"), key, limit)
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeHTTPJSON(w, http.StatusOK, x)
	})
}
