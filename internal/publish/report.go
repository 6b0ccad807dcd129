package publish

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/scimflow/scimflow/internal/events"
)

// Counts returns the number of final outcomes of this run per status.
func (r *Report) Counts() map[events.Status]int { return countStatuses(r.Outcomes) }

// EarlierCounts returns the number of earlier final outcomes of duplicates per status.
func (r *Report) EarlierCounts() map[events.Status]int { return countStatuses(r.Earlier) }

func countStatuses(m map[string]*events.Outcome) map[events.Status]int {
	c := map[events.Status]int{}
	for _, o := range m {
		c[o.Status]++
	}
	return c
}

// Succeeded reports whether o counts as success: the target reflects the event, whether requests
// were needed (succeeded) or not (skipped).
func Succeeded(o *events.Outcome) bool {
	return o.Status == events.StatusSucceeded || o.Status == events.StatusSkipped
}

// Failure is one event that did not succeed.
type Failure struct {
	Item Item
	// Outcome is its final outcome; nil when none arrived or it was not published.
	Outcome *events.Outcome
	// Earlier says the event was a duplicate, not processed again in this run: Outcome, if any, is
	// that of its earlier publication.
	Earlier bool
	// Status is the outcome's status, or "no outcome", "not published", "unconfirmed".
	Status string
	// Reason says why, in full.
	Reason string
}

// Labels of failures without a final outcome.
const (
	statusNoOutcome    = "no outcome"
	statusNotPublished = "not published"
	statusUnconfirmed  = "unconfirmed"
)

// itemSets indexes the report's lists by line, which is unique per item of one input.
type itemSets struct {
	missing, dupes, unpublished, unconfirmed, skipped map[int]bool
}

func (r *Report) sets() itemSets {
	by := func(items []Item) map[int]bool {
		m := make(map[int]bool, len(items))
		for _, it := range items {
			m[it.Line] = true
		}
		return m
	}
	return itemSets{by(r.Missing), by(r.Duplicates), by(r.Unpublished), by(r.Unconfirmed), by(r.Skipped)}
}

// Failures are the events that did not succeed, in input order: a final outcome other than
// succeeded or skipped (in this run, or earlier for a duplicate), no final outcome when the wait
// ended, not published, or not confirmed. Without Wait only the last two count.
func (r *Report) Failures() []Failure {
	s := r.sets()
	var out []Failure
	for _, it := range r.Items {
		switch {
		case s.unpublished[it.Line]:
			out = append(out, Failure{Item: it, Status: statusNotPublished, Reason: "not published: " + r.unpublishedWhy()})
		case s.unconfirmed[it.Line]:
			out = append(out, Failure{Item: it, Status: statusUnconfirmed,
				Reason: "sent, but JetStream's acknowledgement did not arrive before the run stopped: it may be stored and processed"})
		case !r.Waited:
		case s.missing[it.Line]:
			out = append(out, Failure{Item: it, Earlier: s.dupes[it.Line], Status: statusNoOutcome, Reason: r.missingWhy(s.dupes[it.Line])})
		case s.dupes[it.Line]:
			if o := r.Earlier[it.ID]; o != nil && !Succeeded(o) {
				out = append(out, Failure{Item: it, Outcome: o, Earlier: true, Status: string(o.Status), Reason: outcomeReason(o)})
			}
		default:
			if o := r.Outcomes[it.ID]; o != nil && !Succeeded(o) {
				out = append(out, Failure{Item: it, Outcome: o, Status: string(o.Status), Reason: outcomeReason(o)})
			}
		}
	}
	return out
}

func (r *Report) unpublishedWhy() string {
	switch {
	case r.Interrupted:
		return "the run was interrupted first"
	case r.PublishErr != nil:
		return "publishing stopped: " + r.PublishErr.Error()
	default:
		return fmt.Sprintf("the events before its #wait line had no final outcome within the %s timeout", r.Timeout)
	}
}

