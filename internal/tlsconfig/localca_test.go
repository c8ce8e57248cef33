package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenLocalCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ca, created, err := OpenLocalCA(dir)
	if err != nil || !created {
		t.Fatalf("first open: created %v, err %v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	if !ca.Cert.IsCA || ca.Cert.MaxPathLen != 0 || !ca.Cert.MaxPathLenZero {
		t.Errorf("CA certificate: IsCA %v MaxPathLen %d", ca.Cert.IsCA, ca.Cert.MaxPathLen)
	}

	again, created, err := OpenLocalCA(dir)
	if err != nil || created {
		t.Fatalf("second open: created %v, err %v", created, err)
	}
	if again.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) != 0 {
		t.Error("the second open made a new CA instead of reusing the first")
	}
	// The reopened CA signs certificates the first one's clients trust.
	certPEM, keyPEM, err := again.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("leaf of the reopened CA: %v", err)
	}

	// Half a CA is an error that says what to do, not a silent new CA.
	os.Remove(filepath.Join(dir, CACertFile))
	if _, _, err := OpenLocalCA(dir); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("key without certificate: %v", err)
	}
	// A damaged key too.
	os.WriteFile(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644)
	os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("damaged"), 0o600)
	if _, _, err := OpenLocalCA(dir); err == nil || !strings.Contains(err.Error(), "delete") {
		t.Errorf("damaged key: %v", err)
	}
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	if _, _, err := ca.Issue(); err == nil {
		t.Error("Issue without hosts: nil error")
	}
	certPEM, keyPEM, err := ca.Issue("localhost", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("the leaf and its key: %v", err)
	}
	if _, err := tls.X509KeyPair(certPEM, mustKey(t, ca)); err == nil {
		t.Fatal("a leaf's certificate matched another leaf's key: keys are not fresh")
	}
	leaf := parseLeaf(t, certPEM)
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: h}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "example.com"}); err == nil {
		t.Error("the leaf verifies for a host it was not issued for")
	}
	if leaf.IsCA {
		t.Error("the leaf is a CA")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: newCA(t).Pool(), DNSName: "localhost"}); err == nil {
		t.Error("the leaf verifies under another CA")
	}
}

func mustKey(t *testing.T, ca *LocalCA) []byte {
	t.Helper()
	_, k, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseLeaf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureLeaf(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	renewed, err := ca.EnsureLeaf(certPath, keyPath, "localhost", "127.0.0.1")
	if err != nil || !renewed {
		t.Fatalf("first EnsureLeaf: renewed %v, err %v", renewed, err)
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("leaf key mode %v, want 0600", fi.Mode().Perm())
	}
	serial := leafSerial(t, certPath)
	for _, tt := range []struct {
		name    string
		prepare func()
		hosts   []string
		renew   bool
	}{
		{name: "same hosts: reused", hosts: []string{"localhost", "127.0.0.1"}},
		{name: "fewer hosts: reused", hosts: []string{"127.0.0.1"}},
		{name: "a new host: renewed", hosts: []string{"localhost", "127.0.0.1", "::1"}, renew: true},
		{name: "another CA's leaf: renewed", hosts: []string{"localhost"}, renew: true, prepare: func() {
			if err := newCA(t).WriteLeaf(certPath, keyPath, "localhost"); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "mismatched key: renewed", hosts: []string{"localhost"}, renew: true, prepare: func() {
			os.WriteFile(keyPath, mustKey(t, ca), 0o600)
		}},
		{name: "missing key: renewed", hosts: []string{"localhost"}, renew: true, prepare: func() { os.Remove(keyPath) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.prepare != nil {
				tt.prepare()
			}
			renewed, err := ca.EnsureLeaf(certPath, keyPath, tt.hosts...)
			if err != nil {
				t.Fatal(err)
			}
			if renewed != tt.renew {
				t.Errorf("renewed %v, want %v", renewed, tt.renew)
			}
			now := leafSerial(t, certPath)
			if (now != serial) != tt.renew {
				t.Errorf("serial %s → %s, want renewed %v", serial, now, tt.renew)
			}
			serial = now
			if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
				t.Errorf("the pair left behind does not load: %v", err)
			}
		})
	}
}

func ExampleLocalCA() {
	dir, _ := os.MkdirTemp("", "keycard-example")
	defer os.RemoveAll(dir)
	ca, created, err := OpenLocalCA(dir) // ca.pem and ca-key.pem (0600)
	if err != nil {
		fmt.Println(err)
		return
	}
	certFile, keyFile := filepath.Join(dir, "tls.pem"), filepath.Join(dir, "tls-key.pem")
	if _, err := ca.EnsureLeaf(certFile, keyFile, "localhost", "127.0.0.1"); err != nil {
		fmt.Println(err)
		return
	}
	certs, err := LoadCertFile(certFile, keyFile, CertOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = Server(certs) // for http.Server.TLSConfig
	fmt.Println(created, certs.Certificate().Leaf.DNSNames)
	// Output: true [localhost]
}
