package cyberarksim

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxFormBytes bounds token and revocation request bodies.
const maxFormBytes = 64 << 10

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status      int
	code        string
	description string
	basic       bool // the client tried HTTP Basic: answer with a Basic challenge (RFC 6749 §5.2)
}

func (e *oauthError) write(w http.ResponseWriter) {
	if e.basic && e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	writeOAuthJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.description})
}

func oauthErr(status int, code, format string, args ...any) *oauthError {
	return &oauthError{status: status, code: code, description: fmt.Sprintf(format, args...)}
}

func writeOAuthJSON(w http.ResponseWriter, status int, body any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readForm checks an OAuth request's method, path application id and media type and parses its
// form body. Parameters may not repeat (RFC 6749 §3.2) except those named in repeatable.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request, prefix string, repeatable ...string) (url.Values, *oauthError) {
	appID, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), prefix))
	if err != nil || appID != s.cfg.AppID {
		return nil, oauthErr(http.StatusNotFound, "invalid_request", "unknown application id %q", appID)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "parameters belong in the request body, not the URL query")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFormBytes+1))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "reading the request body failed")
	}
	if len(body) > maxFormBytes {
		return nil, oauthErr(http.StatusRequestEntityTooLarge, "invalid_request", "request body exceeds %d bytes", maxFormBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "malformed form body")
	}
	for k, vs := range form {
		if len(vs) > 1 && !containsString(repeatable, k) {
			return nil, oauthErr(http.StatusBadRequest, "invalid_request", "parameter %q must not repeat", k)
		}
	}
	return form, nil
}

// authenticateClient checks the client credentials of an OAuth request: HTTP Basic
// (RFC 6749 §2.3.1, form-encoded id and secret) or client_id/client_secret in the body, never both.
func (s *Server) authenticateClient(r *http.Request, form url.Values) *oauthError {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	basic := h != "" && strings.EqualFold(scheme, "Basic")
	inBody := form.Has("client_id") || form.Has("client_secret")
	var id, secret string
	switch {
	case h != "" && !basic:
		return oauthErr(http.StatusBadRequest, "invalid_request", "unsupported Authorization scheme %q; use Basic", scheme)
	case basic && inBody:
		return oauthErr(http.StatusBadRequest, "invalid_request", "use one client authentication method, not HTTP Basic and body parameters together")
	case basic:
		rawID, rawSecret, ok := decodeBasic(strings.TrimSpace(cred))
		if !ok {
			e := oauthErr(http.StatusUnauthorized, "invalid_client", "malformed HTTP Basic credentials")
			e.basic = true
			return e
		}
		id, secret = formUnescape(rawID), formUnescape(rawSecret)
	case inBody:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication required")
	}
	if !s.clientMatches(id, secret) {
		e := oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		e.basic = basic
		return e
	}
	return nil
}

// formUnescape undoes the form-encoding RFC 6749 §2.3.1 applies to Basic credentials, keeping
// the raw text when it is not valid form encoding.
func formUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// serveToken is the token endpoint: POST /oauth2/token/{appID}.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if out, left := s.faults.Load().inOutage(s.now()); out {
		s.stats.add(func(st *Stats) *int { return &st.Outage503 })
		if left > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(left), 10))
		}
		writeOAuthJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "temporarily_unavailable", "error_description": "scheduled outage",
		})
		return
	}
	if err := s.issueToken(w, r); err != nil {
		err.write(w)
	}
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) *oauthError {
	form, oe := s.readForm(w, r, "/oauth2/token/", "resource")
	if oe != nil {
		return oe
	}
	if oe := s.authenticateClient(r, form); oe != nil {
		return oe
	}
	info := tokenInfo{clientID: s.cfg.ClientID, grant: form.Get("grant_type")}
	switch info.grant {
	case "":
		return oauthErr(http.StatusBadRequest, "invalid_request", "grant_type is required")
	case "client_credentials":
	case "password":
		user, pass := form.Get("username"), form.Get("password")
		if user == "" || pass == "" {
			return oauthErr(http.StatusBadRequest, "invalid_request", "grant_type=password needs username and password")
		}
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username))
		passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password))
		if userOK&passOK != 1 {
			return oauthErr(http.StatusBadRequest, "invalid_grant", "invalid resource owner credentials")
		}
	default:
		return oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported (use client_credentials or password)", info.grant)
	}
	scopes := strings.Fields(form.Get("scope"))
	if !containsString(scopes, "scim") {
		return oauthErr(http.StatusBadRequest, "invalid_scope", "scope must include \"scim\"")
	}
	for _, sc := range scopes {
		if sc != "scim" {
			return oauthErr(http.StatusBadRequest, "invalid_scope", "scope %q is not granted to this application", sc)
		}
	}
	info.scope = "scim"
	for _, res := range form["resource"] {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(res, "#") {
			return oauthErr(http.StatusBadRequest, "invalid_target", "resource %q must be an absolute URI without a fragment (RFC 8707)", res)
		}
		info.resources = append(info.resources, res)
	}
	tok := s.tokens.issue(info, s.now(), s.cfg.TokenTTL)
	s.stats.add(func(st *Stats) *int { return &st.TokensIssued })
	s.log.Debug().Str("grant_type", info.grant).Str("client_id", info.clientID).Strs("resource", info.resources).Msg("token issued")
	writeOAuthJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int64(s.cfg.TokenTTL.Seconds()),
		"scope":        info.scope,
	})
	return nil
}

// serveRevoke is the RFC 7009 revocation endpoint: POST /oauth2/revoke/{appID}. It answers 200
// whether or not the token was known.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	if out, _ := s.faults.Load().inOutage(s.now()); out {
		s.stats.add(func(st *Stats) *int { return &st.Outage503 })
		writeOAuthJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	form, oe := s.readForm(w, r, "/oauth2/revoke/")
	if oe == nil {
		oe = s.authenticateClient(r, form)
	}
	if oe != nil {
		oe.write(w)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		oauthErr(http.StatusBadRequest, "invalid_request", "token is required").write(w)
		return
	}
	if s.tokens.revoke(tok, s.cfg.ClientID) {
		s.stats.add(func(st *Stats) *int { return &st.TokensRevoked })
		s.log.Debug().Str("client_id", s.cfg.ClientID).Msg("token revoked")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
