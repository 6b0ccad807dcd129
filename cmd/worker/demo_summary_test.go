package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// demoReportOf is a demo run of n generated events in which only the first two have an outcome, a
// dead letter, as when the worker stalls: the field report's 70 KB verdict line.
func demoReportOf(n int) *publish.Report {
	rep := &publish.Report{Outcomes: map[string]*events.Outcome{}, Waited: true}
	for i := 1; i <= n; i++ {
		it := publish.Item{Line: i, ID: fmt.Sprintf("gen-%06d", i), Object: "User", Key: map[string]any{"userName": fmt.Sprintf("u%d@x", i)}}
		rep.Items = append(rep.Items, it)
		if i <= 2 {
			rep.Outcomes[it.ID] = &events.Outcome{ID: it.ID, InputID: it.ID, Status: events.StatusDeadLettered, Final: true,
				Error: &events.OutcomeError{Class: "permanent", Message: "target said no"}}
		}
	}
	return rep
}

// TestDemoVerdictSummarisesManyProblems: thousands of failed events make a short verdict by what
// went wrong, with a few examples each.
func TestDemoVerdictSummarisesManyProblems(t *testing.T) {
	t.Parallel()
	verdict := demoVerdict(demoReportOf(3000))
	require.Error(t, verdict)
	msg := verdict.Error()
	assert.Less(t, len(msg), 1000, "a summary, not every event")
	assert.Contains(t, msg, "3000 of 3000 events did not end as expected:")
	assert.Contains(t, msg, "2998 × no outcome: line 3 (gen-000003), line 4 (gen-000004), line 5 (gen-000005) and 2995 more")
	assert.Contains(t, msg, "2 × dead_lettered: permanent: target said no: line 1 (gen-000001), line 2 (gen-000002)")
}

// TestDemoSummaryWritesTheFullList: a failed demo of many events names a file holding every event
// with its status and reason, and keeps the terminal output short.
func TestDemoSummaryWritesTheFullList(t *testing.T) {
	t.Parallel()
	sim, err := cyberarksim.New(cyberarksim.Config{})
	require.NoError(t, err)
	dir := t.TempDir()
	var out bytes.Buffer
	err = demoSummary(&out, demoReportOf(3000), sim, time.Now(), dir)
	assert.Equal(t, exitError(1), err)
	text := out.String()
	assert.Less(t, strings.Count(text, "\n"), 60, text)
	assert.Contains(t, text, "Outcomes of 3000 events: too many to list here; the full list is in "+dir)
	assert.Contains(t, text, "DEMO FAILED after")

	m := regexp.MustCompile(`Every event with its status and full reason: (\S+)\n`).FindStringSubmatch(text)
	require.NotNil(t, m, text)
	assert.Equal(t, dir, filepath.Dir(m[1]))
	full, err := os.ReadFile(m[1])
	require.NoError(t, err)
	assert.Equal(t, 3001, strings.Count(string(full), "\n"), "a header and every event")
	assert.Contains(t, string(full), "3000\tgen-003000\tUser\tuserName=u3000@x\tpublished\tno outcome\t")
	assert.Contains(t, string(full), "1\tgen-000001\tUser\tuserName=u1@x\tpublished\tdead_lettered\tthis run\t0\t\tgen-000001\tpermanent: target said no\n")
}
