package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// cmdRun is `worker run`: consume, provision, publish outcomes, until SIGINT or SIGTERM.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFile := flags(helpRun, stdout, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs.FlagSet, *cfgFile)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	a, err := startApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		a.close(context.WithoutCancel(ctx))
		log.Info().Msg(stoppedMessage(a))
	}()
	if cfg.Target.TestConnection {
		rep := a.target.Check(ctx)
		if !rep.OK() {
			rep.Render(stderr)
			return errors.New("the connection test failed (target.testConnection is true): the worker does not start")
		}
		log.Info().Msg("connection test passed")
	}
	return a.serve(ctx)
}

// stoppedMessage is the last line `worker run` logs: what the shutdown did. It mentions the token
// only when one was revoked (auth modes other than oauth2, no revokeURL, or no token ever fetched
// leave nothing to revoke).
func stoppedMessage(a *app) string {
	msg := "stopped: in-flight events finished, outcomes flushed"
	if a.target != nil && a.target.Authorizer().Stats().TokensRevoked > 0 {
		msg += ", token revoked"
	}
	return msg
}

// cmdCheck is `worker check`: obtain a token, read ServiceProviderConfig, run the test query.
func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFile := flags(helpCheck, stdout, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(fs.FlagSet, *cfgFile)
	if err != nil {
		return err
	}
	target, err := newTarget(cfg, reportLogger(cfg.Log, stderr), nil)
	if err != nil {
		return err
	}
	defer target.Close(context.WithoutCancel(ctx))
	rep := target.Check(ctx)
	rep.Render(stdout)
	if !rep.OK() {
		return exitError(1)
	}
	return nil
}

// cmdPlan is `worker plan`: resolve read-only and print the exact requests an event would cause.
func cmdPlan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFile := flags(helpPlan, stdout, stderr)
	eventFile := fs.String("event", "", "event `FILE` (a CloudEvent, or just its data object); - reads stdin")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventFile == "" {
		return fs.Fail("--event is required")
	}
	cfg, err := loadConfig(fs.FlagSet, *cfgFile)
	if err != nil {
		return err
	}
	change, err := readChange(*eventFile)
	if err != nil {
		return err
	}
	model, err := loadModel(cfg)
	if err != nil {
		return err
	}
	target, err := newTarget(cfg, reportLogger(cfg.Log, stderr), nil)
	if err != nil {
		return err
	}
	defer target.Close(context.WithoutCancel(ctx))
	planner := reconcile.NewPlanner(model, reconcile.Options{UseNumericValues: cfg.Target.UseNumericValues})
	traced, trace := provision.WithTrace(ctx)
	plan, err := planner.Plan(traced, pipeline.ReaderFor(target), change)
	if reads := trace.Calls(); len(reads) > 0 {
		fmt.Fprintln(stdout, "reads made while planning (nothing is written):")
		for _, c := range reads {
			target := c.Path
			if q, err := url.QueryUnescape(c.Query); err == nil && q != "" {
				target += "?" + q
			}
			fmt.Fprintf(stdout, "  %s %s → %d (%s)\n", c.Method, target, c.Status, c.Duration.Round(time.Microsecond))
		}
		fmt.Fprintln(stdout)
	}
	if err != nil {
		return fmt.Errorf("plan %s: %w", *eventFile, err)
	}
	return plan.RenderAt(stdout, target.EntityBase())
}

// readChange reads an event file: a whole CloudEvent (validated like the worker validates it) or
// only its data object.
func readChange(file string) (reconcile.Change, error) {
	ev, err := readEventFile(file, "plan")
	if err != nil {
		return reconcile.Change{}, err
	}
	data := ev.Data
	return reconcile.Change{
		Object: data.Object, Operation: reconcile.Operation(data.Operation),
		Key: data.Key, Attributes: data.Attributes, Actions: data.Actions,
	}, nil
}

// readEventFile reads a whole CloudEvent, or only its data object, which it wraps in an event
// with id, validated the way intake validates events.
func readEventFile(file, id string) (*events.Event, error) {
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", file, err)
	}
	if _, ok := probe["specversion"]; ok {
		ev, err := events.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return ev, nil
	}
	var data events.Change
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	// Validate the data the way intake does, inside a synthetic envelope.
	ev := events.NewEvent(id, "/worker/"+strings.SplitN(id, "-", 2)[0], data)
	enc, _ := ev.Encode()
	if ev, err = events.Decode(enc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ev, nil
}

// cmdModel is `worker model import --omada FILE.xml [--out FILE.yaml]`.
func cmdModel(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		args = []string{"import", "-h"} // model has one subcommand: show its help
	}
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintf(stderr, "usage: %s\nRun 'worker model import -h' for help.\n", helpModelImport.Usage)
		return exitError(2)
	}
	fs := helpModelImport.FlagSet(stdout, stderr)
	omada := fs.String("omada", "", "Omada data model XML `FILE` to import")
	out := fs.String("out", "", "write the YAML model to `FILE` instead of stdout")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *omada == "" {
		return fs.Fail("--omada is required")
	}
	f, err := os.Open(*omada)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := reconcile.ImportOmada(f, *omada)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := m.WriteYAML(&buf); err != nil {
		return err
	}
	// What we write must load: check it the way the worker will.
	if _, err := reconcile.ParseModel(*omada+" (imported)", buf.Bytes()); err != nil {
		return fmt.Errorf("the imported model does not load: %w", err)
	}
	if *out == "" {
		_, err = stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", *out)
	return nil
}
