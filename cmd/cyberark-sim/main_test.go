package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer collects stderr from the server goroutine safely.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the program on a free port and returns its base URL; the program is stopped and
// required to exit cleanly when the test ends.
func start(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runWithEnv(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, outW, stderr)
		outW.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, outR)
	}()
	var base string
	select {
	case line, ok := <-lines:
		require.True(t, ok, "no output; stderr: %s", stderr.String())
		base = strings.TrimPrefix(line, "listening on ")
		require.NotEqual(t, line, base, "first line %q", line)
	case err := <-done:
		cancel()
		t.Fatalf("run returned early: %v; stderr: %s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "clean shutdown")
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
		assert.NotContains(t, stderr.String(), "Secr3t", "secrets are never logged")
	})
	return base
}

func roundTrip(t *testing.T, client *http.Client, base, secret string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"scim"}}
	req, err := http.NewRequest(http.MethodPost, base+"/oauth2/token/scimflow", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("scimflow-client", secret)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.Equal(t, http.StatusOK, doJSON(t, client, req, &tok))
	require.NotEmpty(t, tok.AccessToken)

	body := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cmd@example.com","password":"Str0ngPassw0rd"}`
	req, _ = http.NewRequest(http.MethodPost, base+"/scim/v2/Users", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/scim+json")
	var created map[string]any
	require.Equal(t, http.StatusCreated, doJSON(t, client, req, &created))
	id, _ := created["id"].(string)
	require.NotEmpty(t, id)

	req, _ = http.NewRequest(http.MethodGet, base+"/scim/v2/Users/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	var got map[string]any
	require.Equal(t, http.StatusOK, doJSON(t, client, req, &got))
	assert.Equal(t, "cmd@example.com", got["userName"])
}

func doJSON(t *testing.T, client *http.Client, req *http.Request, out any) int {
	t.Helper()
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, out), "%s", raw)
	}
	return resp.StatusCode
}

func TestRunRoundTrip(t *testing.T) {
	t.Parallel()
	base := start(t, map[string]string{"SIM_CLIENT_SECRET": "Secr3t-from-env"}, "--seed-users", "5", "--log-level", "debug")
	client := &http.Client{Timeout: 10 * time.Second}
	roundTrip(t, client, base, "Secr3t-from-env")

	var stats struct {
		Requests map[string]int `json:"requests"`
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/admin/stats", nil)
	require.Equal(t, http.StatusOK, doJSON(t, client, req, &stats))
	assert.Equal(t, 1, stats.Requests["POST /scim/v2/Users"])
	var state struct{ Users []map[string]any }
	req, _ = http.NewRequest(http.MethodGet, base+"/admin/state", nil)
	require.Equal(t, http.StatusOK, doJSON(t, client, req, &state))
	assert.Len(t, state.Users, 6, "five synthetic users and the one created")
}

func TestRunFlagsWinOverEnv(t *testing.T) {
	t.Parallel()
	base := start(t, map[string]string{"SIM_CLIENT_SECRET": "from-env"}, "--client-secret", "Secr3t-flag", "--generic", "--latency", "1ms", "--max-concurrent", "4")
	roundTrip(t, &http.Client{Timeout: 10 * time.Second}, base, "Secr3t-flag")
}

func TestRunTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSignedCert(t)
	base := start(t, nil, "--tls-cert", certFile, "--tls-key", keyFile)
	require.True(t, strings.HasPrefix(base, "https://"), base)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	roundTrip(t, client, base, "scimflow-secret")
	client.CloseIdleConnections()

	old := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
	_, err := old.Get(base + "/scim/v2/ServiceProviderConfig")
	assert.Error(t, err, "TLS 1.1 is refused")
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"--nope"}, "flag provided but not defined"},
		{[]string{"--rate-429", "2"}, "Faults.RateLimit429"},
		{[]string{"--tls-cert", "x.pem"}, "go together"},
		{[]string{"--seed-users", "-1"}, "must not be negative"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--listen", "256.0.0.1:1"}, "listen on"},
		{[]string{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, "load TLS key pair"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			err := runWithEnv(context.Background(), tt.args, func(string) string { return "" }, io.Discard, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	assert.NoError(t, runWithEnv(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard), "help is not an error")
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key to a temp dir.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cyberark-sim test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
