package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/reconcile"
)

var helpProvision = &cli.Command{
	Name:    "worker provision",
	Summary: "provision one object now, through the workers, and print every request and the outcome",
	Usage:   "worker provision --event FILE [--wait DURATION]  [--config FILE | --nats URL]\n       worker provision --direct --event FILE [--config FILE]",
	Description: `Provision on demand: like 'worker plan', but applied. The event (a whole CloudEvent, or only its
data object, then given the id provision-<time>) is validated, published to the events stream, and
processed by the worker that owns its key, in the key's order, through the deletion guard and the
same retries as any event. Each outcome it gets is printed as it comes (a deferral or a hold first,
when there is one), with every SCIM request (method, path, status, round trip), until the final
outcome or --wait (default 1m). Exits 0 when the event succeeded or was skipped, 1 otherwise. A
running worker is needed: without one the event stays queued and the command says so.

--direct applies the event from this process instead, straight to the configuration's target (no
NATS, no worker): the same planning, reconciliation, retries and deletion guard's protected
objects as a worker (not its count limits: it is one event), each request printed with its status and round trip, then the outcome. It is
for authoring a data model against a test tenant, after 'worker plan': it does not wait behind the
key's pending events, it is not in the provisioning log, and the next inventory reports its write
as drift (no worker applied it). A retryable failure ends it (exit 1) instead of parking it.`,
	Examples: []string{
		"worker provision --event jdoe.json --config deploy/examples/config.yaml",
		`echo '{"object":"User","operation":"Upsert","key":{"userName":"jdoe@example.com"},"attributes":{"title":"CTO"}}' | worker provision --event - --nats nats://127.0.0.1:4222`,
		"worker provision --direct --event jdoe.json --config test-tenant.yaml",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}, envClientID, envSecret},
}

// cmdProvision is `worker provision --event FILE`.
func cmdProvision(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpProvision.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	eventFile := fs.String("event", "", "the event `FILE` (- for stdin)")
	wait := fs.Duration("wait", time.Minute, "how long to wait for the final outcome")
	direct := fs.Bool("direct", false, "apply from this process straight to the configuration's target, without NATS or a worker")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventFile == "" || fs.NArg() > 0 {
		return fs.Fail("provision needs --event FILE, and nothing else")
	}
	if *direct && (*conn.url != "" || *conn.creds != "") {
		return fs.Fail("--direct talks to the target only: --nats and --creds do not apply")
	}
	ev, err := readEventFile(*eventFile, "provision-"+time.Now().UTC().Format("20060102T150405.000000000"))
	if err != nil {
		return err
	}
	if *direct {
		cfg, err := loadConfig(fs.FlagSet, cmp.Or(*conn.cfgFile, defaultConfigFile))
		if err != nil {
			return err
		}
		return provisionDirect(ctx, cfg, ev, stdout, stderr)
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

// provisionDirect applies ev to cfg's target from this process, through the worker's pipeline
// (the deletion guard's protected objects included), and prints the requests and the outcome.
func provisionDirect(ctx context.Context, cfg *config.Config, ev *events.Event, stdout, stderr io.Writer) error {
	model, err := loadModel(cfg)
	if err != nil {
		return err
	}
	log := reportLogger(cfg.Log, stderr)
	target, err := newTarget(cfg, log, nil)
	if err != nil {
		return err
	}
	defer target.Close(context.WithoutCancel(ctx))
	if err := cfg.DeletionGuard.CheckModel(model); err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	// One event: the count limits, which bound deletes per window across many events, do not apply;
	// a protected object is still refused.
	gc := cfg.DeletionGuard
	gc.MaxDeletes, gc.MaxPercent = guard.NoLimit, guard.NoLimit
	dg, err := guard.New(gc, guard.Options{})
	if err != nil {
		return fmt.Errorf("deletionGuard: %w", err)
	}
	planner := reconcile.NewPlanner(model, reconcile.Options{UseNumericValues: cfg.Target.UseNumericValues})
	proc := pipeline.New(planner, target, pipeline.Config{
		Guard: dg, MaxWindows: cfg.SyncWindow.MaxWindows, ReferenceRetries: cfg.SyncWindow.ReferenceRetries, ReferenceBackoff: cfg.SyncWindow.ReferenceBackoff,
		Logger: log.With().Str("component", "pipeline").Logger(),
	})
	host, _ := os.Hostname()
	fmt.Fprintf(stdout, "event %s: %s %s %s, applied directly to %s\n", ev.ID, ev.Data.Operation, ev.Data.Object, events.KeyString(ev.Data.Key), cfg.Target.BaseURI)
	started := time.Now()
	d := &events.Delivery{Event: ev, Attempt: 1}
	var res events.Result
	for {
		res = proc.Handle(ctx, d)
		if res.Resume.IsZero() || res.Outcome.Status != "" {
			break
		}
		// A reference not in the target yet: planned again after a while, as a worker would.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(res.Resume)):
		}
	}
	o := &res.Outcome
	o.InputID, o.ID, o.Object, o.Key, o.Operation = ev.ID, ev.ID, ev.Data.Object, ev.Data.Key, ev.Data.Operation
	o.Time, o.Attempt, o.Final = time.Now().UTC(), 1, o.Status.Final()
	o.Worker = "worker provision --direct@" + host
	o.DurationMs = float64(time.Since(started).Microseconds()) / 1000
	if res.Abandon || res.Pause {
		o.Status = cmp.Or(o.Status, events.StatusDeferred)
		o.Reason = cmp.Or(o.Reason, "the target can't take work now")
	}
	if o.Status == events.StatusDeferred {
		o.NextAttemptAt = time.Time{} // nothing parks it here
	}
	printOutcome(stdout, o)
	switch o.Status {
	case events.StatusSucceeded, events.StatusSkipped:
		return nil
	case events.StatusDeferred:
		fmt.Fprintln(stdout, "not applied: a worker would park it until the next sync window; nothing more is tried here")
	}
	return exitError(1)
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
