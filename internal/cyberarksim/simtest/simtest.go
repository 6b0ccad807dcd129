// Package simtest starts the CyberArk simulator (internal/cyberarksim) behind httptest servers for
// tests. It lives apart from the simulator so that the product binaries, which embed the simulator
// (worker demo, cyberark-sim), do not link testing and net/http/httptest.
package simtest

import (
	"crypto/tls"
	"io"
	"log"
	"net/http/httptest"
	"testing"

	"github.com/scimflow/scimflow/internal/cyberarksim"
)

// MustStart starts a simulator behind an httptest.Server on a loopback port and closes it when the
// test ends. Links in responses and Snapshot use the server's URL unless cfg.BaseURL is set.
func MustStart(tb testing.TB, cfg cyberarksim.Config) (*cyberarksim.Server, *httptest.Server) {
	tb.Helper()
	s, err := cyberarksim.New(cfg)
	if err != nil {
		tb.Fatalf("start simulator: %v", err)
	}
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	s.UseURL(ts.URL)
	return s, ts
}

// MustStartTLS is MustStart over TLS with the protocol versions limited to [minVersion, maxVersion]
// (tls.VersionTLS10 … tls.VersionTLS13), so tests can check that a client refuses a server capped
// below TLS 1.2. ts.Client() trusts the server's certificate; ts.Certificate() gives it for custom
// clients. Handshake failures are not logged.
func MustStartTLS(tb testing.TB, cfg cyberarksim.Config, minVersion, maxVersion uint16) (*cyberarksim.Server, *httptest.Server) {
	tb.Helper()
	s, err := cyberarksim.New(cfg)
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
	s.UseURL(ts.URL)
	return s, ts
}
