package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newCA(t *testing.T) *LocalCA {
	t.Helper()
	ca, err := NewLocalCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// leafSerial returns the serial number of the first certificate in a
// PEM file.
func leafSerial(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

func servedSerial(t *testing.T, c *CertFile) string {
	t.Helper()
	cert, err := c.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.SerialNumber.String()
}

// touchLater moves a file's modification time forward, as a later write
// would, so that the test does not depend on the file system's clock
// granularity.
func touchLater(t *testing.T, path string, by time.Duration) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime().Add(by), fi.ModTime().Add(by)); err != nil {
		t.Fatal(err)
	}
}

func TestCertFileReload(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	if err := ca.WriteLeaf(certPath, keyPath, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	first := leafSerial(t, certPath)
	clock := &fakeClock{t: time.Now()}
	log := &lockedBuffer{}
	c, err := LoadCertFile(certPath, keyPath, CertOptions{CheckInterval: time.Minute, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, c); got != first {
		t.Fatalf("served serial %s, want %s", got, first)
	}

	// A renewed pair is served once the check interval has passed, not
	// before: handshakes do not stat the files every time.
	if err := ca.WriteLeaf(certPath, keyPath, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	touchLater(t, certPath, time.Second)
	second := leafSerial(t, certPath)
	if got := servedSerial(t, c); got != first {
		t.Errorf("before the interval: served %s, want still %s", got, first)
	}
	clock.Add(time.Minute)
	if got := servedSerial(t, c); got != second {
		t.Errorf("after the interval: served %s, want the new %s", got, second)
	}
	if !strings.Contains(log.String(), "TLS certificate reloaded") {
		t.Errorf("reload not logged: %s", log.String())
	}

	// A key that does not match the new certificate: refused, logged,
	// the previous pair keeps serving.
	other := t.TempDir()
	if err := ca.WriteLeaf(filepath.Join(other, "c.pem"), filepath.Join(other, "k.pem"), "localhost"); err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := os.ReadFile(filepath.Join(other, "k.pem"))
	if err := os.WriteFile(keyPath, wrongKey, 0o600); err != nil {
		t.Fatal(err)
	}
	touchLater(t, keyPath, 2*time.Second)
	clock.Add(time.Minute)
	if got := servedSerial(t, c); got != second {
		t.Errorf("mismatched key: served %s, want still %s", got, second)
	}
	if err := c.Reload(); err != nil {
		t.Errorf("Reload of unchanged (refused) files: %v, want nil: they are retried only when they change", err)
	}
	if !strings.Contains(log.String(), "new TLS certificate refused") || !strings.Contains(log.String(), "private key does not match public key") {
		t.Errorf("refusal not logged with its reason: %s", log.String())
	}

	// Fixing the files is picked up.
	if err := ca.WriteLeaf(certPath, keyPath, "localhost"); err != nil {
		t.Fatal(err)
	}
	touchLater(t, certPath, 3*time.Second)
	touchLater(t, keyPath, 3*time.Second)
	third := leafSerial(t, certPath)
	if err := c.Reload(); err != nil {
		t.Fatalf("Reload of a good pair: %v", err)
	}
	if got := servedSerial(t, c); got != third {
		t.Errorf("after the fix: served %s, want %s", got, third)
	}

	// Deleted files: logged, the pair in memory keeps serving.
	os.Remove(certPath)
	if err := c.Reload(); err == nil {
		t.Error("Reload with the certificate file gone: nil error")
	}
	if got := servedSerial(t, c); got != third {
		t.Errorf("files gone: served %s, want %s", got, third)
	}
}

func TestCertFileRefusesBadPairs(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	if err := ca.WriteLeaf(certPath, keyPath, "localhost"); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), 0o600)
	tests := []struct {
		name      string
		cert, key string
		now       func() time.Time
		want      error
	}{
		{name: "missing certificate", cert: filepath.Join(dir, "nope.pem"), key: keyPath, want: os.ErrNotExist},
		{name: "missing key", cert: certPath, key: filepath.Join(dir, "nope.pem"), want: os.ErrNotExist},
		{name: "garbage certificate", cert: garbage, key: keyPath},
		{name: "key as certificate", cert: keyPath, key: keyPath},
		{name: "expired", cert: certPath, key: keyPath, now: func() time.Time { return time.Now().Add(2 * LocalLeafValidity) }, want: ErrCertificateExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadCertFile(tt.cert, tt.key, CertOptions{Now: tt.now})
			if err == nil {
				t.Fatalf("LoadCertFile: got %v, want an error", c)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestServerRefusesOldTLS(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	if err := ca.WriteLeaf(certPath, keyPath, "localhost"); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCertFile(certPath, keyPath, CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Server(c)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
	}
	if cfg.CipherSuites != nil || cfg.InsecureSkipVerify {
		t.Error("the server configuration must keep Go's default cipher suites")
	}
	for _, tt := range []struct {
		name string
		max  uint16
		ok   bool
	}{{"TLS 1.0", tls.VersionTLS10, false}, {"TLS 1.1", tls.VersionTLS11, false}, {"TLS 1.2", tls.VersionTLS12, true}, {"TLS 1.3", tls.VersionTLS13, true}} {
		t.Run(tt.name, func(t *testing.T) {
			err := handshake(t, cfg, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tt.max})
			if (err == nil) != tt.ok {
				t.Errorf("handshake: %v, want success %v", err, tt.ok)
			}
		})
	}
}
