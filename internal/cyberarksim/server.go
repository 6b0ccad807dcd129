package cyberarksim

import (
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// realm names the simulator in WWW-Authenticate challenges.
const realm = "cyberark-sim"

// Server is the simulated SCIM server. It implements http.Handler; every method is safe for
// concurrent use.
type Server struct {
	cfg    Config
	log    zerolog.Logger
	faults atomic.Pointer[Faults]
	stats  *statsRecorder
	tokens *tokenStore

	mu     sync.RWMutex // guards db and pdSeq
	db     *store
	pdSeq  uint64
	served []*resourceType // resource types of the profile

	rngMu sync.Mutex
	rng   *rand.Rand

	baseURL atomic.Pointer[string] // Config.BaseURL, or the URL given to UseURL
}

// New returns a Server configured by cfg, or an error naming each invalid field.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cyberarksim: invalid config: %w", err)
	}
	cfg = cfg.withDefaults()
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		stats:  newStatsRecorder(),
		tokens: newTokenStore(),
		db:     newStore(),
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	for _, rt := range allResourceTypes {
		if !rt.pam || !cfg.Generic {
			s.served = append(s.served, rt)
		}
	}
	f := cfg.Faults
	s.faults.Store(&f)
	s.baseURL.Store(&cfg.BaseURL)
	return s, nil
}

// SetFaults replaces the fault-injection settings for requests that start from now on.
// Out-of-range values are clamped into range and logged; use Faults.Validate to reject them.
func (s *Server) SetFaults(f Faults) {
	if err := f.Validate(); err != nil {
		s.log.Warn().Err(err).Msg("clamping out-of-range faults")
		f = f.clamped()
	}
	s.faults.Store(&f)
}

// Faults returns the current fault-injection settings.
func (s *Server) Faults() Faults { return *s.faults.Load() }

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() { s.stats.reset() }

// Reset drops every resource and zeroes the counters; issued tokens stay valid.
func (s *Server) Reset() {
	s.mu.Lock()
	s.db.reset()
	s.pdSeq = 0
	s.mu.Unlock()
	s.stats.reset()
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) randFloat() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

func (s *Server) randN(n int64) int64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Int64N(n)
}

// ServeHTTP routes OAuth, SCIM and admin requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(p, "/admin/"):
		s.serveAdmin(w, r)
	case strings.HasPrefix(p, "/oauth2/token/"):
		s.counted(w, r, s.serveToken)
	case strings.HasPrefix(p, "/oauth2/revoke/"):
		s.counted(w, r, s.serveRevoke)
	case strings.HasPrefix(p, "/scim/"):
		s.counted(w, r, s.serveSCIM)
	default:
		s.counted(w, r, func(w http.ResponseWriter, r *http.Request) {
			writeSCIMError(w, notFound("no endpoint at %s", r.URL.Path))
		})
	}
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// counted runs h and records the request in Stats and the log.
func (s *Server) counted(w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h(sw, r)
	elapsed := time.Since(start)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	key := statsKey(r.Method, r.URL)
	s.stats.record(key, sw.status, elapsed)
	s.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
		Dur("elapsed", elapsed).Msg("request")
}

// serveSCIM applies faults and authentication, then routes the request.
func (s *Server) serveSCIM(w http.ResponseWriter, r *http.Request) {
	f := s.faults.Load()
	if out, left := f.inOutage(s.now()); out {
		s.stats.add(func(st *Stats) *int { return &st.Outage503 })
		writeSCIMError(w, outageError(left))
		return
	}
	if !s.stats.enter(f.MaxConcurrent) {
		s.stats.add(func(st *Stats) *int { return &st.RejectedConcurrency })
		writeSCIMError(w, tooManyRequests(f, "too many concurrent requests (limit %d)", f.MaxConcurrent))
		return
	}
	defer s.stats.leave()
	if d := s.latency(f); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			writeSCIMError(w, newSCIMError(http.StatusServiceUnavailable, "", "request cancelled while delayed"))
			return
		}
	}
	if f.RateLimit429 > 0 && s.randFloat() < f.RateLimit429 {
		writeSCIMError(w, tooManyRequests(f, "rate limit exceeded"))
		return
	}
	if f.Error5xxRate > 0 && s.randFloat() < f.Error5xxRate {
		s.stats.add(func(st *Stats) *int { return &st.Injected5xx })
		code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s.randN(3)]
		writeSCIMError(w, newSCIMError(code, "", "injected server error"))
		return
	}
	if err := s.authenticate(r); err != nil {
		s.stats.add(func(st *Stats) *int { return &st.Unauthorized })
		writeSCIMError(w, err)
		return
	}
	if isWrite(r.Method) && f.PhantomWriteRate > 0 && s.randFloat() < f.PhantomWriteRate {
		s.stats.add(func(st *Stats) *int { return &st.PhantomWrites })
		s.routeSCIM(discardResponse{header: http.Header{}}, r)
		writeSCIMError(w, newSCIMError(http.StatusBadGateway, "", "upstream reply lost (the request may have been applied)"))
		return
	}
	s.routeSCIM(w, r)
}

