// Package authtest provides test helpers for TLS: a throwaway certificate authority issuing
// server and client certificates, written as PEM files into a test's temporary directory.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test certificate authority with one server and one client certificate.
type PKI struct {
	// CAFile, ServerCertFile, ServerKeyFile, ClientCertFile and ClientKeyFile are PEM files.
	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
	// CAPool trusts the CA; Server is the server's key pair (for 127.0.0.1, ::1 and localhost).
	CAPool *x509.CertPool
	Server tls.Certificate
	Client tls.Certificate
}

// MustPKI creates a CA and its certificates under tb.TempDir.
func MustPKI(tb testing.TB) *PKI {
	tb.Helper()
	dir := tb.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("generate CA key: %v", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "scimflow test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatalf("create CA: %v", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &PKI{CAPool: x509.NewCertPool()}
	p.CAPool.AddCert(caCert)
	p.CAFile = writePEM(tb, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, name string, usage x509.ExtKeyUsage) (tls.Certificate, string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatalf("generate %s key: %v", name, err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			tb.Fatalf("issue %s certificate: %v", name, err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			tb.Fatalf("marshal %s key: %v", name, err)
		}
		certFile := writePEM(tb, dir, name+".pem", "CERTIFICATE", der)
		keyFile := writePEM(tb, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			tb.Fatalf("load %s key pair: %v", name, err)
		}
		return pair, certFile, keyFile
	}
	p.Server, p.ServerCertFile, p.ServerKeyFile = issue(2, "server", x509.ExtKeyUsageServerAuth)
	p.Client, p.ClientCertFile, p.ClientKeyFile = issue(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// ServerTLS returns a server tls.Config with the server certificate, limited to the given
// versions (0 means Go's default), requiring a client certificate from this CA when mutual is true.
func (p *PKI) ServerTLS(minVersion, maxVersion uint16, mutual bool) *tls.Config {
	cfg := &tls.Config{Certificates: []tls.Certificate{p.Server}, MinVersion: minVersion, MaxVersion: maxVersion}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.CAPool
	}
	return cfg
}

func writePEM(tb testing.TB, dir, name, typ string, der []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatalf("write %s: %v", path, err)
	}
	return path
}
