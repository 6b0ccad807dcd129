package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	userSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	// benchPassword satisfies the simulator's CyberArk password policy; the benchmark's users are
	// thrown away with the simulator.
	benchPassword = "Bench-Passw0rd-2026"
)

// scimClient is plain net/http against the simulator: one OAuth 2.0 token (fetched again on a
// 401), retries of 429, 5xx and transport errors, and a key → id map filled by creates and lookups.
type scimClient struct {
	cfg  Config
	http *http.Client
	base string

	mu     sync.Mutex
	bearer string

	ids sync.Map // resource + "\x00" + lower-cased key value → id

	slots chan struct{} // nil: no bound on requests in flight
}

func newSCIMClient(cfg Config) *scimClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 2*cfg.Concurrency, 2*cfg.Concurrency
	c := &scimClient{cfg: cfg, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: strings.TrimRight(cfg.Target, "/") + "/scim/v2"}
	if cfg.MaxInFlight > 0 {
		c.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	return c
}

// send is c.http.Do within the bound on requests in flight.
func (c *scimClient) send(req *http.Request) (*http.Response, []byte, error) {
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		case <-req.Context().Done():
			return nil, nil, req.Context().Err()
		}
		defer func() { <-c.slots }()
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// token fetches a client-credentials token.
func (c *scimClient) token(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}}
	tokenURL := strings.TrimRight(c.cfg.Target, "/") + "/oauth2/token/scimflow"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("token request to %s: %w", tokenURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(c.cfg.ClientID), url.QueryEscape(c.cfg.ClientSecret))
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("token request to %s: %w", tokenURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token request to %s: %s: %s", tokenURL, resp.Status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("token answer from %s has no access_token: %s", tokenURL, body)
	}
	c.mu.Lock()
	c.bearer = tok.AccessToken
	c.mu.Unlock()
	return nil
}

// statusError is an answer outside 2xx.
type statusError struct {
	method, path string
	status       int
	body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.body)
}

// do sends one request and decodes a 2xx answer into out (when not nil). 429, 5xx and transport
// errors are retried up to 8 times (Retry-After, else 50 ms doubling to 1 s); a 401 fetches a new
// token once.
func (c *scimClient) do(ctx context.Context, method, path string, body, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
	}
	refreshed := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		c.mu.Lock()
		req.Header.Set("Authorization", "Bearer "+c.bearer)
		c.mu.Unlock()
		req.Header.Set("Accept", "application/scim+json")
		if body != nil {
			req.Header.Set("Content-Type", "application/scim+json")
		}
		resp, answer, err := c.send(req)
		var wait time.Duration
		switch {
		case err != nil:
			if attempt >= 8 || ctx.Err() != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		default:
			switch {
			case resp.StatusCode/100 == 2:
				if out == nil {
					return nil
				}
				if err := json.Unmarshal(answer, out); err != nil {
					return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
				}
				return nil
			case resp.StatusCode == http.StatusUnauthorized && !refreshed:
				refreshed = true
				if err := c.token(ctx); err != nil {
					return err
				}
				continue
			default:
				err = &statusError{method: method, path: path, status: resp.StatusCode, body: string(answer)}
			}
			if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 || attempt >= 8 {
				return err
			}
			if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
				wait = time.Duration(s) * time.Second
			}
		}
		if wait == 0 {
			wait = min(50*time.Millisecond<<attempt, time.Second)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s %s: %w", method, path, ctx.Err())
		case <-time.After(wait):
		}
	}
}

func cacheKey(resource, value string) string { return resource + "\x00" + strings.ToLower(value) }

// resolve returns the id of the resource whose attr equals value: from the map, else by a filter
// lookup. An object not there yet is errNotYet.
func (c *scimClient) resolve(ctx context.Context, resource, attr, value string) (string, error) {
	if id, ok := c.ids.Load(cacheKey(resource, value)); ok {
		return id.(string), nil
	}
	quoted, _ := json.Marshal(value)
	path := "/" + resource + "?filter=" + url.QueryEscape(attr+" eq "+string(quoted))
	var list struct {
		Resources []struct {
			ID string `json:"id"`
		} `json:"Resources"`
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &list); err != nil {
		return "", err
	}
	if len(list.Resources) == 0 {
		return "", fmt.Errorf("%s %s %q: %w", resource, attr, value, errNotYet)
	}
	c.ids.Store(cacheKey(resource, value), list.Resources[0].ID)
	return list.Resources[0].ID, nil
}

// errNotYet: a referenced object is not there yet (created by an event of another key still in
// flight, possibly queued behind this one on the same goroutine): the event is handed back to
// JetStream for a moment instead of waiting here.
var errNotYet = errors.New("not found yet")

// userBody renders data-model property names as SCIM attributes: "name.givenName" nests,
// "emails[].value" makes one element per value.
func userBody(userName string, attrs map[string]any) map[string]any {
	body := map[string]any{"schemas": []string{userSchema}, "userName": userName, "password": benchPassword}
	for name, v := range attrs {
		if parent, sub, ok := strings.Cut(name, "[]."); ok {
			list, _ := v.([]any)
			elems := make([]any, len(list))
			for i, x := range list {
				elems[i] = map[string]any{sub: x}
			}
			body[parent] = elems
			continue
		}
		if parent, sub, ok := strings.Cut(name, "."); ok {
			m, _ := body[parent].(map[string]any)
			if m == nil {
				m = map[string]any{}
				body[parent] = m
			}
			m[sub] = v
			continue
		}
		body[name] = v
	}
	return body
}

type created struct {
	ID string `json:"id"`
}

// createUser POSTs a user; a 409 (created by an earlier delivery) resolves it instead.
func (c *scimClient) createUser(ctx context.Context, userName string, attrs map[string]any) (string, error) {
	var out created
	err := c.do(ctx, http.MethodPost, "/Users", userBody(userName, attrs), &out)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		return c.resolve(ctx, "Users", "userName", userName)
	}
	if err != nil {
		return "", err
	}
	c.ids.Store(cacheKey("Users", userName), out.ID)
	return out.ID, nil
}

// patchUser replaces the given simple attributes of a user.
func (c *scimClient) patchUser(ctx context.Context, id string, attrs map[string]any) error {
	ops := make([]any, 0, len(attrs))
	for name, v := range attrs {
		ops = append(ops, map[string]any{"op": "replace", "path": name, "value": v})
	}
	return c.do(ctx, http.MethodPatch, "/Users/"+id, map[string]any{"schemas": []string{patchSchema}, "Operations": ops}, nil)
}

func memberValues(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"value": id}
	}
	return out
}

// createGroup POSTs a group with its first members; a 409 resolves it and adds them instead.
func (c *scimClient) createGroup(ctx context.Context, name string, members []string) (string, error) {
	var out created
	body := map[string]any{"schemas": []string{groupSchema}, "displayName": name}
	if len(members) > 0 {
		body["members"] = memberValues(members)
	}
	err := c.do(ctx, http.MethodPost, "/Groups", body, &out)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		id, err := c.resolve(ctx, "Groups", "displayName", name)
		if err != nil {
			return "", err
		}
		return id, c.addMembers(ctx, id, members)
	}
	if err != nil {
		return "", err
	}
	c.ids.Store(cacheKey("Groups", name), out.ID)
	return out.ID, nil
}

// addMembers PATCHes members into a group.
func (c *scimClient) addMembers(ctx context.Context, id string, members []string) error {
	if len(members) == 0 {
		return nil
	}
	return c.do(ctx, http.MethodPatch, "/Groups/"+id, map[string]any{"schemas": []string{patchSchema},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": memberValues(members)}}}, nil)
}
