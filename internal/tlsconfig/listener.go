package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
)

// Listener is how a listener (the auth server's or the gateway's) is
// secured: by a certificate it serves itself, by a TLS-terminating proxy
// in front of it, or, on loopback or in development, not at all.
type Listener struct {
	CertFile, KeyFile string
	// BehindProxy: a TLS-terminating proxy forwards to the listener, whose
	// X-Forwarded-Proto is believed from TrustedProxies.
	BehindProxy bool
	// TrustedProxies are comma-separated CIDR prefixes (ParseProxies).
	TrustedProxies string
	// Names are what the operator writes for each setting, for messages:
	// flags for the auth server, YAML keys for the gateway.
	Names Names
}

// Names name a command's TLS settings in its messages. Dev is empty for
// a command without a development mode.
type Names struct {
	Cert, Key, BehindProxy, TrustedProxies, Issuer, Dev string
}

// Secured is the outcome of Listener.Secure.
type Secured struct {
	// Config is the TLS configuration to serve with; nil for plain HTTP.
	Config *tls.Config
	// Proxies are the trusted proxies; nil unless behind a proxy.
	Proxies *Proxies
}

// Scheme returns "https" when the listener serves TLS itself.
func (s *Secured) Scheme() string {
	if s.Config != nil {
		return "https"
	}
	return "http"
}

// Check checks the settings that need no file or address: a certificate
// and its key go together, and the trusted proxies parse.
func (l *Listener) Check() error {
	n := l.Names
	if (l.CertFile == "") != (l.KeyFile == "") {
		return fmt.Errorf("%s and %s go together: give both, or neither", n.Cert, n.Key)
	}
	if l.BehindProxy {
		if _, err := ParseProxies(l.TrustedProxies); err != nil {
			return fmt.Errorf("%s: %v", n.TrustedProxies, err)
		}
	}
	return nil
}

// Secure checks the settings against the address actually listened on and
// loads the certificate. Plain HTTP is refused on an address that is not
// loopback unless behind a proxy or dev is true: passwords and bearer
// tokens would cross a network in clear text.
func (l *Listener) Secure(addr net.Addr, dev bool, log *slog.Logger) (*Secured, error) {
	if err := l.Check(); err != nil {
		return nil, err
	}
	n := l.Names
	s := &Secured{}
	if l.BehindProxy {
		s.Proxies, _ = ParseProxies(l.TrustedProxies) // Check parsed it
	}
	if l.CertFile != "" {
		certs, err := LoadCertFile(l.CertFile, l.KeyFile, CertOptions{Logger: log})
		if err != nil {
			return nil, err
		}
		s.Config = Server(certs)
		return s, nil
	}
	switch {
	case l.BehindProxy || LoopbackListener(addr):
	case dev:
		log.Warn("development mode serves plain HTTP on a non-loopback address: passwords and tokens cross the network in clear text", "addr", addr.String())
	default:
		msg := fmt.Sprintf("refusing to serve plain HTTP on %s, which is not a loopback address: passwords and bearer tokens would cross the network in clear text. "+
			"Give %s and %s to serve HTTPS, or %s (with %s, default loopback) when a TLS-terminating load balancer forwards to this address", addr, n.Cert, n.Key, n.BehindProxy, n.TrustedProxies)
		if n.Dev != "" {
			msg += fmt.Sprintf("; for development, listen on 127.0.0.1 or give %s", n.Dev)
		}
		return nil, errors.New(msg)
	}
	return s, nil
}

// CheckIssuer refuses an issuer URL that is not https://, except for a
// loopback host or in development: verifiers fetch its keys and
// revocation feed there, and clients send it passwords and tokens.
func CheckIssuer(issuer string, dev bool, n Names) error {
	if dev || SecureURL(issuer) {
		return nil
	}
	msg := fmt.Sprintf("refusing %s %q: it is not https://, so tokens, passwords and the keys that verify tokens would travel in clear text. "+
		"Give an https:// URL (behind a TLS-terminating load balancer, the URL clients reach it at); http:// is allowed only for localhost, 127.0.0.1 and [::1]", n.Issuer, issuer)
	if n.Dev != "" {
		msg += fmt.Sprintf(", or with %s", n.Dev)
	}
	return errors.New(msg)
}
