package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpProvision = &cli.Command{
	Name:    "worker provision",
	Summary: "provision one object now, through the workers, and print every request and the outcome",
	Usage:   "worker provision --event FILE [--wait DURATION]  [--config FILE | --nats URL]",
	Description: `Provision on demand: like 'worker plan', but applied. The event (a whole CloudEvent, or only its
data object, then given the id provision-<time>) is validated, published to the events stream, and
processed by the worker that owns its key, in the key's order, through the deletion guard and the
same retries as any event. Each outcome it gets is printed as it comes (a deferral or a hold first,
when there is one), with every SCIM request (method, path, status, round trip), until the final
outcome or --wait (default 1m). Exits 0 when the event succeeded or was skipped, 1 otherwise. A
running worker is needed: without one the event stays queued and the command says so.`,
	Examples: []string{
		"worker provision --event jdoe.json --config deploy/examples/config.yaml",
		`echo '{"object":"User","operation":"Upsert","key":{"userName":"jdoe@example.com"},"attributes":{"title":"CTO"}}' | worker provision --event - --nats nats://127.0.0.1:4222`,
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdProvision is `worker provision --event FILE`.
func cmdProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpProvision.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	eventFile := fs.String("event", "", "the event `FILE` (- for stdin)")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the final outcome")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventFile == "" || fs.NArg() > 0 {
		return fs.Fail("provision needs --event FILE, and nothing else")
	}
	ev, err := readEventFile(*eventFile, "provision-"+time.Now().UTC().Format("20060102T150405.000000000"))
	if err != nil {
		return err
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	outcomes := make(chan *events.Outcome, 16)
	sub, err := nc.Subscribe(events.OutcomesPrefix+".>", func(m *nats.Msg) {
		if o, err := events.DecodeOutcome(m.Data); err == nil && o.InputID == ev.ID {
			outcomes <- o
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return err
	}
	ack, err := events.NewPublisher(js).PublishEvent(ctx, ev)
	if err != nil {
		return fmt.Errorf("publish %s: %w", ev.ID, err)
	}
	if ack.Duplicate {
		return fmt.Errorf("event %s was published before (JetStream dropped it as a duplicate): give the event a new id, or see its story with worker explain --object %s --key %s",
			ev.ID, ev.Data.Object, events.KeyString(ev.Data.Key))
	}
	fmt.Fprintf(stdout, "event %s: %s %s %s, published as sequence %d of %s\n", ev.ID, ev.Data.Operation, ev.Data.Object, events.KeyString(ev.Data.Key), ack.Sequence, events.EventsStream)
	deadline := time.NewTimer(*wait)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			fmt.Fprintf(stdout, "no final outcome within %s: the event stays queued for the worker that owns its key (is one running? worker pool)\n", *wait)
			return exitError(1)
		case o := <-outcomes:
			printOutcome(stdout, o)
			if !o.Final {
				continue
			}
			if o.Status == events.StatusSucceeded || o.Status == events.StatusSkipped {
				return nil
			}
			return exitError(1)
		}
	}
}

// printOutcome prints one outcome with its requests.
func printOutcome(w io.Writer, o *events.Outcome) {
	by := ""
	if o.Worker != "" {
		by = " by " + o.Worker
	}
	fmt.Fprintf(w, "%s  %s (attempt %d%s, %s ms)\n", stamp(o.Time), o.Status, o.Attempt, by, millis(o.DurationMs))
	if o.TargetID != "" {
		fmt.Fprintf(w, "    target id %s\n", o.TargetID)
	}
	printDetails(w, o)
}

// printDetails prints an outcome's requests, its reason and its next try, indented.
func printDetails(w io.Writer, o *events.Outcome) {
	for _, c := range o.Requests {
		status := fmt.Sprint(c.Status)
		if c.Status == 0 {
			status = "no answer"
		}
		line := fmt.Sprintf("    %s %s → %s in %s ms", c.Method, c.Path, status, millis(c.DurationMs))
		if c.Error != "" {
			line += ": " + cell(c.Error, 160)
		}
		fmt.Fprintln(w, line)
	}
	if o.Reason != "" {
		fmt.Fprintf(w, "    %s\n", cell(o.Reason, 300))
	}
	if !o.NextAttemptAt.IsZero() {
		fmt.Fprintf(w, "    next try at the window of %s\n", stamp(o.NextAttemptAt))
	}
}
