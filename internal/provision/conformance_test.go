package provision

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/auth/authtest"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
)

// The conformance suite: one set of behaviours, run against the simulator in each profile
// (the shape of watermill's pubsub/tests). Every test starts its own simulator.

type suiteTarget struct {
	profile Profile
	sim     *cyberarksim.Server
	ts      *httptest.Server
	// seen records every request the simulator received (method, escaped path, raw query, headers).
	seen *requestLog
}

type seenRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
}

type requestLog struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, seenRequest{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone()})
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) all() []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seenRequest(nil), l.reqs...)
}

// startTarget starts a simulator for the profile behind a request log.
func startTarget(t *testing.T, profile Profile, mutate func(*cyberarksim.Config)) *suiteTarget {
	t.Helper()
	cfg := cyberarksim.Config{Generic: profile == ProfileGeneric}
	if mutate != nil {
		mutate(&cfg)
	}
	sim, err := cyberarksim.New(cfg)
	require.NoError(t, err)
	st := &suiteTarget{profile: profile, sim: sim, seen: &requestLog{}}
	st.ts = httptest.NewServer(st.seen.wrap(sim))
	t.Cleanup(st.ts.Close)
	return st
}

// config is a client config for the target: oauth2 client credentials, scope scim, /scim/v2.
func (st *suiteTarget) config() Config {
	return Config{
		Profile: st.profile,
		BaseURI: st.ts.URL + "/scim/v2",
		Auth: auth.Config{Mode: auth.ModeOAuth2, OAuth2: auth.OAuth2Config{
			TokenURL:  st.ts.URL + "/oauth2/token/" + cyberarksim.DefaultAppID,
			RevokeURL: st.ts.URL + "/oauth2/revoke/" + cyberarksim.DefaultAppID,
			ClientID:  cyberarksim.DefaultClientID, ClientSecret: cyberarksim.DefaultClientSecret,
			Scopes: []string{"scim"},
		}},
		Retry: RetryConfig{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func userBody(userName string, extra map[string]any) []byte {
	m := map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": "G", "familyName": "F"},
		"emails":   []map[string]any{{"value": "x@example.com", "primary": true}},
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// createUser POSTs a user (with a password, so both profiles accept it) and returns its id.
func createUser(t *testing.T, c *Client, userName string) string {
	t.Helper()
	resp, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users", Body: userBody(userName, map[string]any{"password": "Init-Pass-123!"})})
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(resp.Body, &obj))
	return obj["id"].(string)
}

func requireClass(t *testing.T, err error, want Class) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e, "%v", err)
	require.Equal(t, want, e.Class, "%v", err)
	return e
}

type conformanceTest struct {
	name         string
	cyberArkOnly bool
	fn           func(t *testing.T, profile Profile)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, profile := range []Profile{ProfileGeneric, ProfileCyberArk} {
		t.Run(string(profile), func(t *testing.T) {
			t.Parallel()
			for _, tc := range conformanceTests {
				t.Run(tc.name, func(t *testing.T) {
					if tc.cyberArkOnly && profile != ProfileCyberArk {
						t.Skip("CyberArk profile only")
					}
					t.Parallel()
					tc.fn(t, profile)
				})
			}
		})
	}
}

var conformanceTests = []conformanceTest{
	{name: "URLComposition", fn: testURLComposition},
	{name: "AuthModes", fn: testAuthModes},
	{name: "TokenCachePolicies", fn: testTokenCachePolicies},
	{name: "RevokeOnClose", fn: testRevokeOnClose},
	{name: "RefreshOnceOn401", fn: testRefreshOnceOn401},
	{name: "TLS", fn: testTLS},
	{name: "ClientCertificate", fn: testClientCertificate},
	{name: "Headers", fn: testHeaders},
	{name: "ResolveKeys", fn: testResolveKeys},
	{name: "ErrorClasses", fn: testErrorClasses},
	{name: "RetryAfterHonoured", fn: testRetryAfterHonoured},
	{name: "BreakerOn429Storm", fn: testBreakerOn429Storm},
	{name: "BreakerOnOutage", fn: testBreakerOnOutage},
	{name: "ServerErrorsRetried", fn: testServerErrorsRetried},
	{name: "AdaptiveConcurrency", fn: testAdaptiveConcurrency},
	{name: "ListPaging", fn: testListPaging},
	{name: "ByKeyReresolvesStaleID", fn: testByKeyReresolvesStaleID},
	{name: "Trace", fn: testTrace},
	{name: "UserPassword", fn: testUserPassword},
	{name: "CustomAttributes", fn: testCustomAttributes},
	{name: "SafesAndMembers", cyberArkOnly: true, fn: testSafesAndMembers},
	{name: "ScimBaseWithoutV2", cyberArkOnly: true, fn: testScimBaseWithoutV2},
	{name: "CheckHealthy", fn: testCheckHealthy},
	{name: "CheckFailures", fn: testCheckFailures},
}

func testURLComposition(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	cfg := st.config()
	cfg.BaseURI, cfg.EntityRoot, cfg.QueryAddress = st.ts.URL, "scim/v2", "scim"
	c := newClient(t, cfg)
	id := createUser(t, c, "compose@example.com")
	got, found, err := c.Resolve(t.Context(), "Users", []Match{{"userName", "compose@example.com"}})
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, id, got)
	_, err = c.Get(t.Context(), "Users", id)
	require.NoError(t, err)
	var paths []string
	for _, r := range st.seen.all() {
		if !strings.HasPrefix(r.Path, "/oauth2/") {
			paths = append(paths, r.Method+" "+r.Path)
		}
	}
	assert.Equal(t, []string{"POST /scim/v2/Users", "GET /scim/Users", "GET /scim/v2/Users/" + id}, paths,
		"entities at base+entityRoot, queries at base+queryAddress")
}

