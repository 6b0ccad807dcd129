package provision

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/scimflow/scimflow/internal/auth"
)

// describeTransport explains a failure that produced no HTTP answer in words that name the
// likely fix: people read these in `worker check` and in outcome events.
func describeTransport(err error, timeout time.Duration) string {
	return describeTransportTo("", err, timeout)
}

func describeTransportTo(host string, err error, timeout time.Duration) string {
	var te *auth.TokenError
	if errors.As(err, &te) {
		if te.Status == 0 && te.Err != nil {
			h := ""
			if u, perr := url.Parse(te.URL); perr == nil {
				h = u.Host
			}
			return fmt.Sprintf("token request to %s: %s", te.URL, describeTransportTo(h, te.Err, timeout))
		}
		return te.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			host = u.Host
		}
		err = ue.Err
	}
	var (
		dns       *net.DNSError
		op        *net.OpError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the server certificate of %s is not trusted (signed by an unknown authority): set target.tls.caFile to the CA bundle that issued it", host)
	case errors.As(err, &hostname):
		return fmt.Sprintf("the server certificate does not match %s: %v", host, hostname.Error())
	case errors.As(err, &invalid):
		return fmt.Sprintf("the server certificate of %s is invalid: %v", host, invalid.Error())
	case strings.Contains(msg, "protocol version not supported"):
		return fmt.Sprintf("TLS handshake with %s failed: the server offers no TLS version at or above the configured minimum (target.tls.minVersion, 1.2 unless set to 1.3); versions below 1.2 are refused", host)
	case strings.Contains(msg, "server gave HTTP response to HTTPS client") || strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Sprintf("%s does not speak TLS on this port: check the scheme of the URL", host)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Sprintf("TLS handshake with %s refused by the server (%v): it may require a client certificate (target.tls.certFile and target.tls.keyFile) or one it trusts", host, op.Err)
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return fmt.Sprintf("host name %s does not resolve: check the URL", dns.Name)
		}
		return fmt.Sprintf("cannot resolve %s: %v", dns.Name, dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot connect to %s: connection refused (is the host up and the port right?)", host)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("cannot reach %s: %v", host, err)
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("cannot connect to %s: %v", host, op.Err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from %s within %s (target.timeout)", host, timeout)
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, auth.ErrClosed):
		return "connector closed"
	}
	return msg
}

// notSent reports whether a transport failure happened before the request could reach the
// target (no connection, failed handshake, no token), so that resending cannot apply it twice.
func notSent(err error) bool {
	var te *auth.TokenError
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &te), errors.As(err, &dns), auth.IsTLSConfigError(err), errors.Is(err, auth.ErrClosed):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	}
	return false
}
