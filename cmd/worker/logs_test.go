package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// duplicateKeys returns the top-level keys a JSON object line repeats.
func duplicateKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	tok, err := dec.Token()
	require.NoError(t, err, line)
	require.Equal(t, json.Delim('{'), tok, line)
	seen := map[string]bool{}
	var dups []string
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err, line)
		key := tok.(string)
		if seen[key] {
			dups = append(dups, key)
		}
		seen[key] = true
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v), line)
	}
	return dups
}

func logLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestRunLogsEachKeyOnce: no JSON log line of `worker run` repeats a key; the connector's lines
// (its own and its authorizer's) say component "connector" once.
func TestRunLogsEachKeyOnce(t *testing.T) {
	t.Parallel()
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	w.stop(t)
	var authLines, connectorLines int
	for _, line := range logLines(w.log.String()) {
		require.True(t, strings.HasPrefix(line, "{"), "not a JSON line: %q", line)
		assert.Empty(t, duplicateKeys(t, line), "a key repeated in %s", line)
		if strings.Contains(line, `"component":"connector"`) {
			connectorLines++
		}
		if strings.Contains(line, `"auth_mode":"oauth2"`) {
			authLines++
			assert.Contains(t, line, `"component":"connector"`, "the authorizer logs as part of the connector")
		}
	}
	assert.Positive(t, authLines, "the token was fetched and revoked at debug level:\n%s", w.log.String())
	assert.Positive(t, connectorLines)
}

// TestRunSaysTokenRevokedOnlyWhenItWas: the last line of `worker run` mentions the token only when
// the connector revoked one.
func TestRunSaysTokenRevokedOnlyWhenItWas(t *testing.T) {
	t.Parallel()
	model := filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml")
	lastLine := func(w *worker) string {
		t.Helper()
		lines := logLines(w.log.String())
		require.NotEmpty(t, lines)
		var last struct{ Message string }
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last))
		return last.Message
	}

	// oauth2 with a revocation URL and a token fetched by the connection test: revoked.
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	w := startWorker(t, cyberarkTarget(srv.URL), model)
	w.stop(t)
	require.Equal(t, 1, sim.Stats().TokensRevoked)
	assert.Equal(t, "stopped: in-flight events finished, outcomes flushed, token revoked", lastLine(w))

	// No revocation URL: a token was fetched but nothing was revoked.
	sim, srv = simtest.MustStart(t, cyberarksim.Config{})
	noRevoke := strings.Replace(cyberarkTarget(srv.URL), "    revokeURL: "+srv.URL+"/oauth2/revoke/scimflow\n", "", 1)
	require.NotEqual(t, cyberarkTarget(srv.URL), noRevoke)
	w = startWorker(t, noRevoke, model)
	w.stop(t)
	require.Zero(t, sim.Stats().TokensRevoked)
	assert.Equal(t, "stopped: in-flight events finished, outcomes flushed", lastLine(w))

	// No token ever: no connection test, no event.
	_, srv = simtest.MustStart(t, cyberarksim.Config{})
	idle := strings.Replace(cyberarkTarget(srv.URL), "testConnection: true", "testConnection: false", 1)
	w = startWorker(t, idle, model)
	w.stop(t)
	assert.Equal(t, "stopped: in-flight events finished, outcomes flushed", lastLine(w))
}