func (r *Report) missingWhy(duplicate bool) string {
	if !duplicate {
		if r.Interrupted {
			return "interrupted before its final outcome arrived; the worker still processes it"
		}
		return fmt.Sprintf("no final outcome within the %s timeout", r.Timeout)
	}
	why := "published before, within JetStream's duplicate window, so not processed again in this run; "
	switch lb := r.Lookback; {
	case lb == nil:
		why += "its earlier outcome was not looked up: the wait ended first"
	case lb.Err != nil:
		why += fmt.Sprintf("its earlier final outcome was not found: %v", lb.Err)
	default:
		since := "its start"
		if !lb.Since.IsZero() {
			since = lb.Since.Format(time.RFC3339)
		}
		why += fmt.Sprintf("no final outcome of it in %s since %s, nor within the %s wait: it is still in progress, or its outcome is no longer retained",
			events.OutcomesStream, since, r.Timeout)
	}
	return why
}

func outcomeReason(o *events.Outcome) string {
	if o.Error != nil {
		return o.Error.Class + ": " + o.Error.Message
	}
	if o.Reason != "" {
		return o.Reason
	}
	return "(no reason given)"
}

// OK reports whether the wait ended with every event done: a succeeded or skipped final outcome in
// this run, or, for a duplicate, from its earlier publication. Invalid events left out on purpose
// (SkipInvalid) do not count against it.
func (r *Report) OK() bool {
	return r.Waited && !r.Interrupted && len(r.Failures()) == 0
}

// RenderOptions say how much Render shows.
type RenderOptions struct {
	// Details lists every event that did not succeed with its full reason, instead of a summary by
	// status and reason with a few examples each.
	Details bool
	// FullList names a file holding every event's status and full reason (WriteTSV), for the
	// summary to point at.
	FullList string
}

// Limits of the summary by status and reason.
const (
	maxGroups   = 10  // status-and-reason groups shown
	maxExamples = 3   // events shown per group
	reasonWidth = 500 // characters of a reason shown: a few terminal lines
)

// Render writes a readable summary: what was published, outcome counts per status (this run's and,
// for duplicates, the earlier ones apart), and the events that did not succeed, summarised by
// status and reason (or, with Details, each with its full reason).
func (r *Report) Render(w io.Writer, opt RenderOptions) {
	fmt.Fprintf(w, "Published %d events (%d duplicates dropped by JetStream", r.Published, len(r.Duplicates))
	if n := len(r.Skipped); n > 0 {
		fmt.Fprintf(w, ", %d invalid left unpublished", n)
	}
	if n := r.invalidPublished(); n > 0 {
		fmt.Fprintf(w, ", %d invalid published for the worker to dead-letter", n)
	}
	fmt.Fprintln(w, ")")
	if r.Resent {
		fmt.Fprintln(w, "Every event was sent under a fresh message id, to be processed again.")
	}
	if n := len(r.Duplicates); n > 0 {
		window := ""
		if r.DuplicateWindow > 0 {
			window = " (" + r.DuplicateWindow.String() + ")"
		}
		fmt.Fprintf(w, "%d %s NOT processed again: events with the same ids were published within JetStream's duplicate window%s.\n",
			n, plural(n, "duplicate was", "duplicates were"), window)
	}
	if n := len(r.Unpublished); n > 0 {
		fmt.Fprintf(w, "%d %s not published: %s.\n", n, plural(n, "event was", "events were"), r.unpublishedWhy())
	}
	if n := len(r.Unconfirmed); n > 0 {
		fmt.Fprintf(w, "%d %s sent without JetStream's acknowledgement before the run stopped.\n", n, plural(n, "event was", "events were"))
	}
	if !r.Waited {
		return
	}
	if r.Interrupted {
		fmt.Fprintf(w, "Interrupted after %s; outcomes so far:\n", r.Elapsed.Round(10*time.Millisecond))
	} else {
		fmt.Fprintf(w, "Outcomes after %s:\n", r.Elapsed.Round(10*time.Millisecond))
	}
	r.renderCounts(w)
	if len(r.Progress) > 0 {
		var parts []string
		for s, n := range r.Progress {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "  progress outcomes seen on the way: %s\n", strings.Join(parts, ", "))
	}
	if lb := r.Lookback; lb != nil {
		since := "its start"
		if !lb.Since.IsZero() {
			since = lb.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  earlier outcomes of duplicates: %d of %d found in %s since %s (%d outcomes read)",
			lb.Found, lb.Wanted, events.OutcomesStream, since, lb.Read)
		if lb.Err != nil {
			fmt.Fprintf(w, "; the search stopped early: %v", lb.Err)
		}
		fmt.Fprintln(w)
	}

	failures := r.Failures()
	if len(failures) == 0 && !r.Interrupted {
		fmt.Fprintln(w, r.doneLine())
	}
	shortened := false
	if len(failures) > 0 {
		if opt.Details {
			renderDetails(w, failures)
		} else {
			shortened = renderGroups(w, failures)
		}
	}
	switch {
	case opt.FullList != "":
		fmt.Fprintf(w, "Every event with its status and full reason: %s\n", opt.FullList)
	case shortened:
		fmt.Fprintln(w, "(Shortened: some events or reason text are left out.)")
	}
}

