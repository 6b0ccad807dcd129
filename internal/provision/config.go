package provision

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ohler55/ojg/jp"
	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/auth"
)

// Profile selects target-specific behaviour.
type Profile string

// Profiles.
const (
	ProfileGeneric  Profile = "generic"  // plain RFC 7644 (default)
	ProfileCyberArk Profile = "cyberark" // CyberArk Identity (DESIGN.md §8)
)

// Defaults of Config.
const (
	DefaultRootResourcePath = "$.Resources[0]"
	DefaultMediaType        = "application/scim+json"
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 32 << 20
	CyberArkMaxPageSize     = 1000
)

// Config configures a Client for one target. The zero value of every field means its default.
type Config struct {
	// Profile is generic (default) or cyberark.
	Profile Profile `yaml:"profile"`
	// BaseURI is the server address, e.g. https://tenant.id.cyberark.cloud/scim/v2. When entities
	// and queries live at the same address, it carries the full address and EntityRoot and
	// QueryAddress stay empty (Omada's rule).
	BaseURI string `yaml:"baseURI"`
	// EntityRoot is a relative path appended to BaseURI for entity requests ("v2" makes
	// https://host/v2/Users). Empty: entities live at BaseURI.
	EntityRoot string `yaml:"entityRoot"`
	// QueryAddress is a relative path appended to BaseURI for queries (Resolve, List, test
	// query): "query" makes https://host/query/Users?filter=... Empty: queries go to the entity base.
	QueryAddress string `yaml:"queryAddress"`
	// RootResourcePath is the JSONPath (ojg) to the first matching resource in a query answer;
	// the id is read from its "id". Default $.Resources[0].
	RootResourcePath string `yaml:"rootResourcePath"`
	// ContentType and Accept are the request headers; default application/scim+json.
	ContentType string `yaml:"contentType"`
	Accept      string `yaml:"accept"`
	// UseNumericValues is carried for reconcile, which coerces int, long and reference values
	// when it builds bodies; provision ignores it.
	UseNumericValues bool `yaml:"useNumericValues"`
	// TestConnection makes the worker run Check at start and refuse to start when it fails.
	TestConnection bool `yaml:"testConnection"`
	// TestQuery is a query relative to the query base, e.g. "Users?count=1", run by Check.
	TestQuery string `yaml:"testQuery"`
	// Timeout bounds one attempt (connect, send, read the answer); default 30s. A caller's
	// earlier deadline wins.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes bounds a response body; default 32 MiB.
	MaxResponseBytes int64 `yaml:"maxResponseBytes"`
	// MaxPageSize caps List's count; default 1000 for cyberark, unlimited for generic.
	MaxPageSize int `yaml:"maxPageSize"`
	// AllowHTTP permits a plain-http BaseURI for a host other than loopback. Off by default:
	// credentials would travel in clear.
	AllowHTTP bool `yaml:"allowHTTP"`
	// Auth and TLS configure authentication and TLS (internal/auth).
	Auth auth.Config    `yaml:"auth"`
	TLS  auth.TLSConfig `yaml:"tls"`
	// Breaker, Concurrency and Retry tune resilience; see each type for defaults.
	Breaker     BreakerConfig     `yaml:"breaker"`
	Concurrency ConcurrencyConfig `yaml:"concurrency"`
	Retry       RetryConfig       `yaml:"retry"`
	// IDCache, when set, caches key → id for Resolve (see IDCache).
	IDCache IDCache `yaml:"-"`
	// Observe, when set, is told of every request attempt, as a Trace records it (metrics). It
	// must not block.
	Observe func(Call) `yaml:"-"`
	// Logger receives the client's logs; secrets, tokens and bodies are never logged. The client
	// adds a "target" field; naming the component ("component": "connector") is the caller's.
	Logger zerolog.Logger `yaml:"-"`
}

