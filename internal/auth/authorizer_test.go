package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oauthServer is a small RFC 6749 / RFC 7009 server for the Authorizer's tests.
type oauthServer struct {
	*httptest.Server
	ttl       int    // expires_in; 0 omits it
	tokenType string // default "Bearer"
	fail      atomic.Int32
	issued    atomic.Int64
	revoked   atomic.Int64

	mu       sync.Mutex
	forms    []url.Values
	revokes  []url.Values
	basicIDs []string
}

const (
	testClientID     = "client-1"
	testClientSecret = "s3cr3t&+=/"
)

func newOAuthServer(t *testing.T, ttl int) *oauthServer {
	t.Helper()
	s := &oauthServer{ttl: ttl, tokenType: "Bearer"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /revoke", s.revoke)
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// client authenticates the client per RFC 6749 §2.3.1 (form-encoded in Basic, or in the body).
func (s *oauthServer) client(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ := url.QueryUnescape(u)
		secret, _ := url.QueryUnescape(p)
		s.mu.Lock()
		s.basicIDs = append(s.basicIDs, id)
		s.mu.Unlock()
		return id == testClientID && secret == testClientSecret
	}
	if r.PostForm.Get("client_id") != testClientID {
		return false
	}
	return r.PostForm.Get("client_secret") == testClientSecret || r.PostForm.Get("grant_type") == GrantPassword
}

func oauthError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": code + " for test"})
}

func (s *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, 400, "invalid_request")
		return
	}
	s.mu.Lock()
	s.forms = append(s.forms, r.PostForm)
	s.mu.Unlock()
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		oauthError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	if !s.client(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") == GrantPassword && r.PostForm.Get("password") != "owner-pw" {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	n := s.issued.Add(1)
	body := map[string]any{"access_token": fmt.Sprintf("tok-%d", n), "token_type": s.tokenType, "scope": r.PostForm.Get("scope")}
	if s.ttl > 0 {
		body["expires_in"] = s.ttl
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (s *oauthServer) revoke(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !s.client(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	s.mu.Lock()
	s.revokes = append(s.revokes, r.PostForm)
	s.mu.Unlock()
	s.revoked.Add(1)
}

func (s *oauthServer) lastForm() url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forms[len(s.forms)-1]
}

func (s *oauthServer) config(mutate func(*OAuth2Config)) Config {
	c := Config{Mode: ModeOAuth2, OAuth2: OAuth2Config{
		TokenURL: s.URL + "/token", RevokeURL: s.URL + "/revoke", ClientID: testClientID, ClientSecret: testClientSecret,
	}}
	if mutate != nil {
		mutate(&c.OAuth2)
	}
	return c
}

func newAuthorizer(t *testing.T, cfg Config, log zerolog.Logger) *Authorizer {
	t.Helper()
	a, err := New(cfg, nil, log)
	require.NoError(t, err)
	return a
}

// authorize runs Authorize on a fresh request and returns its Authorization header.
func authorize(t *testing.T, a *Authorizer) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "https://target.example/scim/Users", nil)
	require.NoError(t, a.Authorize(t.Context(), req))
	return req.Header.Get("Authorization")
}

func TestAuthorizerStaticModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  Config
		want string
	}{
		{cfg: Config{}, want: ""},
		{cfg: Config{Mode: ModeBasic, Basic: BasicConfig{Username: "svc", Password: "pw:x"}}, want: "Basic c3ZjOnB3Ong="},
		{cfg: Config{Mode: ModeBearer, Bearer: BearerConfig{Token: "static-token"}}, want: "Bearer static-token"},
	}
	for _, tt := range tests {
		a := newAuthorizer(t, tt.cfg, zerolog.Nop())
		assert.Equal(t, tt.want, authorize(t, a), tt.cfg.Mode)
		require.NoError(t, a.Token(t.Context()), "Token is a no-op without oauth2")
		require.NoError(t, a.Close(t.Context()))
	}
}

func TestAuthorizerNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := New(Config{Mode: ModeOAuth2}, nil, zerolog.Nop())
	require.ErrorContains(t, err, "auth.oauth2.tokenURL: required")
}

func TestAuthorizerClientCredentialsRequest(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(func(o *OAuth2Config) {
		o.Scopes = []string{"scim", "admin"}
		o.Resource = "https://target.example/scim"
	}), zerolog.Nop())
	assert.Equal(t, "Bearer tok-1", authorize(t, a))
	f := srv.lastForm()
	assert.Equal(t, GrantClientCredentials, f.Get("grant_type"))
	assert.Equal(t, "scim admin", f.Get("scope"))
	assert.Equal(t, "https://target.example/scim", f.Get("resource"))
	assert.Empty(t, f.Get("client_secret"), "header client auth keeps the secret out of the body")
	assert.Equal(t, []string{testClientID}, srv.basicIDs)
}

