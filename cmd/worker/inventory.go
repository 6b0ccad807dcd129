package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/inventory"
	"github.com/scimflow/scimflow/internal/provision"
)

var helpInventory = &cli.Command{
	Name:    "worker inventory",
	Summary: "show inventory jobs, run one now, or change the inventory schedule",
	Usage:   "worker inventory --status [--json] | worker inventory --once | worker inventory schedule SPEC  [--config FILE | --nats URL]",
	Description: `The inventory reads the whole target back, page by page, and reports drift on
idm.inventory.<object>.<change>, classified as external-change, unmanaged or missing (our own
writes are never drift; docs/inventory.md). One replica runs it on inventory.schedule.
--status prints the recorded jobs, newest first, the schedule in force and the snapshot.
--once runs an inventory now from this process (it needs the whole configuration, the target's
secrets included, and takes the same lease as the workers: it refuses while another run holds it),
with progress on a terminal, and prints the job's summary; it exits 1 when the run failed.
'schedule SPEC' stores a new schedule (cron, or @every 1h) that every worker takes at once and
keeps across restarts; inventory.schedule in the configuration is only the initial value.`,
	Examples: []string{
		"worker inventory --status --config deploy/examples/config.yaml",
		"worker inventory --once --config deploy/examples/config.yaml",
		`worker inventory schedule "0 2 * * *" --config deploy/examples/config.yaml`,
	},
	Env: []cli.Env{envConfigRefs, envClientID, envSecret},
}

// cmdInventory is `worker inventory --status|--once|schedule SPEC`.
func cmdInventory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	op := ""
	if len(args) > 0 && args[0] == "schedule" {
		op, args = "schedule", args[1:]
	}
	fs := helpInventory.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	status := fs.Bool("status", false, "print the recorded jobs")
	once := fs.Bool("once", false, "run an inventory now and print its summary")
	asJSON := fs.Bool("json", false, "--status: print JSON")
	var spec string
	if op == "schedule" {
		if len(args) > 0 && isHelpFlag(args[0]) {
			return fs.Parse(args[:1])
		}
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fs.Fail("schedule needs a SPEC, e.g. \"@every 1h\" or \"0 2 * * *\"")
		}
		spec, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	if op == "" && *status == *once {
		return fs.Fail("want --status, --once or 'schedule SPEC'")
	}
	if op == "schedule" {
		if _, err := inventory.ParseSchedule(spec); err != nil {
			return fs.Fail("%v", err)
		}
	}
	if *once {
		file := *conn.cfgFile
		if file == "" {
			file = defaultConfigFile
		}
		cfg, err := loadConfig(fs.FlagSet, file)
		if err != nil {
			return err
		}
		return inventoryOnce(ctx, cfg, stdout, stderr)
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := inventory.OpenStore(ctx, js, 0)
	if err != nil {
		return err
	}
	if op == "schedule" {
		host, _ := os.Hostname()
		if err := store.SetSchedule(ctx, spec, "worker inventory schedule@"+host); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "inventory schedule set to %q; every worker takes it now\n", spec)
		return nil
	}
	return printInventoryStatus(ctx, store, *asJSON, stdout)
}

