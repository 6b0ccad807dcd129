// Command bareloop is the floor `make bench` measures `worker run` against (issue 10): a minimal
// consumer written for the comparison, with none of the worker's logic. It pulls the events stream
// through one durable consumer per partition (the same stream and partition filters the worker
// uses), decodes each event with encoding/json, makes the SCIM calls the worker makes for the
// benchmark's workload through plain net/http (POST a user; PATCH a user's title; PATCH a group's
// members, looking ids up by key with a filter when its in-memory map does not hold them),
// publishes one outcome per event and acknowledges it. Events of one key run in order on one of
// -concurrency goroutines.
//
// It knows only User Create and Update and Group Create and AddAssignment: anything else, and any
// SCIM failure left after a few retries, ends as a dead_lettered outcome naming the cause, so the
// benchmark sees it. It prints "ready" on stdout once its consumers exist.
//
//	bareloop -nats nats://127.0.0.1:4222 -target http://127.0.0.1:8080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/scimflow/scimflow/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := cli.StartProfile("bareloop") // SCIMFLOW_CPUPROFILE, as for the worker
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bareloop:", err)
		os.Exit(1)
	}
}

// run parses args and consumes until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("bareloop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATS, "nats", "", "NATS URL of the JetStream server holding IDM_EVENTS (required)")
	fs.StringVar(&cfg.Target, "target", "", "base URL of the CyberArk simulator: token at /oauth2/token/scimflow, SCIM at /scim/v2 (required)")
	fs.StringVar(&cfg.ClientID, "client-id", "scimflow-client", "OAuth 2.0 client id")
	fs.StringVar(&cfg.ClientSecret, "client-secret", "scimflow-secret", "OAuth 2.0 client secret")
	fs.StringVar(&cfg.Name, "name", "bareloop", "prefix of the durable consumers: <name>-p<partition>")
	fs.IntVar(&cfg.Partitions, "partitions", 32, "partitions of the events stream")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "events processed at once, each of a different key")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "SCIM requests in flight at most (0: as many as events in process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	l, err := NewLoop(cfg)
	if err != nil {
		return err
	}
	return l.Run(ctx, func() { fmt.Fprintln(stdout, "ready") })
}
