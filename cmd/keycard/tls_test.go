package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
)

// tlsFixture is a throw-away CA, made with the generator keycard demo
// --tls uses, and a server certificate of it for 127.0.0.1 and
// localhost, in one directory.
type tlsFixture struct {
	dir                       string
	ca                        *tlsconfig.LocalCA
	caFile, certFile, keyFile string
	client                    *http.Client // trusts the CA only
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := tlsconfig.OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	fx := &tlsFixture{dir: dir, ca: ca, caFile: filepath.Join(dir, tlsconfig.CACertFile),
		certFile: filepath.Join(dir, "tls.pem"), keyFile: filepath.Join(dir, "tls-key.pem")}
	if err := ca.WriteLeaf(fx.certFile, fx.keyFile, "127.0.0.1", "localhost"); err != nil {
		t.Fatal(err)
	}
	tr, err := tlsconfig.Transport(fx.caFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	fx.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	return fx
}

// fileSerial returns the serial number of the certificate in a PEM file.
func fileSerial(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.String()
}

// servedSerial opens a new TLS connection to addr, verifying it against
// the fixture's CA, and returns the serial number of the certificate
// served.
func (fx *tlsFixture) servedSerial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// checkReload replaces the fixture's certificate files with a new pair
// and waits until addr serves it, without a restart; then it writes a
// broken certificate and checks that the new pair keeps serving and that
// the log says why the broken one was refused.
func (fx *tlsFixture) checkReload(t *testing.T, addr string, log *syncBuffer) {
	t.Helper()
	before := fx.servedSerial(t, addr)
	if before != fileSerial(t, fx.certFile) {
		t.Fatalf("served serial %s, want the file's %s", before, fileSerial(t, fx.certFile))
	}
	if err := fx.ca.WriteLeaf(fx.certFile, fx.keyFile, "127.0.0.1", "localhost"); err != nil {
		t.Fatal(err)
	}
	renewed := fileSerial(t, fx.certFile)
	eventually(t, "renewed certificate served", func() bool { return fx.servedSerial(t, addr) == renewed })
	if !strings.Contains(log.String(), `"msg":"TLS certificate reloaded"`) {
		t.Errorf("reload not logged")
	}

	if err := os.WriteFile(fx.certFile, []byte("-----BEGIN CERTIFICATE-----\nYnJva2Vu\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken certificate refused", func() bool {
		if got := fx.servedSerial(t, addr); got != renewed {
			t.Fatalf("after a broken certificate was written, served %s, want still %s", got, renewed)
		}
		return strings.Contains(log.String(), `"msg":"new TLS certificate refused; the current one keeps serving"`)
	})
}

// launched is a keycard command started through Main: running (addr set)
// or exited (code set).
type launched struct {
	addr string // from the "listening" log line
	log  *syncBuffer
	stop func() int
}

// launch runs keycard with args until it logs that it listens, or exits.
// exited reports the latter, with the exit code.
func launch(t *testing.T, args ...string) (p *launched, code int, exited bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logBuf := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, strings.NewReader(""), io.Discard, logBuf) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(logBuf.String()); m != nil {
			p := &launched{addr: m[1], log: logBuf}
			var once sync.Once
			code := 0
			p.stop = func() int {
				once.Do(func() { cancel(); code = <-done })
				return code
			}
			t.Cleanup(func() { p.stop() })
			return p, 0, false
		}
		select {
		case code := <-done:
			cancel()
			return &launched{log: logBuf}, code, true
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("keycard %s neither listened nor exited: %s", args[0], logBuf.String())
		}
	}
}

// loopbackAddr returns the loopback address of a listener on every
// interface ("[::]:4000" → "127.0.0.1:4000").
func loopbackAddr(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// masterKeyFile writes a master key, so that servers run without --dev.
func masterKeyFile(t *testing.T) string {
	t.Helper()
	mk, err := auth.GenerateMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "master.key", mk+"\n")
}

