// Command publisher publishes identity events to scimflow's events stream from JSONL or CSV files,
// waits for their outcomes and prints a summary; it also generates synthetic HR data.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/scimflow/scimflow/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode("publisher", err, stderr) }

// exitError ends the program with a status after the output already said why.
type exitError = cli.ExitError
