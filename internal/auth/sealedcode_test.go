package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
)

func testCodeSealer(t *testing.T) *codeSealer {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	cs, err := newCodeSealer(key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// newTestSealer returns a Sealer of a new master key.
func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	master, err := GenerateMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	mk, err := ParseMasterKey([]byte(master))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := NewSealer(mk)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

// TestSealedCodeRoundTrip: a sealed code opens to what was sealed, and
// only the sealer's key opens it; a changed byte anywhere, a cut, a
// wrong version or another key's code is refused.
func TestSealedCodeRoundTrip(t *testing.T) {
	cs := testCodeSealer(t)
	at := time.Date(2026, 12, 6, 23, 0, 0, 123000, time.UTC)
	in := &sealedCode{
		ExpiresAt: at.Add(keycard.AuthCodeLifetime), AuthTime: at.Add(-time.Minute),
		ClientID: "client-1", UserID: "user-1", SessionID: "session-1",
		RedirectHash: redirectHash(testRedirect), CodeChallenge: testChallenge,
		Scope: "openid profile", Nonce: "n-0S6_WzA2Mj", DPoPJKT: "jkt", AMR: []string{"pwd", "otp", "mfa"},
		ParentExpiresAt: at.Add(30 * 24 * time.Hour), IdP: "corp", IdPSubject: "248289761001", IdPSessionID: "upstream-sid",
	}
	code, err := cs.seal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !looksSealed(code) || in.ID == "" {
		t.Fatalf("seal: code %q, id %q", code, in.ID)
	}
	out, err := cs.open(code)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if out.ID != in.ID || !out.ExpiresAt.Equal(in.ExpiresAt) || !out.AuthTime.Equal(in.AuthTime) || out.ClientID != in.ClientID ||
		out.UserID != in.UserID || out.SessionID != in.SessionID || !bytes.Equal(out.RedirectHash, in.RedirectHash) ||
		out.CodeChallenge != in.CodeChallenge || out.Scope != in.Scope || out.Nonce != in.Nonce || out.DPoPJKT != in.DPoPJKT ||
		len(out.AMR) != 3 || out.AMR[2] != "mfa" || !out.sameRedirect(testRedirect) || out.sameRedirect(testRedirect+"/") ||
		!out.ParentExpiresAt.Equal(in.ParentExpiresAt) || out.IdP != in.IdP || out.IdPSubject != in.IdPSubject || out.IdPSessionID != in.IdPSessionID {
		t.Errorf("open = %+v, want %+v", out, in)
	}
	again, _ := cs.seal(&sealedCode{ExpiresAt: in.ExpiresAt, ClientID: "client-1"})
	if again == code {
		t.Error("two seals gave one code")
	}
	if c, err := cs.open(again); err != nil || !c.AuthTime.IsZero() || c.AMR != nil {
		t.Errorf("open(no auth time, no amr) = %+v, %v", c, err)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(code)
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= bit
			if _, err := cs.open(base64.RawURLEncoding.EncodeToString(b)); err == nil {
				t.Fatalf("byte %d ^ %#x: opened", i, bit)
			}
		}
	}
	for _, bad := range []string{"", "A", code[:len(code)-1], code[:40], code + "A", code + "AA", "!" + code[1:],
		base64.RawURLEncoding.EncodeToString(append([]byte{2}, raw[1:]...))} {
		if _, err := cs.open(bad); err == nil {
			t.Errorf("open(%q) opened", bad)
		}
	}
	if _, err := testCodeSealer(t).open(code); err == nil {
		t.Error("a code sealed under another key opened")
	}
}

// FuzzSealedCodeOpen: whatever is presented as a code, open refuses it
// or returns what a seal made, without panicking.
func FuzzSealedCodeOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	cs, err := newCodeSealer(key, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	code, _ := cs.seal(&sealedCode{ExpiresAt: time.Unix(1, 0), ClientID: "c", AMR: []string{"pwd"}})
	f.Add(code)
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := cs.open(s)
		if err == nil && c.ClientID != "c" {
			t.Fatalf("open(%q) = %+v", s, c)
		}
	})
}

