package cyberarksim

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"testing"
)

// NewTestServer starts a Server behind an httptest.Server on a loopback port and closes it when
// the test ends. Links in responses and Snapshot use the server's URL unless cfg.BaseURL is set.
func NewTestServer(tb testing.TB, cfg Config) (*Server, *httptest.Server) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("start simulator: %v", err)
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.useTestURL(ts.URL)
	return s, ts
}

// NewTLSTestServer is NewTestServer over TLS with the protocol versions limited to
// [minVersion, maxVersion] (tls.VersionTLS10 … tls.VersionTLS13), so tests can check that a
// client refuses a server capped below TLS 1.2. ts.Client() trusts the server's certificate;
// ts.Certificate() gives it for custom clients. Handshake failures are not logged.
func NewTLSTestServer(tb testing.TB, cfg Config, minVersion, maxVersion uint16) (*Server, *httptest.Server) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("start simulator: %v", err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = &tls.Config{MinVersion: minVersion, MaxVersion: maxVersion}
	if minVersion < tls.VersionTLS12 {
		// Go's default suites for TLS 1.0/1.1 need ECDHE, which the test certificate supports;
		// listing them keeps old-version handshakes possible whatever the defaults become.
		ts.TLS.CipherSuites = []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		}
	}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	tb.Cleanup(ts.Close)
	s.useTestURL(ts.URL)
	return s, ts
}

// useTestURL makes links use url unless Config.BaseURL was set.
func (s *Server) useTestURL(url string) {
	if s.cfg.BaseURL == "" {
		s.baseURL.Store(&url)
	}
}
