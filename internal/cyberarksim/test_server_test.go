package cyberarksim

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"testing"
)

// NewTestServer is simtest.MustStart for this package's own tests, which cannot import simtest
// (simtest imports this package).
func NewTestServer(tb testing.TB, cfg Config) (*Server, *httptest.Server) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("start simulator: %v", err)
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.UseURL(ts.URL)
	return s, ts
}

// NewTLSTestServer is simtest.MustStartTLS for this package's own tests.
func NewTLSTestServer(tb testing.TB, cfg Config, minVersion, maxVersion uint16) (*Server, *httptest.Server) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("start simulator: %v", err)
	}
	ts := httptest.NewUnstartedServer(s)
	ts.TLS = &tls.Config{MinVersion: minVersion, MaxVersion: maxVersion}
	if minVersion < tls.VersionTLS12 {
		ts.TLS.CipherSuites = []uint16{
			tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		}
	}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	tb.Cleanup(ts.Close)
	s.UseURL(ts.URL)
	return s, ts
}