func testAuthModes(t *testing.T, profile Profile) {
	tests := []struct {
		name    string
		sim     func(*cyberarksim.Config)
		auth    func(st *suiteTarget) auth.Config
		wantErr bool
	}{
		{name: "none", sim: func(c *cyberarksim.Config) { f := false; c.RequireAuth = &f },
			auth: func(*suiteTarget) auth.Config { return auth.Config{Mode: auth.ModeNone} }},
		{name: "none refused", auth: func(*suiteTarget) auth.Config { return auth.Config{} }, wantErr: true},
		{name: "basic", sim: func(c *cyberarksim.Config) { c.BasicAuth = true },
			auth: func(*suiteTarget) auth.Config {
				return auth.Config{Mode: auth.ModeBasic, Basic: auth.BasicConfig{Username: cyberarksim.DefaultClientID, Password: cyberarksim.DefaultClientSecret}}
			}},
		{name: "basic wrong password", sim: func(c *cyberarksim.Config) { c.BasicAuth = true },
			auth: func(*suiteTarget) auth.Config {
				return auth.Config{Mode: auth.ModeBasic, Basic: auth.BasicConfig{Username: cyberarksim.DefaultClientID, Password: "wrong"}}
			}, wantErr: true},
		{name: "bearer", sim: func(c *cyberarksim.Config) { c.StaticToken = "static-token-1" },
			auth: func(*suiteTarget) auth.Config {
				return auth.Config{Mode: auth.ModeBearer, Bearer: auth.BearerConfig{Token: "static-token-1"}}
			}},
		{name: "oauth2 client_credentials", auth: func(st *suiteTarget) auth.Config { return st.config().Auth }},
		{name: "oauth2 password", auth: func(st *suiteTarget) auth.Config {
			a := st.config().Auth
			a.OAuth2.GrantType, a.OAuth2.Username, a.OAuth2.Password = auth.GrantPassword, cyberarksim.DefaultUsername, cyberarksim.DefaultPassword
			return a
		}},
		{name: "oauth2 with resource", auth: func(st *suiteTarget) auth.Config {
			a := st.config().Auth
			a.OAuth2.Resource = st.ts.URL + "/scim/v2"
			return a
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startTarget(t, profile, tt.sim)
			cfg := st.config()
			cfg.Auth = tt.auth(st)
			c := newClient(t, cfg)
			_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "Users", Query: map[string][]string{"count": {"1"}}, Search: true})
			if tt.wantErr {
				e := requireClass(t, err, ClassConfig)
				assert.Equal(t, http.StatusUnauthorized, e.Status)
				assert.Contains(t, e.Error(), "credentials rejected")
				return
			}
			require.NoError(t, err)
		})
	}
}

func testTokenCachePolicies(t *testing.T, profile Profile) {
	tests := []struct {
		name     string
		ttl      time.Duration
		cache    string
		seconds  int
		requests int
		pause    time.Duration
		want     int
	}{
		{name: "always", ttl: time.Hour, cache: auth.CacheAlways, requests: 10, want: 1},
		{name: "always renews before expiry", ttl: time.Second, cache: auth.CacheAlways, requests: 12, pause: 100 * time.Millisecond, want: 2},
		{name: "interval", ttl: time.Hour, cache: auth.CacheInterval, seconds: 1, requests: 12, pause: 100 * time.Millisecond, want: 2},
		{name: "never", ttl: time.Hour, cache: auth.CacheNever, requests: 10, want: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := startTarget(t, profile, func(c *cyberarksim.Config) { c.TokenTTL = tt.ttl })
			cfg := st.config()
			cfg.Auth.OAuth2.TokenCache, cfg.Auth.OAuth2.TokenCacheSeconds = tt.cache, tt.seconds
			c := newClient(t, cfg)
			for range tt.requests {
				_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
				require.NoError(t, err)
				time.Sleep(tt.pause)
			}
			s := st.sim.Stats()
			assert.Equal(t, tt.want, s.TokensIssued, "token requests")
			assert.Zero(t, s.Unauthorized, "no request went out with an expired token")
		})
	}
}