// get sends GET u with client and returns the response with its body
// read.
func get(t *testing.T, client *http.Client, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServeRefusesPlainHTTP starts non-dev servers that would let tokens
// travel in clear text, and checks that each refuses to start, saying why
// and how to fix it.
func TestServeRefusesPlainHTTP(t *testing.T) {
	mk := masterKeyFile(t)
	fx := newTLSFixture(t)
	tests := []struct {
		name string
		args []string
		want []string // in the error
	}{
		{name: "plain HTTP on every interface", args: []string{"--addr", "0.0.0.0:0"},
			want: []string{"refusing to serve plain HTTP on", "not a loopback address", "--tls-cert", "--tls-key", "--behind-proxy", "--dev"}},
		{name: "plain HTTP on every interface, with an https issuer", args: []string{"--addr", "[::]:0", "--issuer", "https://auth.example.com"},
			want: []string{"refusing to serve plain HTTP on"}},
		{name: "http issuer", args: []string{"--addr", "127.0.0.1:0", "--issuer", "http://auth.example.com"},
			want: []string{`refusing --issuer "http://auth.example.com": it is not https://`, "localhost, 127.0.0.1 and [::1]"}},
		{name: "http issuer looking like loopback", args: []string{"--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1.nip.io:4000"},
			want: []string{"refusing --issuer"}},
		{name: "http issuer with TLS on the listener", args: []string{"--addr", "127.0.0.1:0", "--tls-cert", fx.certFile, "--tls-key", fx.keyFile, "--issuer", "http://auth.example.com"},
			want: []string{"refusing --issuer"}},
		{name: "http issuer behind a proxy", args: []string{"--addr", "127.0.0.1:0", "--behind-proxy", "--issuer", "http://auth.example.com"},
			want: []string{"refusing --issuer"}},
		{name: "default issuer behind a proxy on every interface", args: []string{"--addr", "0.0.0.0:0", "--behind-proxy"},
			want: []string{"refusing --issuer \"http://"}},
		{name: "cookie mode without TLS", args: []string{"--addr", "127.0.0.1:0", "--cookie-mode"},
			want: []string{"refusing --cookie-mode without TLS", "--tls-cert", "--behind-proxy"}},
		{name: "certificate without key", args: []string{"--addr", "127.0.0.1:0", "--tls-cert", fx.certFile},
			want: []string{"--tls-cert and --tls-key go together"}},
		{name: "certificate that does not load", args: []string{"--addr", "127.0.0.1:0", "--tls-cert", fx.keyFile, "--tls-key", fx.keyFile},
			want: []string{"tlsconfig:"}},
		{name: "bad trusted proxies", args: []string{"--addr", "127.0.0.1:0", "--behind-proxy", "--issuer", "https://a.example", "--trusted-proxies", "lb.example.com"},
			want: []string{"--trusted-proxies:", "lb.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := t.TempDir()
			args := append([]string{"serve", "--data", data, "--master-key-file", mk}, tt.args...)
			p, code, exited := launch(t, args...)
			if !exited {
				t.Fatalf("started on %s; want a refusal", p.addr)
			}
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.log.String(), w) {
					t.Errorf("stderr %q lacks %q", p.log.String(), w)
				}
			}
			// Refused before the data directory was opened.
			if _, err := os.Stat(filepath.Join(data, "keycard.db")); err == nil {
				t.Error("the database was opened before the refusal")
			}
		})
	}
}