// TestSealedCodeAcrossInstances: instances that share a store and the
// master key redeem each other's codes, once: a code issued at one
// instance and redeemed at another is refused at a third use anywhere,
// and that use revokes the first grant (RFC 6749 section 4.1.2); an
// instance with another master key opens none of them; an expired code
// is refused and, if it was used, still revokes. On SQLite and, with
// KEYCARD_TEST_POSTGRES, PostgreSQL.
func TestSealedCodeAcrossInstances(t *testing.T) {
	clk := newClock()
	for name, shared := range sharedStores(clk) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			open := shared(t)
			sealer := newTestSealer(t)
			a := newInstance(t, open(t), sealer, clk)
			b := newInstance(t, open(t), sealer, clk)
			otherSealer := newTestSealer(t)
			// Another deployment's master key (the signing keys are a's:
			// only the codes' key differs).
			stranger, err := NewService(Deps{Stores: open(t), Keys: a.keys, Sealer: otherSealer, Hasher: fastHasher, Now: clk.Now}, Config{Issuer: "https://auth.test"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Register(ctx, "alice", "correct horse battery", nil); err != nil {
				t.Fatal(err)
			}
			fa := &fixture{svc: a, clock: clk}
			c, secret := fa.app(t, true, false)
			client, err := b.AuthenticateClient(ctx, c.ID, secret)
			if err != nil {
				t.Fatal(err)
			}
			browser := fa.browser(t, "alice")
			issue := func() string {
				t.Helper()
				req, err := a.Authorize(ctx, authzParams(c))
				if err != nil {
					t.Fatal(err)
				}
				code, err := a.IssueCode(ctx, req, browser)
				if err != nil {
					t.Fatal(err)
				}
				return code
			}
			exchange := func(svc *Service, code string) (*Tokens, error) {
				return svc.ExchangeCode(ctx, client, code, testRedirect, testVerifier, Agent{})
			}

			code := issue()
			if _, err := exchange(stranger, code); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
				t.Errorf("a code at an instance with another master key: %v, want EUNAUTHORIZED", err)
			}
			tok, err := exchange(b, code)
			if err != nil {
				t.Fatalf("a code issued at one instance, redeemed at another: %v", err)
			}
			for i, svc := range []*Service{a, b} {
				if _, err := exchange(svc, code); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
					t.Errorf("reuse %d: %v, want EUNAUTHORIZED", i, err)
				}
			}
			if sess, err := a.stores.Sessions.Session(ctx, tok.SessionID); err != nil || sess.RevokeReason != keycard.RevokeCodeReuse {
				t.Errorf("grant of a reused code: %+v, %v; want revoked for code reuse", sess, err)
			}

			// Two instances racing with one code: one grant, revoked.
			code = issue()
			results := make(chan error, 2)
			toks := make(chan *Tokens, 2)
			for _, svc := range []*Service{a, b} {
				go func() {
					tok, err := exchange(svc, code)
					toks <- tok
					results <- err
				}()
			}
			var won *Tokens
			for range 2 {
				if err := <-results; err == nil {
					if won != nil {
						t.Fatal("both instances redeemed one code")
					}
				}
				if tok := <-toks; tok != nil {
					won = tok
				}
			}
			if won == nil {
				t.Fatal("neither instance redeemed the code")
			}
			if sess, err := b.stores.Sessions.Session(ctx, won.SessionID); err != nil || sess.RevokeReason != keycard.RevokeCodeReuse {
				t.Errorf("grant of a code raced at two instances: %+v, %v; want revoked for code reuse", sess, err)
			}

			// Expired: refused, unused or not; a used one still revokes.
			unused, used := issue(), issue()
			tok, err = exchange(a, used)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(keycard.AuthCodeLifetime)
			for _, code := range []string{unused, used} {
				if _, err := exchange(b, code); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
					t.Errorf("expired code: %v, want EUNAUTHORIZED", err)
				}
			}
			if sess, err := a.stores.Sessions.Session(ctx, tok.SessionID); err != nil || sess.RevokeReason != keycard.RevokeCodeReuse {
				t.Errorf("grant of a code used again after its expiry: %+v, %v; want revoked for code reuse", sess, err)
			}
		})
	}
}

