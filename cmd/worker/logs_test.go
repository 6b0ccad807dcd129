package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
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
