package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/auth"
)

// CheckReport is the result of Check: Omada's testConnection / testQuery, and `worker check`.
type CheckReport struct {
	Target       string // entity base URL
	QueryBase    string
	Profile      Profile
	AuthMode     auth.Mode
	Steps        []CheckStep
	Capabilities map[string]any // from ServiceProviderConfig: "patch", "bulk", "filter", "filter.maxResults"...
}

// CheckStep is one step of a check.
type CheckStep struct {
	Name    string // "token", "serviceProviderConfig", "testQuery"
	OK      bool
	Latency time.Duration
	Detail  string
}

// OK reports whether every step passed.
func (r *CheckReport) OK() bool {
	for _, s := range r.Steps {
		if !s.OK {
			return false
		}
	}
	return len(r.Steps) > 0
}

// Failed returns the steps that failed.
func (r *CheckReport) Failed() []CheckStep {
	var out []CheckStep
	for _, s := range r.Steps {
		if !s.OK {
			out = append(out, s)
		}
	}
	return out
}

// Err returns nil when the check passed, else an error listing each failed step.
func (r *CheckReport) Err() error {
	if r.OK() {
		return nil
	}
	var parts []string
	for _, s := range r.Failed() {
		parts = append(parts, s.Name+": "+s.Detail)
	}
	return fmt.Errorf("connection test of %s failed: %s", r.Target, strings.Join(parts, "; "))
}

// Render writes the report for people.
func (r *CheckReport) Render(w io.Writer) {
	fmt.Fprintf(w, "target     %s (profile %s, auth %s)\n", r.Target, r.Profile, r.AuthMode)
	if r.QueryBase != r.Target {
		fmt.Fprintf(w, "queries    %s\n", r.QueryBase)
	}
	for _, s := range r.Steps {
		status := "OK  "
		if !s.OK {
			status = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-22s %8s  %s\n", status, s.Name, s.Latency.Round(time.Millisecond), s.Detail)
	}
	if len(r.Capabilities) > 0 {
		keys := make([]string, 0, len(r.Capabilities))
		for k := range r.Capabilities {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, r.Capabilities[k]))
		}
		fmt.Fprintf(w, "capabilities %s\n", strings.Join(parts, " "))
	}
	if r.OK() {
		fmt.Fprintf(w, "result     OK: all %d steps passed\n", len(r.Steps))
	} else {
		fmt.Fprintf(w, "result     FAILED: %d of %d steps failed\n", len(r.Failed()), len(r.Steps))
	}
}

// Check tests the target the way `worker check` and testConnection need: obtain a token (oauth2),
// read ServiceProviderConfig, and run the test query. Each request is made once, without the
// breaker, so the report shows the target's real state.
func (c *Client) Check(ctx context.Context) *CheckReport {
	r := &CheckReport{Target: c.EntityBase(), QueryBase: c.QueryBase(), Profile: c.cfg.Profile, AuthMode: c.auth.Mode()}
	once := callOpts{attempts: 1}

	start := time.Now()
	tokenOK := true
	switch info, err := c.auth.Fetch(ctx); {
	case c.auth.Mode() != auth.ModeOAuth2:
		r.Steps = append(r.Steps, CheckStep{Name: "token", OK: true,
			Detail: fmt.Sprintf("auth mode %s: no token endpoint; the test query proves the credentials", c.auth.Mode())})
	case err != nil:
		tokenOK = false
		r.Steps = append(r.Steps, CheckStep{Name: "token", Latency: time.Since(start), Detail: describeTransport(err, c.cfg.oauth2Timeout())})
	default:
		d := fmt.Sprintf("token obtained from %s", c.cfg.Auth.OAuth2.TokenURL)
		if info.ExpiresIn > 0 {
			d += fmt.Sprintf(", expires in %s", info.ExpiresIn)
		}
		if info.Scope != "" {
			d += fmt.Sprintf(", scope %q", info.Scope)
		}
		r.Steps = append(r.Steps, CheckStep{Name: "token", OK: true, Latency: time.Since(start), Detail: d})
	}
	if !tokenOK {
		for _, name := range []string{"serviceProviderConfig", "testQuery"} {
			r.Steps = append(r.Steps, CheckStep{Name: name, Detail: "not run: no token"})
		}
		return r
	}

	start = time.Now()
	resp, err := c.do(ctx, Request{Method: http.MethodGet, Path: "ServiceProviderConfig"}, once)
	step := CheckStep{Name: "serviceProviderConfig", Latency: time.Since(start)}
	if err != nil {
		step.Detail = checkFailure("read ServiceProviderConfig", err)
	} else if caps, perr := capabilities(resp.Body); perr != nil {
		step.Detail = "ServiceProviderConfig is not valid JSON: " + perr.Error()
	} else {
		r.Capabilities, step.OK = caps, true
		step.Detail = "read; " + summarizeCapabilities(caps)
	}
	r.Steps = append(r.Steps, step)

	step = CheckStep{Name: "testQuery"}
	if c.cfg.TestQuery == "" {
		step.OK = true
		step.Detail = "none configured (target.testQuery)"
		if m := c.auth.Mode(); m == auth.ModeBasic || m == auth.ModeBearer {
			step.Detail += fmt.Sprintf("; with auth mode %s the credentials are not proven without one", m)
		}
	} else {
		p, q, _ := splitTestQuery(c.cfg.TestQuery) // validated
		start = time.Now()
		resp, err := c.do(ctx, Request{Method: http.MethodGet, Path: p, Query: q, Search: true}, once)
		step.Latency = time.Since(start)
		if err != nil {
			step.Detail = checkFailure(fmt.Sprintf("test query %q rejected", c.cfg.TestQuery), err)
		} else {
			step.OK = true
			step.Detail = fmt.Sprintf("%q answered HTTP %d", c.cfg.TestQuery, resp.Status)
			var lr struct {
				TotalResults *int `json:"totalResults"`
			}
			if json.Unmarshal(resp.Body, &lr) == nil && lr.TotalResults != nil {
				step.Detail += fmt.Sprintf(", totalResults %d", *lr.TotalResults)
			}
		}
	}
	r.Steps = append(r.Steps, step)
	return r
}

