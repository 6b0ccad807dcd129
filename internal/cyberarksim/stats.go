package cyberarksim

import (
	"maps"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats counts what the simulator saw since it started or since ResetStats. Admin requests are
// not counted.
type Stats struct {
	// Requests counts SCIM and token requests by "METHOD /path" with ids replaced by {id}, e.g.
	// "GET /scim/v2/Users/{id}" or "POST /oauth2/token/{appID}"; the prefix the client used
	// (/scim/ or /scim/v2/) is kept. Unroutable paths count under "METHOD (unmatched)".
	Requests map[string]int `json:"requests"`
	// ByStatus counts responses by HTTP status.
	ByStatus map[int]int `json:"byStatus"`
	// ByEndpointStatus counts responses by Requests key and status.
	ByEndpointStatus map[string]map[int]int `json:"byEndpointStatus"`
	// Latency is the time spent per Requests key, injected latency included.
	Latency map[string]LatencyStats `json:"latency"`

	TokensIssued  int `json:"tokensIssued"`
	TokensRevoked int `json:"tokensRevoked"`
	// Rejected429 counts every 429: injected, over the concurrency limit.
	Rejected429 int `json:"rejected429"`
	// RejectedConcurrency counts the 429s of the concurrency limit alone.
	RejectedConcurrency int `json:"rejectedConcurrency"`
	// Injected5xx counts injected 500/502/503 (outages and phantom writes not included).
	Injected5xx int `json:"injected5xx"`
	// Outage503 counts requests refused by the outage window.
	Outage503 int `json:"outage503"`
	// PhantomWrites counts writes applied but answered 502.
	PhantomWrites int `json:"phantomWrites"`
	// Unauthorized counts 401s on SCIM endpoints (missing, invalid, expired or revoked credentials).
	Unauthorized int `json:"unauthorized"`
	// InFlight is the number of SCIM requests in flight now; MaxInFlight the most at once.
	InFlight    int `json:"inFlight"`
	MaxInFlight int `json:"maxInFlight"`
}

// LatencyStats summarises the durations of one kind of request.
type LatencyStats struct {
	Count int           `json:"count"`
	Total time.Duration `json:"totalNanos"`
	Max   time.Duration `json:"maxNanos"`
}

// Mean is Total/Count, or 0.
func (l LatencyStats) Mean() time.Duration {
	if l.Count == 0 {
		return 0
	}
	return l.Total / time.Duration(l.Count)
}

// statsRecorder collects Stats safely for concurrent requests.
type statsRecorder struct {
	inFlight atomic.Int64
	mu       sync.Mutex
	s        Stats
}

func newStatsRecorder() *statsRecorder {
	r := &statsRecorder{}
	r.resetLocked()
	return r
}

func (r *statsRecorder) resetLocked() {
	r.s = Stats{
		Requests:         map[string]int{},
		ByStatus:         map[int]int{},
		ByEndpointStatus: map[string]map[int]int{},
		Latency:          map[string]LatencyStats{},
		MaxInFlight:      int(r.inFlight.Load()),
	}
}

func (r *statsRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resetLocked()
}

// enter admits a SCIM request unless more than limit (> 0) are in flight; it returns whether
// the request was admitted. Admitted requests must call leave.
func (r *statsRecorder) enter(limit int) bool {
	n := r.inFlight.Add(1)
	if limit > 0 && n > int64(limit) {
		r.inFlight.Add(-1)
		return false
	}
	r.mu.Lock()
	r.s.MaxInFlight = max(r.s.MaxInFlight, int(n))
	r.mu.Unlock()
	return true
}

func (r *statsRecorder) leave() { r.inFlight.Add(-1) }

// record counts one finished request.
func (r *statsRecorder) record(key string, status int, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Requests[key]++
	r.s.ByStatus[status]++
	byStatus := r.s.ByEndpointStatus[key]
	if byStatus == nil {
		byStatus = map[int]int{}
		r.s.ByEndpointStatus[key] = byStatus
	}
	byStatus[status]++
	l := r.s.Latency[key]
	l.Count++
	l.Total += elapsed
	l.Max = max(l.Max, elapsed)
	r.s.Latency[key] = l
	if status == 429 {
		r.s.Rejected429++
	}
}

// add increments one of the counters.
func (r *statsRecorder) add(field func(*Stats) *int) {
	r.mu.Lock()
	*field(&r.s)++
	r.mu.Unlock()
}

// snapshot returns a deep copy.
func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.s
	s.Requests = maps.Clone(r.s.Requests)
	s.ByStatus = maps.Clone(r.s.ByStatus)
	s.Latency = maps.Clone(r.s.Latency)
	s.ByEndpointStatus = make(map[string]map[int]int, len(r.s.ByEndpointStatus))
	for k, v := range r.s.ByEndpointStatus {
		s.ByEndpointStatus[k] = maps.Clone(v)
	}
	s.InFlight = int(r.inFlight.Load())
	return s
}

// statsKey normalises a request into its Stats key: SCIM resource ids become {id}, the token
// application id {appID}.
func statsKey(method string, u *url.URL) string {
	p := u.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/oauth2/token/"):
		return method + " /oauth2/token/{appID}"
	case strings.HasPrefix(p, "/oauth2/revoke/"):
		return method + " /oauth2/revoke/{appID}"
	}
	prefix, rest, ok := scimPrefix(p)
	if !ok {
		return method + " (unmatched)"
	}
	segs := strings.Split(rest, "/")
	if len(segs) == 0 || !knownEndpoint(segs[0]) || len(segs) > 2 {
		return method + " (unmatched)"
	}
	if len(segs) == 2 && segs[1] != ".search" {
		segs[1] = "{id}"
	}
	return method + " " + prefix + strings.Join(segs, "/")
}

// knownEndpoint reports whether seg names a SCIM endpoint (in either profile), so Stats keys
// stay bounded whatever paths clients send.
func knownEndpoint(seg string) bool {
	switch seg {
	case Users, Groups, Containers, ContainerPermissions, PrivilegedData, "ServiceProviderConfig", "ResourceTypes", "Schemas":
		return true
	}
	return false
}

// scimPrefix splits an escaped path into its SCIM prefix ("/scim/v2/" or "/scim/") and the rest.
func scimPrefix(p string) (prefix, rest string, ok bool) {
	switch {
	case strings.HasPrefix(p, "/scim/v2/"):
		return "/scim/v2/", p[len("/scim/v2/"):], true
	case strings.HasPrefix(p, "/scim/"):
		return "/scim/", p[len("/scim/"):], true
	}
	return "", "", false
}
