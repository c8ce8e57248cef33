package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/mail"
	"github.com/keycard-auth/keycard/internal/mailpittest"
)

func resetMail(to string) auth.Mail {
	return auth.Mail{To: to, Template: auth.MailPasswordReset, Data: auth.MailData{
		Username: "Alice <script>", Email: to, Link: "https://auth.example.com/reset-password?token=abc.def&x=1",
		ValidFor: 30 * time.Minute, Issuer: "https://auth.example.com", At: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
	}}
}

func newMailer(t *testing.T, url string, tlsConf *tls.Config) *mail.Mailer {
	t.Helper()
	m, err := mail.New(mail.Config{URL: url, From: "Keycard@Example.com", TLS: tlsConf})
	if err != nil {
		t.Fatalf("New(%s): %v", url, err)
	}
	return m
}

// TestSendThroughMailpit sends each template to a real SMTP server and
// reads what arrived.
func TestSendThroughMailpit(t *testing.T) {
	mp := mailpittest.Start(t)
	m := newMailer(t, "smtp://"+mp.SMTPAddr, nil)
	ctx := context.Background()
	for i, name := range mail.Names {
		msg := resetMail("bob@example.com")
		msg.Template = name
		if err := m.Send(ctx, msg); err != nil {
			t.Fatalf("Send(%s): %v", name, err)
		}
		got := mp.WaitFor(t, "bob@example.com", i+1)
		if got.From.Address != "keycard@example.com" {
			t.Errorf("%s: From %q, want the normalized sender", name, got.From.Address)
		}
		if got.Subject == "" || strings.ContainsAny(got.Subject, "\r\n") {
			t.Errorf("%s: subject %q", name, got.Subject)
		}
		if !strings.Contains(got.Text, "Alice <script>") {
			t.Errorf("%s: text part lacks the username as is:\n%s", name, got.Text)
		}
		if strings.Contains(got.HTML, "<script>") || !strings.Contains(got.HTML, "Alice &lt;script&gt;") {
			t.Errorf("%s: HTML part does not escape the username:\n%s", name, got.HTML)
		}
		if name != auth.MailVerifyEmail && name != auth.MailPasswordReset {
			continue // a notification: no link
		}
		if !strings.Contains(got.Text, msg.Data.Link) || !strings.Contains(got.Text, "30 minutes") {
			t.Errorf("%s: text part lacks the link or its lifetime:\n%s", name, got.Text)
		}
		if !strings.Contains(got.HTML, `href="https://auth.example.com/reset-password?token=abc.def&amp;x=1"`) {
			t.Errorf("%s: HTML part lacks the link:\n%s", name, got.HTML)
		}
	}
}

