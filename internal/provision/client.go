package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ohler55/ojg/jp"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/scimflow/scimflow/internal/auth"
)

// Request is one SCIM request. Path is escaped and relative to the entity base ("Users",
// "Users/2819c223"; build it with ResourcePath); with Search it is relative to the query base.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Body   []byte
	// Search sends the request to the query base, as Resolve, List and the test query do.
	Search bool
}

// Response is a 2xx answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client is the connector to one SCIM target. It is safe for concurrent use; every request to
// the target shares one concurrency limiter and one circuit breaker.
type Client struct {
	cfg       Config
	log       zerolog.Logger
	ep        endpoints
	transport *http.Transport
	http      *http.Client
	auth      *auth.Authorizer
	breaker   *gobreaker.TwoStepCircuitBreaker[struct{}]
	limiter   *Limiter
	root      jp.Expr
	openedAt  atomic.Int64 // unix nanoseconds of the last transition to open
}

// breaker outcomes: anything but nil and errExcluded is a failure.
var (
	errFailure  = errors.New("retryable failure")
	errExcluded = errors.New("caller gave up")
)

// New validates cfg and returns a Client. It makes no request: use Check to test the target.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	ep, _ := newEndpoints(cfg.BaseURI, cfg.EntityRoot, cfg.QueryAddress, cfg.AllowHTTP) // validated
	root, _ := jp.ParseString(cfg.RootResourcePath)                                     // validated
	tlsCfg, err := cfg.TLS.Build()
	if err != nil {
		return nil, fmt.Errorf("target.%w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.ForceAttemptHTTP2 = true
	tr.MaxIdleConnsPerHost = cfg.Concurrency.Max
	tr.ResponseHeaderTimeout = cfg.Timeout
	// Redirects are never followed: a SCIM target that redirects is configured at the wrong
	// address, and following would resend bodies and credentials elsewhere.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc := &http.Client{Transport: tr, CheckRedirect: noRedirect}
	// The caller names the component (cmd/worker: "connector"); a second "component" field here
	// would repeat the key in every JSON line.
	log := cfg.Logger.With().Str("target", ep.entity.Redacted()).Logger()
	az, err := auth.New(cfg.Auth, hc, log)
	if err != nil {
		return nil, fmt.Errorf("target.%w", err)
	}
	c := &Client{cfg: cfg, log: log, ep: ep, transport: tr, http: hc, auth: az, limiter: NewLimiter(cfg.Concurrency), root: root}
	b := cfg.Breaker
	c.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         ep.entity.Host,
		MaxRequests:  b.HalfOpenProbes,
		Interval:     b.Window,
		BucketPeriod: b.Window / 10,
		Timeout:      b.OpenTimeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= b.ConsecutiveFailures ||
				n.Requests >= b.MinRequests && float64(n.TotalFailures) >= b.FailureRatio*float64(n.Requests)
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errExcluded) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				c.openedAt.Store(time.Now().UnixNano())
			}
			ev := c.log.Info()
			if to == gobreaker.StateOpen {
				ev = c.log.Warn()
			}
			ev.Str("from", from.String()).Str("to", to.String()).Msg("circuit breaker state changed")
			if b.OnStateChange != nil {
				b.OnStateChange(from.String(), to.String())
			}
		},
	})
	if cfg.Profile == ProfileCyberArk {
		if p := strings.ToLower(strings.TrimRight(ep.entity.Path, "/")); !strings.HasSuffix(p, "/scim") && !strings.HasSuffix(p, "/scim/v2") {
			log.Warn().Str("entity_base", ep.entity.Redacted()).Msg("CyberArk serves SCIM under /scim or /scim/v2; check target.baseURI and target.entityRoot")
		}
	}
	return c, nil
}

// Config returns the client's configuration with defaults filled.
func (c *Client) Config() Config { return c.cfg }

// EntityBase and QueryBase return the composed base URLs.
func (c *Client) EntityBase() string { return c.ep.entity.String() }

// QueryBase returns the base URL of queries.
func (c *Client) QueryBase() string { return c.ep.query.String() }

// Authorizer returns the client's authorizer (for its Stats).
func (c *Client) Authorizer() *auth.Authorizer { return c.auth }

// BreakerState returns "closed", "open" or "half-open".
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// Limit returns the current adaptive concurrency limit; InFlight the requests holding a slot.
func (c *Client) Limit() int { return c.limiter.Limit() }

// InFlight returns the number of requests in flight.
func (c *Client) InFlight() int { return c.limiter.InFlight() }

// Close revokes the token (when a revocation URL is configured) and closes idle connections.
// Requests made after Close fail with a retryable error.
func (c *Client) Close(ctx context.Context) error {
	err := c.auth.Close(ctx)
	c.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close connector for %s: %w", c.ep.entity.Host, err)
	}
	return nil
}

type callOpts struct {
	attempts int  // attempts, the first included
	breaker  bool // go through the breaker
}

