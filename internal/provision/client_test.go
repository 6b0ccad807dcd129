package provision

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
)

// scriptServer answers each request with the next scripted handler (the last one repeats).
func scriptServer(t *testing.T, steps ...http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		steps[min(i, len(steps)-1)](w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func status(code int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/scim+json")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

func plainClient(t *testing.T, url string, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURI: url, Retry: RetryConfig{BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}}
	if mutate != nil {
		mutate(&cfg)
	}
	return newClient(t, cfg)
}

func TestDoRetries(t *testing.T) {
	t.Parallel()
	ok := status(200, nil, `{"id":"1"}`)
	tests := []struct {
		name      string
		method    string
		steps     []http.HandlerFunc
		wantCalls int32
		wantClass Class
	}{
		{name: "GET retried through 500", method: "GET", steps: []http.HandlerFunc{status(500, nil, ""), status(502, nil, ""), ok}, wantCalls: 3},
		{name: "GET gives up after attempts", method: "GET", steps: []http.HandlerFunc{status(503, nil, "")}, wantCalls: 3, wantClass: ClassRetryable},
		{name: "POST not resent after 500", method: "POST", steps: []http.HandlerFunc{status(500, nil, ""), ok}, wantCalls: 1, wantClass: ClassRetryable},
		{name: "POST resent after 429", method: "POST", steps: []http.HandlerFunc{status(429, nil, ""), ok}, wantCalls: 2},
		{name: "PATCH resent after 503", method: "PATCH", steps: []http.HandlerFunc{status(503, nil, ""), ok}, wantCalls: 2},
		{name: "PUT retried through 504", method: "PUT", steps: []http.HandlerFunc{status(504, nil, ""), ok}, wantCalls: 2},
		{name: "400 not retried", method: "GET", steps: []http.HandlerFunc{status(400, nil, `{"scimType":"invalidValue","detail":"bad"}`)}, wantCalls: 1, wantClass: ClassPermanent},
		{name: "400 uniqueness is a conflict", method: "POST", steps: []http.HandlerFunc{status(400, nil, `{"scimType":"uniqueness","detail":"taken"}`)}, wantCalls: 1, wantClass: ClassConflict},
		{name: "redirect not followed", method: "GET", steps: []http.HandlerFunc{status(302, map[string]string{"Location": "https://elsewhere/scim"}, "")}, wantCalls: 1, wantClass: ClassConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, n := scriptServer(t, tt.steps...)
			c := plainClient(t, srv.URL, nil)
			_, err := c.Do(t.Context(), Request{Method: tt.method, Path: "Users", Body: []byte(`{}`)})
			assert.Equal(t, tt.wantCalls, n.Load())
			if tt.wantClass == ClassNone {
				require.NoError(t, err)
				return
			}
			requireClass(t, err, tt.wantClass)
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	when := time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
	srv, n := scriptServer(t, status(503, map[string]string{"Retry-After": when}, ""), status(200, nil, "{}"))
	c := plainClient(t, srv.URL, nil)
	start := time.Now()
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "Users"})
	require.NoError(t, err)
	assert.EqualValues(t, 2, n.Load())
	assert.Greater(t, time.Since(start), 900*time.Millisecond, "waited until the HTTP-date")

	srv, _ = scriptServer(t, status(429, map[string]string{"Retry-After": time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}, ""))
	_, err = plainClient(t, srv.URL, nil).Do(t.Context(), Request{Method: "GET", Path: "Users"})
	e := requireClass(t, err, ClassRetryable)
	assert.InDelta(t, time.Hour.Seconds(), e.RetryAfter.Seconds(), 5, "too long to wait in-call: handed back")
}

func TestDoHonoursContextDuringBackoff(t *testing.T) {
	t.Parallel()
	srv, _ := scriptServer(t, status(503, map[string]string{"Retry-After": "10"}, ""))
	c := plainClient(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, Request{Method: "GET", Path: "Users"})
	requireClass(t, err, ClassRetryable)
	assert.Less(t, time.Since(start), time.Second, "a Retry-After past the deadline is not waited for")
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv, _ := scriptServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := plainClient(t, srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond; c.Retry.Attempts = 2 })
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "Users"})
	e := requireClass(t, err, ClassRetryable)
	assert.Contains(t, e.Error(), "no answer from")
	assert.Contains(t, e.Error(), "within 50ms (target.timeout)")
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	srv, _ := scriptServer(t, status(200, nil, `{"x":"`+strings.Repeat("a", 2048)+`"}`))
	c := plainClient(t, srv.URL, func(c *Config) { c.MaxResponseBytes = 1024 })
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "Users"})
	e := requireClass(t, err, ClassPermanent)
	assert.Contains(t, e.Error(), "response larger than 1024 bytes")
}