// TestServeAllowedPlainHTTP starts the servers that may serve plain HTTP:
// loopback with a loopback issuer, --dev anywhere, and --behind-proxy,
// where X-Forwarded-Proto is believed from trusted proxies only.
func TestServeAllowedPlainHTTP(t *testing.T) {
	mk := masterKeyFile(t)
	for _, issuer := range []string{"", "http://localhost:4000", "http://[::1]:4000", "http://127.0.0.1:4000"} {
		t.Run("loopback issuer "+issuer, func(t *testing.T) {
			args := []string{"serve", "--data", t.TempDir(), "--master-key-file", mk, "--addr", "127.0.0.1:0",
				"--argon2-memory", "64", "--argon2-iterations", "1"}
			if issuer != "" {
				args = append(args, "--issuer", issuer)
			}
			p, code, exited := launch(t, args...)
			if exited {
				t.Fatalf("exit %d: %s", code, p.log.String())
			}
			resp, _ := get(t, http.DefaultClient, "http://"+p.addr+"/healthz", nil)
			if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("plain HTTP healthz: %d, HSTS %q (must not be sent over HTTP)", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
			}
		})
	}
	t.Run("dev on every interface", func(t *testing.T) {
		p, code, exited := launch(t, "serve", "--dev", "--data", t.TempDir(), "--addr", "0.0.0.0:0", "--argon2-memory", "64", "--argon2-iterations", "1")
		if exited {
			t.Fatalf("exit %d: %s", code, p.log.String())
		}
		if !strings.Contains(p.log.String(), "development mode serves plain HTTP on a non-loopback address") {
			t.Errorf("no warning: %s", p.log.String())
		}
	})

	xfpHTTPS := http.Header{"X-Forwarded-Proto": {"https"}}
	for _, tt := range []struct {
		name      string
		args      []string
		header    http.Header
		wantHSTS  bool
		cookieApp bool
	}{
		{name: "trusted loopback proxy says https", header: xfpHTTPS, wantHSTS: true},
		{name: "trusted loopback proxy says http", header: http.Header{"X-Forwarded-Proto": {"http"}}},
		{name: "no X-Forwarded-Proto", header: nil},
		{name: "X-Forwarded-Proto from an untrusted address", args: []string{"--trusted-proxies", "10.0.0.0/8,fd00::/8"}, header: xfpHTTPS},
		{name: "cookie mode behind a proxy", args: []string{"--cookie-mode"}, header: xfpHTTPS, wantHSTS: true},
	} {
		t.Run("behind proxy: "+tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--data", t.TempDir(), "--master-key-file", mk, "--addr", "0.0.0.0:0",
				"--behind-proxy", "--issuer", "https://auth.example.com", "--argon2-memory", "64", "--argon2-iterations", "1"}, tt.args...)
			p, code, exited := launch(t, args...)
			if exited {
				t.Fatalf("exit %d: %s", code, p.log.String())
			}
			resp, _ := get(t, http.DefaultClient, "http://"+loopbackAddr(t, p.addr)+"/.well-known/openid-configuration", tt.header)
			got := resp.Header.Get("Strict-Transport-Security")
			if resp.StatusCode != 200 || (got == tlsconfig.HSTSValue) != tt.wantHSTS || (got != "" && got != tlsconfig.HSTSValue) {
				t.Errorf("status %d, Strict-Transport-Security %q, want it %v", resp.StatusCode, got, tt.wantHSTS)
			}
		})
	}
}

// TestServeTLS runs a non-dev auth server over HTTPS with its certificate
// named in the YAML configuration: TLS 1.2 or later only, HSTS on every
// response, https in discovery, cookie mode's Secure cookies, and a
// certificate swap picked up without a restart.
func TestServeTLS(t *testing.T) {
	fx := newTLSFixture(t)
	data := t.TempDir()
	config := writeFile(t, "keycard.yaml", fmt.Sprintf("tls_cert: %s\ntls_key: %s\ncookie_mode: true\nregistration: true\n", fx.certFile, fx.keyFile))
	p, code, exited := launch(t, "serve", "--config", config, "--data", data, "--master-key-file", masterKeyFile(t),
		"--addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-iterations", "1")
	if exited {
		t.Fatalf("exit %d: %s", code, p.log.String())
	}
	base := "https://" + p.addr
	if !strings.Contains(p.log.String(), `"issuer":"`+base+`"`) || !strings.Contains(p.log.String(), `"tls":true`) {
		t.Errorf("listening line: want issuer %s and tls true: %s", base, p.log.String())
	}

	resp, body := get(t, fx.client, base+"/.well-known/openid-configuration", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"issuer":"`+base+`"`) || !strings.Contains(body, `"jwks_uri":"`+base+`/.well-known/jwks.json"`) {
		t.Errorf("discovery over HTTPS: %d %s", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
	for _, path := range []string{"/healthz", "/nope", "/v1/me"} {
		resp, _ := get(t, fx.client, base+path, nil)
		if got := resp.Header.Get("Strict-Transport-Security"); got != tlsconfig.HSTSValue {
			t.Errorf("GET %s (%d): Strict-Transport-Security %q, want %q", path, resp.StatusCode, got, tlsconfig.HSTSValue)
		}
	}

	// Registration, login and a bearer call, over HTTPS.
	reg, _ := fx.client.Post(base+"/v1/users", "application/json", strings.NewReader(`{"username":"alice","password":"correct horse battery staple"}`))
	if reg == nil || reg.StatusCode != http.StatusCreated {
		t.Fatalf("register over HTTPS: %v", reg)
	}
	reg.Body.Close()
	// A browser login from the issuer's origin sets cookies, all Secure.
	req, _ := http.NewRequest("POST", base+"/v1/login", strings.NewReader(`{"username":"alice","password":"correct horse battery staple","cookies":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	cookieLogin, err := fx.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cookieLogin.Body.Close()
	if cookieLogin.StatusCode != 200 || len(cookieLogin.Cookies()) == 0 {
		t.Fatalf("cookie login over HTTPS: %d, cookies %v", cookieLogin.StatusCode, cookieLogin.Cookies())
	}
	for _, c := range cookieLogin.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure", c.Name)
		}
	}

	// Plain HTTP to the TLS port gets the standard library's 400, and no
	// token-bearing answer; TLS 1.1 is refused.
	plain, _ := get(t, http.DefaultClient, "http://"+p.addr+"/healthz", nil)
	if plain.StatusCode != http.StatusBadRequest || plain.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("plain HTTP to the TLS port: %d %v", plain.StatusCode, plain.Header)
	}
	if conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: fx.ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
	// A client that does not trust the CA is refused by its own check.
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the system roots trust the throw-away CA")
	}

	fx.checkReload(t, p.addr, p.log)
	if code := p.stop(); code != exitOK {
		t.Errorf("exit %d", code)
	}
}

