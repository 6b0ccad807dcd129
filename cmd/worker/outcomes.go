package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpOutcomes = &cli.Command{
	Name:    "worker outcomes",
	Summary: "print the outcomes of events: what the stream retains, or --follow new ones",
	Usage:   "worker outcomes [--follow] [--status S] [--object O] [--key name=value] [--since DURATION|TIME] [--json] [--config FILE | --nats URL]",
	Description: `Reads the outcomes stream (IDM_OUTCOMES, subjects idm.outcomes.<object>.<status>) and prints one
line per outcome: when it was published, status, object, operation, key, event id, and the reason or
error class and message. Like 'kubectl logs', it prints what is retained and exits; with --follow it
keeps printing new outcomes until Ctrl-C. --status and --object select subjects on the server;
--key compares the outcome's key (case-insensitively, as key tokens do). --json prints each outcome
as the JSON the worker published (docs/events.md), one per line, for jq.

It connects to --nats, else to the NATS server of --config (with nats.url empty, the embedded
server's nats.listen address), else to nats://127.0.0.1:4222.`,
	Examples: []string{
		"worker outcomes --config deploy/examples/config.yaml",
		"worker outcomes --follow --status deferred,dead_lettered",
		"worker outcomes --object User --key userName=ada.lovelace@example.com --since 2h",
		"worker outcomes --since 2026-11-23T09:00:00Z --json | jq -r .error.message",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names (nats.password, nats.token, nats.credentials)"}},
}

// cmdOutcomes is `worker outcomes`.
func cmdOutcomes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpOutcomes.FlagSet(stdout, stderr)
	follow := fs.Bool("follow", false, "keep printing new outcomes until interrupted")
	fs.BoolVar(follow, "f", false, "short for --follow")
	status := fs.String("status", "", "only these `STATUSES`, comma-separated: "+strings.Join(statusNames(), ", "))
	object := fs.String("object", "", "only these `OBJECTS`, comma-separated (User, Group, ...)")
	var keys keyMatches
	fs.Var(&keys, "key", "only outcomes whose key has `name=value` (repeat to require several)")
	since := fs.String("since", "", "only outcomes published in the last `DURATION` (15m, 2h) or since a TIME (RFC 3339, or a date 2026-11-23)")
	asJSON := fs.Bool("json", false, "print each outcome as its JSON, one per line")
	conn := addConnFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	q := outcomeQuery{objects: splitComma(*object), keys: keys}
	for _, s := range splitComma(*status) {
		if !slices.Contains(statusNames(), s) {
			return fs.Fail("--status %q is not one of %s", s, strings.Join(statusNames(), ", "))
		}
		q.statuses = append(q.statuses, events.Status(s))
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return fs.Fail("--since: %v", err)
		}
		q.since = t
	}

	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	emit := func(raw []byte, o *events.Outcome) {
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", raw)
			return
		}
		fmt.Fprintln(stdout, formatOutcome(o))
	}
	err = readOutcomes(ctx, js, q, *follow, emit, stderr)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s on %s: %w (is a worker running? it creates the streams)", events.OutcomesStream, nc.ConnectedUrl(), err)
	}
	return err
}

// outcomeQuery selects outcomes: by subject on the server (objects, statuses, since), by key here.
type outcomeQuery struct {
	statuses []events.Status
	objects  []string
	keys     keyMatches
	since    time.Time
}

// subjects are the consumer's filter subjects: every object × status pair asked for, "*" for a
// part not asked for.
func (q outcomeQuery) subjects() []string {
	if len(q.objects) == 0 && len(q.statuses) == 0 {
		return []string{events.OutcomesPrefix + ".>"}
	}
	objects := []string{"*"}
	if len(q.objects) > 0 {
		objects = objects[:0]
		for _, o := range q.objects {
			objects = append(objects, events.SubjectToken(o))
		}
	}
	statuses := []string{"*"}
	if len(q.statuses) > 0 {
		statuses = statuses[:0]
		for _, s := range q.statuses {
			statuses = append(statuses, string(s))
		}
	}
	var out []string
	for _, o := range objects {
		for _, s := range statuses {
			if subject := events.OutcomesPrefix + "." + o + "." + s; !slices.Contains(out, subject) {
				out = append(out, subject)
			}
		}
	}
	return out
}

