package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

const usage = `usage: worker <command> [flags]

commands:
  run           consume events and provision the target (--config FILE)
  check         test the connection to the target: token, ServiceProviderConfig, test query
  plan          show the exact requests an event would cause, without writing (--event FILE)
  model import  convert an Omada data model (XML) to a scimflow model (YAML)
  demo          run everything in process on sample events and print the outcomes
  dlq           list, show and replay dead letters (worker dlq -h)
  replay        re-process retained events (--since TIME | --from-seq N) [--to-seq M] [--object O] [--dry-run]

Run 'worker <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError(2)
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "check":
		return cmdCheck(ctx, args[1:], stdout, stderr)
	case "plan":
		return cmdPlan(ctx, args[1:], stdout, stderr)
	case "model":
		return cmdModel(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "worker: unknown command %q\n%s", args[0], usage)
		return exitError(2)
	}
}

// flags returns a flag set that reports to stderr and the --config flag every command shares.
func flags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "scimflow.yaml", "configuration file")
	return fs, cfg
}