func printInventoryStatus(ctx context.Context, store *inventory.Store, asJSON bool, w io.Writer) error {
	jobs, err := store.Jobs(ctx, 0)
	if err != nil {
		return err
	}
	sch, err := store.Schedule(ctx)
	if err != nil {
		return err
	}
	ptr, _, err := store.Current(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(w, map[string]any{"jobs": jobs, "storedSchedule": sch, "current": ptr})
	}
	if sch != nil {
		fmt.Fprintf(w, "schedule: %s (set %s by %s)\n", sch.Spec, sch.UpdatedAt.Format(time.RFC3339), sch.By)
	} else {
		fmt.Fprintln(w, "schedule: inventory.schedule of the configuration (none stored)")
	}
	if ptr != nil {
		fmt.Fprintf(w, "snapshot in force: run %d, %s, %s\n", ptr.Run, ptr.EndedAt.Format(time.RFC3339), countsText(ptr.Counts))
	} else {
		fmt.Fprintln(w, "snapshot in force: none (no run completed yet)")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "RUN\tSTATUS\tTRIGGER\tSTARTED\tDURATION\tPAGES\tOBJECTS\tDRIFT\tPUBLISHED\tREVERTED\tNEXT RUN\tWORKER\tERRORS\n")
	for _, j := range jobs {
		next := "-"
		if !j.NextRun.IsZero() {
			next = j.NextRun.Format(time.RFC3339)
		}
		errs := strings.Join(append(j.Errors, j.Suspect), "; ")
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", j.Run, j.Status, j.Trigger,
			j.StartedAt.Format(time.RFC3339), (time.Duration(j.DurationMs) * time.Millisecond).String(), j.Pages,
			countsText(j.Objects), countsText(j.Drift), j.Published, j.Reverted, next, j.Worker, strings.Trim(errs, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d job(s)\n", len(jobs))
	return nil
}

// countsText renders counts as "a=1 b=2", sorted, or "-".
func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// inventoryOnce runs one inventory from this process, under the same lease as the workers.
func inventoryOnce(ctx context.Context, cfg *config.Config, stdout, stderr io.Writer) error {
	cfgFile := cfg.File
	log := reportLogger(cfg.Log, stderr)
	model, err := loadModel(cfg)
	if err != nil {
		return err
	}
	nc, js, err := (&connFlags{cfgFile: &cfgFile, url: new(string), creds: new(string)}).dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := openIDCacheBucket(ctx, js, cfg.NATS.Replicas)
	if err != nil {
		return fmt.Errorf("key-value bucket %s: %w", idCacheBucket, err)
	}
	target, err := newTarget(cfg, log, provision.NewKVIDCache(kv))
	if err != nil {
		return err
	}
	defer target.Close(context.WithoutCancel(ctx))
	a := &app{cfg: cfg, js: js, target: target}
	if a.history, err = events.NewHistory(js); err != nil {
		return err
	}
	defer func() {
		// The drift this run noted in the provisioning log, before the connection goes.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.history.Flush(fctx); err != nil {
			fmt.Fprintf(stderr, "provisioning log: %v\n", err)
		}
	}()
	applied, err := inventory.OpenAppliedLog(ctx, js, cfg.NATS.Replicas, model, log)
	if err != nil {
		return err
	}
	if err := a.openInventory(ctx, model, applied, log); err != nil {
		return err
	}
	host, _ := os.Hostname()
	lease, err := a.invStore.AcquireLease(ctx, "worker inventory --once@"+host, cfg.Inventory.LeaseTTL)
	if err != nil {
		return err
	}
	defer lease.Release(context.WithoutCancel(ctx))
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		ctx = inventory.WithProgress(ctx, func(object string, pages, objects int) {
			fmt.Fprintf(stderr, "\r%-20s %6d pages %9d objects", object, pages, objects)
		})
		defer fmt.Fprintln(stderr)
	}
	job, err := a.inventory.Run(ctx, inventory.RunOptions{Trigger: "once", Token: lease.Token(), Fence: lease.Check, Schedule: cfg.Inventory.Schedule})
	if job != nil {
		printJobSummary(stdout, job)
	}
	if err != nil {
		if errors.Is(err, inventory.ErrLeaseLost) {
			return err
		}
		return fmt.Errorf("inventory run failed (the snapshot in force is unchanged): %w", err)
	}
	return nil
}

func printJobSummary(w io.Writer, j *inventory.Job) {
	fmt.Fprintf(w, "inventory run %d: %s in %s\n", j.Run, j.Status, time.Duration(j.DurationMs)*time.Millisecond)
	fmt.Fprintf(w, "  objects:   %s (%d pages, %d re-read)\n", countsText(j.Objects), j.Pages, j.Rereads)
	fmt.Fprintf(w, "  changes:   %s\n", countsText(j.Changes))
	fmt.Fprintf(w, "  drift:     %s\n", countsText(j.Drift))
	fmt.Fprintf(w, "  published: %d drift event(s), %d revert(s)\n", j.Published, j.Reverted)
	if j.Suspect != "" {
		fmt.Fprintf(w, "  suspect:   %s\n", j.Suspect)
	}
	for _, e := range j.Errors {
		fmt.Fprintf(w, "  error:     %s\n", e)
	}
}

// inventoryStatus is the inventory's part of /status: the schedule in force, the next run, the
// run in progress and the last jobs.
func inventoryStatus(ctx context.Context, a *app) map[string]any {
	return inventoryStatusJobs(ctx, a, 5)
}

// inventoryStatusJobs is inventoryStatus with the newest jobs records.
func inventoryStatusJobs(ctx context.Context, a *app, jobs int) map[string]any {
	if a.scheduler == nil {
		return nil
	}
	spec, next := a.scheduler.Next()
	out := map[string]any{"schedule": spec, "nextRun": next.UTC(), "running": a.inventory.Current()}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if jobs, err := a.invStore.Jobs(ctx, jobs); err == nil {
		out["jobs"] = jobs
	} else {
		out["error"] = err.Error()
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
