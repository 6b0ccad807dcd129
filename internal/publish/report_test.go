package publish

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/events"
)

// manyFailures is a report of n events: most without an outcome, two dead-lettered with a reason
// far longer than a summary line.
func manyFailures(n int) (*Report, string) {
	long := `unknown property "titel" of User (properties: ` + strings.Repeat("userName, name.givenName, name.familyName, ", 15) + `title)`
	rep := &Report{Outcomes: map[string]*events.Outcome{}, Earlier: map[string]*events.Outcome{}, Waited: true, Timeout: 2 * time.Minute}
	for i := 1; i <= n; i++ {
		it := Item{Line: i, ID: fmt.Sprintf("gen-%06d", i), Object: "User", Key: map[string]any{"userName": fmt.Sprintf("u%d@x", i)}}
		rep.Items = append(rep.Items, it)
		rep.Published++
		if i <= 2 {
			rep.Outcomes[it.ID] = &events.Outcome{ID: it.ID, InputID: it.ID, Status: events.StatusDeadLettered, Final: true,
				Error: &events.OutcomeError{Class: "permanent", Message: long}}
			continue
		}
		rep.Missing = append(rep.Missing, it)
	}
	return rep, long
}

// TestRenderSummarisesManyFailures: thousands of failures make a short summary by status and
// reason with a few examples each, and say where the full list is.
func TestRenderSummarisesManyFailures(t *testing.T) {
	t.Parallel()
	rep, long := manyFailures(5000)
	require.True(t, rep.Abridged())
	text := render(rep, RenderOptions{FullList: "/tmp/full.tsv"})
	assert.Less(t, strings.Count(text, "\n"), 30, text)
	for _, line := range strings.Split(text, "\n") {
		assert.LessOrEqual(t, len([]rune(line)), 600, "a line longer than a few terminal lines: %q", line)
	}
	assert.Contains(t, text, "Not succeeded (5000), by status and reason:")
	assert.Contains(t, text, "4998 × no outcome: no final outcome within the 2m0s timeout")
	assert.Contains(t, text, "line 3  gen-000003  User  userName=u3@x")
	assert.Contains(t, text, "and 4995 more")
	assert.Contains(t, text, `2 × dead_lettered: permanent: unknown property "titel" of User (properties: userName`)
	assert.NotContains(t, text, long, "shortened on screen")
	assert.Contains(t, text, "Every event with its status and full reason: /tmp/full.tsv")
}

// TestRenderDetailsShowsFullReasons: Details lists each failure with its reason in full.
func TestRenderDetailsShowsFullReasons(t *testing.T) {
	t.Parallel()
	rep, long := manyFailures(3)
	text := render(rep, RenderOptions{Details: true})
	assert.Contains(t, text, "Not succeeded (3), in input order:")
	assert.Contains(t, text, "line 1  gen-000001  User userName=u1@x  dead_lettered\n      permanent: "+long+"\n")
	assert.Contains(t, text, "line 3  gen-000003  User userName=u3@x  no outcome\n      no final outcome within the 2m0s timeout\n")
}

// TestWriteTSVHasEveryEventWithItsFullReason: the full list has one line per event, reasons whole.
func TestWriteTSVHasEveryEventWithItsFullReason(t *testing.T) {
	t.Parallel()
	rep, long := manyFailures(5000)
	ok := Item{Line: 5001, ID: "fine", Object: "User", Key: map[string]any{"userName": "f@x"}}
	rep.Items = append(rep.Items, ok)
	rep.Outcomes["fine"] = &events.Outcome{ID: "fine", InputID: "fine", Status: events.StatusSucceeded, Final: true, Attempt: 1, TargetID: "t1"}
	var b bytes.Buffer
	require.NoError(t, rep.WriteTSV(&b))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 5002, "a header and one line per event")
	assert.Equal(t, "line\tevent\tobject\tkey\tpublication\tstatus\toutcome_of\tattempt\ttarget_id\toutcome_id\treason", lines[0])
	assert.Equal(t, "1\tgen-000001\tUser\tuserName=u1@x\tpublished\tdead_lettered\tthis run\t0\t\tgen-000001\tpermanent: "+long, lines[1])
	assert.Equal(t, "3\tgen-000003\tUser\tuserName=u3@x\tpublished\tno outcome\t\t\t\t\tno final outcome within the 2m0s timeout", lines[3])
	assert.Equal(t, "5001\tfine\tUser\tuserName=f@x\tpublished\tsucceeded\tthis run\t1\tt1\tfine\t", lines[5001])
}