// BreakerConfig configures the target's circuit breaker (sony/gobreaker v2). Failures are
// retryable outcomes only (transport errors, timeouts, 408, 500, 502, 503, 504, and 429 once the
// concurrency limiter is down to its minimum: before that a 429 is the limiter's signal and is
// not counted); a 4xx answer proves the target is up and counts as a success.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker after this many failures in a row; default 10.
	ConsecutiveFailures uint32 `yaml:"consecutiveFailures"`
	// FailureRatio opens the breaker when at least MinRequests were seen in Window and this
	// fraction of them failed; default 0.5 with MinRequests 20.
	FailureRatio float64 `yaml:"failureRatio"`
	MinRequests  uint32  `yaml:"minRequests"`
	// Window is the rolling window of the closed state's counts; default 30s (in 10 buckets).
	Window time.Duration `yaml:"window"`
	// OpenTimeout is how long the breaker stays open before it lets probes through; default 30s.
	OpenTimeout time.Duration `yaml:"openTimeout"`
	// HalfOpenProbes is how many requests the half-open breaker lets through; default 1.
	HalfOpenProbes uint32 `yaml:"halfOpenProbes"`
	// OnStateChange, when set, is called on every transition ("closed", "open", "half-open").
	OnStateChange func(from, to string) `yaml:"-"`
}

// ConcurrencyConfig configures the adaptive concurrency limiter shared by all requests to the
// target (see Limiter).
type ConcurrencyConfig struct {
	// Min and Max bound the limit; defaults 1 and 64. Initial is the starting limit; default 4.
	Min     int `yaml:"min"`
	Max     int `yaml:"max"`
	Initial int `yaml:"initial"`
	// Tolerance is how much slower than the best recent round trip a response may be before it
	// counts as congestion; default 2.0 (twice the baseline).
	Tolerance float64 `yaml:"tolerance"`
	// LatencyFloor is how much slower than the best recent round trip a response must also be
	// before it counts as congestion; default 5ms. Below it, a slower round trip is the client's
	// own noise (a shared host's scheduling, GC, its JetStream server's disk), not a queue at the
	// target: at a target answering in a millisecond, a tolerance alone mistook it for one.
	LatencyFloor time.Duration `yaml:"latencyFloor"`
	// Backoff is the multiplicative decrease on overload (429, 503, timeout); default 0.9.
	Backoff float64 `yaml:"backoff"`
	// Increase is the additive increase per round trip once past slow start; default 0.25.
	Increase float64 `yaml:"increase"`
}

// RetryConfig configures in-call retries of retryable failures.
type RetryConfig struct {
	// Attempts is the number of attempts per call, the first included; default 3.
	Attempts int `yaml:"attempts"`
	// BaseBackoff and MaxBackoff bound the exponential backoff with jitter; defaults 200ms and 5s.
	BaseBackoff time.Duration `yaml:"baseBackoff"`
	MaxBackoff  time.Duration `yaml:"maxBackoff"`
	// MaxRetryAfter is the longest Retry-After the call waits for itself; a longer one is
	// returned in Error.RetryAfter for the caller to defer; default 30s.
	MaxRetryAfter time.Duration `yaml:"maxRetryAfter"`
}

// withDefaults fills every zero value.
func (c Config) withDefaults() Config {
	c.Profile = cmp.Or(c.Profile, ProfileGeneric)
	c.RootResourcePath = cmp.Or(c.RootResourcePath, DefaultRootResourcePath)
	c.ContentType = cmp.Or(c.ContentType, DefaultMediaType)
	c.Accept = cmp.Or(c.Accept, DefaultMediaType)
	c.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	c.MaxResponseBytes = cmp.Or(c.MaxResponseBytes, DefaultMaxResponseBytes)
	if c.Profile == ProfileCyberArk {
		c.MaxPageSize = cmp.Or(c.MaxPageSize, CyberArkMaxPageSize)
	}
	b := &c.Breaker
	b.ConsecutiveFailures = cmp.Or(b.ConsecutiveFailures, 10)
	b.FailureRatio = cmp.Or(b.FailureRatio, 0.5)
	b.MinRequests = cmp.Or(b.MinRequests, 20)
	b.Window = cmp.Or(b.Window, 30*time.Second)
	b.OpenTimeout = cmp.Or(b.OpenTimeout, 30*time.Second)
	b.HalfOpenProbes = cmp.Or(b.HalfOpenProbes, 1)
	l := &c.Concurrency
	l.Min = cmp.Or(l.Min, 1)
	l.Max = cmp.Or(l.Max, max(64, l.Min))
	l.Initial = cmp.Or(l.Initial, min(max(4, l.Min), l.Max))
	l.Tolerance = cmp.Or(l.Tolerance, 2.0)
	l.LatencyFloor = cmp.Or(l.LatencyFloor, DefaultLatencyFloor)
	l.Backoff = cmp.Or(l.Backoff, 0.9)
	l.Increase = cmp.Or(l.Increase, 0.25)
	r := &c.Retry
	r.Attempts = cmp.Or(r.Attempts, 3)
	r.BaseBackoff = cmp.Or(r.BaseBackoff, 200*time.Millisecond)
	r.MaxBackoff = cmp.Or(r.MaxBackoff, 5*time.Second)
	r.MaxRetryAfter = cmp.Or(r.MaxRetryAfter, 30*time.Second)
	return c
}

