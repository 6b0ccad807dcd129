// Command worker is scimflow's provisioning worker: it consumes identity events from NATS
// JetStream, provisions them to CyberArk or any SCIM 2.0 service, and publishes an outcome per
// event. Its subcommands also check a target, plan an event without writing, import an Omada data
// model and run the self-contained demo.
package main

import (
	"context"
	"errors"
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
	var e exitError
	if errors.As(err, &e) {
		return int(e)
	}
	fmt.Fprintln(stderr, "worker:", err)
	return 1
}

// exitError ends the program with a status after the output already said why.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