func TestAuthorizerClientAuthInBody(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.ClientAuth = ClientAuthBody }), zerolog.Nop())
	assert.Equal(t, "Bearer tok-1", authorize(t, a))
	assert.Equal(t, testClientSecret, srv.lastForm().Get("client_secret"))
	assert.Empty(t, srv.basicIDs)
}

func TestAuthorizerPasswordGrant(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(func(o *OAuth2Config) {
		o.GrantType, o.Username, o.Password = GrantPassword, "owner", "owner-pw"
		o.Resource = "urn:example:scim"
	}), zerolog.Nop())
	assert.Equal(t, "Bearer tok-1", authorize(t, a))
	f := srv.lastForm()
	assert.Equal(t, GrantPassword, f.Get("grant_type"))
	assert.Equal(t, "owner", f.Get("username"))
	assert.Equal(t, "owner-pw", f.Get("password"))
	assert.Equal(t, "urn:example:scim", f.Get("resource"))

	// A public client (no secret) identifies itself in the body.
	pub := newAuthorizer(t, srv.config(func(o *OAuth2Config) {
		o.GrantType, o.Username, o.Password, o.ClientSecret = GrantPassword, "owner", "owner-pw", ""
	}), zerolog.Nop())
	assert.Equal(t, "Bearer tok-2", authorize(t, pub))
	assert.Equal(t, testClientID, srv.lastForm().Get("client_id"))

	wrong := newAuthorizer(t, srv.config(func(o *OAuth2Config) {
		o.GrantType, o.Username, o.Password = GrantPassword, "owner", "wrong"
	}), zerolog.Nop())
	err := wrong.Token(t.Context())
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_grant", te.Code)
	assert.Contains(t, err.Error(), "check auth.oauth2.username and auth.oauth2.password")
	assert.False(t, te.Retryable())
}

func TestAuthorizerCachePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		ttl        int
		cache      string
		seconds    int
		requests   int
		pause      time.Duration // between requests
		wantTokens int64
	}{
		{name: "always reuses one token", ttl: 3600, cache: CacheAlways, requests: 20, wantTokens: 1},
		{name: "always without expires_in", ttl: 0, cache: CacheAlways, requests: 20, wantTokens: 1},
		// A 1s token is renewed a tenth of its lifetime early: 12 requests 100ms apart need 2.
		{name: "always renews before expiry", ttl: 1, cache: CacheAlways, requests: 12, pause: 100 * time.Millisecond, wantTokens: 2},
		{name: "interval shorter than expiry", ttl: 3600, cache: CacheInterval, seconds: 1, requests: 12, pause: 100 * time.Millisecond, wantTokens: 2},
		{name: "interval never past expiry", ttl: 1, cache: CacheInterval, seconds: 3600, requests: 12, pause: 100 * time.Millisecond, wantTokens: 2},
		{name: "never fetches per request", ttl: 3600, cache: CacheNever, requests: 7, wantTokens: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newOAuthServer(t, tt.ttl)
			a := newAuthorizer(t, srv.config(func(o *OAuth2Config) {
				o.TokenCache, o.TokenCacheSeconds = tt.cache, tt.seconds
			}), zerolog.Nop())
			seen := map[string]bool{}
			for range tt.requests {
				seen[authorize(t, a)] = true
				time.Sleep(tt.pause)
			}
			assert.Equal(t, tt.wantTokens, srv.issued.Load(), "token requests")
			assert.Equal(t, tt.wantTokens, a.Stats().TokensFetched)
			assert.Len(t, seen, int(tt.wantTokens), "distinct tokens sent")
		})
	}
}

func TestAuthorizerConcurrentRequestsShareOneFetch(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodGet, "https://target.example/", nil)
			assert.NoError(t, a.Authorize(context.Background(), req))
			assert.Equal(t, "Bearer tok-1", req.Header.Get("Authorization"))
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, srv.issued.Load())
}

func TestAuthorizerInvalidate(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	first := authorize(t, a)
	a.Invalidate("tok-unknown") // a token that is not cached changes nothing
	assert.Equal(t, first, authorize(t, a))
	a.Invalidate(first) // the whole header value is accepted
	a.Invalidate(strings.TrimPrefix(first, "Bearer "))
	assert.Equal(t, "Bearer tok-2", authorize(t, a))
	assert.EqualValues(t, 2, srv.issued.Load())
	assert.EqualValues(t, 1, a.Stats().Invalidations)
}