// invalidPublished counts the invalid events JetStream stored in this run.
func (r *Report) invalidPublished() int {
	s := r.sets()
	n := 0
	for _, it := range Invalid(r.Items) {
		if !s.skipped[it.Line] && !s.unpublished[it.Line] && !s.unconfirmed[it.Line] && !s.dupes[it.Line] {
			n++
		}
	}
	return n
}

// renderCounts writes the final outcomes per status; with duplicates, this run's and the earlier
// ones in separate columns.
func (r *Report) renderCounts(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	this := r.Counts()
	s := r.sets()
	var missingNow, missingDup int
	for _, it := range r.Missing {
		if s.dupes[it.Line] {
			missingDup++
		} else {
			missingNow++
		}
	}
	missing := "no outcome (timed out)"
	if r.Interrupted {
		missing = "still waiting"
	}
	if len(r.Duplicates) == 0 {
		fmt.Fprintln(tw, "  STATUS\tCOUNT")
		for _, st := range finalStatuses {
			fmt.Fprintf(tw, "  %s\t%d\n", st, this[st])
		}
		if missingNow > 0 {
			fmt.Fprintf(tw, "  %s\t%d\n", missing, missingNow)
		}
	} else {
		earlier := r.EarlierCounts()
		fmt.Fprintln(tw, "  STATUS\tTHIS RUN\tEARLIER (duplicates, not processed again)")
		for _, st := range finalStatuses {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", st, this[st], earlier[st])
		}
		if missingNow+missingDup > 0 {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", missing, missingNow, missingDup)
		}
	}
	tw.Flush()
}

// doneLine says that every event is done, and which were processed in this run.
func (r *Report) doneLine() string {
	if len(r.Duplicates) == 0 && len(r.Skipped) == 0 {
		return "Every event succeeded."
	}
	n := len(r.Outcomes)
	parts := []string{fmt.Sprintf("%d %s in this run", n, plural(n, "event succeeded", "events succeeded"))}
	if n := len(r.Duplicates); n > 0 {
		earlier := r.EarlierCounts()
		parts = append(parts, fmt.Sprintf("%d %s NOT processed again (%s earlier %s: succeeded %d, skipped %d)",
			n, plural(n, "duplicate was", "duplicates were"), plural(n, "its", "their"), plural(n, "outcome", "outcomes"),
			earlier[events.StatusSucceeded], earlier[events.StatusSkipped]))
	}
	if n := len(r.Skipped); n > 0 {
		parts = append(parts, fmt.Sprintf("%d invalid %s left unpublished", n, plural(n, "event", "events")))
	}
	return "Done: " + strings.Join(parts, "; ") + "."
}

// renderDetails lists every failure with its full reason.
func renderDetails(w io.Writer, failures []Failure) {
	fmt.Fprintf(w, "Not succeeded (%d), in input order:\n", len(failures))
	for _, f := range failures {
		fmt.Fprintf(w, "  line %d  %s  %s %s  %s\n      %s\n", f.Item.Line, f.Item.ID, f.Item.Object,
			events.KeyString(f.Item.Key), f.label(), oneLine(f.Reason, 0))
	}
}

func (f Failure) label() string {
	if f.Earlier {
		return f.Status + " (earlier outcome, not processed again)"
	}
	return f.Status
}

type failureGroup struct {
	label, reason string
	failures      []Failure
}

// groupFailures groups failures by label and reason, largest group first, then in input order of
// their first event.
func groupFailures(failures []Failure) []*failureGroup {
	var groups []*failureGroup
	byKey := map[string]*failureGroup{}
	for _, f := range failures {
		reason := oneLine(f.Reason, 0)
		key := f.label() + "\x00" + reason
		g := byKey[key]
		if g == nil {
			g = &failureGroup{label: f.label(), reason: reason}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.failures = append(g.failures, f)
	}
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i].failures) > len(groups[j].failures) })
	return groups
}

