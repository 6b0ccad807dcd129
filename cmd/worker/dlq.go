package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

const dlqUsage = `usage: worker dlq <command> [flags]

commands:
  list     list dead letters: time, event id, object, key, class, reason, attempts, sequences
           [--object O] [--class C] [--since T] [--json]
  show     one dead letter's headers and payload: show ID (an event id) or show --seq N [--raw]
  replay   republish dead letters' events for the worker to process again, and remove them
           --id ID | --seq N | --class C | --all  [--object O] [--since T] [--wait D]

Every command takes --config FILE (its nats section says where NATS is) or --nats URL.
T is a time (2026-05-01, 2026-05-01T10:00:00Z) or a duration before now (90m, 24h).
`

// cmdDLQ is `worker dlq list|show|replay`.
func cmdDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return exitError(2)
	}
	switch args[0] {
	case "list":
		return cmdDLQList(ctx, args[1:], stdout, stderr)
	case "show":
		return cmdDLQShow(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdDLQReplay(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, dlqUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "worker dlq: unknown command %q\n%s", args[0], dlqUsage)
		return exitError(2)
	}
}

// dlqSelection reads the flags every dlq command shares to select dead letters.
type dlqSelection struct {
	object, class, since *string
}

func selectionFlags(fs *flag.FlagSet) *dlqSelection {
	return &dlqSelection{
		object: fs.String("object", "", "only dead letters of this data-model object (User, Group, ...)"),
		class:  fs.String("class", "", "only dead letters of this error class (invalid, permanent, not_found, exhausted, ...)"),
		since:  fs.String("since", "", "only dead letters dead-lettered since this time or duration ago"),
	}
}

func (s *dlqSelection) filter() (events.DLQFilter, error) {
	since, err := parseSince(*s.since, time.Now())
	if err != nil {
		return events.DLQFilter{}, fmt.Errorf("--since: %w", err)
	}
	return events.DLQFilter{Object: *s.object, Class: *s.class, Since: since}, nil
}

// cmdDLQList is `worker dlq list`.
func cmdDLQList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpDLQList.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	sel := selectionFlags(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print JSON (one array) instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "worker dlq list: unexpected argument %q\n", fs.Arg(0))
		return exitError(2)
	}
	f, err := sel.filter()
	if err != nil {
		fmt.Fprintln(stderr, "worker dlq list:", err)
		return exitError(2)
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	list, err := events.NewDLQ(js).List(ctx, f, false)
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []*events.DeadLetterEntry{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tDLQ SEQ\tEVENT ID\tOBJECT\tKEY\tCLASS\tATTEMPTS\tSTREAM SEQ\tREASON")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n",
			e.Time.UTC().Format(time.RFC3339), e.Seq, cell(e.EventID, 40), e.Object, cell(e.KeyString(), 40),
			e.ErrorClass, e.Attempt, e.StreamSeq, cell(e.Reason, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead letter%s; the full reason: worker dlq show ID\n", len(list), plural(len(list)))
	return nil
}

// cell makes s one table cell: one line, printable, at most max characters.
func cell(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// showLimit bounds the payload `dlq show` prints; --raw writes it whole.
const showLimit = 64 << 10

// cmdDLQShow is `worker dlq show ID` or `worker dlq show --seq N`.
func cmdDLQShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpDLQShow.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	seq := fs.Uint64("seq", 0, "the dead letter's sequence in IDM_DLQ (instead of an event id)")
	raw := fs.Bool("raw", false, "write only the payload, byte for byte (the whole event, read back from IDM_EVENTS when the dead letter keeps only its first bytes)")
	if err := fs.Parse(interleaved(fs.FlagSet, args)); err != nil {
		return err
	}
	id := fs.Arg(0)
	if (id == "") == (*seq == 0) || fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: worker dlq show ID | --seq N [--raw]  (ID is an event id)")
		return exitError(2)
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	q := events.NewDLQ(js)
	list, err := q.List(ctx, events.DLQFilter{EventID: id, Seq: *seq}, true)
	if errors.Is(err, events.ErrNoDeadLetter) || err == nil && len(list) == 0 {
		what := "event " + strconv.Quote(id)
		if *seq > 0 {
			what = "seq " + strconv.FormatUint(*seq, 10)
		}
		fmt.Fprintf(stderr, "worker dlq show: no dead letter of %s in %s\n", what, events.DLQStream)
		return exitError(1)
	}
	if err != nil {
		return err
	}
	if *raw {
		for _, e := range list {
			payload, err := q.Original(ctx, e)
			if err != nil {
				return err
			}
			if _, err := stdout.Write(payload); err != nil {
				return err
			}
		}
		return nil
	}
	for i, e := range list {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		renderDeadLetter(stdout, e)
	}
	return nil
}

// interleaved moves flags after the first positional argument before it, so that `show ID --raw`
// parses like `show --raw ID`.
func interleaved(fs *flag.FlagSet, args []string) []string {
	var flagArgs, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && i+1 < len(args) {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !bf.IsBoolFlag() {
				i++
				flagArgs = append(flagArgs, args[i])
			}
		}
	}
	return append(append(flagArgs, "--"), pos...)
}

func renderDeadLetter(w io.Writer, e *events.DeadLetterEntry) {
	fmt.Fprintf(w, "dead letter %d of %s (idm.dlq.%s)\n", e.Seq, events.DLQStream, e.Object)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  event\t%s\n", cell(e.EventID, 200))
	fmt.Fprintf(tw, "  object, key\t%s %s\n", e.Object, cell(e.KeyString(), 200))
	fmt.Fprintf(tw, "  dead-lettered\t%s, attempt %d\n", e.Time.UTC().Format(time.RFC3339Nano), e.Attempt)
	fmt.Fprintf(tw, "  class\t%s\n", e.ErrorClass)
	fmt.Fprintf(tw, "  reason\t%s\n", e.Reason)
	fmt.Fprintf(tw, "  event's stream seq\t%d of %s\n", e.StreamSeq, events.EventsStream)
	if e.EventSubject != "" {
		fmt.Fprintf(tw, "  replay\tworker dlq replay --seq %d  (republishes on %s)\n", e.Seq, e.EventSubject)
	} else {
		fmt.Fprintf(tw, "  replay\tnot possible: the dead letter names no subject to republish on\n")
	}
	tw.Flush()
	fmt.Fprintln(w, "headers:")
	names := make([]string, 0, len(e.Header))
	for k := range e.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range e.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, v)
		}
	}
	if e.Truncated {
		fmt.Fprintf(w, "payload: the first %d of %d bytes (the whole event is at seq %d of %s while retained; --raw writes it):\n",
			len(e.Payload), e.PayloadSize, e.StreamSeq, events.EventsStream)
	} else {
		fmt.Fprintf(w, "payload (%d bytes):\n", len(e.Payload))
	}
	fmt.Fprintln(w, prettyPayload(e.Payload))
}

