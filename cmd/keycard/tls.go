package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

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

// demoTLS is "keycard demo --tls": a throw-away local CA kept in the data
// directory (tlsconfig.CACertFile, and tlsconfig.CAKeyFile with mode
// 0600), made on the first run and reused after, and a certificate of it
// for the demo's listeners, reissued when their names change or it nears
// its end.
type demoTLS struct {
	caFile string
	server *tls.Config
	client *http.Client // trusts the CA only: for the demo's verifiers
}

// newDemoTLS prepares the CA and the certificate in data for loopback
// names and the hosts the listeners at addrs are on.
func newDemoTLS(data string, log *slog.Logger, addrs ...net.Addr) (*demoTLS, error) {
	ca, created, err := tlsconfig.OpenLocalCA(data)
	if err != nil {
		return nil, err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !slices.Contains(hosts, ta.IP.String()) {
			hosts = append(hosts, ta.IP.String())
		}
	}
	certFile, keyFile := filepath.Join(data, "tls.pem"), filepath.Join(data, "tls-key.pem")
	renewed, err := ca.EnsureLeaf(certFile, keyFile, hosts...)
	if err != nil {
		return nil, err
	}
	certs, err := tlsconfig.LoadCertFile(certFile, keyFile, tlsconfig.CertOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(data, tlsconfig.CACertFile)
	tr, err := tlsconfig.Transport(caFile)
	if err != nil {
		return nil, err
	}
	log.Info("demo TLS", "ca", caFile, "ca_created", created, "certificate_issued", renewed, "hosts", strings.Join(hosts, ","))
	return &demoTLS{caFile: caFile, server: tlsconfig.Server(certs), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// scheme returns the scheme of the demo's URLs.
func (d *demoTLS) scheme() string {
	if d == nil {
		return "http"
	}
	return "https"
}

// listener returns ln serving TLS, or ln itself without --tls.
func (d *demoTLS) listener(ln net.Listener) net.Listener {
	if d == nil {
		return ln
	}
	return tls.NewListener(ln, d.server)
}

// httpClient returns the verifiers' client: nil (the default) without
// --tls.
func (d *demoTLS) httpClient() *http.Client {
	if d == nil {
		return nil
	}
	return d.client
}

// hsts adds Strict-Transport-Security to h's responses with --tls.
func (d *demoTLS) hsts(h http.Handler) http.Handler {
	if d == nil {
		return h
	}
	return tlsconfig.HSTS(nil)(h)
}
