// Command worker is scimflow's provisioning worker: it consumes identity events from NATS
// JetStream, provisions them to CyberArk or any SCIM 2.0 service, and publishes an outcome per
// event. Its subcommands also check a target, plan an event without writing, import an Omada data
// model and run the self-contained demo.
package main

import (
	"io"

	"github.com/scimflow/scimflow/internal/cli"
)

func main() { cli.Main("worker", run) }

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode("worker", err, stderr) }

// exitError ends the program with a status after the output already said why.
type exitError = cli.ExitError