func testRevokeOnClose(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c, err := New(st.config())
	require.NoError(t, err)
	createUser(t, c, "revoke@example.com")
	require.NoError(t, c.Close(t.Context()))
	assert.Equal(t, 1, st.sim.Stats().TokensRevoked)
	assert.EqualValues(t, 1, c.Authorizer().Stats().TokensRevoked)
	_, err = c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	requireClass(t, err, ClassRetryable) // closed: the work is not done, let it come back
}

func testRefreshOnceOn401(t *testing.T, profile Profile) {
	st := startTarget(t, profile, func(c *cyberarksim.Config) {
		c.Faults.ExpireTokensAfter = 200 * time.Millisecond // the token dies long before expires_in says
	})
	c := newClient(t, st.config())
	createUser(t, c, "refresh@example.com")
	time.Sleep(300 * time.Millisecond)
	ctx, trace := WithTrace(t.Context())
	_, found, err := c.Resolve(ctx, "Users", []Match{{"userName", "refresh@example.com"}})
	require.NoError(t, err)
	assert.True(t, found)
	calls := trace.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, http.StatusUnauthorized, calls[0].Status)
	assert.Equal(t, http.StatusOK, calls[1].Status)
	s := st.sim.Stats()
	assert.Equal(t, 2, s.TokensIssued)
	assert.Equal(t, 1, s.Unauthorized)

	// With a target that rejects every token, the refresh happens once, then the call fails.
	st.sim.SetFaults(cyberarksim.Faults{ExpireTokensAfter: time.Nanosecond})
	ctx, trace = WithTrace(t.Context())
	_, _, err = c.Resolve(ctx, "Users", []Match{{"userName", "refresh@example.com"}})
	e := requireClass(t, err, ClassConfig)
	assert.Contains(t, e.Error(), "credentials rejected after a token refresh")
	assert.Len(t, trace.Calls(), 2)
}

// writeCertPEM writes the test server's certificate as a CA bundle.
func writeCertPEM(t *testing.T, ts *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600))
	return path
}

func tlsConfigFor(t *testing.T, sim *httptest.Server, profile Profile) Config {
	cfg := (&suiteTarget{profile: profile, ts: sim}).config()
	cfg.TLS.CAFile = writeCertPEM(t, sim)
	return cfg
}

func testTLS(t *testing.T, profile Profile) {
	generic := profile == ProfileGeneric
	t.Run("1.2 with custom CA", func(t *testing.T) {
		_, ts := simtest.MustStartTLS(t, cyberarksim.Config{Generic: generic}, tls.VersionTLS12, tls.VersionTLS13)
		c := newClient(t, tlsConfigFor(t, ts, profile))
		_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		require.NoError(t, err)
	})
	t.Run("server capped at 1.1 is refused", func(t *testing.T) {
		_, ts := simtest.MustStartTLS(t, cyberarksim.Config{Generic: generic}, tls.VersionTLS10, tls.VersionTLS11)
		c := newClient(t, tlsConfigFor(t, ts, profile))
		_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		e := requireClass(t, err, ClassConfig)
		assert.Contains(t, e.Error(), "the server offers no TLS version at or above the configured minimum")
	})
	t.Run("1.3 minimum against a 1.2 server", func(t *testing.T) {
		_, ts := simtest.MustStartTLS(t, cyberarksim.Config{Generic: generic}, tls.VersionTLS12, tls.VersionTLS12)
		cfg := tlsConfigFor(t, ts, profile)
		cfg.TLS.MinVersion = "1.3"
		_, err := newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		requireClass(t, err, ClassConfig)
	})
	t.Run("unknown CA", func(t *testing.T) {
		_, ts := simtest.MustStartTLS(t, cyberarksim.Config{Generic: generic}, tls.VersionTLS12, tls.VersionTLS13)
		cfg := tlsConfigFor(t, ts, profile)
		cfg.TLS.CAFile = ""
		_, err := newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		e := requireClass(t, err, ClassConfig)
		assert.Contains(t, e.Error(), "not trusted (signed by an unknown authority): set target.tls.caFile")
	})
	t.Run("config below 1.2 refused", func(t *testing.T) {
		cfg := (&suiteTarget{profile: profile, ts: &httptest.Server{URL: "https://127.0.0.1:1"}}).config()
		cfg.TLS.MinVersion = "1.1"
		_, err := New(cfg)
		require.ErrorContains(t, err, `target.tls.minVersion: "1.1" is refused`)
	})
}

func testClientCertificate(t *testing.T, profile Profile) {
	pki := authtest.MustPKI(t)
	sim, err := cyberarksim.New(cyberarksim.Config{Generic: profile == ProfileGeneric})
	require.NoError(t, err)
	ts := httptest.NewUnstartedServer(sim)
	ts.TLS = pki.ServerTLS(tls.VersionTLS12, tls.VersionTLS12, true)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	cfg := (&suiteTarget{profile: profile, ts: ts}).config()
	cfg.TLS = auth.TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}
	_, err = newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	require.NoError(t, err)

	cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
	_, err = newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	e := requireClass(t, err, ClassConfig)
	assert.Contains(t, e.Error(), "client certificate")
}