// TestCheckLogsNoJSONIntoTheReport: even with log.format json at debug level, `worker check`
// prints its report and no JSON lines; warnings still reach stderr, readable.
func TestCheckLogsNoJSONIntoTheReport(t *testing.T) {
	t.Parallel()
	_, srv := simtest.MustStart(t, cyberarksim.Config{})
	for _, tc := range []struct {
		name, baseURI string
		ok            bool
		warning       string
	}{
		{"healthy", srv.URL + "/scim/v2", true, ""},
		{"base without /scim", srv.URL + "/v2", false, "CyberArk serves SCIM under /scim or /scim/v2"},
	} {
		file := filepath.Join(t.TempDir(), "scimflow.yaml")
		target := strings.Replace(cyberarkTarget(srv.URL), "baseURI: "+srv.URL+"/scim/v2", "baseURI: "+tc.baseURI, 1)
		cfg := fmt.Sprintf("target:\n%s\nmodel: %s\nlog:\n  level: debug\n  format: json\n",
			indent(target, "  "), filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
		require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
		out, errOut, err := runCmd(t, "check", "--config", file)
		assert.Equal(t, tc.ok, err == nil, "%s: %v\n%s", tc.name, err, out)
		assert.Contains(t, out, "[", tc.name)
		for _, line := range append(logLines(out), logLines(errOut)...) {
			assert.False(t, strings.HasPrefix(strings.TrimSpace(line), "{"), "%s: a JSON line in check's output: %s", tc.name, line)
		}
		assert.NotContains(t, errOut, "DBG", tc.name)
		assert.NotContains(t, errOut, "INF", tc.name)
		if tc.warning != "" {
			assert.Contains(t, errOut, tc.warning, tc.name)
			assert.Contains(t, errOut, "WRN", tc.name)
		}
	}
}

// log.format auto writes JSON to anything but a terminal (a file, a pipe, a collector).
func TestLogFormatAutoIsJSONOffATerminal(t *testing.T) {
	var buf syncBuffer
	log := newLogger(config.Log{Level: "info", Format: "auto"}, &buf)
	log.Info().Str("event", "e-1").Msg("hello")
	var line map[string]any
	require.NoError(t, json.Unmarshal([]byte(buf.String()), &line), buf.String())
	assert.Equal(t, "e-1", line["event"])
	buf = syncBuffer{}
	log = newLogger(config.Log{Level: "info", Format: "console"}, &buf)
	log.Info().Msg("hello")
	assert.NotContains(t, buf.String(), "{", "console: a line for people")
}

// secretRecorder sits in front of the simulator and keeps the secrets that cross it: the access
// tokens it issues and the passwords of the users the worker creates.
type secretRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (s *secretRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Users") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var u struct{ Password string }
		if json.Unmarshal(body, &u) == nil && u.Password != "" {
			s.add(u.Password)
		}
	}
	if !strings.Contains(r.URL.Path, "/oauth2/token/") {
		s.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &tok) == nil && tok.AccessToken != "" {
		s.add(tok.AccessToken)
	}
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (s *secretRecorder) add(v string) {
	s.mu.Lock()
	s.seen = append(s.seen, v)
	s.mu.Unlock()
}

func (s *secretRecorder) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// TestEventLogLinesNameTheEvent: at debug level, every JSON line of `worker run` about an event
// carries its id, object and key: the consume loop's own lines, and the connector's request and
// retry lines, which get them from the context the event runs with. No line holds a secret: the
// client secret, the operator token, an access token or a generated password.
func TestEventLogLinesNameTheEvent(t *testing.T) {
	t.Parallel()
	sim, err := cyberarksim.New(cyberarksim.Config{Seed: 11})
	require.NoError(t, err)
	secrets := &secretRecorder{next: sim}
	srv := httptest.NewServer(secrets)
	t.Cleanup(srv.Close)
	sim.UseURL(srv.URL)
	// No connection test: every SCIM request the worker makes is made for an event.
	target := strings.Replace(cyberarkTarget(srv.URL), "testConnection: true", "testConnection: false", 1)
	w := startWorker(t, target, filepath.Join(repo(t), "deploy/examples/models/cyberark.yaml"))
	// Some 429s, so that the connector logs retries too.
	sim.SetFaults(cyberarksim.Faults{RateLimit429: 0.15})

	rep := publishFile(t, w, filepath.Join(repo(t), "deploy/examples/events.jsonl"))
	require.Empty(t, rep.Missing, "events without an outcome")
	for _, it := range rep.Items {
		if o := rep.Outcomes[it.ID]; it.Invalid == nil {
			assert.True(t, publish.Succeeded(o), "line %d (%s): %s %+v", it.Line, it.ID, o.Status, o.Error)
		}
	}
	js := w.jetStream(t)
	final := collectOutcomeLog(t, js)
	_, err = events.NewPublisher(js).PublishEvent(context.Background(), events.NewEvent("log-bad-1", "/hr/test",
		events.Change{Object: "Printer", Operation: events.OpCreate, Key: map[string]any{"name": "p1"}}))
	require.NoError(t, err)
	final.wait(t, 20*time.Second, "log-bad-1")
	w.stop(t)

	published := map[string]bool{"log-bad-1": true}
	for id := range rep.Outcomes {
		published[id] = true
	}
	requestsOf := map[string]int{}
	var requests, retries int
	var deadLetter map[string]any
	for _, line := range logLines(w.log.String()) {
		require.True(t, strings.HasPrefix(line, "{"), "not a JSON line: %q", line)
		assert.Empty(t, duplicateKeys(t, line), "a key repeated in %s", line)
		for _, s := range append(secrets.secrets(), "scimflow-secret", testOperatorToken) {
			require.NotContains(t, line, s, "a secret in a log line")
		}
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		if id, ok := l["event"].(string); ok {
			assert.True(t, published[id], "a line names event %q, which was not published: %s", id, line)
			assert.NotEmpty(t, l["object"], "a line about an event without its object: %s", line)
			assert.True(t, l["key"] != nil || l["keytoken"] != nil, "a line about an event without its key: %s", line)
		}
		switch l["message"] {
		case "scim request", "retrying":
			if l["message"] == "retrying" {
				retries++
			} else {
				requests++
			}
			id, _ := l["event"].(string)
			if assert.NotEmpty(t, id, "a request made for an event does not name it: %s", line) {
				requestsOf[id]++
				assert.NotEmpty(t, l["key"], line)
			}
		}
		if l["event"] == "log-bad-1" && l["level"] == "warn" {
			deadLetter = l
		}
	}
	assert.Positive(t, requests)
	t.Logf("%d request lines, %d retry lines, %d secrets checked", requests, retries, len(secrets.secrets())+2)
	for id, o := range rep.Outcomes {
		if len(o.Requests) > 0 {
			assert.Positive(t, requestsOf[id], "no request line names %s", id)
		}
	}
	require.NotNil(t, deadLetter, "the dead letter is logged at warn")
	assert.Equal(t, "Printer", deadLetter["object"])
	assert.Equal(t, "name=p1", deadLetter["key"])
	assert.NotEmpty(t, secrets.secrets(), "tokens and passwords went by")
}