// discardResponse is where a phantom write's real answer goes: nowhere.
type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d discardResponse) WriteHeader(int)             {}

// UseURL makes links in responses and Snapshot use url, the address the server is reached at,
// unless Config.BaseURL was set. It is for servers whose address is known only once they listen
// (port 0, internal/cyberarksim/simtest).
func (s *Server) UseURL(url string) {
	if s.cfg.BaseURL == "" {
		s.baseURL.Store(&url)
	}
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// latency draws the injected delay: Latency plus uniform 0..LatencyJitter.
func (s *Server) latency(f *Faults) time.Duration {
	d := f.Latency
	if f.LatencyJitter > 0 {
		d += time.Duration(s.randN(int64(f.LatencyJitter) + 1))
	}
	return d
}

func tooManyRequests(f *Faults, format string, args ...any) *scimError {
	e := newSCIMError(http.StatusTooManyRequests, "", format, args...)
	if f.RetryAfter > 0 {
		e.withHeader("Retry-After", strconv.FormatInt(ceilSeconds(f.RetryAfter), 10))
	}
	return e
}

func outageError(left time.Duration) *scimError {
	e := newSCIMError(http.StatusServiceUnavailable, "", "service unavailable (scheduled outage)")
	if left > 0 {
		e.withHeader("Retry-After", strconv.FormatInt(ceilSeconds(left), 10))
	}
	return e
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// authenticate checks the request's credentials against the bearer tokens issued, the static
// token and, when enabled, HTTP Basic. Challenges follow RFC 6750 §3: no error code when the
// request carries no credentials, error="invalid_token" when it carries a bad one.
func (s *Server) authenticate(r *http.Request) *scimError {
	if !*s.cfg.RequireAuth {
		return nil
	}
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch {
	case h == "":
		return s.challenge("", "authentication required: send a bearer token")
	case strings.EqualFold(scheme, "Bearer"):
		if s.cfg.StaticToken != "" && subtle.ConstantTimeCompare([]byte(cred), []byte(s.cfg.StaticToken)) == 1 {
			return nil
		}
		state, _ := s.tokens.check(cred, s.now(), s.faults.Load().ExpireTokensAfter)
		switch state {
		case tokenValid:
			return nil
		case tokenExpired:
			return s.challenge("invalid_token", "the access token expired")
		}
		return s.challenge("invalid_token", "the access token is invalid or was revoked")
	case strings.EqualFold(scheme, "Basic") && s.cfg.BasicAuth:
		id, secret, ok := decodeBasic(cred)
		if ok && s.clientMatches(id, secret) {
			return nil
		}
		return s.challenge("invalid_token", "invalid client credentials")
	}
	return s.challenge("", fmt.Sprintf("unsupported authentication scheme %q", scheme))
}

func (s *Server) challenge(code, detail string) *scimError {
	e := newSCIMError(http.StatusUnauthorized, "", "%s", detail)
	v := `Bearer realm="` + realm + `"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + strings.ReplaceAll(detail, `"`, `'`) + `"`
	}
	e.withHeader("WWW-Authenticate", v)
	if s.cfg.BasicAuth {
		e.withHeader("WWW-Authenticate", `Basic realm="`+realm+`"`)
	}
	return e
}

// clientMatches compares client credentials in constant time.
func (s *Server) clientMatches(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(s.cfg.ClientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret))
	return idOK&secretOK == 1
}

// decodeBasic decodes HTTP Basic credentials.
func decodeBasic(cred string) (user, pass string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// base is the URL prefix written in links for r.
func (s *Server) base(r *http.Request) string {
	if b := *s.baseURL.Load(); b != "" {
		return b
	}
	if r == nil {
		return ""
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// mediaTypeOK reports whether a Content-Type header names JSON or SCIM JSON.
func mediaTypeOK(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == scimMediaType || mt == "application/json"
}

// acceptOK reports whether an Accept header admits application/scim+json or application/json.
func acceptOK(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		switch mt {
		case "*/*", "application/*", scimMediaType, "application/json":
			return true
		}
	}
	return false
}