func testHeaders(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	createUser(t, c, "headers@example.com")
	var post seenRequest
	for _, r := range st.seen.all() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/Users") {
			post = r
		}
	}
	assert.Equal(t, "application/scim+json", post.Header.Get("Content-Type"))
	assert.Equal(t, "application/scim+json", post.Header.Get("Accept"))

	cfg := st.config()
	cfg.ContentType, cfg.Accept = "application/json", "application/json"
	createUser(t, newClient(t, cfg), "headers2@example.com")
	last := st.seen.all()[len(st.seen.all())-1]
	assert.Equal(t, "application/json", last.Header.Get("Content-Type"))
	assert.Equal(t, "application/json", last.Header.Get("Accept"))

	cfg.Accept = "text/html"
	_, err := newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "Users", Search: true})
	e := requireClass(t, err, ClassPermanent)
	assert.Equal(t, http.StatusNotAcceptable, e.Status)
}

func testResolveKeys(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	names := []string{`O"Brien \ Co`, `x" or userName pr or "`, `a) and (b`, "Łódź 東京", "tab\there", "plain@example.com"}
	ids := map[string]string{}
	for _, n := range names {
		ids[n] = createUser(t, c, n)
	}
	for _, n := range names {
		id, found, err := c.Resolve(t.Context(), "Users", []Match{{"userName", n}})
		require.NoError(t, err, n)
		require.True(t, found, n)
		assert.Equal(t, ids[n], id, n)
	}
	// Several keys joined with and.
	_, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users",
		Body: userBody("multi@example.com", map[string]any{"externalId": "E-1", "password": "Init-Pass-123!"})})
	require.NoError(t, err)
	id, found, err := c.Resolve(t.Context(), "Users", []Match{{"userName", "multi@example.com"}, {"externalId", "E-1"}})
	require.NoError(t, err)
	assert.True(t, found)
	assert.NotEmpty(t, id)
	_, found, err = c.Resolve(t.Context(), "Users", []Match{{"userName", "multi@example.com"}, {"externalId", "E-2"}})
	require.NoError(t, err)
	assert.False(t, found, "and, not or")
	_, found, err = c.Resolve(t.Context(), "Users", []Match{{"userName", "nobody@example.com"}})
	require.NoError(t, err)
	assert.False(t, found)
	// Ambiguous keys are refused.
	for _, n := range []string{"amb1@example.com", "amb2@example.com"} {
		_, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users",
			Body: userBody(n, map[string]any{"title": "Twin", "password": "Init-Pass-123!"})})
		require.NoError(t, err)
	}
	_, _, err = c.Resolve(t.Context(), "Users", []Match{{"title", "Twin"}})
	e := requireClass(t, err, ClassPermanent)
	assert.Contains(t, e.Error(), "ambiguous: 2 resources match")
	// A bad attribute name is a config error, never sent.
	_, _, err = c.Resolve(t.Context(), "Users", []Match{{`userName eq "x" or userName`, "y"}})
	requireClass(t, err, ClassConfig)
}

func testErrorClasses(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	createUser(t, c, "dup@example.com")
	_, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users", Body: userBody("dup@example.com", map[string]any{"password": "Init-Pass-123!"})})
	e := requireClass(t, err, ClassConflict)
	assert.Equal(t, http.StatusConflict, e.Status)
	assert.Equal(t, "uniqueness", e.ScimType)

	_, err = c.Get(t.Context(), "Users", "does-not-exist")
	e = requireClass(t, err, ClassNotFound)
	assert.Equal(t, http.StatusNotFound, e.Status)

	_, err = c.Do(t.Context(), Request{Method: http.MethodGet, Path: "Users", Search: true, Query: map[string][]string{"filter": {"userName eq"}}})
	e = requireClass(t, err, ClassPermanent)
	assert.Equal(t, "invalidFilter", e.ScimType)

	_, err = c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users", Body: []byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`)})
	e = requireClass(t, err, ClassPermanent)
	assert.Equal(t, http.StatusBadRequest, e.Status)

	_, err = c.Do(t.Context(), Request{Method: http.MethodGet, Path: ResourcePath("Users", "..")})
	requireClass(t, err, ClassPermanent)

	// Transport failure: nothing listens.
	dead := st.config()
	dead.BaseURI, dead.Auth = "http://127.0.0.1:1/scim/v2", auth.Config{}
	_, err = newClient(t, dead).Do(t.Context(), Request{Method: http.MethodGet, Path: "Users"})
	e = requireClass(t, err, ClassRetryable)
	assert.Contains(t, e.Error(), "connection refused")
}