// renderGroups summarises failures by status and reason with a few examples each, and reports
// whether it left events or reason text out.
func renderGroups(w io.Writer, failures []Failure) bool {
	groups := groupFailures(failures)
	fmt.Fprintf(w, "Not succeeded (%d), by status and reason:\n", len(failures))
	for _, g := range groups[:min(len(groups), maxGroups)] {
		fmt.Fprintf(w, "  %d × %s: %s\n", len(g.failures), g.label, oneLine(g.reason, reasonWidth))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range g.failures[:min(len(g.failures), maxExamples)] {
			fmt.Fprintf(tw, "      line %d\t%s\t%s\t%s\n", f.Item.Line, f.Item.ID, f.Item.Object, events.KeyString(f.Item.Key))
		}
		tw.Flush()
		if n := len(g.failures) - maxExamples; n > 0 {
			fmt.Fprintf(w, "      and %d more\n", n)
		}
	}
	if n := len(groups) - maxGroups; n > 0 {
		rest := 0
		for _, g := range groups[maxGroups:] {
			rest += len(g.failures)
		}
		fmt.Fprintf(w, "  and %d more reasons (%d events)\n", n, rest)
	}
	return abridged(groups)
}

// abridged reports whether the summary of groups leaves events or reason text out.
func abridged(groups []*failureGroup) bool {
	if len(groups) > maxGroups {
		return true
	}
	for _, g := range groups {
		if len(g.failures) > maxExamples || utf8.RuneCountInString(g.reason) > reasonWidth {
			return true
		}
	}
	return false
}

// Abridged reports whether Render, without Details, leaves events or reason text out: a caller
// then writes the full list (WriteTSV) somewhere and names it in RenderOptions.FullList.
func (r *Report) Abridged() bool {
	return abridged(groupFailures(r.Failures()))
}

// WriteTSV writes every event, in input order, as tab-separated columns with a header: line, event
// id, object, key, what publishing did (published, duplicate, left out, not published,
// unconfirmed), status (or "no outcome"), whose outcome it is (this run, earlier), attempt, target
// id, outcome id and the full reason on one line.
func (r *Report) WriteTSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	s := r.sets()
	fails := map[int]Failure{}
	for _, f := range r.Failures() {
		fails[f.Item.Line] = f
	}
	fmt.Fprintln(bw, "line\tevent\tobject\tkey\tpublication\tstatus\toutcome_of\tattempt\ttarget_id\toutcome_id\treason")
	for _, it := range r.Items {
		publication := "published"
		switch {
		case s.skipped[it.Line]:
			publication = "left out (invalid)"
		case s.unpublished[it.Line]:
			publication = "not published"
		case s.unconfirmed[it.Line]:
			publication = "unconfirmed"
		case s.dupes[it.Line]:
			publication = "duplicate"
		}
		var status, of, reason string
		o := r.Outcomes[it.ID]
		if s.dupes[it.Line] {
			o = r.Earlier[it.ID]
		}
		switch f, failed := fails[it.Line]; {
		case failed:
			status, reason = f.Status, f.Reason
		case s.skipped[it.Line]:
			reason = it.Problem()
		case o != nil:
			status, reason = string(o.Status), o.Reason
		}
		attempt, targetID, outcomeID := "", "", ""
		if o != nil {
			of, attempt, targetID, outcomeID = "this run", strconv.Itoa(o.Attempt), o.TargetID, o.ID
			if s.dupes[it.Line] {
				of = "earlier"
			}
		} else if r.Waited && status == "" && !s.skipped[it.Line] {
			status = statusNoOutcome
		}
		fmt.Fprintf(bw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Line, tsv(it.ID), tsv(it.Object), tsv(events.KeyString(it.Key)),
			publication, status, of, attempt, tsv(targetID), tsv(outcomeID), tsv(reason))
	}
	return bw.Flush()
}

// tsv puts s on one line without tabs.
func tsv(s string) string { return oneLine(s, 0) }

// oneLine joins s's words with single spaces and, when max > 0, shortens it to max characters.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 && utf8.RuneCountInString(s) > max {
		return string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
