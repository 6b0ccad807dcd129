// Command nats-server runs the NATS server (with JetStream) from the github.com/nats-io/nats-server
// module this repository already depends on, so that tests and the chaos suite (make chaos) can run
// the broker as its own process, built from source, without downloading a release binary:
//
//	go build -o nats-server ./tools/nats-server
//	./nats-server -c chaos.conf
//
// It accepts the upstream server's flags (-c FILE, -p PORT, -js, -sd DIR, ...); docs/chaos.md
// shows the configuration the chaos suite uses (JetStream file store, sync_interval: always).
// SIGTERM and SIGINT shut it down cleanly; SIGKILL is what the chaos suite uses to crash it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/scimflow/scimflow/internal/cli"
)

func main() {
	fs := flag.NewFlagSet("nats-server", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: nats-server -c FILE | [-p PORT] [-js] [-sd DIR] ... (the upstream nats-server flags)")
		os.Exit(2)
	}
	opts, err := server.ConfigureOptions(fs, os.Args[1:], server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		server.PrintAndDie("nats-server: " + err.Error())
	}
	if opts.CheckConfig {
		fmt.Fprintf(os.Stderr, "nats-server: configuration file %s is valid\n", opts.ConfigFile)
		return
	}
	profiling := os.Getenv(cli.ProfileEnv) != ""
	if profiling {
		// The upstream handler exits on SIGTERM without returning here: the profile needs the
		// shutdown to come back to this function.
		opts.NoSigs = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		server.PrintAndDie("nats-server: " + err.Error())
	}
	s.ConfigureLogger()
	stopProfile := cli.StartProfile("nats-server") // SCIMFLOW_CPUPROFILE, as for the commands
	if err := server.Run(s); err != nil {
		server.PrintAndDie(err.Error())
	}
	if profiling {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			s.Shutdown()
		}()
	}
	s.WaitForShutdown()
	stopProfile()
}
