package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrClosed is returned by Authorize and Token after Close.
var ErrClosed = errors.New("authorizer closed")

// TokenError is a failed request to the token or revocation endpoint.
type TokenError struct {
	// Op is "token" or "revoke".
	Op string
	// URL is the endpoint that was called.
	URL string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Code and Description are the OAuth error and error_description (RFC 6749 §5.2), when given.
	Code, Description string
	// Err is the transport or decoding error behind the failure, if any.
	Err error
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s request to %s", e.Op, e.URL)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
		if e.Description != "" {
			fmt.Fprintf(&b, " (%s)", e.Description)
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if hint := e.Hint(); hint != "" {
		fmt.Fprintf(&b, "; %s", hint)
	}
	return b.String()
}

func (e *TokenError) Unwrap() error { return e.Err }

// Retryable reports whether the same request may succeed later: transport failures, 408, 429
// and 5xx. Everything else (bad credentials, unknown endpoint, refused grant) needs a config change.
func (e *TokenError) Retryable() bool {
	switch {
	case e.Status == 0:
		return e.Err != nil && !IsTLSConfigError(e.Err)
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}

// Hint names the setting most likely at fault, for people reading `worker check`.
func (e *TokenError) Hint() string {
	switch {
	case e.Code == "invalid_client" || (e.Code == "" && e.Status == http.StatusUnauthorized):
		return "the client was not authenticated: check auth.oauth2.clientID and auth.oauth2.clientSecret"
	case e.Code == "invalid_grant":
		return "the grant was refused: check auth.oauth2.username and auth.oauth2.password (password grant) or the client's grant permissions"
	case e.Code == "unauthorized_client" || e.Code == "unsupported_grant_type":
		return "the client may not use this grant: check auth.oauth2.grantType and the application's settings"
	case e.Code == "invalid_scope":
		return "check auth.oauth2.scopes"
	case e.Code == "invalid_target":
		return "check auth.oauth2.resource"
	case e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed:
		if e.Op == "revoke" {
			return "check auth.oauth2.revokeURL"
		}
		return "no token endpoint at this address: check auth.oauth2.tokenURL"
	}
	return ""
}