// TestServeTLSFromEnvironment names the certificate in KEYCARD_TLS_CERT
// and KEYCARD_TLS_KEY.
func TestServeTLSFromEnvironment(t *testing.T) {
	fx := newTLSFixture(t)
	t.Setenv("KEYCARD_TLS_CERT", fx.certFile)
	t.Setenv("KEYCARD_TLS_KEY", fx.keyFile)
	p, code, exited := launch(t, "serve", "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-iterations", "1")
	if exited {
		t.Fatalf("exit %d: %s", code, p.log.String())
	}
	resp, _ := get(t, fx.client, "https://"+p.addr+"/healthz", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != tlsconfig.HSTSValue {
		t.Errorf("healthz: %d %v", resp.StatusCode, resp.Header)
	}
}

// tlsUpstream is an HTTPS upstream with a certificate of ca, recording
// the subject the gateway forwards.
func tlsUpstream(t *testing.T, ca *tlsconfig.LocalCA) (*httptest.Server, func() string) {
	t.Helper()
	var mu sync.Mutex
	subject := ""
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		subject = r.Header.Get("X-Keycard-Subject")
		mu.Unlock()
		io.WriteString(w, "upstream over "+r.Proto)
	}))
	certPEM, keyPEM, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, func() string {
		mu.Lock()
		defer mu.Unlock()
		return subject
	}
}

