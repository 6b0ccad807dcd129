// Command cyberark-sim runs the CyberArk SCIM simulator (internal/cyberarksim) as a standalone
// server for the demo, load tests and manual exploration: OAuth 2.0 token and revocation
// endpoints, SCIM under /scim/ and /scim/v2/, fault injection and the admin API under /admin/.
// docs/simulator.md describes it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cyberark-sim:", err)
		os.Exit(1)
	}
}