// TestSealedCodeEndsWithSessionAndConsent: a sealed code cannot be taken
// back before it is used, but it is worth nothing once the browser
// session it was issued in has ended, or the user's consent to the
// (third-party) client was revoked; refused, it is not used up.
func TestSealedCodeEndsWithSessionAndConsent(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	spa, _ := f.app(t, false, true)
	pub, err := f.svc.PublicClient(ctx, spa.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	a, err := f.svc.Authorize(ctx, authzParams(spa, "scope", "openid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Consent(ctx, b, a, Agent{}); err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeConsent(ctx, UserActor(b.User.ID, Agent{}), b.User.ID, spa.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a code issued under a consent revoked since: %v, want EUNAUTHORIZED", err)
	}
	f.clock.Advance(time.Second)
	if err := f.svc.Consent(ctx, b, a, Agent{}); err != nil {
		t.Fatal(err)
	}
	// Revoking the consent refused the code for good, as it deleted a
	// stored one: a consent given again (here perhaps to fewer scopes
	// than the code carries) does not bring it back.
	if _, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a code issued under a consent revoked since, after the consent was given again: %v, want EUNAUTHORIZED", err)
	}
	code, err = f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{}); err != nil {
		t.Errorf("a code issued under the consent given again: %v", err)
	}

	code, err = f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.EndBrowserSession(ctx, b, Agent{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, pub, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a code of a browser session that has ended: %v, want EUNAUTHORIZED", err)
	}
}

// TestSealedCodeReencodedIsTheSameCode: base64url has more than one
// spelling of a code (line breaks, which Go's decoder skips; the unused
// low bits of the last character), and every spelling is the same code:
// its single use is recorded under the decoded nonce, not the text, so
// a re-spelled code presented after the first use is a reuse, refused,
// and revokes the first grant (RFC 6749 section 4.1.2).
func TestSealedCodeReencodedIsTheSameCode(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	respell := map[string]func(string) string{
		"line breaks": func(code string) string { return code[:10] + "\r\n" + code[10:] + "\n" },
		"low bits of the last character": func(code string) string {
			// A code's decoded length is never a multiple of 3 here:
			// its last character carries unused bits.
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			i := strings.IndexByte(alphabet, code[len(code)-1])
			return code[:len(code)-1] + string(alphabet[i^1])
		},
	}
	for name, fn := range respell {
		a, err := f.svc.Authorize(ctx, authzParams(c))
		if err != nil {
			t.Fatal(err)
		}
		code, err := f.svc.IssueCode(ctx, a, b)
		if err != nil {
			t.Fatal(err)
		}
		if !looksSealed(code) {
			t.Fatalf("not a sealed code: %q", code)
		}
		other := fn(code)
		raw, err := base64.RawURLEncoding.DecodeString(code)
		if err != nil || len(raw)%3 == 0 {
			t.Fatalf("%s: code of %d bytes, %v; want one whose last character has unused bits", name, len(raw), err)
		}
		if o, err := base64.RawURLEncoding.DecodeString(other); err != nil || !bytes.Equal(raw, o) || other == code {
			t.Fatalf("%s: %q is not another spelling of the code: %v", name, other, err)
		}
		tok, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{})
		if err != nil {
			t.Fatalf("%s: first use: %v", name, err)
		}
		if _, err := f.svc.ExchangeCode(ctx, authed, other, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("%s: the code re-spelled, after its use: %v, want EUNAUTHORIZED", name, err)
		}
		if sess, err := f.svc.stores.Sessions.Session(ctx, tok.SessionID); err != nil || sess.RevokeReason != keycard.RevokeCodeReuse {
			t.Errorf("%s: grant of a code used again re-spelled: %+v, %v; want revoked for code reuse", name, sess, err)
		}
	}
}

// TestSealedCodeEndsWithUser: a code, which cannot be deleted, is
// refused once its user is disabled (which revokes the browser session
// it was issued in, in the same transaction) or deleted, and enabling
// the user again does not bring it back.
func TestSealedCodeEndsWithUser(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "alice")
	c, secret := f.app(t, true, false)
	authed, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser(t, "alice")
	a, err := f.svc.Authorize(ctx, authzParams(c))
	if err != nil {
		t.Fatal(err)
	}
	code, err := f.svc.IssueCode(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetUserDisabled(ctx, Operator(), b.User.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a code of a user disabled since: %v, want EUNAUTHORIZED", err)
	}
	if _, err := f.svc.SetUserDisabled(ctx, Operator(), b.User.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ExchangeCode(ctx, authed, code, testRedirect, testVerifier, Agent{}); keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
		t.Errorf("a code of a user disabled, then enabled again: %v, want EUNAUTHORIZED", err)
	}
}
