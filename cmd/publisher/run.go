package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		commands.WriteUsage(stderr)
		return exitError(2)
	}
	switch args[0] {
	case "publish":
		return runPublish(ctx, args[1:], stdout, stderr)
	case "generate":
		return runGenerate(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return cmdVersion(args[1:], stdout, stderr)
	case "help":
		return cmdHelp(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help":
		commands.WriteUsage(stdout)
		return nil
	default:
		fmt.Fprintf(stderr, "publisher: unknown command %q\n", args[0])
		commands.WriteUsage(stderr)
		return exitError(2)
	}
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpPublish.FlagSet(stdout, stderr)
	var (
		file       = fs.String("file", "", "events file: JSONL (one CloudEvent per line) or CSV (with --object, --operation, --key)")
		format     = fs.String("format", "", "jsonl or csv; default from the file name")
		cfgFile    = fs.String("config", "", "worker config file: connect with its nats section")
		natsURL    = fs.String("nats", "", "NATS URL (overrides --config); default nats://127.0.0.1:4222")
		creds      = fs.String("creds", "", "NATS credentials file")
		wait       = fs.Bool("wait", false, "wait for every event's outcome and print a summary; exit 1 if any did not succeed")
		timeout    = fs.Duration("timeout", 2*time.Minute, "how long --wait waits for outcomes")
		strict     = fs.Bool("strict", false, "refuse the file if any event fails validation, instead of publishing it for the worker to dead-letter")
		skipBad    = fs.Bool("skip-invalid", false, "leave events that fail validation unpublished")
		object     = fs.String("object", "", "csv: data model object, e.g. User")
		operation  = fs.String("operation", "Upsert", "csv: operation of every record")
		keyCols    = fs.String("key", "", "csv: comma-separated key columns, e.g. userName")
		multiCols  = fs.String("multi", "", "csv: comma-separated columns holding several values separated by |")
		noProgress = fs.Bool("no-progress", false, "no progress bar even on a terminal")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		fmt.Fprintln(stderr, "publisher publish: --file is required")
		return exitError(2)
	}
	items, err := readItems(*file, *format, publish.CSVOptions{
		Object: *object, Operation: *operation, Key: splitList(*keyCols), Multi: splitList(*multiCols),
	})
	if err != nil {
		return err
	}
	var invalid []publish.Item
	for _, it := range items {
		if it.Invalid != nil {
			invalid = append(invalid, it)
		}
	}
	for _, it := range invalid {
		fmt.Fprintf(stderr, "%s:%d: event %q: %v\n", *file, it.Line, it.ID, it.Invalid)
	}
	if *strict && len(invalid) > 0 {
		return fmt.Errorf("%d of %d events in %s fail validation; nothing published (--strict)", len(invalid), len(items), *file)
	}
	if len(invalid) > 0 && !*skipBad {
		fmt.Fprintf(stderr, "publishing %d invalid events anyway: the worker dead-letters them with their reason (--strict refuses, --skip-invalid leaves them out)\n", len(invalid))
	}

	url, opts, err := connection(*cfgFile, *natsURL, *creds)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.Stream(ctx, events.EventsStream); err != nil {
		return fmt.Errorf("stream %s on %s: %w (is a worker running? it creates the streams)", events.EventsStream, url, err)
	}
	var progress io.Writer
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*noProgress {
		progress = stderr
	}
	rep, err := publish.Run(ctx, js, items, publish.Options{Wait: *wait, Timeout: *timeout, Progress: progress, SkipInvalid: *skipBad})
	if err != nil {
		return err
	}
	rep.Render(stdout)
	if *wait && !rep.OK() {
		return exitError(1)
	}
	return nil
}

func readItems(file, format string, csvOpt publish.CSVOptions) ([]publish.Item, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if format == "" {
		format = "jsonl"
		if strings.HasSuffix(strings.ToLower(file), ".csv") {
			format = "csv"
		}
	}
	switch format {
	case "jsonl":
		items, err := publish.ReadJSONL(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return items, nil
	case "csv":
		items, err := publish.ReadCSV(f, csvOpt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return items, nil
	default:
		return nil, fmt.Errorf("--format %q is not jsonl or csv", format)
	}
}

// connection decides where to connect: --nats, else the config's nats section, else the default.
func connection(cfgFile, natsURL, creds string) (string, []nats.Option, error) {
	opts := []nats.Option{nats.Name("scimflow-publisher")}
	url := natsURL
	if cfgFile != "" {
		n, err := config.LoadNATS(cfgFile, config.Options{})
		if err != nil {
			return "", nil, err
		}
		if url == "" {
			url = n.ClientURL()
		}
		opts = append(opts, n.ClientOptions()...)
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if url == "" {
		url = nats.DefaultURL
	}
	return url, opts, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