// certFor makes a self-signed certificate for 127.0.0.1, written as PEM
// files in dir, and a pool that trusts it.
func certFor(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailpit test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS sends over STARTTLS (required by the server) and over implicit
// TLS (smtps), with AUTH PLAIN, and checks the certificate.
func TestTLS(t *testing.T) {
	cert, key, pool := certFor(t, t.TempDir())
	trusted := &tls.Config{RootCAs: pool}
	tests := []struct {
		name   string
		flags  []string
		scheme string
	}{
		{"STARTTLS required", []string{"--smtp-require-starttls"}, "smtp"},
		{"implicit TLS", []string{"--smtp-require-tls"}, "smtps"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mp := mailpittest.Start(t, append(tt.flags, "--smtp-tls-cert", cert, "--smtp-tls-key", key, "--smtp-auth-accept-any")...)
			m := newMailer(t, tt.scheme+"://user:s3cret@"+mp.SMTPAddr, trusted)
			if err := m.Send(context.Background(), resetMail("carol@example.com")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			mp.WaitFor(t, "carol@example.com", 1)

			// A server whose certificate is not trusted gets nothing.
			untrusted := newMailer(t, tt.scheme+"://user:s3cret@"+mp.SMTPAddr, nil)
			err := untrusted.Send(context.Background(), resetMail("dave@example.com"))
			if err == nil {
				t.Fatal("Send to an untrusted certificate succeeded")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error holds the password: %v", err)
			}
		})
	}
}

// TestAuthRequiresTLS: credentials are not sent in the clear, and a
// server without AUTH is an error rather than an unauthenticated send.
func TestAuthRequiresTLS(t *testing.T) {
	mp := mailpittest.Start(t) // no TLS, no AUTH
	m := newMailer(t, "smtp://user:s3cret@"+mp.SMTPAddr, nil)
	err := m.Send(context.Background(), resetMail("erin@example.com"))
	if err == nil || !strings.Contains(err.Error(), "no AUTH") {
		t.Fatalf("Send with credentials to a server without AUTH = %v, want an error", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error holds the password: %v", err)
	}
	if n := mp.Count(t, "erin@example.com"); n != 0 {
		t.Errorf("%d messages arrived, want none", n)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		url, from string
	}{
		{"http://mail.example.com", "a@example.com"},
		{"smtp://", "a@example.com"},
		{"smtp://user:s3cret@mail.example.com:bad", "a@example.com"},
		{"smtp://user:s3cret@mail.example.com/path", "a@example.com"},
		{"smtp://user:s3cret@mail.example.com?x=1", "a@example.com"},
		{"smtp://mail.example.com", "not an address"},
		{"smtp://mail.example.com", "a@b@example.com"},
		{"smtp://mail.example.com", "a@example.com\r\nBcc: x@example.com"},
	}
	for _, tt := range tests {
		_, err := mail.New(mail.Config{URL: tt.url, From: tt.from})
		if err == nil {
			t.Errorf("New(%q, %q) succeeded, want an error", tt.url, tt.from)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): error holds the password: %v", tt.url, err)
		}
	}
	m, err := mail.New(mail.Config{URL: "smtps://user:s3cret@mail.example.com", From: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if s := m.String(); strings.Contains(s, "s3cret") || !strings.Contains(s, "mail.example.com") {
		t.Errorf("String() = %q, want the URL without its password", s)
	}
}

func TestTemplatesOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "verify-email.txt"),
		[]byte("{{define \"subject\"}}Bitte\r\nBcc: x@example.com bestätigen{{end}}Hallo {{.Username}}: {{.Link}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tpl, err := mail.LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := resetMail("f@example.com")
	m.Template = auth.MailVerifyEmail
	r, err := tpl.Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if r.Subject != "Bitte Bcc: x@example.com bestätigen" {
		t.Errorf("subject %q, want one line", r.Subject)
	}
	if !strings.HasPrefix(r.Text, "Hallo Alice <script>: https://") {
		t.Errorf("text %q, want the overriding template", r.Text)
	}
	if !strings.Contains(r.HTML, "Confirm my email address") {
		t.Errorf("HTML %q, want the built-in template (not overridden)", r.HTML)
	}

	bad := []struct{ file, content string }{
		{"password-reset.txt", "no subject {{.Link}}"},
		{"password-reset.html", "{{.Nope"},
		{"password-changed.txt", `{{define "subject"}}x{{end}}{{.Unknown}}`},
	}
	for _, b := range bad {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, b.file), []byte(b.content), 0o600); err != nil {
			t.Fatal(err)
		}
		tpl, err := mail.LoadTemplates(dir)
		if err == nil {
			// A missing field is found when rendering.
			m := resetMail("g@example.com")
			m.Template = strings.TrimSuffix(strings.TrimSuffix(b.file, ".txt"), ".html")
			_, err = tpl.Render(m)
		}
		if err == nil {
			t.Errorf("template %s %q accepted", b.file, b.content)
		}
	}
	if _, err := mail.LoadTemplates(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadTemplates(a missing directory) succeeded")
	}
}

func TestLogMailer(t *testing.T) {
	tpl, err := mail.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := &mail.LogMailer{Templates: tpl, Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := l.Send(context.Background(), resetMail("h@example.com")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "reset-password?token=abc.def") || !strings.Contains(buf.String(), "h@example.com") {
		t.Errorf("log %q lacks the address or the link", buf.String())
	}
}