// Do sends a request through the limiter, the breaker, authentication and bounded retries.
// A 2xx answer is returned; anything else is an *Error.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	return c.do(ctx, req, callOpts{attempts: c.cfg.Retry.Attempts, breaker: true})
}

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodHead: true,
}

func (c *Client) do(ctx context.Context, req Request, o callOpts) (*Response, error) {
	method := strings.ToUpper(req.Method)
	if !knownMethods[method] {
		return nil, &Error{Class: ClassPermanent, Method: req.Method, Path: req.Path, Detail: fmt.Sprintf("method %q is not a SCIM method", req.Method)}
	}
	u, err := c.ep.url(req.Search, req.Path, req.Query)
	if err != nil {
		return nil, &Error{Class: ClassPermanent, Method: method, Path: req.Path, Detail: err.Error()}
	}
	p := prepared{body: req.Body}
	if c.cfg.Profile == ProfileCyberArk {
		if p, err = prepareCyberArk(method, req.Path, req.Body); err != nil {
			return nil, &Error{Class: ClassConfig, Method: method, Path: req.Path, Detail: err.Error()}
		}
	}
	refreshed := false
	for attempt, tries := 1, 1; ; attempt++ {
		resp, e := c.attempt(ctx, method, req.Path, u, p, attempt, o)
		if e == nil {
			return resp, nil
		}
		if e.Status == http.StatusUnauthorized && !refreshed && c.auth.Mode() == auth.ModeOAuth2 {
			refreshed = true // the token was invalidated: one more try with a fresh one
			continue
		}
		if e.Status == http.StatusUnauthorized {
			e.Detail = strings.TrimSpace("credentials rejected" + map[bool]string{true: " after a token refresh", false: ""}[refreshed] +
				": check target.auth; " + e.Detail)
		}
		if e.Class != ClassRetryable || e.BreakerOpen || tries >= o.attempts || ctx.Err() != nil || !retrySafe(method, e) {
			return nil, e
		}
		wait := e.RetryAfter
		if wait == 0 {
			wait = c.backoff(tries)
		}
		if wait > c.cfg.Retry.MaxRetryAfter {
			return nil, e
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, e
		}
		c.log.Debug().Ctx(ctx).Str("method", method).Str("path", req.Path).Int("attempt", attempt).Dur("wait", wait).Str("error", e.Error()).Msg("retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, e
		case <-t.C:
		}
		tries++
	}
}

// retrySafe reports whether a failed request may be sent again within the call. Idempotent
// methods always may; POST and PATCH only when the target surely did not apply them (429, 503,
// 408, or no connection made): otherwise the caller must read back first (resolve before create).
func retrySafe(method string, e *Error) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
		return true
	}
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusRequestTimeout:
		return true
	case 0:
		return notSent(e.Err)
	}
	return false
}

