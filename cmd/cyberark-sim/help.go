package main

import "github.com/scimflow/scimflow/internal/cli"

var helpSim = &cli.Command{
	Name:    "cyberark-sim",
	Summary: "the CyberArk SCIM simulator: OAuth 2.0, Users, Groups, safes, fault injection",
	Usage:   "cyberark-sim [flags]",
	Description: `Serves the CyberArk Identity SCIM API in memory: the OAuth 2.0 token endpoint
/oauth2/token/<app-id> (client_credentials and password grants) and revocation /oauth2/revoke/<app-id>,
SCIM under /scim/ and /scim/v2/ (Users, Groups, Containers, ContainerPermissions), and the admin
API under /admin/ (state, stats, faults, reset). Faults (latency, 429s, 5xx, phantom writes, a
concurrency cap, token expiry) make it misbehave the way a busy tenant does. The first line on
stdout is "listening on <base URL>", so scripts can start it on port 0. docs/simulator.md has the
details.`,
	Examples: []string{
		"cyberark-sim                                   # http://127.0.0.1:8080, client scimflow-client / scimflow-secret",
		"cyberark-sim --listen 127.0.0.1:0 --seed-users 10000",
		"cyberark-sim --latency 50ms --max-concurrent 20 --rate-429 0.01 --retry-after 2s",
		"SIM_CLIENT_SECRET=s3cret cyberark-sim --generic   # a plain RFC 7644 server",
	},
	Env: []cli.Env{
		{Name: "SIM_CLIENT_SECRET", Meaning: "the OAuth client secret, when --client-secret is not given"},
		{Name: "SIM_PASSWORD", Meaning: "the resource owner's password (password grant), when --password is not given"},
		{Name: "SIM_STATIC_TOKEN", Meaning: "a bearer token also accepted, when --static-token is not given"},
	},
}
