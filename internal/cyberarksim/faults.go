package cyberarksim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Faults are the failures the simulator injects. The zero value injects none. Latency, 429s,
// 5xx and the concurrency limit apply to SCIM requests only; the outage window applies to SCIM
// and token requests; admin requests are never faulted.
type Faults struct {
	// Latency is added before every SCIM request is handled.
	Latency time.Duration
	// LatencyJitter adds a uniformly distributed extra 0..LatencyJitter to Latency.
	LatencyJitter time.Duration
	// RateLimit429 is the fraction (0..1) of SCIM requests answered 429 Too Many Requests.
	RateLimit429 float64
	// RetryAfter, when > 0, is sent as Retry-After (whole seconds, rounded up) on every 429;
	// when 0, 429s carry no Retry-After.
	RetryAfter time.Duration
	// Error5xxRate is the fraction (0..1) of SCIM requests answered with a server error, one
	// third each 500, 502 and 503, before the request is handled.
	Error5xxRate float64
	// PhantomWriteRate is the fraction (0..1) of SCIM writes (POST, PUT, PATCH, DELETE) that are
	// applied but answered 502, as when a gateway loses the upstream's reply: the client must
	// find out by reading back (resolve-by-key before create, 409 treated as a match).
	PhantomWriteRate float64
	// OutageFrom and OutageUntil bound a window [From, Until) in which every SCIM and token
	// request gets 503 with Retry-After set to the seconds left. A zero From starts the window
	// at once; a zero Until leaves it open; both zero means no outage.
	OutageFrom, OutageUntil time.Time
	// MaxConcurrent > 0 answers 429 at once to SCIM requests beyond this many in flight
	// (latency included).
	MaxConcurrent int
	// ExpireTokensAfter > 0 makes tokens stop working this long after issue, whatever TokenTTL
	// (and expires_in) say: clients must survive an unexpected 401 by fetching a new token.
	ExpireTokensAfter time.Duration
}

// Validate reports every out-of-range field, each error naming its field.
func (f Faults) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Faults.Latency", f.Latency}, {"Faults.LatencyJitter", f.LatencyJitter}, {"Faults.RetryAfter", f.RetryAfter}, {"Faults.ExpireTokensAfter", f.ExpireTokensAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s: must not be negative", d.name, d.v))
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"Faults.RateLimit429", f.RateLimit429}, {"Faults.Error5xxRate", f.Error5xxRate}, {"Faults.PhantomWriteRate", f.PhantomWriteRate}} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("%s %v: must be a fraction between 0 and 1", r.name, r.v))
		}
	}
	if f.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("Faults.MaxConcurrent %d: must not be negative", f.MaxConcurrent))
	}
	if !f.OutageFrom.IsZero() && !f.OutageUntil.IsZero() && !f.OutageUntil.After(f.OutageFrom) {
		errs = append(errs, fmt.Errorf("Faults.OutageUntil %s: must be after OutageFrom %s", f.OutageUntil.Format(time.RFC3339), f.OutageFrom.Format(time.RFC3339)))
	}
	return errors.Join(errs...)
}

// clamped returns f with every out-of-range value moved into range.
func (f Faults) clamped() Faults {
	f.Latency, f.LatencyJitter = max(f.Latency, 0), max(f.LatencyJitter, 0)
	f.RetryAfter, f.ExpireTokensAfter = max(f.RetryAfter, 0), max(f.ExpireTokensAfter, 0)
	clamp := func(v float64) float64 {
		if !(v >= 0) { // NaN too
			return 0
		}
		return min(v, 1)
	}
	f.RateLimit429, f.Error5xxRate, f.PhantomWriteRate = clamp(f.RateLimit429), clamp(f.Error5xxRate), clamp(f.PhantomWriteRate)
	f.MaxConcurrent = max(f.MaxConcurrent, 0)
	if !f.OutageFrom.IsZero() && !f.OutageUntil.IsZero() && !f.OutageUntil.After(f.OutageFrom) {
		f.OutageFrom, f.OutageUntil = time.Time{}, time.Time{}
	}
	return f
}

// inOutage reports whether now falls in the outage window, and the time left in it (0 when the
// window is open-ended).
func (f Faults) inOutage(now time.Time) (bool, time.Duration) {
	if f.OutageFrom.IsZero() && f.OutageUntil.IsZero() {
		return false, 0
	}
	if !f.OutageFrom.IsZero() && now.Before(f.OutageFrom) {
		return false, 0
	}
	if f.OutageUntil.IsZero() {
		return true, 0
	}
	if now.Before(f.OutageUntil) {
		return true, f.OutageUntil.Sub(now)
	}
	return false, 0
}

// faultsJSON is the JSON form of Faults used by the admin endpoint: durations as Go duration
// strings ("250ms"), times as RFC 3339.
type faultsJSON struct {
	Latency           duration   `json:"latency,omitempty"`
	LatencyJitter     duration   `json:"latencyJitter,omitempty"`
	RateLimit429      float64    `json:"rateLimit429,omitempty"`
	RetryAfter        duration   `json:"retryAfter,omitempty"`
	Error5xxRate      float64    `json:"error5xxRate,omitempty"`
	PhantomWriteRate  float64    `json:"phantomWriteRate,omitempty"`
	OutageFrom        *time.Time `json:"outageFrom,omitempty"`
	OutageUntil       *time.Time `json:"outageUntil,omitempty"`
	MaxConcurrent     int        `json:"maxConcurrent,omitempty"`
	ExpireTokensAfter duration   `json:"expireTokensAfter,omitempty"`
}

// MarshalJSON renders durations as strings such as "1.5s".
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{
		Latency: duration(f.Latency), LatencyJitter: duration(f.LatencyJitter),
		RateLimit429: f.RateLimit429, RetryAfter: duration(f.RetryAfter),
		Error5xxRate: f.Error5xxRate, PhantomWriteRate: f.PhantomWriteRate,
		MaxConcurrent: f.MaxConcurrent, ExpireTokensAfter: duration(f.ExpireTokensAfter),
	}
	if !f.OutageFrom.IsZero() {
		j.OutageFrom = &f.OutageFrom
	}
	if !f.OutageUntil.IsZero() {
		j.OutageUntil = &f.OutageUntil
	}
	return json.Marshal(j)
}

// UnmarshalJSON accepts the MarshalJSON form; durations may also be integer nanoseconds. Unknown
// fields are an error.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*f = Faults{
		Latency: time.Duration(j.Latency), LatencyJitter: time.Duration(j.LatencyJitter),
		RateLimit429: j.RateLimit429, RetryAfter: time.Duration(j.RetryAfter),
		Error5xxRate: j.Error5xxRate, PhantomWriteRate: j.PhantomWriteRate,
		MaxConcurrent: j.MaxConcurrent, ExpireTokensAfter: time.Duration(j.ExpireTokensAfter),
	}
	if j.OutageFrom != nil {
		f.OutageFrom = *j.OutageFrom
	}
	if j.OutageUntil != nil {
		f.OutageUntil = *j.OutageUntil
	}
	return nil
}

// duration is a time.Duration that travels in JSON as a duration string.
type duration time.Duration

func (d duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: %w", s, err)
		}
		*d = duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string such as \"250ms\" or integer nanoseconds, not %s", b)
	}
	*d = duration(n)
	return nil
}
