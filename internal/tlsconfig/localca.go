package tlsconfig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Files of a LocalCA in its directory.
const (
	CACertFile = "ca.pem"     // the CA certificate, to give to clients (curl --cacert)
	CAKeyFile  = "ca-key.pem" // its private key, mode 0600
)

// Validity of what a LocalCA issues.
const (
	LocalCAValidity   = 5 * 365 * 24 * time.Hour
	LocalLeafValidity = 365 * 24 * time.Hour
	// LeafRenewBefore is how close to its end a leaf certificate is
	// replaced by EnsureLeaf rather than reused.
	LeafRenewBefore = 30 * 24 * time.Hour
)

// LocalCA is a throw-away certificate authority for a demo or a test: an
// ECDSA P-256 key and a self-signed certificate that can issue server
// certificates for local names. Trusting it trusts whatever it signs, so
// give its certificate to the clients that need it (curl --cacert,
// Client) instead of installing it in a system store, and never use one
// in production.
type LocalCA struct {
	// Cert is the CA certificate.
	Cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
}

// NewLocalCA returns a new LocalCA, in memory, named name.
func NewLocalCA(name string) (*LocalCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Keycard local CA (throw-away)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(LocalCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &LocalCA{Cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// OpenLocalCA returns the LocalCA kept in dir (CACertFile and CAKeyFile),
// creating it there when neither file exists: the directory with mode
// 0700, the key with mode 0600. created reports whether it was new.
func OpenLocalCA(dir string) (ca *LocalCA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		ca, err := parseLocalCA(certPEM, keyPEM)
		if err != nil {
			return nil, false, fmt.Errorf("tlsconfig: local CA in %s: %w (delete %s and %s to make a new one)", dir, err, CACertFile, CAKeyFile)
		}
		return ca, false, nil
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, os.ErrNotExist):
		return nil, false, fmt.Errorf("tlsconfig: local CA: %w", cerr)
	case kerr != nil && !errors.Is(kerr, os.ErrNotExist):
		return nil, false, fmt.Errorf("tlsconfig: local CA: %w", kerr)
	default:
		return nil, false, fmt.Errorf("tlsconfig: local CA in %s: one of %s and %s is missing (delete the other to make a new CA)", dir, CACertFile, CAKeyFile)
	}
	if ca, err = NewLocalCA("Keycard local CA"); err != nil {
		return nil, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("tlsconfig: local CA: %w", err)
	}
	// The key first: a certificate without its key would be refused on
	// the next run.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(certPath, ca.certPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

func parseLocalCA(certPEM, keyPEM []byte) (*LocalCA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("the certificate is not a CA")
	}
	if time.Now().After(cert.NotAfter) {
		return nil, errors.New("the CA certificate has expired")
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("the CA key cannot sign")
	}
	return &LocalCA{Cert: cert, certPEM: certPEM, key: key}, nil
}

// CertPEM returns the CA certificate in PEM, a CA bundle for Client.
func (ca *LocalCA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Pool returns a pool holding only the CA certificate.
func (ca *LocalCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Issue returns a new server certificate for hosts (DNS names and IP
// addresses), valid for LocalLeafValidity, and its fresh ECDSA P-256
// private key, both in PEM.
func (ca *LocalCA) Issue(hosts ...string) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("tlsconfig: Issue needs at least one host")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LocalLeafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// WriteLeaf issues a server certificate for hosts and writes it to
// certPath and its key to keyPath (mode 0600), each renamed into place,
// key first, so that a CertFile never reads half a file. The certificate
// file holds the leaf only; clients find the CA in CACertFile.
func (ca *LocalCA) WriteLeaf(certPath, keyPath string, hosts ...string) error {
	certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, certPEM, 0o644)
}

// EnsureLeaf keeps the server certificate at certPath and keyPath if this
// CA signed it, it covers every one of hosts, its key matches and it is
// valid for longer than LeafRenewBefore; otherwise it writes a new one
// (WriteLeaf). renewed reports whether it did.
func (ca *LocalCA) EnsureLeaf(certPath, keyPath string, hosts ...string) (renewed bool, err error) {
	if ca.leafUsable(certPath, keyPath, hosts) {
		return false, nil
	}
	return true, ca.WriteLeaf(certPath, keyPath, hosts...)
}

func (ca *LocalCA) leafUsable(certPath, keyPath string, hosts []string) bool {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return false
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || time.Until(leaf.NotAfter) < LeafRenewBefore {
		return false
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return false
	}
	return !slices.ContainsFunc(hosts, func(h string) bool { return leaf.VerifyHostname(h) != nil })
}

// newSerial returns a random 128-bit serial number (RFC 5280 section
// 4.1.2.2 allows up to 20 octets; CAs use at least 64 random bits).
func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// writeFileAtomic writes data to a temporary file beside path with mode
// perm and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("tlsconfig: %w", err)
	}
	name := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("tlsconfig: writing %s: %w", path, err)
	}
	return nil
}
