package cyberarksim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// client talks to a test simulator over real HTTP.
type client struct {
	t     testing.TB
	base  string
	http  *http.Client
	token string
}

// setup starts a simulator with cfg and returns it with a client holding a valid token.
func setup(t testing.TB, cfg Config) (*Server, *client) {
	t.Helper()
	s, ts := NewTestServer(t, cfg)
	c := &client{t: t, base: ts.URL, http: ts.Client()}
	c.token = c.fetchToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}})
	return s, c
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// fetchToken asks the token endpoint with the default client credentials in HTTP Basic.
func (c *client) fetchToken(form url.Values) string {
	c.t.Helper()
	r := c.form("/oauth2/token/"+DefaultAppID, form, DefaultClientID, DefaultClientSecret)
	require.Equal(c.t, http.StatusOK, r.status, "token request: %s", r.raw)
	tok := r.str("access_token")
	require.NotEmpty(c.t, tok)
	return tok
}

// form POSTs a form, with HTTP Basic when id is not empty.
func (c *client) form(path string, form url.Values, id, secret string) response {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	return c.send(req)
}

// do sends a SCIM request with the client's token; body may be nil, a string or a value to
// encode as JSON.
func (c *client) do(method, path string, body any) response {
	c.t.Helper()
	return c.doWith(method, path, body, func(req *http.Request) {
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
	})
}

func (c *client) doWith(method, path string, body any, edit func(*http.Request)) response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(c.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", scimMediaType)
	}
	if edit != nil {
		edit(req)
	}
	return c.send(req)
}

func (c *client) send(req *http.Request) response {
	c.t.Helper()
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	r := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		require.NoError(c.t, json.Unmarshal(raw, &r.body), "body %s", raw)
	}
	return r
}

// requireSCIMError checks an RFC 7644 §3.12 error response.
func requireSCIMError(t testing.TB, r response, status int, scimType string) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.raw)
	require.Equal(t, scimMediaType, r.header.Get("Content-Type"))
	require.Equal(t, []any{errorURN}, r.body["schemas"], "body: %s", r.raw)
	require.Equal(t, strconv.Itoa(status), r.body["status"], "status must be a string: %s", r.raw)
	if scimType == "" {
		require.NotContains(t, r.body, "scimType", "body: %s", r.raw)
	} else {
		require.Equal(t, scimType, r.body["scimType"], "body: %s", r.raw)
	}
	require.NotEmpty(t, r.body["detail"], "body: %s", r.raw)
}

// user builds a valid CyberArk user body.
func user(userName string, extra ...map[string]any) map[string]any {
	u := map[string]any{
		"schemas":  []any{userURN},
		"userName": userName,
		"password": "Str0ngPassw0rd",
		"name":     map[string]any{"givenName": "Given", "familyName": "Family"},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
		"active":   true,
	}
	for _, e := range extra {
		for k, v := range e {
			u[k] = v
		}
	}
	return u
}

func group(displayName string, memberIDs ...string) map[string]any {
	g := map[string]any{"schemas": []any{groupURN}, "displayName": displayName}
	if len(memberIDs) > 0 {
		ms := make([]any, len(memberIDs))
		for i, id := range memberIDs {
			ms[i] = map[string]any{"value": id}
		}
		g["members"] = ms
	}
	return g
}

// create POSTs body and requires 201, returning the id.
func (c *client) create(endpoint string, body map[string]any) string {
	c.t.Helper()
	r := c.do(http.MethodPost, "/scim/v2/"+endpoint, body)
	require.Equal(c.t, http.StatusCreated, r.status, "create %s: %s", endpoint, r.raw)
	id := r.str("id")
	require.NotEmpty(c.t, id)
	return id
}

func patchBody(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []any{patchOpURN}, "Operations": list}
}

// serveDirect runs one request through ServeHTTP without a network, for benchmarks.
func serveDirect(s *Server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}
