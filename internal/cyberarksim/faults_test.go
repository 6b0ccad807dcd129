package cyberarksim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRateLimitFault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter time.Duration
		header     string
	}{
		{"with Retry-After", 2 * time.Second, "2"},
		{"rounded up", 1500 * time.Millisecond, "2"},
		{"without Retry-After", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := setup(t, Config{})
			s.SetFaults(Faults{RateLimit429: 1, RetryAfter: tt.retryAfter})
			r := c.do(http.MethodGet, "/scim/v2/Users", nil)
			requireSCIMError(t, r, http.StatusTooManyRequests, "")
			assert.Equal(t, tt.header, r.header.Get("Retry-After"))
			_, present := r.header["Retry-After"]
			assert.Equal(t, tt.header != "", present)
			st := s.Stats()
			assert.Equal(t, 1, st.Rejected429)
			assert.Equal(t, 1, st.ByStatus[429])
			assert.Equal(t, 1, st.ByEndpointStatus["GET /scim/v2/Users"][429])
		})
	}

	t.Run("fraction", func(t *testing.T) {
		t.Parallel()
		s, c := setup(t, Config{Seed: 42})
		s.SetFaults(Faults{RateLimit429: 0.5})
		limited := 0
		for range 200 {
			if c.do(http.MethodGet, "/scim/v2/Users", nil).status == 429 {
				limited++
			}
		}
		assert.InDelta(t, 100, limited, 30, "about half")
		assert.Equal(t, limited, s.Stats().Rejected429)
	})
}

func TestServerErrorFault(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{Seed: 7})
	s.SetFaults(Faults{Error5xxRate: 1})
	seen := map[int]int{}
	for range 60 {
		r := c.do(http.MethodPost, "/scim/v2/Users", user("never@example.com"))
		requireSCIMError(t, r, r.status, "")
		seen[r.status]++
	}
	assert.Len(t, seen, 3, "a mix of 500, 502 and 503: %v", seen)
	for code := range seen {
		assert.Contains(t, []int{500, 502, 503}, code)
	}
	assert.Zero(t, s.Len(Users), "injected errors happen before the request is handled")
	assert.Equal(t, 60, s.Stats().Injected5xx)
}

func TestPhantomWriteFault(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	s.SetFaults(Faults{PhantomWriteRate: 1})
	r := c.do(http.MethodPost, "/scim/v2/Users", user("phantom@example.com"))
	requireSCIMError(t, r, http.StatusBadGateway, "")
	assert.Equal(t, 1, s.Len(Users), "the write was applied although the client saw 502")
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status, "reads are not affected")

	s.SetFaults(Faults{})
	requireSCIMError(t, c.do(http.MethodPost, "/scim/v2/Users", user("phantom@example.com")), http.StatusConflict, scimUniqueness)
	list := c.do(http.MethodGet, "/scim/v2/Users?filter="+url.QueryEscape(`userName eq "phantom@example.com"`), nil)
	assert.Equal(t, float64(1), list.body["totalResults"], "resolve-by-key finds the phantom write")
	assert.Equal(t, 1, s.Stats().PhantomWrites)
}

func TestOutageFault(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s, c := setup(t, Config{Now: clock.Now})
	s.SetFaults(Faults{OutageFrom: clock.Now().Add(time.Minute), OutageUntil: clock.Now().Add(2 * time.Minute)})
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status, "before the window")

	clock.Advance(time.Minute + 30*time.Second)
	r := c.do(http.MethodGet, "/scim/v2/Users", nil)
	requireSCIMError(t, r, http.StatusServiceUnavailable, "")
	assert.Equal(t, "30", r.header.Get("Retry-After"))
	tok := c.form("/oauth2/token/"+DefaultAppID, url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}}, DefaultClientID, DefaultClientSecret)
	assert.Equal(t, http.StatusServiceUnavailable, tok.status, "the token endpoint is down too")
	assert.Equal(t, "temporarily_unavailable", tok.body["error"])
	admin := c.doWith(http.MethodGet, "/admin/stats", nil, nil)
	assert.Equal(t, 200, admin.status, "admin endpoints stay up")

	clock.Advance(30 * time.Second)
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status, "after the window")
	assert.Equal(t, 2, s.Stats().Outage503)

	s.SetFaults(Faults{OutageFrom: clock.Now().Add(-time.Second)})
	r = c.do(http.MethodGet, "/scim/v2/Users", nil)
	requireSCIMError(t, r, http.StatusServiceUnavailable, "")
	assert.Empty(t, r.header.Get("Retry-After"), "an open-ended outage gives no Retry-After")
}

