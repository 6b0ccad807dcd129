// Package cyberarksim simulates CyberArk Identity's SCIM 2.0 server, or with Config.Generic a
// strict plain RFC 7643/7644 server, in memory: OAuth 2.0 token and revocation endpoints, Users,
// Groups and the CyberArk PAM resources (Containers, ContainerPermissions, PrivilegedData),
// discovery endpoints, fault injection (latency, 429 with and without Retry-After, 5xx, lost
// replies, outage windows, a concurrency limit, early token expiry) and an unauthenticated admin
// API to read its state and counters.
//
// It is what scimflow's tests, demo and benchmarks talk to, so it is strict where a real server
// may be lenient: unknown attributes, malformed filters and bodies, wrong media types and
// mutability violations are errors naming what is wrong. Resources are stored as compact JSON
// with sorted indexes, so filters on userName, displayName, externalId, id, name and the other
// indexed attributes stay O(log n) with a million users.
//
// docs/simulator.md describes the behaviour and every judgement call.
package cyberarksim
