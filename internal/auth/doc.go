// Package auth authenticates scimflow's requests to a SCIM target: the auth modes none, basic,
// bearer (static token) and oauth2 (client_credentials and password grants, scopes, RFC 8707
// resource indicators, RFC 7009 revocation), the token cache policies always, interval and never,
// and the TLS settings every connection to the target uses.
//
// Credentials are [Secret] values: they print as "***" through fmt, encoding/json,
// encoding.TextMarshaler and log/slog, so a logged config or error never shows them. The
// judgement calls behind this package are written down in docs/connector.md.
package auth
