// Package provision is scimflow's SCIM 2.0 connector: one Client per target composes the Omada
// connector's URLs (base URI, entity root, query address), authenticates through internal/auth,
// resolves object ids and references by filter, and sends every request through an adaptive
// concurrency limiter, a circuit breaker and bounded retries, classifying each failure so that
// the consume loop can decide to ack, defer or dead-letter in one place.
//
// The generic profile is a plain RFC 7644 client; the cyberark profile adds what CyberArk
// Identity needs (DESIGN.md §8): generated passwords on user creation, the custom attribute
// extension in schemas, pages of at most 1000, PUT-only PAM resources and <safe>:<member> ids.
// docs/connector.md explains the design and records every judgement call.
package provision
