package publish

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimflow/scimflow/internal/events"
)

// Counts returns the number of final outcomes per status.
func (r *Report) Counts() map[events.Status]int {
	c := map[events.Status]int{}
	for _, o := range r.Outcomes {
		c[o.Status]++
	}
	return c
}

// Succeeded reports whether o counts as success: the target reflects the event, whether requests
// were needed (succeeded) or not (skipped).
func Succeeded(o *events.Outcome) bool {
	return o.Status == events.StatusSucceeded || o.Status == events.StatusSkipped
}

// Failures are the waited-for events that did not succeed, in file order: those with a final
// outcome other than succeeded or skipped, and those without one.
func (r *Report) Failures() []Failure {
	var out []Failure
	missing := map[string]bool{}
	for _, it := range r.Missing {
		missing[it.ID] = true
	}
	for _, it := range r.Items {
		if o, ok := r.Outcomes[it.ID]; ok && !Succeeded(o) {
			out = append(out, Failure{Item: it, Outcome: o})
		} else if missing[it.ID] {
			out = append(out, Failure{Item: it})
		}
	}
	return out
}

// Failure is one event that did not succeed; Outcome is nil when none arrived in time.
type Failure struct {
	Item    Item
	Outcome *events.Outcome
}

// OK reports whether every published event succeeded (or was skipped) in time.
func (r *Report) OK() bool { return r.Waited && len(r.Failures()) == 0 }

// Render writes a readable summary: what was published, outcome counts per status, and each
// event that did not succeed with its reason.
func (r *Report) Render(w io.Writer) {
	fmt.Fprintf(w, "Published %d events (%d duplicates dropped by JetStream", r.Published, len(r.Duplicates))
	if n := len(r.Skipped); n > 0 {
		fmt.Fprintf(w, ", %d invalid left unpublished", n)
	}
	invalid := 0
	for _, it := range r.Items {
		if it.Invalid != nil {
			invalid++
		}
	}
	if n := invalid - len(r.Skipped); n > 0 {
		fmt.Fprintf(w, ", %d invalid published for the worker to dead-letter", n)
	}
	fmt.Fprintln(w, ")")
	if !r.Waited {
		return
	}
	fmt.Fprintf(w, "Outcomes after %s:\n", r.Elapsed.Round(10*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tCOUNT")
	counts := r.Counts()
	for _, s := range []events.Status{events.StatusSucceeded, events.StatusSkipped, events.StatusDeadLettered, events.StatusRejected} {
		fmt.Fprintf(tw, "  %s\t%d\n", s, counts[s])
	}
	if len(r.Missing) > 0 {
		fmt.Fprintf(tw, "  no outcome (timed out)\t%d\n", len(r.Missing))
	}
	tw.Flush()
	if len(r.Progress) > 0 {
		var parts []string
		for s, n := range r.Progress {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "  progress outcomes seen on the way: %s\n", strings.Join(parts, ", "))
	}
	failures := r.Failures()
	if len(failures) == 0 {
		fmt.Fprintln(w, "Every event succeeded.")
		return
	}
	fmt.Fprintf(w, "Not succeeded (%d):\n", len(failures))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  LINE\tEVENT\tOBJECT\tKEY\tSTATUS\tREASON")
	for _, f := range failures {
		status, reason := "no outcome", "no final outcome before the timeout"
		if f.Outcome != nil {
			status, reason = string(f.Outcome.Status), f.Outcome.Reason
			if f.Outcome.Error != nil {
				reason = f.Outcome.Error.Class + ": " + f.Outcome.Error.Message
			}
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", f.Item.Line, f.Item.ID, f.Item.Object, events.KeyString(f.Item.Key), status, oneLine(reason, 160))
	}
	tw.Flush()
}

// oneLine joins s's words with single spaces and, when max > 0, shortens it to max characters.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 && len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}
