// Command publisher publishes identity events to scimflow's events stream from JSONL or CSV files,
// waits for their outcomes and prints a summary; it also generates synthetic HR data.
package main

import (
	"io"

	"github.com/scimflow/scimflow/internal/cli"
)

func main() { cli.Main("publisher", run) }

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode("publisher", err, stderr) }

// exitError ends the program with a status after the output already said why.
type exitError = cli.ExitError
