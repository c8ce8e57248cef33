package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handshake runs a TLS handshake between server and client over a
// loopback TCP connection and returns the client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		s := tls.Server(conn, server)
		s.Handshake()
		s.Close()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(conn, client)
	err = c.Handshake()
	c.Close()
	<-done
	return err
}

func TestLoadCAPool(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, keyPEM, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr error // nil: any error; unused when ok
		ok      bool
	}{
		{name: "one CA", path: write("ca.pem", string(ca.CertPEM())), ok: true},
		{name: "a key beside the CA is skipped", path: write("mixed.pem", string(keyPEM)+string(ca.CertPEM())), ok: true},
		{name: "empty", path: write("empty.pem", ""), wantErr: ErrNoCertificates},
		{name: "no PEM", path: write("text.pem", "hello"), wantErr: ErrNoCertificates},
		{name: "only a key", path: write("key.pem", string(keyPEM)), wantErr: ErrNoCertificates},
		{name: "bad DER", path: write("bad.pem", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")},
		{name: "missing", path: filepath.Join(dir, "nope.pem"), wantErr: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := LoadCAPool(tt.path)
			if tt.ok {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				if _, err := ca.Cert.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
					t.Errorf("the pool does not hold the CA: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("got nil error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestTransportVerifies checks that a client from Transport accepts a
// server whose certificate the CA bundle vouches for, and refuses one
// signed by another CA.
func TestTransportVerifies(t *testing.T) {
	trusted, untrusted := newCA(t), newCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, trusted.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := Transport(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Fatalf("client TLS configuration %+v", tr.TLSClientConfig)
	}
	client := &http.Client{Transport: tr}
	for _, tt := range []struct {
		name string
		ca   *LocalCA
		ok   bool
	}{{"trusted CA", trusted, true}, {"other CA", untrusted, false}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") }))
			certPEM, keyPEM, err := tt.ca.Issue("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
			srv.StartTLS()
			defer srv.Close()
			resp, err := client.Get(srv.URL)
			if tt.ok {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				resp.Body.Close()
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatal("GET to a server of an untrusted CA succeeded")
			}
			if _, ok := errors.AsType[x509.UnknownAuthorityError](err); !ok {
				t.Errorf("got %v, want x509.UnknownAuthorityError", err)
			}
		})
	}
	if _, err := Transport(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("Transport with a missing CA bundle: nil error")
	}
}

func TestClientSystemRoots(t *testing.T) {
	cfg, err := Client("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootCAs != nil || cfg.InsecureSkipVerify || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("Client(\"\"): %+v, want system roots, verification, TLS 1.2+", cfg)
	}
}

func ExampleTransport() {
	// A client for an issuer whose certificate comes from a private CA.
	tr, err := Transport("testdata/does-not-exist.pem")
	if err != nil {
		fmt.Println(strings.Contains(err.Error(), "CA bundle"))
		return
	}
	_ = &http.Client{Transport: tr}
	// Output: true
}
