package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/keycard-auth/keycard/internal/tlsconfig"
)

// listenerTLS is how a listener (the auth server's or the gateway's) is
// secured: by a certificate it serves itself, by a TLS-terminating proxy
// in front of it, or, on loopback or in development, not at all.
type listenerTLS struct {
	certFile, keyFile string
	behindProxy       bool
	trustedProxies    string // comma-separated CIDR prefixes
	// names are what the operator writes for each setting in messages:
	// flags for serve, YAML keys for the gateway.
	names tlsNames
}

// tlsNames name a command's TLS settings in its messages.
type tlsNames struct {
	cert, key, behindProxy, trustedProxies, issuer, dev string
}

var (
	serveTLSNames = tlsNames{cert: "--tls-cert", key: "--tls-key", behindProxy: "--behind-proxy",
		trustedProxies: "--trusted-proxies", issuer: "--issuer", dev: "--dev"}
	gatewayTLSNames = tlsNames{cert: "tls.cert", key: "tls.key", behindProxy: "behind_proxy",
		trustedProxies: "trusted_proxies", issuer: "issuer"}
)

// securedListener is the outcome of listenerTLS.setUp.
type securedListener struct {
	// config is the TLS configuration to serve with; nil for plain HTTP.
	config *tls.Config
	// proxies are the trusted proxies; nil unless behind a proxy.
	proxies *tlsconfig.Proxies
}

// scheme returns "https" when the listener serves TLS itself.
func (s *securedListener) scheme() string {
	if s.config != nil {
		return "https"
	}
	return "http"
}

// setUp checks the settings against the address actually listened on and
// loads the certificate. Plain HTTP is refused on an address that is not
// loopback unless behind a proxy or dev is true (the gateway has no dev
// mode): passwords and bearer tokens would cross a network in clear text.
func (l *listenerTLS) setUp(addr net.Addr, dev bool, log *slog.Logger) (*securedListener, error) {
	n := l.names
	if (l.certFile == "") != (l.keyFile == "") {
		return nil, fmt.Errorf("%s and %s go together: give both, or neither", n.cert, n.key)
	}
	s := &securedListener{}
	if l.behindProxy {
		p, err := tlsconfig.ParseProxies(l.trustedProxies)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", n.trustedProxies, err)
		}
		s.proxies = p
	}
	if l.certFile != "" {
		certs, err := tlsconfig.LoadCertFile(l.certFile, l.keyFile, tlsconfig.CertOptions{Logger: log})
		if err != nil {
			return nil, err
		}
		s.config = tlsconfig.Server(certs)
		return s, nil
	}
	switch {
	case l.behindProxy || tlsconfig.LoopbackListener(addr):
	case dev:
		log.Warn("development mode serves plain HTTP on a non-loopback address: passwords and tokens cross the network in clear text", "addr", addr.String())
	default:
		msg := fmt.Sprintf("refusing to serve plain HTTP on %s, which is not a loopback address: passwords and bearer tokens would cross the network in clear text. "+
			"Give %s and %s to serve HTTPS, or %s (with %s, default loopback) when a TLS-terminating load balancer forwards to this address", addr, n.cert, n.key, n.behindProxy, n.trustedProxies)
		if n.dev != "" {
			msg += fmt.Sprintf("; for development, listen on 127.0.0.1 or give %s", n.dev)
		}
		return nil, errors.New(msg)
	}
	return s, nil
}

// checkIssuer refuses an issuer URL that is not https://, except for a
// loopback host or in development: verifiers fetch its keys and
// revocation feed there, and clients send it passwords and tokens.
func checkIssuer(issuer string, dev bool, n tlsNames) error {
	if dev || tlsconfig.SecureURL(issuer) {
		return nil
	}
	msg := fmt.Sprintf("refusing %s %q: it is not https://, so tokens, passwords and the keys that verify tokens would travel in clear text. "+
		"Give an https:// URL (behind a TLS-terminating load balancer, the URL clients reach it at); http:// is allowed only for localhost, 127.0.0.1 and [::1]", n.issuer, issuer)
	if n.dev != "" {
		msg += fmt.Sprintf(", or with %s", n.dev)
	}
	return errors.New(msg)
}
