// Package tlsconfig is how Keycard's listeners and clients use TLS: a
// certificate and key read from files and reread when they change, so
// that certificates renew without a restart (CertFile); server and client
// configurations with TLS 1.2 as the minimum and Go's default cipher
// suites (Server, Client); the Strict-Transport-Security header and the
// addresses whose X-Forwarded-Proto is believed (HSTS, Proxies); the
// checks that refuse plain HTTP beyond loopback (LoopbackListener,
// LoopbackURL); and a throw-away local certificate authority for the demo
// and tests (LocalCA).
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, a CertFile looks at its
// files for a change.
const DefaultCheckInterval = 2 * time.Second

// CertOptions configure a CertFile. The zero value is usable.
type CertOptions struct {
	// CheckInterval is the least time between two looks at the files'
	// modification times and sizes; DefaultCheckInterval when zero.
	CheckInterval time.Duration
	// Logger hears about reloads and about new files that were refused;
	// nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// CertFile is a certificate chain and private key read from two PEM files
// (they may be one file holding both). It rereads them when their
// modification time or size changes, looking at most once per
// CheckInterval, during a TLS handshake: no goroutine runs in the
// background. A new pair that does not load (unreadable, malformed, the
// key not matching the certificate, a certificate already expired) is
// refused with a logged reason and the previous pair keeps serving; it is
// tried again when the files change again. Write renewed files by
// renaming them into place, so that no handshake reads half a file.
//
// A CertFile is safe for concurrent use.
type CertFile struct {
	certPath, keyPath string
	interval          time.Duration
	log               *slog.Logger
	now               func() time.Time

	cert atomic.Pointer[tls.Certificate]

	mu        sync.Mutex // held while looking at the files
	nextCheck time.Time
	stamp     fileStamp // of the files last tried, loaded or not
}

// fileStamp tells file versions apart: modification times and sizes.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// LoadCertFile reads the certificate chain at certPath and the private
// key at keyPath (both PEM) and returns a CertFile serving them. A pair
// that does not load is an error here: the listener must not start
// without a certificate.
func LoadCertFile(certPath, keyPath string, opt CertOptions) (*CertFile, error) {
	c := &CertFile{certPath: certPath, keyPath: keyPath, interval: opt.CheckInterval, log: opt.Logger, now: opt.Now}
	if c.interval <= 0 {
		c.interval = DefaultCheckInterval
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	st, err := c.statFiles()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert.Store(cert)
	c.stamp = st
	c.nextCheck = c.now().Add(c.interval)
	return c, nil
}

// GetCertificate returns the certificate to serve, after rereading the
// files if CheckInterval has passed and they changed. It is meant for
// tls.Config.GetCertificate; it never fails once LoadCertFile succeeded.
func (c *CertFile) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.maybeReload()
	return c.cert.Load(), nil
}

// Certificate returns the certificate being served.
func (c *CertFile) Certificate() *tls.Certificate { return c.cert.Load() }

// maybeReload looks at the files if it is time to, unless another
// handshake is already doing so.
func (c *CertFile) maybeReload() {
	if !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	now := c.now()
	if now.Before(c.nextCheck) {
		return
	}
	c.nextCheck = now.Add(c.interval)
	c.check()
}

// Reload rereads the files now if they changed since they were last
// tried, and reports why a changed pair was refused. It returns nil when
// nothing changed.
func (c *CertFile) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check()
}

// check reloads the pair if the files changed; c.mu is held.
func (c *CertFile) check() error {
	st, err := c.statFiles()
	if err != nil {
		c.log.Error("TLS certificate files unreadable; the current certificate keeps serving",
			"cert_file", c.certPath, "key_file", c.keyPath, "err", err.Error())
		return err
	}
	if st == c.stamp {
		return nil
	}
	c.stamp = st // a refused pair is not retried until the files change again
	cert, err := c.load()
	if err != nil {
		c.log.Error("new TLS certificate refused; the current one keeps serving",
			"cert_file", c.certPath, "key_file", c.keyPath, "err", err.Error())
		return err
	}
	c.cert.Store(cert)
	c.log.Info("TLS certificate reloaded", "cert_file", c.certPath,
		"serial", fmt.Sprintf("%x", cert.Leaf.SerialNumber), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func (c *CertFile) statFiles() (fileStamp, error) {
	ci, err := os.Stat(c.certPath)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tlsconfig: certificate: %w", err)
	}
	ki, err := os.Stat(c.keyPath)
	if err != nil {
		return fileStamp{}, fmt.Errorf("tlsconfig: key: %w", err)
	}
	return fileStamp{certMod: ci.ModTime(), certSize: ci.Size(), keyMod: ki.ModTime(), keySize: ki.Size()}, nil
}

// ErrCertificateExpired is returned for a certificate whose validity has
// ended: serving it would only make every client fail.
var ErrCertificateExpired = errors.New("tlsconfig: the certificate has expired")

// load reads and checks the pair.
func (c *CertFile) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: %s and %s: %w", c.certPath, c.keyPath, err)
	}
	if cert.Leaf == nil { // LoadX509KeyPair fills it; be sure
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsconfig: %s: %w", c.certPath, err)
		}
	}
	if c.now().After(cert.Leaf.NotAfter) {
		return nil, fmt.Errorf("%w: %s ended %s", ErrCertificateExpired, c.certPath, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}
