package main

import (
	"context"
	"fmt"
	"io"

	"github.com/scimflow/scimflow/internal/cli"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		commands.WriteUsage(stderr)
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
	case "outcomes":
		return cmdOutcomes(ctx, args[1:], stdout, stderr)
	case "pool":
		return cmdPool(ctx, args[1:], stdout, stderr)
	case "parked":
		return cmdParked(ctx, args[1:], stdout, stderr)
	case "deletes":
		return cmdDeletes(ctx, args[1:], stdout, stderr)
	case "dlq":
		return cmdDLQ(ctx, args[1:], stdout, stderr)
	case "inventory":
		return cmdInventory(ctx, args[1:], stdout, stderr)
	case "provision":
		return cmdProvision(ctx, args[1:], stdout, stderr)
	case "explain":
		return cmdExplain(ctx, args[1:], stdout, stderr)
	case "pause", "resume":
		return cmdPause(ctx, args[0] == "pause", args[1:], stdout, stderr)
	case "window":
		return cmdWindow(ctx, args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return cli.RunVersion(helpVersion, "worker", args[1:], stdout, stderr)
	case "help":
		return cmdHelp(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "-help":
		commands.WriteUsage(stdout)
		return nil
	default:
		fmt.Fprintf(stderr, "worker: unknown command %q\n", args[0])
		commands.WriteUsage(stderr)
		return exitError(2)
	}
}

// flags returns the command's flag set (-h prints its help) with the --config flag every command
// that reads the configuration shares.
func flags(c *cli.Command, stdout, stderr io.Writer) (*cli.FlagSet, *string) {
	fs := c.FlagSet(stdout, stderr)
	cfg := fs.String("config", defaultConfigFile, "configuration `FILE`")
	return fs, cfg
}
