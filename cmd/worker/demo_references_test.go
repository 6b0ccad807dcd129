package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

func itemsOf(t *testing.T, changes ...events.Change) []publish.Item {
	t.Helper()
	var items []publish.Item
	for i, ch := range changes {
		raw, err := events.NewEvent(fmt.Sprintf("ref-%d", i+1), "/hr/test", ch).Encode()
		require.NoError(t, err)
		items = append(items, publish.Item{Line: i + 1, ID: fmt.Sprintf("ref-%d", i+1), Raw: raw, Object: ch.Object, Key: ch.Key})
	}
	return items
}

// The demo's reference check finds a manager left unset, a member missing and a member no event
// asked for, and expects nothing of a deleted user or a manager never created.
func TestDemoReferenceCheck(t *testing.T) {
	t.Parallel()
	mgr := enterpriseExt + ":manager.value"
	u := func(name string) map[string]any { return map[string]any{"userName": name} }
	items := itemsOf(t,
		events.Change{Object: "User", Operation: events.OpCreate, Key: u("rep@x"), Attributes: map[string]any{mgr: "boss@x"}},
		events.Change{Object: "User", Operation: events.OpCreate, Key: u("boss@x")},
		events.Change{Object: "User", Operation: events.OpCreate, Key: u("orphan@x"), Attributes: map[string]any{mgr: "nobody@x"}},
		events.Change{Object: "User", Operation: events.OpCreate, Key: u("gone@x"), Attributes: map[string]any{mgr: "boss@x"}},
		events.Change{Object: "Group", Operation: events.OpCreate, Key: map[string]any{"displayName": "team"}},
		events.Change{Object: "Group", Operation: events.OpAddAssignment, Key: map[string]any{"displayName": "team"},
			Attributes: map[string]any{"members[].value": []any{"rep@x", "boss@x", "gone@x"}}},
		events.Change{Object: "Group", Operation: events.OpRemoveAssignment, Key: map[string]any{"displayName": "team"},
			Attributes: map[string]any{"members[].value": []any{"boss@x"}}},
		events.Change{Object: "User", Operation: events.OpDelete, Key: u("gone@x")},
	)
	sim, err := cyberarksim.New(cyberarksim.Config{})
	require.NoError(t, err)
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "boss@x"}, map[string]any{"userName": "orphan@x"}))
	bossID := ""
	for _, x := range sim.Snapshot().Users {
		if x["userName"] == "boss@x" {
			bossID = x["id"].(string)
		}
	}
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "rep@x"}))
	require.NoError(t, sim.Seed("Groups", map[string]any{"displayName": "team", "members": []any{map[string]any{"value": bossID}}}))

	checked, problems := expectedReferences(items).check(sim.Snapshot())
	assert.Equal(t, 2, checked, "rep's manager and rep's membership")
	assert.Equal(t, []string{
		"User rep@x: manager unset, want boss@x",
		"Group team: 1 member(s) missing: rep@x",
		"Group team: 1 member(s) no event asked for: boss@x",
	}, problems)

	// Set as the events say: nothing to report.
	sim.Reset()
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "boss@x"}, map[string]any{"userName": "orphan@x"}))
	for _, x := range sim.Snapshot().Users {
		if x["userName"] == "boss@x" {
			bossID = x["id"].(string)
		}
	}
	require.NoError(t, sim.Seed("Users", map[string]any{"userName": "rep@x", enterpriseExt: map[string]any{"manager": map[string]any{"value": bossID}}}))
	var repID string
	for _, x := range sim.Snapshot().Users {
		if x["userName"] == "rep@x" {
			repID = x["id"].(string)
		}
	}
	require.NoError(t, sim.Seed("Groups", map[string]any{"displayName": "team", "members": []any{map[string]any{"value": repID}}}))
	checked, problems = expectedReferences(items).check(sim.Snapshot())
	assert.Equal(t, 2, checked)
	assert.Empty(t, problems)
}

// Issue 7, "must show" 2: `publisher generate --users 1000` through `worker demo` ends with every
// event succeeded (or skipped as already done), every manager reference and membership set. The
// issue's 60 s is a figure, not an assertion: the test prints the time (make test runs it with -v,
// without the race detector, which slows the worker several times over; under it the test is
// skipped, as the separate run covers it).
func TestDemoOfAThousandGeneratedUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 2,700 events through the demo")
	}
	if raceDetector {
		t.Skip("a timing test: make test runs it without the race detector")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the publisher")
	}
	dir := t.TempDir()
	build := exec.Command(goTool, "build", "-o", dir, "./cmd/publisher")
	build.Dir = repo(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	gen := exec.Command(filepath.Join(dir, "publisher"), "generate", "--users", "1000")
	generated, err := gen.Output()
	require.NoError(t, err)
	file := filepath.Join(dir, "events.jsonl")
	require.NoError(t, os.WriteFile(file, generated, 0o600))

	var stdout, stderr syncBuffer
	start := time.Now()
	err = run(context.Background(), []string{"demo", "--config", filepath.Join(repo(t), "deploy/examples/config.yaml"),
		"--events", file, "--dir", dir}, &stdout, &stderr)
	took := time.Since(start)
	text := stdout.String()
	require.NoError(t, err, "%s\n%s", text, stderr.String())
	t.Logf("worker demo of %d generated lines: %s", len(regexp.MustCompile(`(?m)^\{`).FindAllIndex(generated, -1)), took.Round(time.Millisecond))
	assert.Contains(t, text, "DEMO PASSED")
	m := regexp.MustCompile(`References: the (\d+) manager references and group memberships the events imply are all set`).FindStringSubmatch(text)
	require.NotNil(t, m, text)
	n, _ := strconv.Atoi(m[1])
	assert.Greater(t, n, 1000, "managers of ~950 users and their memberships were checked")
}