func TestLatencyFault(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	s.SetFaults(Faults{Latency: 80 * time.Millisecond, LatencyJitter: 20 * time.Millisecond})
	start := time.Now()
	assert.Equal(t, 200, c.do(http.MethodGet, "/scim/v2/Users", nil).status)
	assert.GreaterOrEqual(t, time.Since(start), 80*time.Millisecond)
	l := s.Stats().Latency["GET /scim/v2/Users"]
	assert.Equal(t, 1, l.Count)
	assert.GreaterOrEqual(t, l.Max, 80*time.Millisecond, "recorded latency includes the injected delay")
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	const latency = 600 * time.Millisecond
	s.SetFaults(Faults{MaxConcurrent: 2, Latency: latency, RetryAfter: time.Second})

	type result struct {
		status  int
		elapsed time.Duration
		retry   string
	}
	results := make([]result, 6)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			r := c.do(http.MethodGet, "/scim/v2/Users", nil)
			results[i] = result{r.status, time.Since(t0), r.header.Get("Retry-After")}
		}()
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for _, r := range results {
		counts[r.status]++
		if r.status == 429 {
			assert.Less(t, r.elapsed, latency/2, "over the limit is refused at once, without the latency")
			assert.Equal(t, "1", r.retry)
		}
	}
	assert.Equal(t, map[int]int{200: 2, 429: 4}, counts)
	st := s.Stats()
	assert.Equal(t, 2, st.MaxInFlight)
	assert.Equal(t, 4, st.RejectedConcurrency)
	assert.Equal(t, 4, st.Rejected429)
	assert.Zero(t, st.InFlight)
}

func TestFaultsValidation(t *testing.T) {
	t.Parallel()
	err := Faults{RateLimit429: 1.5, Error5xxRate: -0.1, Latency: -time.Second, MaxConcurrent: -1,
		OutageFrom: time.Unix(100, 0), OutageUntil: time.Unix(50, 0)}.Validate()
	require.Error(t, err)
	for _, field := range []string{"Faults.RateLimit429", "Faults.Error5xxRate", "Faults.Latency", "Faults.MaxConcurrent", "Faults.OutageUntil"} {
		assert.Contains(t, err.Error(), field)
	}
	_, err = New(Config{Faults: Faults{PhantomWriteRate: 2}, TokenTTL: time.Millisecond, BaseURL: "ftp://x"})
	require.Error(t, err)
	for _, field := range []string{"Config.Faults", "Faults.PhantomWriteRate", "Config.TokenTTL", "Config.BaseURL"} {
		assert.Contains(t, err.Error(), field)
	}

	s, err := New(Config{})
	require.NoError(t, err)
	s.SetFaults(Faults{RateLimit429: 5, Latency: -time.Second, MaxConcurrent: 3})
	assert.Equal(t, Faults{RateLimit429: 1, MaxConcurrent: 3}, s.Faults(), "SetFaults clamps")
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	f := Faults{Latency: 50 * time.Millisecond, LatencyJitter: 10 * time.Millisecond, RateLimit429: 0.25,
		RetryAfter: time.Second, Error5xxRate: 0.01, MaxConcurrent: 20, ExpireTokensAfter: time.Minute,
		OutageFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), OutageUntil: time.Date(2025, 1, 1, 1, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(f)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"latency":"50ms"`)
	var back Faults
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, f, back)
	require.NoError(t, json.Unmarshal([]byte(`{"latency": 1000000}`), &back))
	assert.Equal(t, time.Millisecond, back.Latency, "integer nanoseconds work too")
	assert.Error(t, json.Unmarshal([]byte(`{"latncy": "1s"}`), &back), "unknown fields are errors")
	assert.Error(t, json.Unmarshal([]byte(`{"latency": "soon"}`), &back))
}

func TestAdminFaults(t *testing.T) {
	t.Parallel()
	s, c := setup(t, Config{})
	r := c.doWith(http.MethodPut, "/admin/faults", `{"latency":"5ms","rateLimit429":0.5,"retryAfter":"3s","maxConcurrent":4}`, nil)
	require.Equal(t, 200, r.status, "%s", r.raw)
	assert.Equal(t, Faults{Latency: 5 * time.Millisecond, RateLimit429: 0.5, RetryAfter: 3 * time.Second, MaxConcurrent: 4}, s.Faults())
	got := c.doWith(http.MethodGet, "/admin/faults", nil, nil)
	assert.Equal(t, "3s", got.body["retryAfter"])
	for _, bad := range []string{`{"rateLimit429": 2}`, `{"nope": 1}`, `not json`, `{"latency": "-1s"}`} {
		r := c.doWith(http.MethodPut, "/admin/faults", bad, nil)
		assert.Equal(t, 400, r.status, bad)
		assert.NotEmpty(t, r.body["error"])
	}
	assert.Equal(t, 0.5, s.Faults().RateLimit429, "rejected updates change nothing")
	assert.True(t, strings.HasPrefix(c.doWith(http.MethodDelete, "/admin/faults", nil, nil).str("error"), "method"))
}
