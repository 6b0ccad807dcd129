package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Stats counts what an Authorizer did, for metrics and tests.
type Stats struct {
	TokensFetched int64     // successful token requests
	FetchFailures int64     // failed token requests
	TokensRevoked int64     // successful revocations
	Invalidations int64     // cached tokens dropped after the target rejected them
	LastExpiry    time.Time // expiry of the most recent token (zero when it has none)
}

// TokenInfo describes a fetched token without revealing it.
type TokenInfo struct {
	Type      string        // token_type as issued ("Bearer")
	ExpiresIn time.Duration // lifetime from expires_in; 0 when the server sent none
	Scope     string        // granted scope, when the server says
}

// Authorizer adds credentials to requests according to a Config and caches OAuth2 tokens
// according to the token cache policy. It is safe for concurrent use; concurrent requests that
// need a new token share one token request.
type Authorizer struct {
	cfg  Config
	log  zerolog.Logger
	http *http.Client
	cc   *clientcredentials.Config

	mu     sync.Mutex
	cached *token  // policies always and interval
	last   *token  // most recent token issued, revoked by Close
	flight *flight // token request in progress
	closed bool

	fetched, failures, revoked, invalidations atomic.Int64
	lastExpiry                                atomic.Int64 // unix nanoseconds, 0 when none
}

type token struct {
	value    Secret
	info     TokenInfo
	expiry   time.Time // zero when the server sent no expires_in
	useUntil time.Time // when the cache stops handing it out
}

type flight struct {
	done chan struct{}
	tok  *token
	err  error
}

// New validates cfg and returns an Authorizer that sends its token and revocation requests with
// base (http.DefaultClient when nil); base should carry the target's TLS settings.
func New(cfg Config, base *http.Client, log zerolog.Logger) (*Authorizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if base == nil {
		base = http.DefaultClient
	}
	// No "component" field: the caller's logger names the component, and a second one would repeat
	// the key in every JSON line; auth_mode marks the lines that come from here.
	a := &Authorizer{cfg: cfg, log: log.With().Str("auth_mode", string(cfg.Mode)).Logger(), http: base}
	if cfg.Mode == ModeOAuth2 {
		o := cfg.OAuth2
		params := url.Values{}
		if o.GrantType == GrantPassword {
			// clientcredentials lets grant_type be overridden for exactly this kind of interop.
			params.Set("grant_type", GrantPassword)
			params.Set("username", o.Username)
			params.Set("password", o.Password.Reveal())
		}
		if o.Resource != "" {
			params.Set("resource", o.Resource)
		}
		style := oauth2.AuthStyleInHeader
		if o.ClientAuth == ClientAuthBody || o.ClientSecret.IsZero() {
			style = oauth2.AuthStyleInParams // public clients send client_id in the body
		}
		a.cc = &clientcredentials.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), TokenURL: o.TokenURL,
			Scopes: o.Scopes, EndpointParams: params, AuthStyle: style,
		}
	}
	return a, nil
}

// Mode returns the configured authentication mode.
func (a *Authorizer) Mode() Mode { return a.cfg.Mode }

// Authorize sets the Authorization header of req, fetching a token first when the policy needs one.
func (a *Authorizer) Authorize(ctx context.Context, req *http.Request) error {
	switch a.cfg.Mode {
	case ModeBasic:
		req.SetBasicAuth(a.cfg.Basic.Username, a.cfg.Basic.Password.Reveal())
	case ModeBearer:
		req.Header.Set("Authorization", "Bearer "+a.cfg.Bearer.Token.Reveal())
	case ModeOAuth2:
		t, err := a.token(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+t.value.Reveal())
	}
	return nil
}

