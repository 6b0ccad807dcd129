package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/auth"
)

// Class says what the caller should do with a failure.
type Class int

// Classes. ClassNone is what ClassOf returns for nil.
const (
	ClassNone      Class = iota // no error
	ClassRetryable              // try again later: network, timeout, 408, 429, 500, 502, 503, 504, breaker open
	ClassConflict               // 409 or scimType uniqueness: the object exists; resolve and update
	ClassNotFound               // 404: the id is gone; drop the cached id and resolve again
	ClassPermanent              // any other refusal: dead-letter with the reason
	ClassConfig                 // the connector's configuration is wrong: credentials, URLs, TLS
)

var classNames = [...]string{"none", "retryable", "conflict", "not_found", "permanent", "config"}

func (c Class) String() string {
	if c >= 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Error is every failure of a SCIM call: a non-2xx answer, a transport failure, a refused token,
// an open breaker or a request the connector refused to build.
type Error struct {
	Class    Class
	Status   int    // HTTP status; 0 when no answer arrived
	ScimType string // RFC 7644 §3.12 scimType, when the target sent one
	Detail   string // the target's detail or a description of the failure
	Method   string
	Path     string // relative to the base, without the query string
	// RetryAfter is the target's Retry-After (seconds or HTTP-date), or for an open breaker the
	// time until it lets a probe through; 0 when unknown.
	RetryAfter time.Duration
	// BreakerOpen is set when the request was not sent because the breaker is open.
	BreakerOpen bool
	Err         error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	switch {
	case e.BreakerOpen:
		b.WriteString("not sent: circuit breaker open")
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if e.ScimType != "" {
			fmt.Fprintf(&b, " %s", e.ScimType)
		}
	}
	if e.Detail != "" {
		if e.Status != 0 || e.BreakerOpen {
			b.WriteString(": ")
		}
		b.WriteString(e.Detail)
	} else if e.Err != nil {
		if e.Status != 0 || e.BreakerOpen {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, " [%s]", e.Class)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf classifies any error: an *Error by its Class, context cancellation and deadlines and
// network errors as retryable, TLS verification failures and refused credentials as config, and
// anything else as permanent. nil is ClassNone.
func ClassOf(err error) Class {
	if err == nil {
		return ClassNone
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return classOfTransport(err)
}

func classOfTransport(err error) Class {
	var te *auth.TokenError
	var ne net.Error
	switch {
	case errors.As(err, &te):
		if te.Retryable() {
			return ClassRetryable
		}
		return ClassConfig
	case auth.IsTLSConfigError(err):
		return ClassConfig
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return ClassRetryable
	case errors.Is(err, auth.ErrClosed):
		return ClassRetryable // shutting down: the work was not done, let it be redelivered
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return ClassRetryable
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") {
		return ClassRetryable
	}
	return ClassPermanent
}

// classForStatus maps a non-2xx status and scimType to a class.
func classForStatus(status int, scimType string) Class {
	if strings.EqualFold(scimType, "uniqueness") {
		return ClassConflict // some servers answer 400 uniqueness instead of 409
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ClassRetryable
	case http.StatusConflict, http.StatusPreconditionFailed:
		return ClassConflict
	case http.StatusNotFound, http.StatusGone:
		return ClassNotFound
	case http.StatusUnauthorized:
		return ClassConfig
	}
	if status >= 300 && status < 400 {
		return ClassConfig // redirects are never followed: the configured address is wrong
	}
	return ClassPermanent
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, 24*time.Hour)
		}
	}
	return 0
}