// backoff is exponential with equal jitter: half the step fixed, half random.
func (c *Client) backoff(try int) time.Duration {
	r := c.cfg.Retry
	d := r.BaseBackoff << min(try-1, 20)
	if d <= 0 || d > r.MaxBackoff {
		d = r.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

// breakerWait is how long the open breaker still refuses requests.
func (c *Client) breakerWait() time.Duration {
	opened := c.openedAt.Load()
	if opened == 0 {
		return c.cfg.Breaker.OpenTimeout
	}
	return max(time.Duration(opened)+c.cfg.Breaker.OpenTimeout-time.Duration(time.Now().UnixNano()), 0)
}

// attempt makes one HTTP attempt.
func (c *Client) attempt(ctx context.Context, method, rel string, u *url.URL, p prepared, n int, o callOpts) (*Response, *Error) {
	done := func(error) {}
	if o.breaker {
		d, err := c.breaker.Allow()
		if err != nil {
			return nil, &Error{Class: ClassRetryable, Method: method, Path: rel, BreakerOpen: true, RetryAfter: c.breakerWait(), Err: err}
		}
		done = d
	}
	release, err := c.limiter.acquire(ctx, requestClass(method, rel))
	if err != nil {
		done(errExcluded)
		return nil, &Error{Class: ClassRetryable, Method: method, Path: rel, Detail: "gave up waiting for a concurrency slot", Err: err}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if len(p.body) > 0 {
		body = bytes.NewReader(p.body)
	}
	hreq, err := http.NewRequestWithContext(actx, method, u.String(), body)
	if err != nil {
		release(outcomeIgnore, 0)
		done(nil)
		return nil, &Error{Class: ClassPermanent, Method: method, Path: rel, Detail: "build request: " + err.Error(), Err: err}
	}
	hreq.Header.Set("Accept", c.cfg.Accept)
	hreq.Header.Set("User-Agent", "scimflow")
	if len(p.body) > 0 {
		hreq.Header.Set("Content-Type", c.cfg.ContentType)
	}
	trace := traceFrom(ctx)
	if err := c.auth.Authorize(actx, hreq); err != nil {
		release(outcomeIgnore, 0)
		e := c.transportError(ctx, method, rel, err, "obtain token")
		done(breakerOutcome(ctx, e))
		call := Call{Method: method, Path: rel, Query: u.RawQuery, Attempt: n, Err: e.Detail}
		if trace != nil {
			trace.add(call)
		}
		if c.cfg.Observe != nil {
			c.cfg.Observe(call)
		}
		return nil, e
	}
	start := time.Now()
	resp, err := c.http.Do(hreq)
	var raw []byte
	if err == nil {
		raw, err = readBody(resp.Body, resp.ContentLength, c.cfg.MaxResponseBytes)
		resp.Body.Close()
	}
	dur := time.Since(start)
	var e *Error
	switch {
	case err != nil:
		e = c.transportError(ctx, method, rel, err, "")
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			release(outcomeOverload, dur)
		} else {
			release(outcomeIgnore, dur)
		}
	default:
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			release(outcomeOverload, dur)
		} else {
			release(outcomeSuccess, dur)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			e = statusError(method, rel, resp, raw, p.secret)
		}
	}
	outcome := breakerOutcome(ctx, e)
	if outcome != nil && e.Status == http.StatusTooManyRequests && c.limiter.Limit() > c.cfg.Concurrency.Min {
		// "Slow down" is the limiter's signal, and it just shed. Only when it cannot shed any
		// more do 429s count against the target: that is a storm, not a limit.
		outcome = errExcluded
	}
	done(outcome)
	if e != nil && e.Status == http.StatusUnauthorized {
		c.auth.Invalidate(hreq.Header.Get("Authorization"))
	}
	if trace != nil || c.cfg.Observe != nil {
		call := Call{Method: method, Path: rel, Query: u.RawQuery, Duration: dur, Attempt: n}
		if resp != nil {
			call.Status = resp.StatusCode
		}
		if e != nil {
			call.Err = e.Detail
			if call.Err == "" {
				call.Err = http.StatusText(e.Status)
			}
		}
		if trace != nil {
			trace.add(call)
		}
		if c.cfg.Observe != nil {
			c.cfg.Observe(call)
		}
	}
	if c.log.GetLevel() <= zerolog.DebugLevel {
		ev := c.log.Debug().Ctx(ctx).Str("method", method).Str("path", rel).Int("attempt", n).Dur("duration", dur)
		if resp != nil {
			ev = ev.Int("status", resp.StatusCode)
		}
		ev.Msg("scim request")
	}
	if e != nil {
		return nil, e
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}, nil
}

func breakerOutcome(ctx context.Context, e *Error) error {
	switch {
	case e == nil || e.Class != ClassRetryable:
		return nil
	case ctx.Err() != nil:
		return errExcluded
	}
	return errFailure
}

// readBody reads at most limit bytes.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	// Read into one buffer of the announced length (one byte more, to see the end), not a growing
	// one; a length beyond the limit or unknown (-1) reads as it comes.
	b := make([]byte, 0, 512)
	if length >= 0 && length <= limit {
		b = make([]byte, 0, length+1)
	}
	lr := io.LimitReader(r, limit+1)
	for {
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes (target.maxResponseBytes)", limit)
	}
	return b, nil
}

// transportError turns a failure without an HTTP answer into an *Error.
func (c *Client) transportError(ctx context.Context, method, rel string, err error, doing string) *Error {
	e := &Error{Class: classOfTransport(err), Method: method, Path: rel, Err: err, Detail: describeTransport(err, c.cfg.Timeout)}
	if strings.HasPrefix(e.Detail, "response larger") {
		e.Class = ClassPermanent
	}
	if ctx.Err() != nil {
		e.Class = ClassRetryable
		e.Detail = "cancelled: " + ctx.Err().Error()
	}
	if doing != "" {
		e.Detail = doing + ": " + e.Detail
	}
	return e
}

// statusError builds the *Error of a non-2xx answer from its status, SCIM error body (RFC 7644
// §3.12) and Retry-After.
func statusError(method, rel string, resp *http.Response, raw []byte, secret auth.Secret) *Error {
	e := &Error{Method: method, Path: rel, Status: resp.StatusCode}
	var se struct {
		ScimType string `json:"scimType"`
		Detail   string `json:"detail"`
	}
	if json.Unmarshal(raw, &se) == nil && (se.Detail != "" || se.ScimType != "") {
		e.ScimType, e.Detail = se.ScimType, se.Detail
	} else if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") || strings.Contains(ct, "json") {
		e.Detail = strings.TrimSpace(string(raw))
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Detail = fmt.Sprintf("redirect to %q not followed; set target.baseURI to the final address", resp.Header.Get("Location"))
	}
	if !secret.IsZero() {
		e.Detail = strings.ReplaceAll(e.Detail, secret.Reveal(), secret.String())
	}
	if len(e.Detail) > 500 {
		e.Detail = e.Detail[:500] + "…"
	}
	e.Detail = strings.ToValidUTF8(e.Detail, "")
	e.Class = classForStatus(resp.StatusCode, e.ScimType)
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}