// Invalidate tells the Authorizer that the target rejected token (the bare token or the whole
// "Bearer ..." header value): when it is the cached one, the next Authorize fetches a new token.
// A token that was already replaced is ignored, so a burst of 401s causes one refresh.
func (a *Authorizer) Invalidate(token string) {
	token = strings.TrimSpace(token)
	if len(token) > 7 && strings.EqualFold(token[:7], "bearer ") {
		token = strings.TrimSpace(token[7:])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cached != nil && a.cached.value.Reveal() == token {
		a.cached = nil
		a.invalidations.Add(1)
		a.log.Debug().Msg("cached oauth2 token invalidated after the target rejected it")
	}
}

// Token makes sure a usable token is at hand, fetching one when the cache holds none. It returns
// nil at once for modes other than oauth2.
func (a *Authorizer) Token(ctx context.Context) error {
	if a.cfg.Mode != ModeOAuth2 {
		return nil
	}
	_, err := a.token(ctx)
	return err
}

// Fetch requests a new token now, whatever the cache holds, and caches it per the policy. Check
// uses it to prove the credentials. For modes other than oauth2 it returns a zero TokenInfo.
func (a *Authorizer) Fetch(ctx context.Context) (TokenInfo, error) {
	if a.cfg.Mode != ModeOAuth2 {
		return TokenInfo{}, nil
	}
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return TokenInfo{}, ErrClosed
	}
	t, err := a.fetch(ctx)
	if err != nil {
		return TokenInfo{}, err
	}
	if a.cfg.OAuth2.TokenCache != CacheNever {
		a.mu.Lock()
		a.cached = t
		a.mu.Unlock()
	}
	return t.info, nil
}

func (a *Authorizer) token(ctx context.Context) (*token, error) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil, ErrClosed
	}
	if a.cfg.OAuth2.TokenCache == CacheNever {
		a.mu.Unlock()
		return a.fetch(ctx)
	}
	if a.cached != nil && time.Now().Before(a.cached.useUntil) {
		t := a.cached
		a.mu.Unlock()
		return t, nil
	}
	f := a.flight
	if f == nil {
		f = &flight{done: make(chan struct{})}
		a.flight = f
		// The request runs detached from the caller that happened to start it, so that one
		// caller's cancellation does not fail everyone waiting for the same token.
		go a.runFlight(context.WithoutCancel(ctx), f)
	}
	a.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for oauth2 token: %w", ctx.Err())
	}
}

func (a *Authorizer) runFlight(ctx context.Context, f *flight) {
	f.tok, f.err = a.fetch(ctx)
	a.mu.Lock()
	a.flight = nil
	if f.err == nil {
		a.cached = f.tok
	}
	a.mu.Unlock()
	close(f.done)
}

// fetch performs one token request.
func (a *Authorizer) fetch(ctx context.Context) (*token, error) {
	o := a.cfg.OAuth2
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	tk, err := a.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, a.http))
	if err == nil && tk.TokenType != "" && !strings.EqualFold(tk.TokenType, "bearer") {
		err = fmt.Errorf("token_type %q is not supported, only Bearer", tk.TokenType)
	}
	if err != nil {
		a.failures.Add(1)
		terr := tokenError("token", o.TokenURL, err)
		a.log.Warn().Err(terr).Str("token_url", o.TokenURL).Str("grant_type", o.GrantType).Msg("oauth2 token request failed")
		return nil, terr
	}
	t := &token{value: Secret(tk.AccessToken), expiry: tk.Expiry, info: TokenInfo{Type: tk.TokenType}}
	if tk.ExpiresIn > 0 {
		t.info.ExpiresIn = time.Duration(tk.ExpiresIn) * time.Second
	} else if !tk.Expiry.IsZero() {
		t.info.ExpiresIn = tk.Expiry.Sub(start).Round(time.Second)
	}
	if s, ok := tk.Extra("scope").(string); ok {
		t.info.Scope = s
	}
	t.useUntil = a.useUntil(start, t)
	a.fetched.Add(1)
	if !t.expiry.IsZero() {
		a.lastExpiry.Store(t.expiry.UnixNano())
	} else {
		a.lastExpiry.Store(0)
	}
	a.mu.Lock()
	a.last = t
	a.mu.Unlock()
	a.log.Debug().Str("token_url", o.TokenURL).Str("grant_type", o.GrantType).Dur("expires_in", t.info.ExpiresIn).
		Str("token_cache", o.TokenCache).Msg("oauth2 token fetched")
	return t, nil
}