// prettyPayload renders a payload for people: indented JSON, else the text, else escaped bytes;
// at most showLimit bytes of it.
func prettyPayload(p []byte) string {
	var b bytes.Buffer
	if json.Valid(p) && json.Indent(&b, p, "", "  ") == nil && b.Len() <= showLimit {
		return b.String()
	}
	shown, more := p, 0
	if len(p) > showLimit {
		shown, more = p[:showLimit], len(p)-showLimit
	}
	var s string
	if utf8.Valid(shown) {
		s = string(shown)
	} else {
		q := strconv.Quote(string(shown))
		s = "(not UTF-8 text, shown quoted) " + q
	}
	if more > 0 {
		s += fmt.Sprintf("\n… %d more bytes (--raw writes the payload byte for byte)", more)
	}
	return s
}

// cmdDLQReplay is `worker dlq replay`.
func cmdDLQReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpDLQReplay.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	sel := selectionFlags(fs.FlagSet)
	id := fs.String("id", "", "replay the dead letters of this event id")
	seq := fs.Uint64("seq", 0, "replay the dead letter at this sequence of IDM_DLQ")
	all := fs.Bool("all", false, "replay every dead letter (that --object and --since select)")
	wait := fs.Duration("wait", 0, "wait this long for the replayed events' final outcomes and report them (0: do not wait)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	chosen := 0
	for _, set := range []bool{*id != "", *seq > 0, *all, *sel.class != ""} {
		if set {
			chosen++
		}
	}
	if chosen == 0 || fs.NArg() > 0 || (*all && chosen > 1) {
		fmt.Fprintln(stderr, "usage: worker dlq replay --id ID | --seq N | --class C | --all  [--object O] [--since T] [--wait D]")
		return exitError(2)
	}
	f, err := sel.filter()
	if err != nil {
		fmt.Fprintln(stderr, "worker dlq replay:", err)
		return exitError(2)
	}
	f.EventID, f.Seq = *id, *seq
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	q := events.NewDLQ(js)
	list, err := q.List(ctx, f, true)
	if err != nil && !errors.Is(err, events.ErrNoDeadLetter) {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "no dead letter to replay")
		if *id != "" || *seq > 0 {
			return exitError(1) // the one asked for is not there
		}
		return nil
	}
	var watch *events.OutcomeWatch
	if *wait > 0 {
		watch, err = events.WatchOutcomes(nc, func(id string) bool { return strings.Contains(id, "/replay/dlq-") })
		if err != nil {
			return err
		}
		defer watch.Stop()
	}
	var replayed []*events.DLQReplay
	failed := 0
	for _, e := range list {
		r, err := q.Replay(ctx, e)
		if r == nil {
			failed++
			fmt.Fprintf(stdout, "dead letter %d (event %s): not replayed: %v\n", e.Seq, cell(e.EventID, 80), err)
			continue
		}
		replayed = append(replayed, r)
		what := fmt.Sprintf("republished as %s, seq %d of %s", r.MsgID, r.NewSeq, events.EventsStream)
		if r.Duplicate {
			what = fmt.Sprintf("already republished as %s by an earlier replay", r.MsgID)
		}
		fmt.Fprintf(stdout, "dead letter %d (event %s, %s %s, %s): %s", e.Seq, cell(e.EventID, 80), e.Object, cell(e.KeyString(), 60), e.ErrorClass, what)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "; NOT removed: %v\n", err)
		} else {
			fmt.Fprintln(stdout, "; removed from", events.DLQStream)
		}
		if r.NewerSeq > 0 {
			fmt.Fprintf(stdout, "  note: a newer event of this key (seq %d of %s) was processed before; this replay applies its own values after it\n", r.NewerSeq, events.EventsStream)
		}
		if watch != nil && !r.Duplicate {
			watch.Want(r.MsgID)
		}
	}
	fmt.Fprintf(stdout, "replayed %d of %d dead letter%s\n", len(replayed), len(list), plural(len(list)))
	ok := failed == 0
	if watch != nil {
		ok = reportOutcomes(ctx, stdout, watch, *wait) && ok
	}
	if !ok {
		return exitError(1)
	}
	return nil
}

