package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
)

// jsAt connects to the worker's NATS for the test.
func jsAt(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

// outcomeLog reads every outcome the worker publishes, from the start of IDM_OUTCOMES.
type outcomeLog struct {
	mu    sync.Mutex
	final map[string]*events.Outcome   // by outcome id
	bySeq map[uint64][]*events.Outcome // by the input's IDM_EVENTS sequence
	n     int                          // final outcomes read, duplicates included
}

func collectOutcomeLog(t testing.TB, js jetstream.JetStream) *outcomeLog {
	t.Helper()
	l := &outcomeLog{final: map[string]*events.Outcome{}, bySeq: map[uint64][]*events.Outcome{}}
	cons, err := js.OrderedConsumer(context.Background(), events.OutcomesStream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		o, err := events.DecodeOutcome(m.Data())
		if err != nil || !o.Final {
			return
		}
		l.mu.Lock()
		l.final[o.ID] = o
		l.bySeq[o.StreamSeq] = append(l.bySeq[o.StreamSeq], o)
		l.n++
		l.mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return l
}

// wait waits for the final outcomes of ids and returns them.
func (l *outcomeLog) wait(t testing.TB, within time.Duration, ids ...string) map[string]*events.Outcome {
	t.Helper()
	var missing []string
	deadline := time.Now().Add(within)
	for {
		l.mu.Lock()
		missing = missing[:0]
		out := map[string]*events.Outcome{}
		for _, id := range ids {
			if o := l.final[id]; o != nil {
				out[id] = o
			} else {
				missing = append(missing, id)
			}
		}
		l.mu.Unlock()
		if len(missing) == 0 {
			return out
		}
		if time.Now().After(deadline) {
			if len(missing) > 5 {
				missing = missing[:5]
			}
			t.Fatalf("no final outcome after %s for %d events, e.g. %v", within, len(ids)-len(out), missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *outcomeLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func publishEvent(t testing.TB, js jetstream.JetStream, ev *events.Event) uint64 {
	t.Helper()
	ack, err := events.NewPublisher(js).PublishEvent(context.Background(), ev)
	require.NoError(t, err)
	return ack.Sequence
}

func dlqEntries(t *testing.T, w *worker, args ...string) []events.DeadLetterEntry {
	t.Helper()
	out, errOut, err := runCmd(t, append([]string{"dlq", "list", "--json", "--nats", w.natsURL}, args...)...)
	require.NoError(t, err, errOut)
	var list []events.DeadLetterEntry
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	return list
}

// TestDLQCommands: events that fail for a cause an operator can fix are dead-lettered, listed,
// shown, and replayed once the cause is fixed; the replay is planned against the target's current
// state and yields a new final outcome; one that fails again returns to the DLQ once.
func TestDLQCommands(t *testing.T) {
	t.Parallel()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	js := jsAt(t, w.natsURL)
	outcomes := collectOutcomeLog(t, js)

	publishEvent(t, js, events.NewEvent("ok-1", "/hr/test", events.Change{Object: "User", Operation: events.OpCreate,
		Key: map[string]any{"userName": "ok@example.com"}, Attributes: map[string]any{"title": "Engineer"}}))
	outcomes.wait(t, 20*time.Second, "ok-1")
	lateSeq := publishEvent(t, js, events.NewEvent("late-1", "/hr/test", events.Change{Object: "User", Operation: events.OpUpdate,
		Key: map[string]any{"userName": "late@example.com"}, Attributes: map[string]any{"title": "Arrived Late"}}))
	publishEvent(t, js, events.NewEvent("ops-1", "/hr/test", events.Change{Object: "Group", Operation: events.OpAddAssignment,
		Key: map[string]any{"displayName": "Ops"}, Attributes: map[string]any{"members[].value": []any{"ok@example.com"}}}))
	_, err := events.NewPublisher(js).PublishRaw(context.Background(), "idm.events.User.junktoken", "junk-1", []byte("not json"))
	require.NoError(t, err)
	first := outcomes.wait(t, 20*time.Second, "late-1", "ops-1", "junk-1")
	for _, id := range []string{"late-1", "ops-1", "junk-1"} {
		require.Equal(t, events.StatusDeadLettered, first[id].Status, id)
	}

	// list: a table, and JSON that filters.
	out, errOut, err := runCmd(t, "dlq", "list", "--nats", w.natsURL)
	require.NoError(t, err, errOut)
	for _, col := range []string{"TIME", "DLQ SEQ", "EVENT ID", "OBJECT", "KEY", "CLASS", "ATTEMPTS", "STREAM SEQ", "REASON"} {
		assert.Contains(t, out, col)
	}
	assert.Regexp(t, `late-1\s+User\s+userName=late@example.com\s+not_found\s+1\s+`+strconv.FormatUint(lateSeq, 10)+`\s+`, out)
	assert.Contains(t, out, "3 dead letters")
	all := dlqEntries(t, w)
	require.Len(t, all, 3)
	assert.Len(t, dlqEntries(t, w, "--class", "not_found"), 2)
	groups := dlqEntries(t, w, "--object", "Group")
	require.Len(t, groups, 1)
	assert.Equal(t, "ops-1", groups[0].EventID)
	assert.Len(t, dlqEntries(t, w, "--since", "1h"), 3)
	assert.Empty(t, dlqEntries(t, w, "--since", "2099-01-01"))
	out, _, err = runCmd(t, "dlq", "list", "--nats", w.natsURL, "--class", "conflict")
	require.NoError(t, err)
	assert.Equal(t, "no dead letters\n", out)

	// show: headers and the payload, indented.
	out, errOut, err = runCmd(t, "dlq", "show", "late-1", "--nats", w.natsURL)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, events.HeaderReason+": ")
	assert.Contains(t, out, events.HeaderErrorClass+": not_found")
	assert.Contains(t, out, `    "key": {`+"\n"+`      "userName": "late@example.com"`, "the payload is indented JSON")
	assert.Contains(t, out, "worker dlq replay --seq")
	out, _, err = runCmd(t, "dlq", "show", "junk-1", "--nats", w.natsURL)
	require.NoError(t, err)
	assert.Contains(t, out, "not json")
	var junkSeq uint64
	for _, e := range all {
		if e.EventID == "junk-1" {
			junkSeq = e.Seq
		}
	}
	out, _, err = runCmd(t, "dlq", "show", "--seq", strconv.FormatUint(junkSeq, 10), "--raw", "--nats", w.natsURL)
	require.NoError(t, err)
	assert.Equal(t, "not json", out, "--raw writes the payload byte for byte")
	_, errOut, err = runCmd(t, "dlq", "show", "nope", "--nats", w.natsURL)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}))
	assert.Contains(t, errOut, `no dead letter of event "nope"`)

	// The cause is fixed (the user now exists, with another title): the replay re-plans against
	// the target as it is now and succeeds with a new final outcome; its dead letter is gone.
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "late@example.com", "password": "Passw0rdPassw0rd", "title": "Someone Set This"}))
	out, errOut, err = runCmd(t, "dlq", "replay", "--id", "late-1", "--wait", "20s", "--nats", w.natsURL)
	require.NoError(t, err, "%s\n%s", out, errOut)
	assert.Contains(t, out, "removed from IDM_DLQ")
	assert.Contains(t, out, "succeeded 1")
	var lateDLQ uint64
	for _, e := range all {
		if e.EventID == "late-1" {
			lateDLQ = e.Seq
		}
	}
	replayID := "late-1/replay/dlq-" + strconv.FormatUint(lateDLQ, 10)
	o := outcomes.wait(t, 5*time.Second, replayID)[replayID]
	assert.Equal(t, events.StatusSucceeded, o.Status)
	assert.Equal(t, "late-1", o.InputID)
	assert.Equal(t, "Arrived Late", userByName(t, sim, "late@example.com")["title"])
	assert.Len(t, dlqEntries(t, w), 2)

	// Still broken (no group Ops): the replay fails again and is back in the DLQ once, as a new
	// dead letter; the command says so and exits 1.
	out, _, err = runCmd(t, "dlq", "replay", "--class", "not_found", "--wait", "20s", "--nats", w.natsURL)
	assert.Equal(t, 1, exitCode(err, &bytes.Buffer{}), out)
	assert.Contains(t, out, "dead_lettered 1")
	assert.Contains(t, out, "in the DLQ as new dead letters")
	again := dlqEntries(t, w, "--object", "Group")
	require.Len(t, again, 1)
	assert.Greater(t, again[0].Seq, groups[0].Seq, "a new dead letter")
	opsReplay := "ops-1/replay/dlq-" + strconv.FormatUint(groups[0].Seq, 10)
	assert.Equal(t, events.StatusDeadLettered, outcomes.wait(t, 5*time.Second, opsReplay)[opsReplay].Status)
	// Nothing replays it by itself: no event is pending, unacknowledged or parked for a later
	// window, and nothing was published after the replay.
	lastSeq := streamLastSeq(t, js, events.EventsStream)
	waitQuiescent(t, js)
	assert.Len(t, dlqEntries(t, w, "--object", "Group"), 1)
	assert.Equal(t, lastSeq, streamLastSeq(t, js, events.EventsStream), "an event was published after the replay")

	// Usage errors.
	for _, args := range [][]string{
		{"dlq"},
		{"dlq", "frob"},
		{"dlq", "replay", "--nats", w.natsURL},
		{"dlq", "replay", "--all", "--id", "x", "--nats", w.natsURL},
		{"dlq", "list", "--since", "last tuesday", "--nats", w.natsURL},
		{"dlq", "show", "--nats", w.natsURL},
	} {
		_, _, err := runCmd(t, args...)
		assert.Equal(t, 2, exitCode(err, &bytes.Buffer{}), "%v", args)
	}
}