func testRetryAfterHonoured(t *testing.T, profile Profile) {
	st := startTarget(t, profile, func(c *cyberarksim.Config) {
		c.Faults = cyberarksim.Faults{RateLimit429: 1, RetryAfter: time.Second}
	})
	cfg := st.config()
	cfg.Retry.Attempts = 2
	c := newClient(t, cfg)
	start := time.Now()
	_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	e := requireClass(t, err, ClassRetryable)
	assert.Equal(t, http.StatusTooManyRequests, e.Status)
	assert.Equal(t, time.Second, e.RetryAfter)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "waited Retry-After before the second attempt")

	// A Retry-After longer than retry.maxRetryAfter is handed back at once.
	cfg.Retry.MaxRetryAfter = 500 * time.Millisecond
	start = time.Now()
	_, err = newClient(t, cfg).Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	e = requireClass(t, err, ClassRetryable)
	assert.Equal(t, time.Second, e.RetryAfter)
	assert.Less(t, time.Since(start), 500*time.Millisecond)
}

// stateLog records breaker transitions.
type stateLog struct {
	mu   sync.Mutex
	seen []string
}

func (s *stateLog) record(from, to string) {
	s.mu.Lock()
	s.seen = append(s.seen, from+"->"+to)
	s.mu.Unlock()
}

func (s *stateLog) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func breakerConfig(st *suiteTarget, log *stateLog) Config {
	cfg := st.config()
	cfg.Retry.Attempts = 1
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 5, OpenTimeout: 300 * time.Millisecond, OnStateChange: log.record}
	return cfg
}

func testBreakerOn429Storm(t *testing.T, profile Profile) {
	st := startTarget(t, profile, func(c *cyberarksim.Config) { c.Faults.RateLimit429 = 1 })
	var states stateLog
	c := newClient(t, breakerConfig(st, &states))
	// The limiter sheds first (every 429 multiplies the limit by 0.9); once it is down to its
	// minimum, 429s count and five in a row open the breaker.
	for i := 0; c.BreakerState() == "closed"; i++ {
		require.Less(t, i, 50, "the breaker never opened")
		_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		requireClass(t, err, ClassRetryable)
		if c.Limit() > 1 {
			assert.Equal(t, "closed", c.BreakerState(), "429s do not count while the limiter can shed")
		}
	}
	assert.Equal(t, "open", c.BreakerState())
	assert.Equal(t, 1, c.Limit())
	sent := st.sim.Stats().Rejected429
	_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	e := requireClass(t, err, ClassRetryable)
	assert.True(t, e.BreakerOpen)
	assert.Positive(t, e.RetryAfter)
	assert.Equal(t, sent, st.sim.Stats().Rejected429, "nothing sent while open")

	st.sim.SetFaults(cyberarksim.Faults{})
	require.Eventually(t, func() bool { return c.BreakerState() == "half-open" }, 2*time.Second, 10*time.Millisecond)
	_, err = c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	require.NoError(t, err, "the probe succeeds")
	assert.Equal(t, "closed", c.BreakerState())
	assert.Equal(t, []string{"closed->open", "open->half-open", "half-open->closed"}, states.all())
}

func testBreakerOnOutage(t *testing.T, profile Profile) {
	st := startTarget(t, profile, func(c *cyberarksim.Config) {
		c.Faults.OutageFrom, c.Faults.OutageUntil = time.Now().Add(-time.Second), time.Now().Add(time.Hour)
	})
	var states stateLog
	c := newClient(t, breakerConfig(st, &states))
	for i := 0; c.BreakerState() == "closed"; i++ {
		require.Less(t, i, 10)
		_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
		e := requireClass(t, err, ClassRetryable)
		assert.Contains(t, e.Error(), "temporarily_unavailable", "the token endpoint is down too")
	}
	// Still down when the breaker half-opens: the probe fails and it opens again.
	require.Eventually(t, func() bool { return c.BreakerState() == "half-open" }, 2*time.Second, 10*time.Millisecond)
	_, err := c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	requireClass(t, err, ClassRetryable)
	assert.Equal(t, "open", c.BreakerState())
	// The outage ends.
	st.sim.SetFaults(cyberarksim.Faults{})
	require.Eventually(t, func() bool { return c.BreakerState() == "half-open" }, 2*time.Second, 10*time.Millisecond)
	_, err = c.Do(t.Context(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"})
	require.NoError(t, err)
	assert.Equal(t, []string{"closed->open", "open->half-open", "half-open->open", "open->half-open", "half-open->closed"}, states.all())
}

func testServerErrorsRetried(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	cfg := st.config()
	cfg.Retry.Attempts = 8
	// A 30% error rate is a sick target, not a dead one: keep the breaker out of this test.
	cfg.Breaker = BreakerConfig{ConsecutiveFailures: 1000, MinRequests: 1000}
	c := newClient(t, cfg)
	createUser(t, c, "fivexx@example.com")
	st.sim.SetFaults(cyberarksim.Faults{Error5xxRate: 0.3})
	for range 30 {
		_, found, err := c.Resolve(t.Context(), "Users", []Match{{"userName", "fivexx@example.com"}})
		require.NoError(t, err, "GETs are retried through 5xx")
		require.True(t, found)
	}
	assert.Positive(t, st.sim.Stats().Injected5xx)

	// A POST answered 502 may have been applied (phantom write): it is not resent in-call.
	st.sim.SetFaults(cyberarksim.Faults{PhantomWriteRate: 1})
	ctx, trace := WithTrace(t.Context())
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "Users", Body: userBody("phantom@example.com", map[string]any{"password": "Init-Pass-123!"})})
	e := requireClass(t, err, ClassRetryable)
	assert.Equal(t, http.StatusBadGateway, e.Status)
	assert.Len(t, trace.Calls(), 1, "POST not resent after an ambiguous failure")
	st.sim.SetFaults(cyberarksim.Faults{})
	_, found, err := c.Resolve(t.Context(), "Users", []Match{{"userName", "phantom@example.com"}})
	require.NoError(t, err)
	assert.True(t, found, "resolve before create finds the phantom write")
}

