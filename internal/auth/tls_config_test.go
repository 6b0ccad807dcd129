package auth

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth/authtest"
)

func TestTLSConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  TLSConfig
		want string
	}{
		{cfg: TLSConfig{}},
		{cfg: TLSConfig{MinVersion: "1.2"}},
		{cfg: TLSConfig{MinVersion: "1.3"}},
		{cfg: TLSConfig{MinVersion: "1.1"}, want: `tls.minVersion: "1.1" is refused: TLS below 1.2 is deprecated`},
		{cfg: TLSConfig{MinVersion: "1.0"}, want: `tls.minVersion: "1.0" is refused`},
		{cfg: TLSConfig{MinVersion: "1.4"}, want: `tls.minVersion: "1.4" is not one of 1.2, 1.3`},
		{cfg: TLSConfig{CertFile: "c.pem"}, want: "tls.certFile, tls.keyFile: a client certificate needs both files"},
		{cfg: TLSConfig{InsecureSkipVerify: true}, want: "tls.insecureSkipVerify: refused"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == "" {
			assert.NoError(t, err, "%+v", tt.cfg)
			continue
		}
		if assert.Error(t, err, "%+v", tt.cfg) {
			assert.Contains(t, err.Error(), tt.want)
		}
	}
}

func TestTLSConfigBuildErrors(t *testing.T) {
	t.Parallel()
	_, err := TLSConfig{CAFile: "/nonexistent/ca.pem"}.Build()
	require.ErrorContains(t, err, "tls.caFile: open /nonexistent/ca.pem")
	pki := authtest.MustPKI(t)
	_, err = TLSConfig{CAFile: pki.ServerKeyFile}.Build()
	require.ErrorContains(t, err, "holds no PEM certificate")
	_, err = TLSConfig{CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile}.Build()
	require.ErrorContains(t, err, "tls.certFile, tls.keyFile: load client certificate")
}

// tlsServer starts an HTTPS server answering 204 with the given server TLS settings.
func tlsServer(t *testing.T, cfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLSConfigAgainstServers(t *testing.T) {
	t.Parallel()
	pki := authtest.MustPKI(t)
	tests := []struct {
		name      string
		server    *tls.Config
		client    TLSConfig
		wantErr   string
		configErr bool
	}{
		{name: "custom CA trusted", server: pki.ServerTLS(0, 0, false), client: TLSConfig{CAFile: pki.CAFile}},
		{name: "unknown CA refused", server: pki.ServerTLS(0, 0, false), client: TLSConfig{},
			wantErr: "certificate signed by unknown authority", configErr: true},
		{name: "server capped at TLS 1.1", server: pki.ServerTLS(tls.VersionTLS10, tls.VersionTLS11, false),
			client: TLSConfig{CAFile: pki.CAFile}, wantErr: "protocol version not supported", configErr: true},
		{name: "min 1.3 against a 1.2 server", server: pki.ServerTLS(tls.VersionTLS12, tls.VersionTLS12, false),
			client: TLSConfig{CAFile: pki.CAFile, MinVersion: "1.3"}, wantErr: "protocol version not supported", configErr: true},
		{name: "client certificate presented", server: pki.ServerTLS(0, 0, true),
			client: TLSConfig{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "client certificate missing", server: pki.ServerTLS(tls.VersionTLS12, tls.VersionTLS12, true),
			client: TLSConfig{CAFile: pki.CAFile}, wantErr: "tls:", configErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tlsServer(t, tt.server)
			cfg, err := tt.client.Build()
			require.NoError(t, err)
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			t.Cleanup(c.CloseIdleConnections)
			resp, err := c.Get(srv.URL)
			if tt.wantErr == "" {
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusNoContent, resp.StatusCode)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Equal(t, tt.configErr, IsTLSConfigError(err))
		})
	}
}