// TestGatewayTLS runs an auth server and a gateway over HTTPS, both with
// certificates of a throw-away CA: the gateway follows the issuer's
// discovery, keys and revocation feed over HTTPS with issuer_ca, forwards
// to an HTTPS upstream trusted through upstream_ca, refuses one whose
// certificate no configured CA signed (502, with the reason logged),
// sends HSTS, and picks up a renewed certificate without a restart. A
// gateway that does not trust the issuer's CA does not start.
func TestGatewayTLS(t *testing.T) {
	authTLS := newTLSFixture(t)
	s := startServer(t, "--tls-cert", authTLS.certFile, "--tls-key", authTLS.keyFile)
	s.base = "https://" + strings.TrimPrefix(s.base, "http://")
	const pass = "correct horse battery staple"
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", "alice",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	feed := addClient(t, s.data, "--name", "gateway")

	gwTLS := newTLSFixture(t) // the gateway's own certificate, of another CA
	trusted, trustedSubject := tlsUpstream(t, authTLS.ca)
	stranger, _ := tlsUpstream(t, gwTLS.ca) // signed by a CA the gateway is not told about
	ws := newEchoUpstream(t)

	dir := gwTLS.dir
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(name, extra string) string {
		path := filepath.Join(dir, name)
		config := fmt.Sprintf(`
issuer: %s
audience: api
client:
  id: %s
  secret_file: feed.secret
routes:
  - path: /trusted/
    upstream: %s
  - path: /stranger/
    upstream: %s
  - path: /ws/
    upstream: %s
    auth: none
%s`, s.base, feed.ClientID, trusted.URL, stranger.URL, ws.URL, extra)
		if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Relative paths: beside the configuration file.
	os.WriteFile(filepath.Join(dir, "auth-ca.pem"), authTLS.ca.CertPEM(), 0o644)
	config := writeConfig("gateway.yaml", `
listen: 127.0.0.1:0
tls:
  cert: tls.pem
  key: tls-key.pem
issuer_ca: auth-ca.pem
upstream_ca: auth-ca.pem
`)
	p, code, exited := launch(t, "gateway", "--config", config)
	if exited {
		t.Fatalf("gateway exit %d: %s", code, p.log.String())
	}
	base := "https://" + p.addr
	eventually(t, "gateway ready over HTTPS", func() bool {
		resp, _ := get(t, gwTLS.client, base+"/readyz", nil)
		return resp.StatusCode == 200
	})

	var tr tokenResponse
	code, _ = callWith(t, authTLS.client, "POST", s.base+"/v1/login", "", "application/json", `{"username":"alice","password":"`+pass+`"}`, &tr)
	if code != 200 || tr.AccessToken == "" {
		t.Fatalf("login over HTTPS: %d %+v", code, tr)
	}
	bearer := http.Header{"Authorization": {"Bearer " + tr.AccessToken}}
	resp, body := get(t, gwTLS.client, base+"/trusted/x", bearer)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "upstream over") || trustedSubject() == "" {
		t.Errorf("HTTPS upstream trusted through upstream_ca: %d %q subject %q", resp.StatusCode, body, trustedSubject())
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != tlsconfig.HSTSValue {
		t.Errorf("gateway Strict-Transport-Security %q", got)
	}
	resp, body = get(t, gwTLS.client, base+"/stranger/x", bearer)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Strict-Transport-Security") != tlsconfig.HSTSValue {
		t.Errorf("upstream with an untrusted certificate: %d %q, want 502 with HSTS", resp.StatusCode, body)
	}
	if log := p.log.String(); !strings.Contains(log, `"msg":"upstream error","route":"/stranger/"`) || !strings.Contains(log, "certificate signed by unknown authority") {
		t.Errorf("the 502's reason is not logged: %s", log)
	}

	// A WebSocket upgrade through the HTTPS listener (HTTP/1.1, as
	// browsers open them): 101, then bytes both ways.
	conn, err := tls.Dial("tcp", p.addr, &tls.Config{RootCAs: gwTLS.ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws/echo HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	if up, err := http.ReadResponse(br, nil); err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("WebSocket upgrade over TLS: %v %v", up, err)
	}
	io.WriteString(conn, "ping")
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "ping" {
		t.Errorf("WebSocket echo over TLS: %q %v", echo, err)
	}
	conn.Close()

	// The revocation feed is followed over HTTPS: a logout reaches the
	// gateway.
	if code, _ := callWith(t, authTLS.client, "POST", s.base+"/v1/logout", tr.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	eventually(t, "logout reaches the gateway over the HTTPS feed", func() bool {
		resp, _ := get(t, gwTLS.client, base+"/trusted/x", bearer)
		return resp.StatusCode == http.StatusUnauthorized
	})

	gwTLS.checkReload(t, p.addr, p.log)

	// The TLS keys are read at start: a reload that changes them says
	// so, and keeps serving as before.
	os.WriteFile(filepath.Join(dir, "both-cas.pem"), append(authTLS.ca.CertPEM(), gwTLS.ca.CertPEM()...), 0o644)
	writeConfig("gateway.yaml", `
listen: 127.0.0.1:0
tls:
  cert: tls.pem
  key: tls-key.pem
issuer_ca: auth-ca.pem
upstream_ca: both-cas.pem
`)
	eventually(t, "reload naming upstream_ca as restart-only", func() bool {
		return strings.Contains(p.log.String(), `"keys":"upstream_ca"`)
	})
	var again tokenResponse
	if code, _ := callWith(t, authTLS.client, "POST", s.base+"/v1/login", "", "application/json", `{"username":"alice","password":"`+pass+`"}`, &again); code != 200 {
		t.Fatalf("second login: %d", code)
	}
	if resp, _ := get(t, gwTLS.client, base+"/stranger/x", http.Header{"Authorization": {"Bearer " + again.AccessToken}}); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("after a reload changing upstream_ca: /stranger/ answered %d, want still 502 until a restart", resp.StatusCode)
	}
	if code := p.stop(); code != exitOK {
		t.Errorf("gateway exit %d", code)
	}

	t.Run("issuer certificate not trusted", func(t *testing.T) {
		config := writeConfig("no-issuer-ca.yaml", "listen: 127.0.0.1:0\n")
		p, code, exited := launch(t, "gateway", "--config", config)
		if !exited {
			t.Fatalf("a gateway that cannot verify the issuer's certificate started on %s", p.addr)
		}
		if code != exitFailure || !strings.Contains(p.log.String(), "certificate signed by unknown authority") {
			t.Errorf("exit %d: %s", code, p.log.String())
		}
	})
	t.Run("behind a proxy on every interface", func(t *testing.T) {
		config := writeConfig("proxied.yaml", "listen: 0.0.0.0:0\nissuer_ca: auth-ca.pem\nbehind_proxy: true\n")
		p, code, exited := launch(t, "gateway", "--config", config)
		if exited {
			t.Fatalf("exit %d: %s", code, p.log.String())
		}
		for _, tt := range []struct {
			header http.Header
			want   string
		}{{http.Header{"X-Forwarded-Proto": {"https"}}, tlsconfig.HSTSValue}, {nil, ""}, {http.Header{"X-Forwarded-Proto": {"http"}}, ""}} {
			resp, _ := get(t, http.DefaultClient, "http://"+loopbackAddr(t, p.addr)+"/healthz", tt.header)
			if got := resp.Header.Get("Strict-Transport-Security"); resp.StatusCode != 200 || got != tt.want {
				t.Errorf("X-Forwarded-Proto %v: %d, Strict-Transport-Security %q, want %q", tt.header, resp.StatusCode, got, tt.want)
			}
		}
	})
}

// TestGatewayRefusesPlainHTTP checks the gateway's refusals: plain HTTP
// on a non-loopback address, an http issuer that is not loopback, and
// TLS settings that do not make sense.
func TestGatewayRefusesPlainHTTP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "feed.secret"), []byte("secret\n"), 0o600)
	tests := []struct {
		name     string
		config   string
		wantCode int
		want     []string
	}{
		{name: "plain HTTP on every interface", config: "listen: 0.0.0.0:0\nissuer: https://auth.example.com\n", wantCode: exitFailure,
			want: []string{"refusing to serve plain HTTP on", "tls.cert", "tls.key", "behind_proxy", "trusted_proxies"}},
		{name: "http issuer", config: "listen: 127.0.0.1:0\nissuer: http://auth.example.com\n", wantCode: exitFailure,
			want: []string{`refusing issuer "http://auth.example.com": it is not https://`}},
		{name: "http issuer behind a proxy", config: "listen: 0.0.0.0:0\nbehind_proxy: true\nissuer: http://10.0.0.1:4000\n", wantCode: exitFailure,
			want: []string{"refusing issuer"}},
		{name: "certificate without key", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\ntls:\n  cert: tls.pem\n", wantCode: exitUsage,
			want: []string{"tls.key: missing"}},
		{name: "misspelt TLS key", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\ntls:\n  cert: tls.pem\n  kye: tls-key.pem\n", wantCode: exitUsage,
			want: []string{`tls: unknown key \"kye\" (did you mean \"key\"?)`}},
		{name: "trusted proxies without behind_proxy", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\ntrusted_proxies: [10.0.0.0/8]\n", wantCode: exitUsage,
			want: []string{"trusted_proxies: only used with behind_proxy: true"}},
		{name: "bad trusted proxy", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\nbehind_proxy: true\ntrusted_proxies: [lb.example.com]\n", wantCode: exitUsage,
			want: []string{`trusted_proxies: \"lb.example.com\" is not an address or CIDR prefix`}},
		{name: "missing issuer CA", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\nissuer_ca: nope.pem\n", wantCode: exitFailure,
			want: []string{"issuer_ca:", "nope.pem"}},
		{name: "upstream CA without certificates", config: "listen: 127.0.0.1:0\nissuer: https://auth.example.com\nupstream_ca: feed.secret\n", wantCode: exitFailure,
			want: []string{"upstream_ca:", "no PEM certificate"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("gw%d.yaml", i))
			config := tt.config + "audience: api\nclient:\n  id: gw\n  secret_file: feed.secret\nroutes:\n  - path: /x/\n    upstream: http://127.0.0.1:9\n"
			os.WriteFile(path, []byte(config), 0o600)
			p, code, exited := launch(t, "gateway", "--config", path)
			if !exited {
				t.Fatalf("started on %s; want a refusal", p.addr)
			}
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d: %s", code, tt.wantCode, p.log.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(p.log.String(), strings.ReplaceAll(w, `\"`, `"`)) {
					t.Errorf("stderr %q lacks %q", p.log.String(), w)
				}
			}
		})
	}
}

// callWith is call with a client of the test's choice.
func callWith(t *testing.T, client *http.Client, method, u, bearer, contentType, body string, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, u, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// TestDemoTLS runs "keycard demo --tls" twice on one data directory: the
// first run makes a local CA (key 0600) and a certificate, both servers
// answer over HTTPS with HSTS to a client trusting DATA/ca.pem only, and
// the output says how to trust it; the second run reuses both.
func TestDemoTLS(t *testing.T) {
	data := t.TempDir()
	runDemo := func() (out string, stop func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		stdout, stderr := &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- Main(ctx, []string{"demo", "--tls", "--data", data, "--auth-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--travel-addr", "127.0.0.1:0"},
				strings.NewReader(""), stdout, stderr)
		}()
		var once sync.Once
		code := -1
		stop = func() int {
			once.Do(func() { cancel(); code = <-done })
			return code
		}
		t.Cleanup(func() { stop() })
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(stdout.String(), "Walk-through") {
			select {
			case code := <-done:
				t.Fatalf("demo --tls exited with %d:\n%s\n%s", code, stdout, stderr)
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("demo --tls did not start:\n%s", stderr)
			}
		}
		return stdout.String(), stop
	}
	out, stop := runDemo()
	caFile := filepath.Join(data, tlsconfig.CACertFile)
	if !strings.Contains(out, "curl --cacert "+caFile) {
		t.Errorf("the output does not say how to trust the CA:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(data, tlsconfig.CAKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
	caPEM, _ := os.ReadFile(caFile)
	leafPEM, _ := os.ReadFile(filepath.Join(data, "tls.pem"))

	tr, err := tlsconfig.Transport(caFile)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	walk := func(out string) {
		t.Helper()
		auth, gw, pass := demoAuthRE.FindStringSubmatch(out), demoGatewayRE.FindStringSubmatch(out), demoUserRE.FindStringSubmatch(out)
		if auth == nil || gw == nil || pass == nil || !strings.HasPrefix(auth[1], "https://") || !strings.HasPrefix(gw[1], "https://") {
			t.Fatalf("want https URLs and a password in:\n%s", out)
		}
		var tr tokenResponse
		code, h := callWith(t, client, "POST", auth[1]+"/v1/login", "", "application/json", fmt.Sprintf(`{"username":"demo","password":%q}`, pass[1]), &tr)
		if code != 200 || tr.AccessToken == "" || h.Get("Strict-Transport-Security") != tlsconfig.HSTSValue {
			t.Fatalf("login over HTTPS: %d %+v, HSTS %q", code, tr, h.Get("Strict-Transport-Security"))
		}
		resp, body := get(t, client, gw[1]+"/weather/paris", http.Header{"Authorization": {"Bearer " + tr.AccessToken}})
		if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != tlsconfig.HSTSValue {
			t.Errorf("weather through the gateway over HTTPS: %d %s, HSTS %q", resp.StatusCode, body, resp.Header.Get("Strict-Transport-Security"))
		}
		if _, err := http.Get(gw[1] + "/healthz"); err == nil {
			t.Error("a client without the demo's CA reached the gateway")
		}
	}
	walk(out)
	if code := stop(); code != exitOK {
		t.Fatalf("demo exit %d", code)
	}

	out, stop = runDemo()
	walk(out)
	caAgain, _ := os.ReadFile(caFile)
	leafAgain, _ := os.ReadFile(filepath.Join(data, "tls.pem"))
	if string(caAgain) != string(caPEM) || string(leafAgain) != string(leafPEM) {
		t.Error("the second run did not reuse the CA and its certificate")
	}
	if code := stop(); code != exitOK {
		t.Errorf("second demo exit %d", code)
	}
}