func TestAuthorizerCloseRevokes(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	a := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	authorize(t, a)
	require.NoError(t, a.Close(t.Context()))
	require.NoError(t, a.Close(t.Context()), "Close is idempotent")
	require.EqualValues(t, 1, srv.revoked.Load())
	assert.Equal(t, "tok-1", srv.revokes[0].Get("token"))
	assert.Equal(t, "access_token", srv.revokes[0].Get("token_type_hint"))
	assert.EqualValues(t, 1, a.Stats().TokensRevoked)
	req := httptest.NewRequest(http.MethodGet, "https://target.example/", nil)
	assert.ErrorIs(t, a.Authorize(t.Context(), req), ErrClosed)

	// Nothing to revoke: no token fetched, or no revocation endpoint.
	idle := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	require.NoError(t, idle.Close(t.Context()))
	noURL := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.RevokeURL = "" }), zerolog.Nop())
	authorize(t, noURL)
	require.NoError(t, noURL.Close(t.Context()))
	assert.EqualValues(t, 1, srv.revoked.Load())

	// A failing revocation is reported.
	bad := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.RevokeURL = srv.URL + "/nowhere" }), zerolog.Nop())
	authorize(t, bad)
	err := bad.Close(t.Context())
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "revoke", te.Op)
	assert.Contains(t, err.Error(), "check auth.oauth2.revokeURL")
}

func TestAuthorizerTokenErrors(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	tests := []struct {
		name      string
		mutate    func(*OAuth2Config)
		want      []string
		retryable bool
	}{
		{name: "wrong secret", mutate: func(o *OAuth2Config) { o.ClientSecret = "nope" },
			want: []string{"HTTP 401 Unauthorized: invalid_client", "check auth.oauth2.clientID and auth.oauth2.clientSecret"}},
		{name: "wrong token url", mutate: func(o *OAuth2Config) { o.TokenURL = srv.URL + "/oauth2/tokn" },
			want: []string{"HTTP 404 Not Found", "no token endpoint at this address: check auth.oauth2.tokenURL"}},
		{name: "unreachable host", mutate: func(o *OAuth2Config) { o.TokenURL = "http://127.0.0.1:1/token" },
			want: []string{"token request to http://127.0.0.1:1/token", "connection refused"}, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthorizer(t, srv.config(tt.mutate), zerolog.Nop())
			err := a.Token(t.Context())
			var te *TokenError
			require.ErrorAs(t, err, &te)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), testClientSecret)
			assert.Equal(t, tt.retryable, te.Retryable())
			assert.EqualValues(t, 1, a.Stats().FetchFailures)
		})
	}
}

func TestAuthorizerServerErrorIsRetryableAndRecovers(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	srv.fail.Store(1)
	a := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	err := a.Token(t.Context())
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Retryable())
	assert.Equal(t, "Bearer tok-1", authorize(t, a), "a failed fetch is not cached")
}

func TestAuthorizerRefusesNonBearerTokens(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	srv.tokenType = "DPoP"
	a := newAuthorizer(t, srv.config(nil), zerolog.Nop())
	err := a.Token(t.Context())
	require.ErrorContains(t, err, `token_type "DPoP" is not supported`)
}

func TestAuthorizerFetchReportsToken(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 600)
	a := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.Scopes = []string{"scim"} }), zerolog.Nop())
	info, err := a.Fetch(t.Context())
	require.NoError(t, err)
	assert.Equal(t, TokenInfo{Type: "Bearer", ExpiresIn: 600 * time.Second, Scope: "scim"}, info)
	assert.Equal(t, "Bearer tok-1", authorize(t, a), "the fetched token is cached")
	assert.WithinDuration(t, time.Now().Add(600*time.Second), a.Stats().LastExpiry, 5*time.Second)
}

func TestAuthorizerWaiterHonoursItsContext(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"late","token_type":"Bearer","expires_in":60}`))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	a := newAuthorizer(t, Config{Mode: ModeOAuth2, OAuth2: OAuth2Config{TokenURL: srv.URL, ClientID: "c", ClientSecret: "s"}}, zerolog.Nop())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := a.Token(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestAuthorizerNeverLogsSecrets(t *testing.T) {
	t.Parallel()
	srv := newOAuthServer(t, 3600)
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.TraceLevel)
	a := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.RevokeURL = srv.URL + "/nowhere" }), log)
	authorize(t, a)
	_ = a.Close(t.Context())
	bad := newAuthorizer(t, srv.config(func(o *OAuth2Config) { o.ClientSecret = "wrong-secret-value" }), log)
	_ = bad.Token(t.Context())
	require.NotEmpty(t, buf.String())
	for _, secret := range []string{testClientSecret, "wrong-secret-value", "tok-1"} {
		assert.NotContains(t, buf.String(), secret)
	}
}
