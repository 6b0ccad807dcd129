package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/term"

	"github.com/scimflow/scimflow/internal/cli"
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
		return cli.RunVersion(helpVersion, "publisher", args[1:], stdout, stderr)
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
		cfgFile    = fs.String("config", "", "worker config file: connect with its nats section (default ./"+config.DefaultFile+" when it exists and --nats is not given)")
		natsURL    = fs.String("nats", "", "NATS URL (overrides --config); default nats://127.0.0.1:4222")
		creds      = fs.String("creds", "", "NATS credentials file")
		wait       = fs.Bool("wait", false, "wait for every event's outcome and print a summary; exit 1 unless every event succeeded (in this run, or earlier for a duplicate)")
		timeout    = fs.Duration("timeout", 2*time.Minute, "how long --wait waits for outcomes")
		resend     = fs.Bool("resend", false, "publish under fresh message ids, so that events published before (within JetStream's duplicate window) are processed again instead of dropped as duplicates")
		strict     = fs.Bool("strict", false, "refuse the file if any line is not a valid event (the default; conflicts with --skip-invalid and --publish-invalid)")
		skipBad    = fs.Bool("skip-invalid", false, "leave lines that are not valid events out and publish the rest")
		publishBad = fs.Bool("publish-invalid", false, "publish lines that are not valid events too (even lines that are not JSON): the worker dead-letters each with its reason")
		details    = fs.Bool("details", false, "list every event that did not succeed with its full reason, instead of a summary by status and reason")
		reportFile = fs.String("report", "", "write every event's status and full reason to this file (tab-separated); without it, a shortened summary writes them to a temporary file and names it")
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
	policy := publish.RefuseInvalid
	switch {
	case btoi(*strict)+btoi(*skipBad)+btoi(*publishBad) > 1:
		fmt.Fprintln(stderr, "publisher publish: choose one of --strict, --skip-invalid and --publish-invalid")
		return exitError(2)
	case *skipBad:
		policy = publish.SkipInvalid
	case *publishBad:
		policy = publish.PublishInvalid
	}
	items, err := readItems(*file, *format, publish.CSVOptions{
		Object: *object, Operation: *operation, Key: splitList(*keyCols), Multi: splitList(*multiCols),
	})
	if err != nil {
		return err
	}
	if bad := publish.Invalid(items); len(bad) > 0 {
		if policy == publish.RefuseInvalid {
			return fmt.Errorf("%w\n--skip-invalid leaves them out and publishes the rest; --publish-invalid publishes them for the worker to dead-letter",
				&publish.InvalidError{Source: *file, Bad: bad, Total: len(items)})
		}
		fmt.Fprint(stderr, publish.DescribeInvalid(*file, bad))
		if policy == publish.SkipInvalid {
			fmt.Fprintf(stderr, "leaving %d invalid event(s) out (--skip-invalid)\n", len(bad))
		} else {
			fmt.Fprintf(stderr, "publishing %d invalid event(s) anyway (--publish-invalid): the worker dead-letters them with their reason\n", len(bad))
		}
	}

	conn, err := config.ClientConnection("scimflow-publisher", *cfgFile, *natsURL, *creds)
	if err != nil {
		return err
	}
	nc, err := conn.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.Stream(ctx, events.EventsStream); err != nil {
		return fmt.Errorf("stream %s on %s: %w (is a worker running? it creates the streams)", events.EventsStream, conn.URL, err)
	}
	var progress io.Writer
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !*noProgress {
		progress = stderr
	}
	rep, runErr := publish.Run(ctx, js, items, publish.Options{Wait: *wait, Timeout: *timeout, Progress: progress,
		Invalid: policy, Source: *file, Resend: *resend})
	if rep == nil {
		return runErr
	}
	fullList, err := writeFullList(rep, *reportFile, *details)
	if err != nil {
		fmt.Fprintf(stderr, "publisher: %v\n", err)
	}
	rep.Render(stdout, publish.RenderOptions{Details: *details, FullList: fullList})
	if n := len(rep.Duplicates); n > 0 {
		if *wait {
			fmt.Fprintln(stdout, "To apply them again (say the target was reset since), publish with --resend: fresh message ids, so the worker processes every event again.")
		} else {
			fmt.Fprintln(stdout, "--wait shows their earlier outcomes; --resend publishes them under fresh message ids, so the worker processes them again.")
		}
	}
	switch {
	case errors.Is(runErr, publish.ErrInterrupted):
		fmt.Fprintln(stderr, "publisher: interrupted; the summary above is partial, and the events already published are still processed by the worker")
		return exitError(130)
	case runErr != nil:
		return runErr
	case *wait && !rep.OK():
		return exitError(1)
	}
	return nil
}

// writeFullList writes every event's status and full reason to path; without a path, only when the
// summary leaves some out, to a new temporary file. It returns the file written, or "".
func writeFullList(rep *publish.Report, path string, details bool) (string, error) {
	if path == "" && (!rep.Waited || details || !rep.Abridged()) {
		return "", nil
	}
	var (
		f   *os.File
		err error
	)
	if path == "" {
		f, err = os.CreateTemp("", "scimflow-publish-*.tsv")
	} else {
		f, err = os.Create(path)
	}
	if err != nil {
		return "", fmt.Errorf("write the full list of events: %w", err)
	}
	if err := rep.WriteTSV(f); err != nil {
		f.Close()
		return "", fmt.Errorf("write the full list of events to %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write the full list of events to %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
