package cyberarksim

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	tokenPath := "/oauth2/token/" + DefaultAppID
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}

	tests := []struct {
		name       string
		path       string
		form       url.Values
		id, secret string // HTTP Basic when id != ""
		status     int
		errCode    string
	}{
		{"client credentials in Basic", tokenPath, cc, DefaultClientID, DefaultClientSecret, 200, ""},
		{"client credentials in body", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "client_id", DefaultClientID, "client_secret", DefaultClientSecret), "", "", 200, ""},
		{"password grant", tokenPath, with("grant_type", "password", "scope", "scim", "username", DefaultUsername, "password", DefaultPassword), DefaultClientID, DefaultClientSecret, 200, ""},
		{"resource indicator", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "resource", "https://tenant.example.com/scim"), DefaultClientID, DefaultClientSecret, 200, ""},
		{"wrong secret", tokenPath, cc, DefaultClientID, "wrong", 401, "invalid_client"},
		{"wrong client", tokenPath, cc, "someone", DefaultClientSecret, 401, "invalid_client"},
		{"wrong secret in body", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "client_id", DefaultClientID, "client_secret", "x"), "", "", 401, "invalid_client"},
		{"no client auth", tokenPath, cc, "", "", 401, "invalid_client"},
		{"two client auth methods", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "client_id", DefaultClientID, "client_secret", DefaultClientSecret), DefaultClientID, DefaultClientSecret, 400, "invalid_request"},
		{"no grant_type", tokenPath, with("scope", "scim"), DefaultClientID, DefaultClientSecret, 400, "invalid_request"},
		{"unsupported grant", tokenPath, with("grant_type", "authorization_code", "scope", "scim"), DefaultClientID, DefaultClientSecret, 400, "unsupported_grant_type"},
		{"no scope", tokenPath, with("grant_type", "client_credentials"), DefaultClientID, DefaultClientSecret, 400, "invalid_scope"},
		{"wrong scope", tokenPath, with("grant_type", "client_credentials", "scope", "openid"), DefaultClientID, DefaultClientSecret, 400, "invalid_scope"},
		{"extra scope", tokenPath, with("grant_type", "client_credentials", "scope", "scim admin"), DefaultClientID, DefaultClientSecret, 400, "invalid_scope"},
		{"wrong user password", tokenPath, with("grant_type", "password", "scope", "scim", "username", DefaultUsername, "password", "nope"), DefaultClientID, DefaultClientSecret, 400, "invalid_grant"},
		{"password grant without password", tokenPath, with("grant_type", "password", "scope", "scim", "username", DefaultUsername), DefaultClientID, DefaultClientSecret, 400, "invalid_request"},
		{"repeated parameter", tokenPath, with("grant_type", "client_credentials", "grant_type", "client_credentials", "scope", "scim"), DefaultClientID, DefaultClientSecret, 400, "invalid_request"},
		{"relative resource", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "resource", "/scim"), DefaultClientID, DefaultClientSecret, 400, "invalid_target"},
		{"resource with fragment", tokenPath, with("grant_type", "client_credentials", "scope", "scim", "resource", "https://x.example/#f"), DefaultClientID, DefaultClientSecret, 400, "invalid_target"},
		{"unknown application", "/oauth2/token/other-app", cc, DefaultClientID, DefaultClientSecret, 404, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.form(tt.path, tt.form, tt.id, tt.secret)
			require.Equal(t, tt.status, r.status, "%s", r.raw)
			assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			if tt.status != 200 {
				assert.Equal(t, tt.errCode, r.body["error"])
				assert.NotEmpty(t, r.body["error_description"])
				assert.NotContains(t, r.body, "access_token")
				if tt.status == 401 && tt.id != "" {
					assert.Contains(t, r.header.Get("WWW-Authenticate"), "Basic")
				}
				return
			}
			assert.Equal(t, "Bearer", r.body["token_type"])
			assert.Equal(t, float64(3600), r.body["expires_in"])
			assert.Equal(t, "scim", r.body["scope"])
			tok := r.str("access_token")
			assert.GreaterOrEqual(t, len(tok), 40)
			ok := c.doWith(http.MethodGet, "/scim/v2/Users", nil, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) })
			assert.Equal(t, http.StatusOK, ok.status, "the issued token works")
		})
	}

	r := c.doWith(http.MethodPost, tokenPath, cc.Encode(), func(req *http.Request) {
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(DefaultClientID, DefaultClientSecret)
	})
	assert.Equal(t, http.StatusBadRequest, r.status, "token requests are form-encoded")
	assert.Equal(t, "invalid_request", r.body["error"])
	r = c.doWith(http.MethodGet, tokenPath, nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, r.status)

	t.Run("Basic credentials are form-encoded", func(t *testing.T) {
		t.Parallel()
		_, ts := NewTestServer(t, Config{ClientID: "id with space", ClientSecret: "s3cr3t:+/%"})
		cl := &client{t: t, base: ts.URL, http: ts.Client()}
		r := cl.form(tokenPath, cc, url.QueryEscape("id with space"), url.QueryEscape("s3cr3t:+/%"))
		assert.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	})
	t.Cleanup(func() { // after the parallel subtests
		assert.Equal(t, 5, s.Stats().TokensIssued, "setup's token and the four successful cases")
	})
}

