package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpReplay = &cli.Command{
	Name:    "worker replay",
	Summary: "re-process retained events: a replay converges the target and duplicates nothing",
	Usage:   "worker replay --since T | --from-seq N [--to-seq M] [--object O] [--dry-run] [--wait D] [--config FILE | --nats URL]",
	Description: `Republishes retained events of IDM_EVENTS, in order, with new message ids (<id>/replay/<seq>), so
they go through the same path as any event: each is planned against the target as it is now, so a
target changed behind scimflow's back converges, nothing is created twice, and events whose state
already matches end 'skipped'.`,
	Examples: []string{"worker replay --since 24h --wait 1m", "worker replay --from-seq 1200 --to-seq 1300 --object User --dry-run"},
	Env:      []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdReplay is `worker replay`: republish retained events of IDM_EVENTS for the workers to process
// again. Processing is idempotent (each event is planned against the target's current state), so a
// replay converges the target without duplicating anything.
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpReplay.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	sinceFlag := fs.String("since", "", "replay the events stored since this time (2026-05-01, 2026-05-01T10:00:00Z) or duration ago (90m)")
	from := fs.Uint64("from-seq", 0, "replay from this sequence of IDM_EVENTS")
	to := fs.Uint64("to-seq", 0, "replay up to this sequence (default: the last event stored when the replay starts)")
	object := fs.String("object", "", "replay only the events of this data-model object (User, Group, ...)")
	dryRun := fs.Bool("dry-run", false, "list what would be replayed, publish nothing")
	wait := fs.Duration("wait", 0, "wait this long for the replayed events' final outcomes and report them (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*sinceFlag == "") == (*from == 0) || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: worker replay --since TIME | --from-seq N  [--to-seq M] [--object O] [--dry-run] [--wait D]")
		return exitError(2)
	}
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "worker replay: --since:", err)
		return exitError(2)
	}
	r := events.ReplayRange{Since: since, FromSeq: *from, ToSeq: *to, Object: *object}
	if err := r.Validate(); err != nil {
		fmt.Fprintln(stderr, "worker replay:", err)
		return exitError(2)
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()

	var watch *events.OutcomeWatch
	if *wait > 0 && !*dryRun {
		watch, err = events.WatchOutcomes(nc, func(id string) bool { return strings.Contains(id, "/replay/") })
		if err != nil {
			return err
		}
		defer watch.Stop()
	}
	opt := events.ReplayOptions{DryRun: *dryRun}
	opt.OnEvent = func(e events.ReplayedEvent) {
		if *dryRun {
			what := "would republish as " + e.MsgID + " on " + e.Subject
			if e.Skipped != "" {
				what = "skip: " + e.Skipped
			}
			fmt.Fprintf(stdout, "seq %d  %s  %s  %s  %s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Object, cell(e.EventID, 60), what)
		}
		if watch != nil && e.Skipped == "" && !e.Duplicate {
			watch.Want(e.MsgID)
		}
	}
	started := time.Now()
	sum, err := events.Replay(ctx, js, r, opt)
	if sum != nil {
		renderReplaySummary(stdout, r, sum, time.Since(started))
	}
	if err != nil {
		return err
	}
	if watch != nil && !reportOutcomes(ctx, stdout, watch, *wait) {
		return exitError(1)
	}
	return nil
}

func renderReplaySummary(w io.Writer, r events.ReplayRange, sum *events.ReplaySummary, took time.Duration) {
	var scope []string
	switch {
	case !r.Since.IsZero():
		scope = append(scope, "since "+r.Since.UTC().Format(time.RFC3339))
	case r.FromSeq > 0:
		scope = append(scope, fmt.Sprintf("from seq %d", r.FromSeq))
	}
	scope = append(scope, fmt.Sprintf("up to seq %d", sum.UpTo))
	if r.Object != "" {
		scope = append(scope, "object "+r.Object)
	}
	verb := "republished"
	if sum.DryRun {
		verb = "would republish"
	}
	fmt.Fprintf(w, "replay of %s (%s): read %d", events.EventsStream, strings.Join(scope, ", "), sum.Read)
	if sum.Read > 0 {
		fmt.Fprintf(w, " (seq %d to %d)", sum.First, sum.Last)
	}
	fmt.Fprintf(w, ", %s %d", verb, sum.Republished)
	if sum.Duplicates > 0 {
		fmt.Fprintf(w, ", %d already replayed within the duplicate window (dropped)", sum.Duplicates)
	}
	if sum.Copies > 0 {
		fmt.Fprintf(w, ", %d replay copies of events in the range skipped", sum.Copies)
	}
	fmt.Fprintf(w, " in %s\n", took.Round(time.Millisecond))
	if len(sum.ByObject) > 0 {
		names := make([]string, 0, len(sum.ByObject))
		for n := range sum.ByObject {
			names = append(names, n)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = fmt.Sprintf("%s %d", n, sum.ByObject[n])
		}
		fmt.Fprintf(w, "  by object: %s\n", strings.Join(parts, ", "))
	}
}