func testAdaptiveConcurrency(t *testing.T, profile Profile) {
	st := startTarget(t, profile, func(c *cyberarksim.Config) {
		c.Faults = cyberarksim.Faults{MaxConcurrent: 5, Latency: 20 * time.Millisecond}
	})
	cfg := st.config()
	cfg.Retry = RetryConfig{Attempts: 10, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	c := newClient(t, cfg)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 40 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "ServiceProviderConfig"}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	s := st.sim.Stats()
	total := 0
	for k, n := range s.Requests {
		if !strings.Contains(k, "oauth2") {
			total += n
		}
	}
	share := float64(s.RejectedConcurrency) / float64(total)
	t.Logf("requests %d, 429 %d (%.1f%%), limit now %d", total, s.RejectedConcurrency, 100*share, c.Limit())
	assert.Zero(t, failed.Load())
	assert.Less(t, share, 0.05, "the limiter converges instead of storming")
	assert.LessOrEqual(t, c.Limit(), 7)
	assert.Equal(t, "closed", c.BreakerState())
}

func testListPaging(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	for i := range 25 {
		require.NoError(t, st.sim.Seed("Users", map[string]any{"userName": fmt.Sprintf("page%02d@example.com", i)}))
	}
	c := newClient(t, st.config())
	seen := map[string]bool{}
	for start, more := 1, true; more; {
		page, err := c.List(t.Context(), "Users", start, 10)
		require.NoError(t, err)
		assert.Equal(t, 25, page.TotalResults)
		for _, r := range page.Resources {
			seen[r["id"].(string)] = true
		}
		start, more = page.Next()
	}
	assert.Len(t, seen, 25)
	_, err := c.List(t.Context(), "Users", 1, 5000)
	require.NoError(t, err)
	last := st.seen.all()[len(st.seen.all())-1]
	if profile == ProfileCyberArk {
		assert.Contains(t, last.RawQuery, "count=1000", "CyberArk pages are at most 1000")
	} else {
		assert.Contains(t, last.RawQuery, "count=5000")
	}
}

// mapCache is an in-memory IDCache.
type mapCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *mapCache) Get(_ context.Context, resource, key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.m[resource+"|"+key]
	return id, ok
}

func (m *mapCache) Put(_ context.Context, resource, key, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[resource+"|"+key] = id
}

func (m *mapCache) Delete(_ context.Context, resource, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, resource+"|"+key)
}

func testByKeyReresolvesStaleID(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	cfg := st.config()
	cache := &mapCache{m: map[string]string{}}
	cfg.IDCache = cache
	c := newClient(t, cfg)
	key := []Match{{"userName", "stale@example.com"}}
	first := createUser(t, c, "stale@example.com")
	id, found, err := c.Resolve(t.Context(), "Users", key)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, first, id)
	before := len(st.seen.all())
	_, _, err = c.Resolve(t.Context(), "Users", key)
	require.NoError(t, err)
	assert.Len(t, st.seen.all(), before, "a cached key needs no lookup")

	// Someone deletes and recreates the user: the cached id is stale.
	_, err = c.Do(t.Context(), Request{Method: http.MethodDelete, Path: ResourcePath("Users", first)})
	require.NoError(t, err)
	second := createUser(t, c, "stale@example.com")
	var used []string
	got, err := c.ByKey(t.Context(), "Users", key, func(ctx context.Context, id string) error {
		used = append(used, id)
		_, err := c.Get(ctx, "Users", id)
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, second, got)
	assert.Equal(t, []string{first, second}, used, "404 → re-resolve once → retry")
	cached, _ := cache.Get(t.Context(), "Users", CacheKey(key))
	assert.Equal(t, second, cached)

	// Gone for good: NotFound, and the cache forgets it.
	_, err = c.Do(t.Context(), Request{Method: http.MethodDelete, Path: ResourcePath("Users", second)})
	require.NoError(t, err)
	_, err = c.ByKey(t.Context(), "Users", key, func(ctx context.Context, id string) error {
		_, err := c.Get(ctx, "Users", id)
		return err
	})
	requireClass(t, err, ClassNotFound)
	_, ok := cache.Get(t.Context(), "Users", CacheKey(key))
	assert.False(t, ok)
}

