package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

// settingsBucket is the JetStream key-value bucket of what an operator changes at run time for
// the whole pool (today the sync-window schedule); every worker watches it.
const settingsBucket = "IDM_SETTINGS"

// keyWindowSchedule holds a windowRecord; without it the configuration's syncWindow.schedule
// applies.
const keyWindowSchedule = "syncWindow.schedule"

// windowRecord is a stored sync-window schedule and who set it.
type windowRecord struct {
	Schedule  string    `json:"schedule"`
	UpdatedAt time.Time `json:"updatedAt"`
	By        string    `json:"by"`
}

// windowSchedule is the sync-window schedule the pipeline and the deletion guard read: the
// configuration's until an operator stores another in settingsBucket, then that one, on every
// worker. It is a pipeline.Schedule and a guard.Period (for @every schedules, so the deletion
// guard's windows stay aligned on the epoch).
type windowSchedule struct {
	mu         sync.RWMutex
	configured string
	rec        windowRecord // Schedule "" while the configured one applies
	sch        cron.Schedule
}

func newWindowSchedule(spec string) (*windowSchedule, error) {
	sch, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("syncWindow.schedule: %q: %w", spec, err)
	}
	return &windowSchedule{configured: spec, sch: sch}, nil
}

func (w *windowSchedule) Next(t time.Time) time.Time {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.sch.Next(t)
}

// Period is the length of an @every window, 0 for a cron schedule.
func (w *windowSchedule) Period() time.Duration {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if c, ok := w.sch.(cron.ConstantDelaySchedule); ok {
		return c.Delay
	}
	return 0
}

// set applies a stored record; an empty or unreadable one brings back the configured schedule.
func (w *windowSchedule) set(rec windowRecord) error {
	spec := rec.Schedule
	if spec == "" {
		spec = w.configured
	}
	sch, err := cron.ParseStandard(spec)
	if err != nil {
		return fmt.Errorf("stored sync window schedule %q: %w", spec, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sch, w.rec = sch, rec
	return nil
}

// windowStatus is GET /syncwindow and /status's syncWindow.schedule part.
type windowStatus struct {
	Schedule   string    `json:"schedule"`
	Configured string    `json:"configured"`
	Source     string    `json:"source"` // "config" or "operator"
	UpdatedAt  time.Time `json:"updatedAt,omitzero"`
	By         string    `json:"by,omitempty"`
	NextWindow time.Time `json:"nextWindow"`
}

func (w *windowSchedule) status(now time.Time) windowStatus {
	w.mu.RLock()
	defer w.mu.RUnlock()
	st := windowStatus{Schedule: w.configured, Configured: w.configured, Source: "config", NextWindow: w.sch.Next(now).UTC()}
	if w.rec.Schedule != "" {
		st.Schedule, st.Source, st.UpdatedAt, st.By = w.rec.Schedule, "operator", w.rec.UpdatedAt, w.rec.By
	}
	return st
}

// settings is the pool's run-time settings bucket.
type settings struct {
	kv  jetstream.KeyValue
	log zerolog.Logger
}

// openSettings creates (or opens) the settings bucket. Replicas 0 opens it as it is (creating it
// with one replica only when absent): the command-line tools must not rewrite what a worker made.
func openSettings(ctx context.Context, js jetstream.JetStream, replicas int, log zerolog.Logger) (*settings, error) {
	if replicas <= 0 {
		kv, err := js.KeyValue(ctx, settingsBucket)
		if err == nil {
			return &settings{kv: kv, log: log}, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("key-value bucket %s: %w", settingsBucket, err)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: settingsBucket, Description: "scimflow run-time settings an operator changed for the whole pool",
		History: 10, Storage: jetstream.FileStorage, Replicas: max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", settingsBucket, err)
	}
	return &settings{kv: kv, log: log}, nil
}

// setWindowSchedule stores spec as the pool's sync-window schedule ("" goes back to the
// configuration's). It refuses a spec that does not parse, naming it.
func (s *settings) setWindowSchedule(ctx context.Context, spec, by string) error {
	if spec == "" {
		if err := s.kv.Delete(ctx, keyWindowSchedule); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("reset the sync window schedule: %w", err)
		}
		return nil
	}
	if _, err := cron.ParseStandard(spec); err != nil {
		return fmt.Errorf("schedule %q: want a cron expression (\"0 2 * * *\") or @every DURATION: %w", spec, err)
	}
	raw, _ := json.Marshal(windowRecord{Schedule: spec, UpdatedAt: time.Now().UTC(), By: by})
	if _, err := s.kv.Put(ctx, keyWindowSchedule, raw); err != nil {
		return fmt.Errorf("store the sync window schedule: %w", err)
	}
	return nil
}

// keyPause holds a pauseRecord while an operator has paused provisioning for the pool.
const keyPause = "intake.pause"

// pauseRecord is an operator's pause of the whole pool.
type pauseRecord struct {
	Paused bool      `json:"paused"`
	Reason string    `json:"reason,omitempty"`
	By     string    `json:"by,omitempty"`
	Since  time.Time `json:"since,omitzero"`
}

// setPause pauses (rec.Paused) or resumes provisioning on every worker.
func (s *settings) setPause(ctx context.Context, rec pauseRecord) error {
	if !rec.Paused {
		if err := s.kv.Delete(ctx, keyPause); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("resume: %w", err)
		}
		return nil
	}
	raw, _ := json.Marshal(rec)
	if _, err := s.kv.Put(ctx, keyPause, raw); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	return nil
}

// pauseRecord reads the stored pause; nil when provisioning runs.
func (s *settings) pauseRecord(ctx context.Context) (*pauseRecord, error) {
	return readSetting[pauseRecord](ctx, s, keyPause, "pause")
}

// readSetting reads the setting stored under key; nil when none is stored. what names it in the
// error when it cannot be read.
func readSetting[T any](ctx context.Context, s *settings, key, what string) (*T, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", settingsBucket, err)
	}
	var rec T
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, fmt.Errorf("stored %s is unreadable: %w", what, err)
	}
	return &rec, nil
}