// oauth2Timeout is the token request timeout in force.
func (c Config) oauth2Timeout() time.Duration {
	if c.Auth.OAuth2.Timeout > 0 {
		return c.Auth.OAuth2.Timeout
	}
	return 30 * time.Second
}

func checkFailure(doing string, err error) string {
	if e, ok := err.(*Error); ok {
		if e.Status != 0 {
			s := fmt.Sprintf("%s: HTTP %d", doing, e.Status)
			if e.ScimType != "" {
				s += " " + e.ScimType
			}
			if e.Detail != "" {
				s += ": " + e.Detail
			}
			return s
		}
		return doing + ": " + e.Detail
	}
	return doing + ": " + err.Error()
}

// capabilities flattens the RFC 7643 §5 ServiceProviderConfig into a map.
func capabilities(body []byte) (map[string]any, error) {
	var spc map[string]any
	if err := json.Unmarshal(body, &spc); err != nil {
		return nil, err
	}
	caps := map[string]any{}
	for _, feature := range []string{"patch", "bulk", "filter", "changePassword", "sort", "etag"} {
		m, ok := spc[feature].(map[string]any)
		if !ok {
			continue
		}
		if v, ok := m["supported"].(bool); ok {
			caps[feature] = v
		}
		for _, sub := range []string{"maxResults", "maxOperations", "maxPayloadSize"} {
			if v, ok := m[sub].(float64); ok {
				caps[feature+"."+sub] = int64(v)
			}
		}
	}
	if schemes, ok := spc["authenticationSchemes"].([]any); ok {
		var names []string
		for _, s := range schemes {
			if m, ok := s.(map[string]any); ok {
				if t, ok := m["type"].(string); ok {
					names = append(names, t)
				}
			}
		}
		if len(names) > 0 {
			caps["authenticationSchemes"] = strings.Join(names, ",")
		}
	}
	return caps, nil
}

func summarizeCapabilities(caps map[string]any) string {
	yn := func(k string) string {
		v, ok := caps[k].(bool)
		switch {
		case !ok:
			return "?"
		case v:
			return "yes"
		}
		return "no"
	}
	s := fmt.Sprintf("patch %s, bulk %s, filter %s", yn("patch"), yn("bulk"), yn("filter"))
	if n, ok := caps["filter.maxResults"]; ok {
		s += fmt.Sprintf(" (max %v results)", n)
	}
	return s + fmt.Sprintf(", sort %s, etag %s, changePassword %s", yn("sort"), yn("etag"), yn("changePassword"))
}
