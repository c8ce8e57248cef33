package auth

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

func TestNormalizeEmail(t *testing.T) {
	good := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice.Smith+Tag@Example.COM\t", "alice.smith+tag@example.com"}, // the whole address lower-cased
		{"o'brien@mail.example.co.uk", "o'brien@mail.example.co.uk"},
		{"dev@localhost", "dev@localhost"},
		{"Jörg@Bücher.example", "jörg@bücher.example"},
		{strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".example", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + ".example"},
	}
	for _, tt := range good {
		got, err := NormalizeEmail(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	bad := []string{
		"", "   ", "alice", "alice@", "@example.com", "a@b@example.com",
		"a b@example.com", "a@exa mple.com", "a\r\n@example.com", "a@example.com\r\nBcc: x@example.com",
		"a\x00@example.com", "\"quoted\"@example.com", "a<b>@example.com", "a,b@example.com", "a;b@example.com",
		"a@[127.0.0.1]", "a@example..com", "a@.example.com", "a@example.com.", "a@-example.com", "a@example-.com",
		".a@example.com", "a.@example.com", "a..b@example.com", "a@exam_ple.com",
		strings.Repeat("a", 65) + "@example.com",
		"a@" + strings.Repeat("b", 64) + ".example",
		"a@" + strings.Repeat("b.", 130) + "example", // over 254 bytes
		"a\xff@example.com",
	}
	for _, in := range bad {
		if got, err := NormalizeEmail(in); keycard.ErrorCode(err) != keycard.EINVALID {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want EINVALID", in, got, err)
		}
	}
}

// TestEmailClaims: the ID token and userinfo carry email and
// email_verified with the email scope, for a user with an address, and
// email_verified is true only after verification.
func TestEmailClaims(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	keys, _ := f.svc.Keys().VerificationKeys(ctx)
	parser := jwt.NewParser(keys, jwt.WithIssuer("https://auth.test"), jwt.WithAudience(c.ID), jwt.WithType("JWT"), jwt.WithNow(f.clock.Now))
	claims := func(scope string) (*IDClaims, *IDClaims) {
		t.Helper()
		a, err := f.svc.Authorize(ctx, authzParams(c, "scope", scope))
		if err != nil {
			t.Fatal(err)
		}
		code, err := f.svc.IssueCode(ctx, a, b)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
		if err != nil {
			t.Fatal(err)
		}
		var idc IDClaims
		if err := parser.Parse(tok.IDToken, &idc); err != nil {
			t.Fatal(err)
		}
		info, err := f.svc.UserInfo(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return &idc, info
	}
	want := func(what string, c *IDClaims, email string, verified *bool) {
		t.Helper()
		if c.Email != email || (c.EmailVerified == nil) != (verified == nil) || (verified != nil && *c.EmailVerified != *verified) {
			t.Errorf("%s: email %q, email_verified %v; want %q, %v", what, c.Email, c.EmailVerified, email, verified)
		}
	}
	no, yes := false, true

	// No address: no email claims, even with the scope.
	idc, info := claims("openid email")
	want("ID token, no address", idc, "", nil)
	want("userinfo, no address", info, "", nil)

	if _, err := f.svc.SetEmail(ctx, Operator(), b.User.ID, "Alice@Example.com", false); err != nil {
		t.Fatal(err)
	}
	idc, info = claims("openid email")
	want("ID token, unverified", idc, "alice@example.com", &no)
	want("userinfo, unverified", info, "alice@example.com", &no)
	idc, info = claims("openid profile")
	want("ID token without the email scope", idc, "", nil)
	want("userinfo without the email scope", info, "", nil)

	if _, err := f.svc.SetEmail(ctx, Operator(), b.User.ID, "alice@example.com", true); err != nil {
		t.Fatal(err)
	}
	idc, info = claims("openid email")
	want("ID token, verified", idc, "alice@example.com", &yes)
	want("userinfo, verified", info, "alice@example.com", &yes)
}

// blockingMailer holds every Send until release is closed, and counts the
// mails it was given.
type blockingMailer struct {
	release chan struct{}
	sent    chan Mail
}

func (m *blockingMailer) Send(ctx context.Context, mail Mail) error {
	select {
	case <-m.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.sent <- mail
	return nil
}

// TestMailQueueNeverBlocks: with the mail server stuck, requests that
// send mail still answer; mail beyond the queue is dropped and logged,
// and what was queued is sent once the server answers.
func TestMailQueueNeverBlocks(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	var logs syncBuffer
	m := &blockingMailer{release: make(chan struct{}), sent: make(chan Mail, 16)}
	svc, err := NewService(Deps{Stores: f.db.Stores(), Keys: f.svc.keys, Sealer: f.svc.sealer, Hasher: fastHasher, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Mailer: m}, Config{Issuer: "https://auth.test", MailQueue: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterWithEmail(ctx, "alice", "correct horse battery", "alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.RunMail(runCtx)
	}()
	// The worker takes the verification mail and waits on the server;
	// two more fill the queue; the rest are dropped. None of these calls
	// waits for the mail server.
	for i := range 6 {
		if err := svc.RequestPasswordReset(ctx, "alice@example.com", Agent{Addr: "192.0.2.1"}); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "mail queue full") {
		if time.Now().After(deadline) {
			t.Fatalf("no \"mail queue full\" in the log: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(m.release)
	stop()
	<-done // RunMail finishes the queued jobs before returning
	close(m.sent)
	var got []string
	for mail := range m.sent {
		got = append(got, mail.Template)
	}
	if len(got) < 2 || len(got) > 3 || got[0] != MailVerifyEmail {
		t.Errorf("sent %v: want the verification mail and the queued reset links (2 or 3 in all)", got)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
