// Command publisher publishes identity events to scimflow's events stream from JSONL or CSV files,
// waits for their outcomes and prints a summary; it also generates synthetic HR data.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(exitError); ok {
		return int(e)
	}
	fmt.Fprintln(stderr, "publisher:", err)
	return 1
}

// exitError ends the program with a status after the output already said why.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