// reportOutcomes waits up to wait for the watched final outcomes and prints them; it reports
// whether every one arrived and succeeded or was skipped.
func reportOutcomes(ctx context.Context, w io.Writer, watch *events.OutcomeWatch, wait time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	started := time.Now()
	got := watch.Wait(wctx)
	wanted := watch.Wanted()
	counts := map[events.Status]int{}
	ok := true
	ids := make([]string, 0, len(got))
	for id := range got {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := got[id]
		counts[o.Status]++
		if o.Status == events.StatusSucceeded || o.Status == events.StatusSkipped {
			continue
		}
		ok = false
		reason := o.Reason
		if o.Error != nil {
			reason = o.Error.Class + ": " + o.Error.Message
		}
		fmt.Fprintf(w, "  %s: %s (%s)\n", id, o.Status, cell(reason, 200))
	}
	missing := wanted - len(got)
	parts := []string{}
	for _, s := range []events.Status{events.StatusSucceeded, events.StatusSkipped, events.StatusDeadLettered, events.StatusRejected} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	if missing > 0 {
		ok = false
		parts = append(parts, fmt.Sprintf("no outcome yet %d", missing))
	}
	if len(parts) == 0 {
		parts = append(parts, "none expected")
	}
	fmt.Fprintf(w, "outcomes after %s: %s\n", time.Since(started).Round(time.Millisecond), strings.Join(parts, ", "))
	if counts[events.StatusDeadLettered] > 0 {
		fmt.Fprintln(w, "  the dead-lettered ones are in the DLQ as new dead letters (worker dlq list); nothing replays them by itself")
	}
	return ok
}

var helpDLQList = &cli.Command{
	Name:    "worker dlq list",
	Summary: "list dead letters: time, event id, object, key, class, reason, attempts, sequences",
	Usage:   "worker dlq list [--object O] [--class C] [--since T] [--json] [--config FILE | --nats URL]",
	Description: `Reads IDM_DLQ, where malformed events, events the target refused and events still failing after
syncWindow.maxWindows windows are kept with their original payload and the reason.`,
	Examples: []string{"worker dlq list --config deploy/examples/config.yaml", "worker dlq list --class exhausted --since 24h"},
	Env:      []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

var helpDLQShow = &cli.Command{
	Name:        "worker dlq show",
	Summary:     "one dead letter's headers and payload",
	Usage:       "worker dlq show ID | --seq N [--raw] [--config FILE | --nats URL]",
	Description: `Prints a dead letter's summary, every header and its payload; --raw writes the payload byte for byte.`,
	Examples:    []string{"worker dlq show hr-000123", "worker dlq show --seq 42 --raw > event.json"},
	Env:         []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

var helpDLQReplay = &cli.Command{
	Name:    "worker dlq replay",
	Summary: "republish dead letters' events for the workers to process again, and remove them",
	Usage:   "worker dlq replay --id ID | --seq N | --class C | --all [--object O] [--since T] [--wait D] [--config FILE | --nats URL]",
	Description: `Republishes each selected dead letter's event on its original subject with a new message id; the
worker plans it against the target as it is now and publishes a new final outcome. The dead letter is
removed once the republish is acknowledged; a replay that fails again returns to the DLQ once.`,
	Examples: []string{"worker dlq replay --class exhausted --wait 30s", "worker dlq replay --id hr-000123"},
	Env:      []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}