// matches reports whether o has every key value asked for.
func (q outcomeQuery) matches(o *events.Outcome) bool {
	for _, k := range q.keys {
		v, ok := o.Key[k.name]
		if !ok || !strings.EqualFold(events.KeyString(map[string]any{k.name: v}), k.name+"="+k.value) {
			return false
		}
	}
	return true
}

// readOutcomes reads the outcomes q selects with an ordered consumer and hands each to emit.
// Without follow it stops after the outcomes retained when it started.
func readOutcomes(ctx context.Context, js jetstream.JetStream, q outcomeQuery, follow bool, emit func([]byte, *events.Outcome), stderr io.Writer) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: q.subjects()}
	if !q.since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		cfg.OptStartTime = &q.since
	}
	cons, err := js.OrderedConsumer(ctx, events.OutcomesStream, cfg)
	if err != nil {
		return fmt.Errorf("read %s: %w", events.OutcomesStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("read %s: %w", events.OutcomesStream, err)
	}
	defer it.Stop()
	// The consumer counted the retained outcomes it will deliver when it was created.
	var pending uint64
	if info := cons.CachedInfo(); info != nil {
		pending = info.NumPending
	}
	if !follow && pending == 0 {
		return nil
	}
	var read uint64
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the usual way to end --follow
			}
			return fmt.Errorf("read %s: %w", events.OutcomesStream, err)
		}
		read++
		if o, err := events.DecodeOutcome(msg.Data()); err != nil {
			fmt.Fprintf(stderr, "worker outcomes: %s: not an outcome: %v\n", msg.Subject(), err)
		} else if q.matches(o) {
			emit(msg.Data(), o)
		}
		if !follow {
			if read >= pending {
				return nil
			}
			if meta, err := msg.Metadata(); err == nil && meta.NumPending == 0 {
				return nil
			}
		}
	}
}

// formatOutcome is one readable line:
// time, status, object, operation, key, event id, then attempt, target id, and the error or reason.
func formatOutcome(o *events.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-13s  %s %s %s  event=%s",
		o.Time.UTC().Format("2006-01-02T15:04:05.000Z"), o.Status, dash(o.Object), dash(o.Operation), dash(events.KeyString(o.Key)), dash(o.InputID))
	if o.Attempt > 1 {
		fmt.Fprintf(&b, " attempt=%d", o.Attempt)
	}
	if o.TargetID != "" {
		fmt.Fprintf(&b, " target=%s", o.TargetID)
	}
	switch {
	case o.Error != nil:
		fmt.Fprintf(&b, "  %s: %s", o.Error.Class, o.Error.Message)
		if o.Reason != "" && o.Reason != o.Error.Message {
			fmt.Fprintf(&b, " (%s)", o.Reason)
		}
	case o.Reason != "":
		fmt.Fprintf(&b, "  %s", o.Reason)
	}
	if !o.NextAttemptAt.IsZero() {
		fmt.Fprintf(&b, "  next attempt %s", o.NextAttemptAt.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusNames are the statuses an outcome can have.
func statusNames() []string {
	return []string{
		string(events.StatusSucceeded), string(events.StatusSkipped), string(events.StatusDeadLettered),
		string(events.StatusRejected), string(events.StatusDeferred), string(events.StatusHeld),
	}
}

// parseSince reads --since: a duration back from now, an RFC 3339 time, or a date (midnight, local
// time).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("%q: a duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (15m, 2h) nor a time (2026-11-23T09:00:00Z, 2026-11-23)", s)
}

// keyMatch is one --key name=value.
type keyMatch struct{ name, value string }

// keyMatches is the repeatable --key flag.
type keyMatches []keyMatch

func (k *keyMatches) String() string {
	if k == nil {
		return ""
	}
	parts := make([]string, len(*k))
	for i, m := range *k {
		parts[i] = m.name + "=" + m.value
	}
	return strings.Join(parts, ",")
}

func (k *keyMatches) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=value", s)
	}
	*k = append(*k, keyMatch{name: name, value: value})
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