// follow applies the stored settings now and whenever they change, until ctx ends: the
// sync-window schedule to w, a pause or resume to onPause (nil when provisioning runs).
func (s *settings) follow(ctx context.Context, w *windowSchedule, onPause func(*pauseRecord)) error {
	watch, err := s.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", settingsBucket, err)
	}
	defer events.StopWatch(ctx, watch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-watch.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				continue // the initial values are in
			}
			put := e.Operation() == jetstream.KeyValuePut
			switch e.Key() {
			case keyWindowSchedule:
				var rec windowRecord
				if put {
					if err := json.Unmarshal(e.Value(), &rec); err != nil {
						s.log.Error().Err(err).Msg("stored sync window schedule is unreadable; keeping the configured one")
						rec = windowRecord{}
					}
				}
				if err := w.set(rec); err != nil {
					s.log.Error().Err(err).Msg("stored sync window schedule refused; keeping the configured one")
					continue
				}
				s.log.Info().Str("schedule", w.status(time.Now()).Schedule).Str("by", rec.By).Msg("sync window schedule in force")
			case keyPause:
				var rec *pauseRecord
				if put {
					rec = &pauseRecord{}
					if err := json.Unmarshal(e.Value(), rec); err != nil {
						// Unreadable, it still says someone paused: stay paused rather than run.
						rec = &pauseRecord{Paused: true, Reason: "the stored pause is unreadable: " + err.Error(), Since: e.Created()}
					}
				}
				onPause(rec)
			}
		}
	}
}