func TestGeneratedPasswordRedactedFromErrors(t *testing.T) {
	t.Parallel()
	srv, _ := scriptServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(400)
		// A careless server echoes the body in its error detail.
		_, _ = io.WriteString(w, `{"scimType":"invalidValue","detail":"bad body `+strings.ReplaceAll(string(b), `"`, `'`)+`"}`)
	})
	c := plainClient(t, srv.URL, func(c *Config) { c.Profile = ProfileCyberArk })
	ctx, trace := WithTrace(t.Context())
	_, err := c.Do(ctx, Request{Method: "POST", Path: "Users", Body: []byte(`{"userName":"a"}`)})
	e := requireClass(t, err, ClassPermanent)
	assert.Contains(t, e.Detail, "'password':'***'")
	assert.Contains(t, trace.Calls()[0].Err, "'password':'***'")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	base := Config{BaseURI: "https://tenant.example/scim/v2"}
	require.NoError(t, base.Validate())
	tests := []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Profile = "okta" }, `target.profile: "okta" is not one of generic, cyberark`},
		{func(c *Config) { c.BaseURI = "" }, "target.baseURI: required"},
		{func(c *Config) { c.EntityRoot = "../x" }, "target.entityRoot:"},
		{func(c *Config) { c.QueryAddress = "https://x/q" }, "target.queryAddress:"},
		{func(c *Config) { c.RootResourcePath = "$.Resources[" }, "target.rootResourcePath:"},
		{func(c *Config) { c.RootResourcePath = "Resources[0]" }, "target.rootResourcePath:"},
		{func(c *Config) { c.ContentType = "json" }, `target.contentType: "json" is not a media type`},
		{func(c *Config) { c.TestQuery = "https://x/Users" }, "target.testQuery:"},
		{func(c *Config) { c.Timeout = -time.Second }, "target.timeout: must not be negative"},
		{func(c *Config) { c.Auth = auth.Config{Mode: auth.ModeBasic} }, "target.auth.basic.username: required"},
		{func(c *Config) { c.TLS.MinVersion = "1.0" }, `target.tls.minVersion: "1.0" is refused`},
		{func(c *Config) { c.Breaker.FailureRatio = 2 }, "target.breaker.failureRatio"},
		{func(c *Config) { c.Concurrency = ConcurrencyConfig{Min: 5, Max: 2} }, "target.concurrency: need 1 <= min <= initial <= max"},
		{func(c *Config) { c.Concurrency.Backoff = 1.5 }, "target.concurrency.backoff"},
		{func(c *Config) { c.Concurrency.LatencyFloor = -time.Millisecond }, "target.concurrency.latencyFloor: must not be negative"},
		{func(c *Config) { c.Retry.Attempts = -1 }, "target.retry.attempts"},
		{func(c *Config) { c.Retry.BaseBackoff, c.Retry.MaxBackoff = time.Second, time.Millisecond }, "target.retry:"},
	}
	for _, tt := range tests {
		c := base
		tt.mutate(&c)
		err := c.Validate()
		if assert.Error(t, err, tt.want) {
			assert.Contains(t, err.Error(), tt.want)
		}
	}
	_, err := New(Config{})
	assert.ErrorContains(t, err, "target.baseURI: required")
}

func TestBreakerOpenAnswersFast(t *testing.T) {
	t.Parallel()
	srv, n := scriptServer(t, status(500, nil, ""))
	c := plainClient(t, srv.URL, func(c *Config) {
		c.Retry.Attempts = 1
		c.Breaker = BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: time.Minute}
	})
	for range 3 {
		_, err := c.Do(t.Context(), Request{Method: "GET", Path: "Users"})
		requireClass(t, err, ClassRetryable)
	}
	assert.Equal(t, "open", c.BreakerState())
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "Users"})
	e := requireClass(t, err, ClassRetryable)
	assert.True(t, e.BreakerOpen)
	assert.InDelta(t, time.Minute.Seconds(), e.RetryAfter.Seconds(), 2)
	assert.EqualValues(t, 3, n.Load())
}

// readBody reads every body whole, whatever length the answer announced, and refuses one past
// the limit.
func TestReadBodyWhateverTheAnnouncedLength(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("x", 700)
	for _, announced := range []int64{-1, 0, 10, 699, 700, 701, 5000} {
		got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), announced, 1024)
		require.NoError(t, err, "announced %d", announced)
		assert.Equal(t, body, string(got), "announced %d", announced)
		got, err = readBody(strings.NewReader(body), announced, 1024)
		require.NoError(t, err)
		assert.Equal(t, body, string(got))
	}
	_, err := readBody(strings.NewReader(body), 700, 699)
	assert.ErrorContains(t, err, "response larger than 699 bytes")
	_, err = readBody(strings.NewReader(body), -1, 699)
	assert.ErrorContains(t, err, "response larger than 699 bytes")
	got, err := readBody(strings.NewReader(""), 0, 10)
	require.NoError(t, err)
	assert.Empty(t, got)
}
