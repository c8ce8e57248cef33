package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// MinVersion is the oldest TLS version Keycard speaks, as a server and as
// a client: TLS 1.2 (RFC 5246). Cipher suites are Go's defaults.
const MinVersion = tls.VersionTLS12

// Server returns the configuration of a TLS listener serving the
// certificate of certs: TLS 1.2 or later, Go's default cipher suites and
// curves. Give it to http.Server.TLSConfig and call ServeTLS(ln, "", ""),
// which adds HTTP/2.
func Server(certs *CertFile) *tls.Config {
	return &tls.Config{
		MinVersion:     MinVersion,
		GetCertificate: certs.GetCertificate,
	}
}

// ErrNoCertificates is returned for a CA bundle without a single
// certificate.
var ErrNoCertificates = errors.New("tlsconfig: no PEM certificate in the CA bundle")

// LoadCAPool reads a bundle of PEM certificates (a CA bundle) into a
// pool. Blocks other than CERTIFICATE are skipped; a bundle holding no
// certificate, or one that does not parse, is an error.
func LoadCAPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: CA bundle %s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w %s", ErrNoCertificates, path)
	}
	return pool, nil
}

// Client returns the configuration of a TLS client that trusts the
// certificates of the CA bundle at caFile, or the system's roots when
// caFile is "". Certificates are always verified: there is no way to
// skip it.
func Client(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion}
	if caFile != "" {
		pool, err := LoadCAPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Transport returns a clone of http.DefaultTransport (HTTP/2 when the
// server offers it, proxies from the environment) whose TLS configuration
// is Client's for caFile.
func Transport(caFile string) (*http.Transport, error) {
	cfg, err := Client(caFile)
	if err != nil {
		return nil, err
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg
	return t, nil
}
