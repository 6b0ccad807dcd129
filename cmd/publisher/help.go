package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/scimflow/scimflow/internal/cli"
)

var (
	helpPublish = &cli.Command{
		Name:    "publisher publish",
		Summary: "publish events from a JSONL or CSV file, optionally waiting for their outcomes",
		Usage:   "publisher publish --file FILE [--wait] [--config FILE | --nats URL] [flags]",
		Description: `Publishes each event on idm.events.<object>.<keytoken> with its id as Nats-Msg-Id, so a
republished file is deduplicated. JSONL holds one CloudEvent per line; a line starting with #wait
holds the rest back (with --wait) until every event above it has its outcome. CSV makes one event
per record from --object, --operation and --key. Events that fail validation are reported and, by
default, published anyway so that the worker dead-letters them with their reason (--strict refuses
the file, --skip-invalid leaves them out). With --wait it prints a summary and exits 1 if any event
did not succeed. It connects to --nats, else to the NATS server of --config, else to
nats://127.0.0.1:4222; the worker must have created the streams.`,
		Examples: []string{
			"publisher publish --file deploy/examples/events.jsonl --wait",
			"publisher publish --config deploy/examples/config.yaml --file events.jsonl --wait --timeout 10m",
			"publisher publish --file hr.csv --object User --operation Upsert --key userName --multi emails[].value",
		},
		Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the --config file's nats section names (nats.password, nats.token, nats.credentials)"}},
	}
	helpGenerate = &cli.Command{
		Name:    "publisher generate",
		Summary: "write synthetic HR events (JSONL) for demos and load tests",
		Usage:   "publisher generate [--users N] [--groups M] [flags] > events.jsonl",
		Description: `Writes events to stdout in four phases separated by #wait lines: users join (with a manager)
and groups are created; users join groups; some users change title; some leave (disabled, removed
from their groups, deleted). The same --seed writes the same file. Reads no environment.`,
		Examples: []string{
			"publisher generate --users 1000 --groups 20 > events.jsonl",
			"publisher generate --users 50 --leavers 0.2 --seed 7 > e.jsonl && publisher publish --file e.jsonl --wait",
		},
	}
	helpVersion = &cli.Command{
		Name:    "publisher version",
		Summary: "print the module version, VCS revision and time, and Go version",
		Usage:   "publisher version",
		Description: `Prints the module version, the VCS revision and commit time the binary was built from, and the
Go version that built it: the line to quote in a bug report. Reads no configuration.`,
		Examples: []string{"publisher version"},
	}
)

// commands is the publisher's command table.
var commands = &cli.Dispatch{
	Prog:     "publisher",
	Summary:  "publishes identity events to scimflow and waits for their outcomes",
	Commands: []*cli.Command{helpPublish, helpGenerate, helpVersion},
}

// cmdHelp is `publisher help [command]`.
func cmdHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		commands.WriteUsage(stdout)
		return nil
	}
	c, ok := commands.Lookup(args)
	if !ok {
		fmt.Fprintf(stderr, "publisher help: unknown command %q\n", strings.Join(args, " "))
		commands.WriteUsage(stderr)
		return exitError(2)
	}
	err := run(ctx, append(strings.Fields(strings.TrimPrefix(c.Name, "publisher ")), "-h"), stdout, stderr)
	if err == exitError(0) {
		return nil
	}
	return err
}
