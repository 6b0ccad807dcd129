// Command cyberark-sim runs the CyberArk SCIM simulator (internal/cyberarksim) as a standalone
// server for the demo, load tests and manual exploration: OAuth 2.0 token and revocation
// endpoints, SCIM under /scim/ and /scim/v2/, fault injection and the admin API under /admin/.
// docs/simulator.md describes it.
package main

import "github.com/scimflow/scimflow/internal/cli"

func main() { cli.Main("cyberark-sim", run) }