// Validate reports every problem, each naming its field with the prefix "target.".
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("target.%s: "+format, append([]any{field}, args...)...))
	}
	switch c.Profile {
	case ProfileGeneric, ProfileCyberArk:
	default:
		add("profile", "%q is not one of generic, cyberark", c.Profile)
	}
	if _, err := newEndpoints(c.BaseURI, c.EntityRoot, c.QueryAddress, c.AllowHTTP); err != nil {
		errs = append(errs, fmt.Errorf("target.%w", err))
	}
	if _, err := jp.ParseString(c.RootResourcePath); err != nil {
		add("rootResourcePath", "%q is not a JSONPath: %v", c.RootResourcePath, err)
	} else if !strings.HasPrefix(c.RootResourcePath, "$") {
		add("rootResourcePath", "%q must start at the root ($)", c.RootResourcePath)
	}
	for field, v := range map[string]string{"contentType": c.ContentType, "accept": c.Accept} {
		if strings.ContainsAny(v, "\r\n") || !strings.Contains(v, "/") {
			add(field, "%q is not a media type", v)
		}
	}
	if c.TestQuery != "" {
		if _, _, err := splitTestQuery(c.TestQuery); err != nil {
			add("testQuery", "%v", err)
		}
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.MaxResponseBytes < 0 {
		add("maxResponseBytes", "must not be negative, got %d", c.MaxResponseBytes)
	}
	if c.MaxPageSize < 0 {
		add("maxPageSize", "must not be negative, got %d", c.MaxPageSize)
	}
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, prefixErrors("target.", err))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, prefixErrors("target.", err))
	}
	b := c.Breaker
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		add("breaker.failureRatio", "must be in (0, 1], got %v", b.FailureRatio)
	}
	if b.Window < 0 || b.OpenTimeout < 0 {
		add("breaker", "window and openTimeout must not be negative")
	}
	l := c.Concurrency
	if l.Min < 1 || l.Max < l.Min || l.Initial < l.Min || l.Initial > l.Max {
		add("concurrency", "need 1 <= min <= initial <= max, got min %d, initial %d, max %d", l.Min, l.Initial, l.Max)
	}
	if !(l.Tolerance >= 1) {
		add("concurrency.tolerance", "must be at least 1, got %v", l.Tolerance)
	}
	if l.LatencyFloor < 0 {
		add("concurrency.latencyFloor", "must not be negative, got %v", l.LatencyFloor)
	}
	if !(l.Backoff > 0 && l.Backoff < 1) {
		add("concurrency.backoff", "must be in (0, 1), got %v", l.Backoff)
	}
	if !(l.Increase > 0) {
		add("concurrency.increase", "must be positive, got %v", l.Increase)
	}
	r := c.Retry
	if r.Attempts < 1 {
		add("retry.attempts", "must be at least 1, got %d", r.Attempts)
	}
	if r.BaseBackoff < 0 || r.MaxBackoff < r.BaseBackoff || r.MaxRetryAfter < 0 {
		add("retry", "need 0 <= baseBackoff <= maxBackoff and maxRetryAfter >= 0, got %s, %s, %s", r.BaseBackoff, r.MaxBackoff, r.MaxRetryAfter)
	}
	return errors.Join(errs...)
}

// prefixErrors prefixes each joined error's message.
func prefixErrors(prefix string, err error) error {
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			parts = append(parts, fmt.Errorf("%s%w", prefix, e))
		}
		return errors.Join(parts...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}