// userByName returns the simulator's user with userName name, nil if absent; it fails the test
// when there are two.
func userByName(t testing.TB, sim *cyberarksim.Server, name string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, u := range sim.Snapshot().Users {
		if strings.EqualFold(fmt.Sprint(u["userName"]), name) {
			require.Nil(t, found, "two users named %s", name)
			found = u
		}
	}
	return found
}

// TestDLQCommandsConnectAsTheConfigSays: the operator commands read only the config's nats
// section (the target's secrets may be unset), and say where the embedded server is when it is
// not running.
func TestDLQCommandsConnectAsTheConfigSays(t *testing.T) {
	t.Parallel()
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	dir := t.TempDir()
	model := filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml")
	remote := filepath.Join(dir, "remote.yaml")
	require.NoError(t, os.WriteFile(remote, []byte(operatorConfig(w.natsURL, model)), 0o600))
	out, errOut, err := runCmd(t, "dlq", "list", "--config", remote)
	require.NoError(t, err, errOut)
	assert.Equal(t, "no dead letters\n", out)
	out, errOut, err = runCmd(t, "replay", "--from-seq", "1", "--dry-run", "--config", remote)
	require.NoError(t, err, errOut)
	assert.Contains(t, out, "read 0")

	embedded := filepath.Join(dir, "embedded.yaml")
	require.NoError(t, os.WriteFile(embedded, []byte(fmt.Sprintf("nats:\n  listen: %s\ntarget:\n  baseURI: https://x.example.com\nmodel: %s\n", freePort(t), model)), 0o600))
	_, _, err = runCmd(t, "dlq", "list", "--config", embedded)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "runs inside `worker run`")
}