func TestSCIMAuthentication(t *testing.T) {
	t.Parallel()
	_, c := setup(t, Config{StaticToken: "static-token-123"})

	tests := []struct {
		name      string
		auth      string
		status    int
		challenge string
	}{
		{"valid token", "Bearer " + c.token, 200, ""},
		{"scheme is case-insensitive", "bearer " + c.token, 200, ""},
		{"static token", "Bearer static-token-123", 200, ""},
		{"missing", "", 401, `Bearer realm="cyberark-sim"`},
		{"unknown token", "Bearer not-a-token", 401, `error="invalid_token"`},
		{"basic when disabled", "Basic " + basicCred(DefaultClientID, DefaultClientSecret), 401, `Bearer realm=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := c.doWith(http.MethodGet, "/scim/v2/Users", nil, func(req *http.Request) {
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
			})
			if tt.status == 200 {
				assert.Equal(t, 200, r.status, "%s", r.raw)
				return
			}
			requireSCIMError(t, r, 401, "")
			assert.Contains(t, r.header.Get("WWW-Authenticate"), tt.challenge)
			if tt.name == "missing" {
				assert.NotContains(t, r.header.Get("WWW-Authenticate"), "error=", "RFC 6750 §3.1: no error code without credentials")
			}
		})
	}
	requireSCIMError(t, c.doWith(http.MethodGet, "/scim/v2/ServiceProviderConfig", nil, nil), 401, "")

	t.Run("basic auth when enabled", func(t *testing.T) {
		t.Parallel()
		_, b := setup(t, Config{BasicAuth: true})
		r := b.doWith(http.MethodGet, "/scim/v2/Users", nil, func(req *http.Request) { req.SetBasicAuth(DefaultClientID, DefaultClientSecret) })
		assert.Equal(t, 200, r.status)
		r = b.doWith(http.MethodGet, "/scim/v2/Users", nil, func(req *http.Request) { req.SetBasicAuth(DefaultClientID, "wrong") })
		requireSCIMError(t, r, 401, "")
		assert.Len(t, r.header.Values("WWW-Authenticate"), 2, "both schemes are offered")
	})
	t.Run("auth not required", func(t *testing.T) {
		t.Parallel()
		off := false
		_, ts := NewTestServer(t, Config{RequireAuth: &off})
		cl := &client{t: t, base: ts.URL, http: ts.Client()}
		assert.Equal(t, 200, cl.do(http.MethodGet, "/scim/v2/Users", nil).status)
	})
}

func basicCred(id, secret string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(id, secret)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

func TestTokenRevocation(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	revoke := "/oauth2/revoke/" + DefaultAppID
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status)

	r := c.form(revoke, url.Values{"token": {c.token}}, DefaultClientID, "wrong")
	assert.Equal(t, 401, r.status, "revocation authenticates the client")
	assert.Equal(t, "invalid_client", r.body["error"])
	r = c.form(revoke, url.Values{}, DefaultClientID, DefaultClientSecret)
	assert.Equal(t, 400, r.status)
	assert.Equal(t, "invalid_request", r.body["error"])

	r = c.form(revoke, url.Values{"token": {c.token}, "token_type_hint": {"access_token"}}, DefaultClientID, DefaultClientSecret)
	require.Equal(t, 200, r.status)
	assert.Equal(t, 1, s.Stats().TokensRevoked)
	r = c.do(http.MethodGet, "/scim/v2/Users", nil)
	requireSCIMError(t, r, 401, "")
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)

	r = c.form(revoke, url.Values{"token": {"never-issued"}}, DefaultClientID, DefaultClientSecret)
	assert.Equal(t, 200, r.status, "RFC 7009: unknown tokens answer 200 too")
	assert.Equal(t, 1, s.Stats().TokensRevoked)
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, c := setup(t, Config{Now: clock.Now, TokenTTL: 10 * time.Minute})

	clock.Advance(9 * time.Minute)
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status)
	clock.Advance(time.Minute)
	r := c.do(http.MethodGet, "/scim/v2/Users", nil)
	requireSCIMError(t, r, 401, "")
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.Contains(t, r.str("detail"), "expired")

	// ExpireTokensAfter cuts tokens short whatever expires_in says.
	s.SetFaults(Faults{ExpireTokensAfter: 30 * time.Second})
	c.token = c.fetchToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}})
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status)
	clock.Advance(30 * time.Second)
	requireSCIMError(t, c.do(http.MethodGet, "/scim/v2/Users", nil), 401, "")
	s.SetFaults(Faults{})
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status, "the fault is evaluated per request")
	assert.Equal(t, 2, s.Stats().Unauthorized)
}
