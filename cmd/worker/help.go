package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/scimflow/scimflow/internal/cli"
)

// The environment the commands that read the whole configuration depend on.
var (
	envConfigRefs = cli.Env{Name: "${NAME}", Meaning: "any variable the configuration file names as ${NAME} (secrets belong there, not in the file)"}
	envClientID   = cli.Env{Name: "SCIMFLOW_CLIENT_ID", Meaning: "the target's OAuth client id, as deploy/examples/config.yaml reads it (${SCIMFLOW_CLIENT_ID})"}
	envSecret     = cli.Env{Name: "SCIMFLOW_CLIENT_SECRET", Meaning: "the target's OAuth client secret, as deploy/examples/config.yaml reads it (${SCIMFLOW_CLIENT_SECRET})"}
	envExample    = "export SCIMFLOW_CLIENT_ID=scimflow-client SCIMFLOW_CLIENT_SECRET=scimflow-secret   # the simulator's defaults"
)

var (
	helpRun = &cli.Command{
		Name:    "worker run",
		Summary: "consume events, provision the target, publish outcomes",
		Usage:   "worker run [--config FILE]",
		Description: `Starts the embedded JetStream server (nats.url empty; clients reach it on nats.listen) or
connects to nats.url, creates the streams, and, when target.testConnection is true, tests the
connection to the target and refuses to start if that fails. It then consumes events until SIGINT
or SIGTERM: intake stops, in-flight events finish within worker.drainTimeout, outcomes are flushed
and the OAuth token is revoked. /healthz, /readyz, /status and /metrics are served on http.listen.`,
		Examples: []string{
			envExample,
			"worker run --config deploy/examples/config.yaml",
		},
		Env: []cli.Env{envConfigRefs, envClientID, envSecret},
	}
	helpCheck = &cli.Command{
		Name:    "worker check",
		Summary: "test the connection to the target: token, ServiceProviderConfig, test query",
		Usage:   "worker check [--config FILE]",
		Description: `Obtains a token (auth mode oauth2), reads ServiceProviderConfig and runs target.testQuery,
each once and without retries, and prints one line per step with its latency, then the target's
capabilities. Exits 0 when every step passed, 1 otherwise. Only warnings and errors are logged
(to stderr), so the report stays readable.`,
		Examples: []string{
			envExample,
			"worker check --config deploy/examples/config.yaml",
		},
		Env: []cli.Env{envConfigRefs, envClientID, envSecret},
	}
	helpPlan = &cli.Command{
		Name:    "worker plan",
		Summary: "show the exact requests an event would cause, without writing",
		Usage:   "worker plan [--config FILE] --event FILE",
		Description: `Validates the event the way the worker does, resolves its keys and references with read-only
requests, and prints those reads, then each request the event would cause: method, exact URL and
body, with the data-model rule behind each part of the body. Nothing is written to the target.
The event file holds a whole CloudEvent or only its data object; - reads stdin.`,
		Examples: []string{
			"worker plan --config deploy/examples/config.yaml --event event.json",
			`echo '{"object":"User","operation":"Update","key":{"userName":"ada@example.com"},"attributes":{"title":"CTO"}}' | worker plan --config deploy/examples/config.yaml --event -`,
		},
		Env: []cli.Env{envConfigRefs, envClientID, envSecret},
	}
	helpModelImport = &cli.Command{
		Name:    "worker model import",
		Summary: "convert an Omada data model (XML) to a scimflow model (YAML)",
		Usage:   "worker model import --omada FILE.xml [--out FILE.yaml]",
		Description: `Reads an Omada connector data model, converts objects, properties, templates, reconciliation
and task mappings, checks that the result loads the way the worker will load it, and writes it to
stdout or --out. Problems name the XML line.`,
		Examples: []string{
			"worker model import --omada deploy/examples/models/omada-example.xml",
			"worker model import --omada datamodel.xml --out models/omada.yaml",
		},
	}
	helpDemo = &cli.Command{
		Name:    "worker demo",
		Summary: "run everything in process on sample events and print the outcomes",
		Usage:   "worker demo [--config FILE] [--events FILE] [--dir DIR] [--timeout DURATION] [-v]",
		Description: `Starts the CyberArk simulator on a free port, an embedded JetStream server and the worker
(configured by --config, pointed at the simulator), publishes the events, waits for every outcome
and prints them with the simulator's final users and groups. Exits 0 only when every valid event
succeeded, every malformed one was dead-lettered, and every manager reference and group
membership the events imply (users by userName, groups by displayName, as in the example models)
is set in the simulator at the end. make demo runs it.`,
		Examples: []string{
			"worker demo",
			"worker demo --events my-events.jsonl -v   # with the worker's log",
		},
		Env: []cli.Env{
			envConfigRefs,
			{Name: "SCIMFLOW_CLIENT_ID", Meaning: "read by the example config; default scimflow-client, the simulator's client"},
			{Name: "SCIMFLOW_CLIENT_SECRET", Meaning: "read by the example config; default scimflow-secret, the simulator's secret"},
		},
	}
	helpVersion = &cli.Command{
		Name:    "worker version",
		Summary: "print the module version, VCS revision and time, and Go version",
		Usage:   "worker version",
		Description: `Prints the module version, the VCS revision and commit time the binary was built from, and the
Go version that built it: the line to quote in a bug report. Reads no configuration.`,
		Examples: []string{
			"worker version",
		},
	}
)

// commands is the worker's command table.
var commands = &cli.Dispatch{
	Prog:     "worker",
	Summary:  "scimflow's provisioning worker",
	Commands: []*cli.Command{helpRun, helpCheck, helpPlan, helpModelImport, helpDemo, helpOutcomes, helpPool, helpParked, helpDeletes, helpDLQList, helpDLQShow, helpDLQReplay, helpReplay, helpInventory, helpWindow, helpPause, helpResume, helpExplain, helpProvision, helpVersion},
}

// cmdHelp is `worker help [command]`: the usage, or a command's help.
func cmdHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		commands.WriteUsage(stdout)
		return nil
	}
	words := args
	if c, ok := commands.Lookup(args); ok {
		words = strings.Fields(strings.TrimPrefix(c.Name, "worker "))
	} else if group, ok := helpGroup(args); ok {
		// A group of commands (dlq) answers -h with its commands; a subcommand documented on
		// its command's page (inventory schedule, window schedule) with that page.
		words = group
	} else {
		fmt.Fprintf(stderr, "worker help: unknown command %q\n", strings.Join(args, " "))
		commands.WriteUsage(stderr)
		return exitError(2)
	}
	err := run(ctx, append(words, "-h"), stdout, stderr)
	if err == exitError(0) {
		return nil
	}
	return err
}

// helpGroup finds the words whose help answers `worker help args`: args themselves when they name
// a group of registered commands (dlq), or the longest prefix of args naming a registered command
// (inventory for inventory schedule).
func helpGroup(args []string) ([]string, bool) {
	name := "worker " + strings.Join(args, " ")
	for _, c := range commands.Commands {
		if strings.HasPrefix(c.Name, name+" ") {
			return args, true
		}
	}
	for n := len(args) - 1; n > 0; n-- {
		if c, ok := commands.Lookup(args[:n]); ok && c.Name == "worker "+strings.Join(args[:n], " ") {
			return args[:n], true
		}
	}
	return nil, false
}