// Every operator command given neither --config nor --nats reads ./scimflow.yaml's nats section, as
// `worker run` does; before, dlq and replay did, and the others went to nats://127.0.0.1:4222 (or,
// with --nats alone, read no file). Not parallel: it changes the working directory.
func TestOperatorCommandsReadTheDefaultFile(t *testing.T) {
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	model := filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml")
	w := startWorker(t, cyberarkTarget(srv.URL), model)
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "scimflow.yaml"), []byte(operatorConfig(w.natsURL, model)), 0o600))
	for _, args := range [][]string{
		{"dlq", "list"}, {"replay", "--from-seq", "1", "--dry-run"}, {"pool"}, {"parked", "list"}, {"deletes", "list"},
		{"window"}, {"inventory", "--status"}, {"outcomes"}, {"explain", "--object", "User", "--key", "userName=nobody@example.com"},
	} {
		_, errOut, err := runCmd(t, args...)
		assert.NoError(t, err, "worker %s: %s", strings.Join(args, " "), errOut)
	}
	// --nats alone reads no file: a server named by URL is not the file's.
	_, _, err := runCmd(t, "pool", "--nats", "nats://"+freePort(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to NATS at")
	assert.NotContains(t, err.Error(), w.natsURL)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "scimflow.yaml"), []byte(fmt.Sprintf("nats:\n  listen: %s\ntarget:\n  baseURI: https://x.example.com\nmodel: %s\n", freePort(t), model)), 0o600))
	_, _, err = runCmd(t, "pool")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "scimflow.yaml has no nats.url, so NATS is the embedded server, which runs inside `worker run`")
}

// operatorConfig is a worker configuration as an operator's machine holds it: the nats section, and
// a target whose secret is never set (the operator commands read only the nats section).
func operatorConfig(natsURL, model string) string {
	return fmt.Sprintf(`nats:
  url: %s
target:
  baseURI: https://tenant.example.com/scim/v2
  auth:
    mode: oauth2
    oauth2:
      tokenURL: https://tenant.example.com/oauth2/token/x
      clientID: scimflow
      clientSecret: ${SCIMFLOW_TEST_SECRET_NEVER_SET}
model: %s
`, natsURL, model)
}

// streamLastSeq is the sequence of the newest message of stream.
func streamLastSeq(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	require.NoError(t, err)
	info, err := st.Info(context.Background())
	require.NoError(t, err)
	return info.State.LastSeq
}

// waitQuiescent waits until nothing is queued that could produce another outcome: every consumer
// of IDM_EVENTS has had every message delivered and acknowledged, and no event is parked for a
// later sync window. Tests use it instead of sleeping before asserting that nothing more happens.
func waitQuiescent(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		why := busy(js)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never quiescent: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// busy says what is still queued (see waitQuiescent), or "" when nothing is.
func busy(js jetstream.JetStream) string {
	ctx := context.Background()
	st, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return err.Error()
	}
	names := st.ConsumerNames(ctx)
	for name := range names.Name() {
		c, err := st.Consumer(ctx, name)
		if err != nil {
			return err.Error()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err.Error()
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Sprintf("consumer %s: %d pending, %d unacknowledged", name, info.NumPending, info.NumAckPending)
		}
	}
	if err := names.Err(); err != nil {
		return err.Error()
	}
	if parked, err := js.Stream(ctx, events.ParkedStream); err == nil {
		info, err := parked.Info(ctx)
		if err != nil {
			return err.Error()
		}
		if info.State.Msgs > 0 {
			return fmt.Sprintf("%s holds %d parked events", events.ParkedStream, info.State.Msgs)
		}
	}
	return ""
}