func testTrace(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	ctx, trace := WithTrace(t.Context())
	id := createUser(t, c, "trace@example.com")
	_, err := c.Get(ctx, "Users", id)
	require.NoError(t, err)
	_, err = c.Get(ctx, "Users", "missing")
	requireClass(t, err, ClassNotFound)
	calls := trace.Calls()
	require.Len(t, calls, 2)
	assert.Equal(t, Call{Method: "GET", Path: "Users/" + id, Status: 200, Duration: calls[0].Duration, Attempt: 1}, calls[0])
	assert.Equal(t, 404, calls[1].Status)
	assert.NotEmpty(t, calls[1].Err)
	assert.Positive(t, calls[0].Duration)
}

func testUserPassword(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	var logBuf strings.Builder
	cfg := st.config()
	cfg.Logger = testLogger(&logBuf)
	c := newClient(t, cfg)
	ctx, trace := WithTrace(t.Context())
	resp, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "Users", Body: userBody("nopw@example.com", nil)})
	if profile == ProfileGeneric {
		require.NoError(t, err, "a generic server does not require a password")
		var obj map[string]any
		require.NoError(t, json.Unmarshal(resp.Body, &obj))
		_, has := st.sim.UserPassword(obj["id"].(string))
		assert.False(t, has, "the generic profile generates nothing")
		return
	}
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(resp.Body, &obj))
	pw, has := st.sim.UserPassword(obj["id"].(string))
	require.True(t, has)
	assert.GreaterOrEqual(t, len(pw), 20)
	assert.NotContains(t, logBuf.String(), pw)
	assert.NotContains(t, fmt.Sprint(trace.Calls()), pw)
	assert.NotContains(t, string(resp.Body), pw)
}

func testCustomAttributes(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	body := userBody("custom@example.com", map[string]any{"password": "Init-Pass-123!", CustomSchema: map[string]any{"costCenter": "CC-7"}})
	resp, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: "Users", Body: body})
	if profile == ProfileGeneric {
		// The generic profile sends the body as it is; what the target does with an unlisted
		// extension is its business.
		if err == nil {
			assert.NotEmpty(t, resp.Body)
		}
		return
	}
	require.NoError(t, err)
	var obj map[string]any
	require.NoError(t, json.Unmarshal(resp.Body, &obj))
	assert.Contains(t, obj["schemas"], CustomSchema)
	assert.Equal(t, "CC-7", obj[CustomSchema].(map[string]any)["costCenter"])
}

func testSafesAndMembers(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	c := newClient(t, st.config())
	createUser(t, c, "jdoe")
	safe := "Finance Safe 1"
	_, err := c.Do(t.Context(), Request{Method: http.MethodPost, Path: ResourceContainers, Body: mustJSON(t, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:pam:1.0:Container"}, "name": safe, "displayName": "Finance",
	})})
	require.NoError(t, err)
	id, found, err := c.Resolve(t.Context(), ResourceContainers, []Match{{"name", safe}})
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, safe, id, "a safe's id is its name")
	member := map[string]any{
		"schemas":   []string{"urn:ietf:params:scim:schemas:pam:1.0:ContainerPermission"},
		"container": map[string]any{"value": safe}, "user": map[string]any{"value": "jdoe"},
		"rights": []string{"ListAccounts", "UseAccounts"},
	}
	_, err = c.Do(t.Context(), Request{Method: http.MethodPost, Path: ResourceContainerPermissions, Body: mustJSON(t, member)})
	require.NoError(t, err)
	permID := ContainerPermissionID(safe, "jdoe")
	got, err := c.Get(t.Context(), ResourceContainerPermissions, permID)
	require.NoError(t, err)
	assert.Equal(t, permID, got["id"])
	// PUT with the full rights list replaces them.
	member["rights"] = []string{"ListAccounts", "RetrieveAccounts", "ViewSafeMembers"}
	member["id"] = permID
	_, err = c.Do(t.Context(), Request{Method: http.MethodPut, Path: ResourcePath(ResourceContainerPermissions, permID), Body: mustJSON(t, member)})
	require.NoError(t, err)
	got, err = c.Get(t.Context(), ResourceContainerPermissions, permID)
	require.NoError(t, err)
	assert.ElementsMatch(t, []any{"ListAccounts", "RetrieveAccounts", "ViewSafeMembers"}, got["rights"])
	// PATCH is refused before it is sent.
	n := len(st.seen.all())
	_, err = c.Do(t.Context(), Request{Method: http.MethodPatch, Path: ResourcePath(ResourceContainerPermissions, permID), Body: []byte(`{}`)})
	requireClass(t, err, ClassConfig)
	assert.Len(t, st.seen.all(), n)
	// Links in answers are never followed: every request went to the configured base.
	for _, r := range st.seen.all() {
		assert.True(t, strings.HasPrefix(r.Path, "/scim/v2/") || strings.HasPrefix(r.Path, "/oauth2/"), r.Path)
	}
	// PrivilegedData in the safe.
	_, err = c.Do(t.Context(), Request{Method: http.MethodPost, Path: ResourcePrivilegedData, Body: mustJSON(t, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:pam:1.0:PrivilegedData"}, "name": "db-admin", "type": "password",
		"container": map[string]any{"value": safe},
	})})
	require.NoError(t, err)
	_, found, err = c.Resolve(t.Context(), ResourcePrivilegedData, []Match{{"name", "db-admin"}})
	require.NoError(t, err)
	assert.True(t, found)
}

