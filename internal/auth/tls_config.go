package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// TLSConfig configures TLS towards the target and its token endpoint.
type TLSConfig struct {
	// MinVersion is "1.2" (default) or "1.3". Anything lower is refused: TLS 1.0 and 1.1 are
	// deprecated (RFC 8996) and the Omada connector requires "TLS 1.2 or higher".
	MinVersion string `yaml:"minVersion"`
	// CAFile is a PEM bundle of the CAs trusted for the target. When set it replaces the system
	// roots: a private deployment pins its own CA instead of also trusting every public one.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are a PEM client certificate and key for mutual TLS; both or neither.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// InsecureSkipVerify is always refused by Validate. It exists so that a config asking for it
	// fails loudly instead of being silently ignored; trust a private CA with CAFile instead.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// tlsVersions maps the accepted MinVersion spellings.
var tlsVersions = map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// Validate checks the settings without reading files; Build reads them.
func (t TLSConfig) Validate() error {
	var errs []error
	if _, ok := tlsVersions[t.MinVersion]; !ok {
		switch t.MinVersion {
		case "1.0", "1.1", "1", "ssl3", "SSLv3", "TLS1.0", "TLS1.1":
			errs = append(errs, fmt.Errorf("tls.minVersion: %q is refused: TLS below 1.2 is deprecated (RFC 8996); use 1.2 or 1.3", t.MinVersion))
		default:
			errs = append(errs, fmt.Errorf("tls.minVersion: %q is not one of 1.2, 1.3", t.MinVersion))
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls.certFile, tls.keyFile: a client certificate needs both files"))
	}
	if t.InsecureSkipVerify {
		errs = append(errs, errors.New("tls.insecureSkipVerify: refused: certificate verification cannot be turned off; trust the server's CA with tls.caFile"))
	}
	return errors.Join(errs...)
}

// Build validates the settings, reads the files and returns the tls.Config to use.
func (t TLSConfig) Build() (*tls.Config, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tlsVersions[t.MinVersion]}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.caFile: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.certFile, tls.keyFile: load client certificate %s: %w", t.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// IsTLSConfigError reports whether err is a TLS failure that retrying cannot fix: an untrusted,
// expired or mismatched certificate, a TLS alert such as protocol_version (no common version), or
// a client certificate the server refused.
func IsTLSConfigError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		alert            tls.AlertError
		verify           *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		op               *net.OpError
	)
	// A TLS alert from the peer arrives as a net.OpError with Op "remote error".
	remoteAlert := errors.As(err, &op) && op.Op == "remote error"
	return remoteAlert || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &alert) || errors.As(err, &verify) || errors.As(err, &recordHeader)
}