var helpWindow = &cli.Command{
	Name:    "worker window",
	Summary: "show the sync-window schedule in force, or change it for every worker",
	Usage:   "worker window [--json] | worker window schedule SPEC | worker window schedule --reset  [--config FILE | --nats URL]",
	Description: `Parked keys are tried again at the start of each sync window (syncWindow.schedule). Without
arguments this prints the schedule in force: the configured one, or the one an operator stored, by
whom and when. 'schedule SPEC' stores a new schedule (cron, or @every 5m) in the KV bucket
IDM_SETTINGS: every worker takes it at once and keeps it across restarts, and a key parked under a
longer schedule runs no later than the new schedule's next window. --reset goes back to the
configuration's schedule. PUT /syncwindow/schedule and the operator page do the same.`,
	Examples: []string{
		"worker window --config deploy/examples/config.yaml",
		`worker window schedule "@every 5m" --nats nats://127.0.0.1:4222`,
		"worker window schedule --reset",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdWindow is `worker window [--json] | schedule SPEC | schedule --reset`.
func cmdWindow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	op := "show"
	if len(args) > 0 && args[0] == "schedule" {
		op, args = "schedule", args[1:]
	}
	fs := helpWindow.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	reset := fs.Bool("reset", false, "schedule: go back to the configuration's schedule")
	var spec string
	if op == "schedule" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		spec, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	if op == "schedule" && (spec == "") == !*reset {
		return fs.Fail("schedule needs a SPEC (\"@every 5m\", \"0 * * * *\") or --reset")
	}
	if op == "schedule" && spec != "" {
		if _, err := cron.ParseStandard(spec); err != nil {
			return fs.Fail("schedule %q: %v", spec, err)
		}
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	set, err := openSettings(ctx, js, 0, zerolog.Nop())
	if err != nil {
		return err
	}
	if op == "schedule" {
		host, _ := os.Hostname()
		if err := set.setWindowSchedule(ctx, spec, "worker window schedule@"+host); err != nil {
			return err
		}
		if spec == "" {
			fmt.Fprintln(stdout, "sync window schedule reset to the configuration's; every worker takes it now")
		} else {
			fmt.Fprintf(stdout, "sync window schedule set to %q; every worker takes it now\n", spec)
		}
		return nil
	}
	rec, err := set.windowRecord(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rec)
	}
	if rec == nil {
		fmt.Fprintln(stdout, "schedule: syncWindow.schedule of each worker's configuration (none stored)")
		return nil
	}
	fmt.Fprintf(stdout, "schedule: %s (set %s by %s)\n", rec.Schedule, rec.UpdatedAt.Format(time.RFC3339), rec.By)
	if sch, err := cron.ParseStandard(rec.Schedule); err == nil {
		fmt.Fprintf(stdout, "next window: %s\n", sch.Next(time.Now()).UTC().Format(time.RFC3339))
	}
	return nil
}

// windowRecord reads the stored schedule; nil when none is stored.
func (s *settings) windowRecord(ctx context.Context) (*windowRecord, error) {
	return readSetting[windowRecord](ctx, s, keyWindowSchedule, "sync window schedule")
}

var helpPause = &cli.Command{
	Name:    "worker pause",
	Summary: "pause provisioning on every worker until 'worker resume'",
	Usage:   "worker pause [--reason TEXT]  [--config FILE | --nats URL]",
	Description: `Stops every worker of the pool from starting events (kept in the KV bucket IDM_SETTINGS, so it
holds across restarts and for workers that join later). Events keep arriving and wait, in order,
without spending windows; events already running finish. /status, /readyz and the operator page
say who paused, when and why. 'worker resume' lets them go. POST /pause and POST /resume (with
http.operatorToken) do the same.`,
	Examples: []string{
		`worker pause --reason "CyberArk maintenance until 22:00" --config deploy/examples/config.yaml`,
		"worker resume --config deploy/examples/config.yaml",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

var helpResume = &cli.Command{
	Name:        "worker resume",
	Summary:     "resume provisioning on every worker after 'worker pause'",
	Usage:       "worker resume  [--config FILE | --nats URL]",
	Description: helpPause.Description,
	Examples:    []string{"worker resume --config deploy/examples/config.yaml"},
	Env:         helpPause.Env,
}

// cmdPause is `worker pause [--reason R]` and `worker resume`.
func cmdPause(ctx context.Context, pause bool, args []string, stdout, stderr io.Writer) error {
	help := helpPause
	if !pause {
		help = helpResume
	}
	fs := help.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	reason := fs.String("reason", "", "pause: why (shown on /status, /readyz and the page)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	if !pause && *reason != "" {
		return fs.Fail("--reason is for 'worker pause'")
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	set, err := openSettings(ctx, js, 0, zerolog.Nop())
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	if !pause {
		if err := set.setPause(ctx, pauseRecord{}); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "provisioning resumed on every worker")
		return nil
	}
	rec := pauseRecord{Paused: true, Reason: *reason, By: "worker pause@" + host, Since: time.Now().UTC()}
	if err := set.setPause(ctx, rec); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "provisioning paused on every worker: no event starts until 'worker resume'")
	return nil
}