// useUntil applies the cache policy: always renews a little before expiry (a tenth of the
// lifetime, at most a minute); interval reuses for TokenCacheSeconds but never past that point.
func (a *Authorizer) useUntil(start time.Time, t *token) time.Time {
	limit := start.AddDate(100, 0, 0) // no expires_in: reuse until the target rejects it
	if !t.expiry.IsZero() {
		lifetime := t.expiry.Sub(start)
		limit = t.expiry.Add(-min(time.Minute, lifetime/10))
	}
	switch a.cfg.OAuth2.TokenCache {
	case CacheInterval:
		return minTime(limit, start.Add(time.Duration(a.cfg.OAuth2.TokenCacheSeconds)*time.Second))
	case CacheNever:
		return start
	}
	return limit
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Close revokes the most recently issued token at RevokeURL when one is configured and the token
// has not expired, and makes later Authorize calls fail with ErrClosed. Close is idempotent.
func (a *Authorizer) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	f := a.flight
	a.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
		}
	}
	a.mu.Lock()
	t := a.last
	a.cached, a.last = nil, nil
	a.mu.Unlock()
	if a.cfg.Mode != ModeOAuth2 || a.cfg.OAuth2.RevokeURL == "" || t == nil {
		return nil
	}
	if !t.expiry.IsZero() && time.Now().After(t.expiry) {
		return nil
	}
	if err := a.revoke(ctx, t.value); err != nil {
		a.log.Warn().Err(err).Str("revoke_url", a.cfg.OAuth2.RevokeURL).Msg("oauth2 token revocation failed")
		return err
	}
	a.revoked.Add(1)
	a.log.Debug().Str("revoke_url", a.cfg.OAuth2.RevokeURL).Msg("oauth2 token revoked")
	return nil
}

// revoke sends an RFC 7009 revocation request for an access token.
func (a *Authorizer) revoke(ctx context.Context, value Secret) error {
	o := a.cfg.OAuth2
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	form := url.Values{"token": {value.Reveal()}, "token_type_hint": {"access_token"}}
	header := o.ClientAuth == ClientAuthHeader && !o.ClientSecret.IsZero()
	if !header {
		form.Set("client_id", o.ClientID)
		if !o.ClientSecret.IsZero() {
			form.Set("client_secret", o.ClientSecret.Reveal())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return &TokenError{Op: "revoke", URL: o.RevokeURL, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if header {
		req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret.Reveal()))
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return tokenError("revoke", o.RevokeURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = decodeJSON(resp, &body)
	return &TokenError{Op: "revoke", URL: o.RevokeURL, Status: resp.StatusCode, Code: body.Error, Description: body.Description}
}

// Stats returns the counters.
func (a *Authorizer) Stats() Stats {
	s := Stats{
		TokensFetched: a.fetched.Load(), FetchFailures: a.failures.Load(),
		TokensRevoked: a.revoked.Load(), Invalidations: a.invalidations.Load(),
	}
	if n := a.lastExpiry.Load(); n != 0 {
		s.LastExpiry = time.Unix(0, n)
	}
	return s
}

// tokenError turns an x/oauth2 or transport error into a *TokenError.
func tokenError(op, endpoint string, err error) *TokenError {
	te := &TokenError{Op: op, URL: endpoint}
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		te.Code, te.Description = re.ErrorCode, re.ErrorDescription
	case errors.As(err, &ue):
		te.Err = ue.Err // the URL is already in the message
	default:
		te.Err = err
	}
	return te
}