func testScimBaseWithoutV2(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	cfg := st.config()
	cfg.BaseURI = st.ts.URL + "/scim"
	c := newClient(t, cfg)
	id := createUser(t, c, "short-base@example.com")
	_, err := c.Get(t.Context(), "Users", id)
	require.NoError(t, err)
	assert.Equal(t, 1, st.sim.Stats().Requests["GET /scim/Users/{id}"])
}

func testCheckHealthy(t *testing.T, profile Profile) {
	st := startTarget(t, profile, nil)
	cfg := st.config()
	cfg.TestQuery = `Users?filter=userName eq "nobody"&count=1`
	r := newClient(t, cfg).Check(t.Context())
	var out strings.Builder
	r.Render(&out)
	t.Log("\n" + out.String())
	require.True(t, r.OK(), out.String())
	require.NoError(t, r.Err())
	require.Len(t, r.Steps, 3)
	assert.Equal(t, []string{"token", "serviceProviderConfig", "testQuery"}, []string{r.Steps[0].Name, r.Steps[1].Name, r.Steps[2].Name})
	assert.Equal(t, true, r.Capabilities["patch"])
	assert.Equal(t, true, r.Capabilities["filter"])
	assert.Equal(t, false, r.Capabilities["bulk"])
	assert.Contains(t, out.String(), "result     OK: all 3 steps passed")
	assert.Contains(t, out.String(), `expires in 1h0m0s, scope "scim"`)
	assert.Contains(t, out.String(), "totalResults 0")
}

func testCheckFailures(t *testing.T, profile Profile) {
	generic := profile == ProfileGeneric
	tests := []struct {
		name   string
		config func(t *testing.T) Config
		step   string
		want   string
	}{
		{name: "wrong secret", step: "token", config: func(t *testing.T) Config {
			cfg := startTarget(t, profile, nil).config()
			cfg.Auth.OAuth2.ClientSecret = "wrong-secret"
			return cfg
		}, want: "HTTP 401 Unauthorized: invalid_client (client authentication failed); the client was not authenticated: check auth.oauth2.clientID and auth.oauth2.clientSecret"},
		{name: "wrong token URL", step: "token", config: func(t *testing.T) Config {
			cfg := startTarget(t, profile, nil).config()
			cfg.Auth.OAuth2.TokenURL = strings.Replace(cfg.Auth.OAuth2.TokenURL, "/token/", "/tokens/", 1)
			return cfg
		}, want: "HTTP 404 Not Found; no token endpoint at this address: check auth.oauth2.tokenURL"},
		{name: "unreachable host", step: "token", config: func(t *testing.T) Config {
			cfg := startTarget(t, profile, nil).config()
			cfg.BaseURI = "http://127.0.0.1:1/scim/v2"
			cfg.Auth.OAuth2.TokenURL = "http://127.0.0.1:1/oauth2/token/scimflow"
			return cfg
		}, want: "token request to http://127.0.0.1:1/oauth2/token/scimflow: cannot connect to 127.0.0.1:1: connection refused"},
		{name: "TLS too old", step: "token", config: func(t *testing.T) Config {
			_, ts := simtest.MustStartTLS(t, cyberarksim.Config{Generic: generic}, tls.VersionTLS10, tls.VersionTLS11)
			return tlsConfigFor(t, ts, profile)
		}, want: "the server offers no TLS version at or above the configured minimum (target.tls.minVersion, 1.2 unless set to 1.3); versions below 1.2 are refused"},
		{name: "test query rejected", step: "testQuery", config: func(t *testing.T) Config {
			cfg := startTarget(t, profile, nil).config()
			cfg.TestQuery = "Users?filter=userName eq"
			return cfg
		}, want: `test query "Users?filter=userName eq" rejected: HTTP 400 invalidFilter`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newClient(t, tt.config(t)).Check(t.Context())
			var out strings.Builder
			r.Render(&out)
			t.Log("\n" + out.String())
			require.False(t, r.OK())
			failed := r.Failed()
			require.NotEmpty(t, failed)
			assert.Equal(t, tt.step, failed[0].Name)
			assert.Contains(t, failed[0].Detail, tt.want)
			assert.Contains(t, out.String(), "FAILED")
			assert.ErrorContains(t, r.Err(), tt.want)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
