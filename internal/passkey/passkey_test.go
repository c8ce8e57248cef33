package passkey_test

import (
	"context"
	"encoding/base32"
	"slices"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/passkey"
	"github.com/keycard-auth/keycard/internal/passkey/passkeytest"
	"github.com/keycard-auth/keycard/internal/totp"
)

const (
	issuer = "https://auth.example.com"
	rpID   = "example.com"
	origin = "https://auth.example.com"
)

type env struct {
	svc    *auth.Service
	stores keycard.Stores
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{now: time.Now().UTC().Truncate(time.Second)}
	a := authtest.New(t, func() time.Time { return e.now })
	rp, err := passkey.New(passkey.Config{RPID: rpID, Origins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	d := a.Deps()
	d.WebAuthn = rp
	e.svc, err = auth.NewService(d, auth.Config{Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	e.stores = a.Stores
	return e
}

// principal registers a user and signs it in with its password.
func (e *env) principal(t *testing.T, name string) *auth.Principal {
	t.Helper()
	ctx := context.Background()
	if _, err := e.svc.Register(ctx, name, "correct horse battery", nil); err != nil && keycard.ErrorCode(err) != keycard.ECONFLICT {
		t.Fatal(err)
	}
	tok, err := e.svc.Login(ctx, name, "correct horse battery", auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// register registers a passkey of a's for p, from the right origin.
func (e *env) register(t *testing.T, p *auth.Principal, a *passkeytest.Authenticator) *keycard.Passkey {
	t.Helper()
	ctx := context.Background()
	c, err := e.svc.BeginPasskeyRegistration(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := e.svc.FinishPasskeyRegistration(ctx, p, c.ID, "Key", a.Create(t, c.Options, origin, rpID), auth.Agent{})
	if err != nil {
		t.Fatalf("FinishPasskeyRegistration: %v", err)
	}
	return pk
}

func wantCode(t *testing.T, what string, err error, want string) {
	t.Helper()
	if got := keycard.ErrorCode(err); got != want {
		t.Errorf("%s: got %q (%v), want %q", what, got, err, want)
	}
}

func TestRegistrationOptions(t *testing.T) {
	e := newEnv(t)
	p := e.principal(t, "alice")
	c, err := e.svc.BeginPasskeyRegistration(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	o := passkeytest.ParseOptions(t, c.Options)
	sel := o.PublicKey.AuthenticatorSelection
	if o.PublicKey.RP.ID != rpID || sel.ResidentKey != "required" || sel.UserVerification != "preferred" || len(o.PublicKey.Challenge) < 43 {
		t.Errorf("creation options %s: want rp %s, a discoverable credential required, user verification preferred, a 32-byte challenge", c.Options, rpID)
	}
	if h, _ := passkeytest.B64.DecodeString(o.PublicKey.User.ID); string(h) != p.User.ID {
		t.Errorf("user handle %q, want the user id %q", h, p.User.ID)
	}
}

// TestRegistrationRefused: answers from another origin, for another
// relying party id, to another session's ceremony, or twice, register
// nothing.
func TestRegistrationRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.principal(t, "alice")
	for _, tt := range []struct {
		name, origin, rpID string
	}{
		{"another origin", "https://evil.example", rpID},
		{"a look-alike origin", "https://auth.example.com.evil.example", rpID},
		{"http, not https", "http://auth.example.com", rpID},
		{"another relying party id", origin, "evil.example"},
		{"a parent of the relying party id", origin, "com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.svc.BeginPasskeyRegistration(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.FinishPasskeyRegistration(ctx, p, c.ID, "", passkeytest.New(t).Create(t, c.Options, tt.origin, tt.rpID), auth.Agent{})
			wantCode(t, "registration", err, keycard.EUNAUTHORIZED)
		})
	}
	// Another session of the same user cannot finish this session's
	// ceremony; and a ceremony is answered once.
	other := e.principal(t, "alice")
	c, err := e.svc.BeginPasskeyRegistration(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	a := passkeytest.New(t)
	resp := a.Create(t, c.Options, origin, rpID)
	_, err = e.svc.FinishPasskeyRegistration(ctx, other, c.ID, "", resp, auth.Agent{})
	wantCode(t, "another session's ceremony", err, keycard.EUNAUTHORIZED)
	_, err = e.svc.FinishPasskeyRegistration(ctx, p, c.ID, "", resp, auth.Agent{})
	wantCode(t, "the ceremony after another session tried it (used up)", err, keycard.EUNAUTHORIZED)
	// Expired.
	c, _ = e.svc.BeginPasskeyRegistration(ctx, p)
	resp = a.Create(t, c.Options, origin, rpID)
	e.now = e.now.Add(keycard.PasskeyChallengeLifetime)
	_, err = e.svc.FinishPasskeyRegistration(ctx, p, c.ID, "", resp, auth.Agent{})
	wantCode(t, "an expired ceremony", err, keycard.EUNAUTHORIZED)
	if pks, _ := e.svc.ListPasskeys(ctx, p.User.ID); len(pks) != 0 {
		t.Errorf("%d passkeys registered, want none", len(pks))
	}
	// Malformed answers are EINVALID, never internal.
	for _, body := range []string{``, `{}`, `null`, `[]`, `{"id":"x","rawId":"x","type":"public-key","response":{}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`, `{"type":1}`} {
		c, _ := e.svc.BeginPasskeyRegistration(ctx, p)
		_, err := e.svc.FinishPasskeyRegistration(ctx, p, c.ID, "", []byte(body), auth.Agent{})
		if code := keycard.ErrorCode(err); code != keycard.EINVALID && code != keycard.EUNAUTHORIZED {
			t.Errorf("registration answer %q: %v, want EINVALID or EUNAUTHORIZED", body, err)
		}
	}
}

// signIn runs a discoverable sign-in with a's answer from (origin, rpID).
func (e *env) signIn(t *testing.T, a *passkeytest.Authenticator, origin, rpID string) (*auth.Tokens, error) {
	t.Helper()
	c, err := e.svc.BeginPasskeyLogin(context.Background(), auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	return e.svc.PasskeyLogin(context.Background(), c.ID, a.Get(t, c.Options, origin, rpID), "", auth.Agent{})
}

func sessionAMR(t *testing.T, e *env, tok *auth.Tokens) []string {
	t.Helper()
	s, err := e.stores.Sessions.Session(context.Background(), tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s.AMR
}

func TestSignIn(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.principal(t, "alice")
	device, synced := passkeytest.New(t), passkeytest.New(t)
	synced.Backup, synced.NoCounter = true, true
	e.register(t, p, device)
	e.register(t, p, synced)

	tok, err := e.signIn(t, device, origin, rpID)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if got := sessionAMR(t, e, tok); !slices.Equal(got, []string{"hwk", "mfa"}) {
		t.Errorf("amr %v, want [hwk mfa]", got)
	}
	pr, err := e.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil || pr.User.ID != p.User.ID {
		t.Fatalf("the passkey's access token: %v", err)
	}
	// A synced passkey that reports no counter (always 0), without user
	// verification: swk alone.
	synced.NoUV = true
	for range 2 { // twice: a counter that stays 0 is no regression
		if tok, err = e.signIn(t, synced, origin, rpID); err != nil {
			t.Fatalf("sign-in with a synced passkey: %v", err)
		}
	}
	if got := sessionAMR(t, e, tok); !slices.Equal(got, []string{"swk"}) {
		t.Errorf("amr %v, want [swk]", got)
	}
	dev, err := e.stores.Passkeys.PasskeyByCredentialID(ctx, device.CredentialID)
	if err != nil || dev.SignCount != device.Counter || dev.LastUsedAt.IsZero() {
		t.Errorf("after use the device's passkey is %+v (%v), want counter %d and a last use", dev, err, device.Counter)
	}
	if syn, err := e.stores.Passkeys.PasskeyByCredentialID(ctx, synced.CredentialID); err != nil || !syn.BackupEligible || !syn.BackupState {
		t.Errorf("the synced passkey is %+v (%v), want BE and BS", syn, err)
	}

	// Signing in again in the browser that has a session of the user
	// renews that session.
	c, _ := e.svc.BeginPasskeyLogin(ctx, auth.Agent{})
	again, err := e.svc.PasskeyLogin(ctx, c.ID, device.Get(t, c.Options, origin, rpID), tok.SessionID, auth.Agent{})
	if err != nil || again.SessionID != tok.SessionID {
		t.Errorf("sign-in again: session %v (%v), want %s renewed", again, err, tok.SessionID)
	}
}

// TestSignInRefused: another origin, another relying party id, a
// replayed answer or challenge, a counter that went back, a removed
// passkey, a disabled user: no session.
func TestSignInRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.principal(t, "alice")
	a := passkeytest.New(t)
	e.register(t, p, a)

	for _, tt := range []struct{ name, origin, rpID string }{
		{"another origin", "https://evil.example", rpID},
		{"a sibling origin not configured", "https://app.example.com", rpID},
		{"another relying party id", origin, "evil.example"},
		{"the origin's host as relying party id", origin, "auth.example.com"},
	} {
		_, err := e.signIn(t, a, tt.origin, tt.rpID)
		wantCode(t, tt.name, err, keycard.EUNAUTHORIZED)
	}

	// A good answer works once: replayed to the same ceremony (gone), or
	// to a new one (another challenge), it is refused.
	c, _ := e.svc.BeginPasskeyLogin(ctx, auth.Agent{})
	resp := a.Get(t, c.Options, origin, rpID)
	if _, err := e.svc.PasskeyLogin(ctx, c.ID, resp, "", auth.Agent{}); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	_, err := e.svc.PasskeyLogin(ctx, c.ID, resp, "", auth.Agent{})
	wantCode(t, "the same answer to the same ceremony", err, keycard.EUNAUTHORIZED)
	c2, _ := e.svc.BeginPasskeyLogin(ctx, auth.Agent{})
	_, err = e.svc.PasskeyLogin(ctx, c2.ID, resp, "", auth.Agent{})
	wantCode(t, "an old answer to a new ceremony", err, keycard.EUNAUTHORIZED)
	// An expired ceremony.
	c, _ = e.svc.BeginPasskeyLogin(ctx, auth.Agent{})
	resp = a.Get(t, c.Options, origin, rpID)
	e.now = e.now.Add(keycard.PasskeyChallengeLifetime)
	_, err = e.svc.PasskeyLogin(ctx, c.ID, resp, "", auth.Agent{})
	wantCode(t, "an expired ceremony", err, keycard.EUNAUTHORIZED)

	// A counter that did not advance: a possible clone. Refused and
	// audited; the genuine authenticator, ahead, still signs in.
	pks, _ := e.svc.ListPasskeys(ctx, p.User.ID)
	stored := pks[0].SignCount
	clone := *a
	clone.Counter = stored - 1 // its next signature carries stored: not above
	_, err = e.signIn(t, &clone, origin, rpID)
	wantCode(t, "a counter that did not advance", err, keycard.EUNAUTHORIZED)
	events, _ := e.stores.Audit.ListAudit(ctx, keycard.AuditFilter{Type: auth.AuditPasskeyCounterRegressed})
	if len(events) != 1 {
		t.Errorf("%d %s events, want 1", len(events), auth.AuditPasskeyCounterRegressed)
	}
	if pks, _ := e.svc.ListPasskeys(ctx, p.User.ID); pks[0].SignCount != stored {
		t.Errorf("the refused sign-in moved the counter to %d, want %d kept", pks[0].SignCount, stored)
	}
	if _, err := e.signIn(t, a, origin, rpID); err != nil {
		t.Errorf("the genuine authenticator after the clone: %v", err)
	}

	// A disabled user.
	if _, err := e.svc.SetUserDisabled(ctx, auth.Operator(), p.User.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = e.signIn(t, a, origin, rpID)
	wantCode(t, "a disabled user", err, keycard.EUNAUTHORIZED)
	if _, err := e.svc.SetUserDisabled(ctx, auth.Operator(), p.User.ID, false); err != nil {
		t.Fatal(err)
	}

	// A removed passkey.
	pks, _ = e.svc.ListPasskeys(ctx, p.User.ID)
	if err := e.svc.RemovePasskey(ctx, auth.Operator(), p.User.ID, pks[0].ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.signIn(t, a, origin, rpID)
	wantCode(t, "a removed passkey", err, keycard.EUNAUTHORIZED)
	// An unknown credential of a user handle that is no user.
	stranger := passkeytest.New(t)
	stranger.UserHandle = []byte("no-such-user")
	_, err = e.signIn(t, stranger, origin, rpID)
	wantCode(t, "an unknown user handle", err, keycard.EUNAUTHORIZED)

	// Malformed answers: EINVALID or EUNAUTHORIZED, never internal.
	for _, body := range []string{``, `{}`, `null`, `"x"`, `{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}`,
		`{"id":1}`, `{"id":"` + passkeytest.B64.EncodeToString(a.CredentialID) + `","rawId":"` + passkeytest.B64.EncodeToString(a.CredentialID) + `","type":"public-key","response":{"clientDataJSON":"!!","authenticatorData":"","signature":""}}`} {
		c, _ := e.svc.BeginPasskeyLogin(ctx, auth.Agent{})
		_, err := e.svc.PasskeyLogin(ctx, c.ID, []byte(body), "", auth.Agent{})
		if code := keycard.ErrorCode(err); code != keycard.EINVALID && code != keycard.EUNAUTHORIZED {
			t.Errorf("sign-in answer %q: %v, want EINVALID or EUNAUTHORIZED", body, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	for _, tt := range []struct{ issuer, rpID, origin string }{
		{"https://auth.example.com", "auth.example.com", "https://auth.example.com"},
		{"https://auth.example.com:8443/", "auth.example.com", "https://auth.example.com:8443"},
		{"http://localhost:4000", "localhost", "http://localhost:4000"},
	} {
		rp, o, err := passkey.Defaults(tt.issuer)
		if err != nil || rp != tt.rpID || o != tt.origin {
			t.Errorf("Defaults(%q) = %q, %q, %v; want %q, %q", tt.issuer, rp, o, err, tt.rpID, tt.origin)
		}
	}
	if _, _, err := passkey.Defaults("not a url"); err == nil {
		t.Error("Defaults of a non-URL succeeded")
	}
	if _, err := passkey.New(passkey.Config{RPID: "example.com", Origins: []string{"https://example.com/path"}}); err == nil {
		t.Error("an origin with a path was accepted")
	}
	if _, err := passkey.New(passkey.Config{RPID: "", Origins: []string{"https://example.com"}}); err == nil {
		t.Error("an empty relying party id was accepted")
	}
}

// TestSignInWithoutUserVerification: a passkey that did not verify its
// user is one factor, possession. It signs in an account with nothing
// more, but not one that has set up a second factor: that takes a
// passkey that verifies its user, or the password and the factor.
func TestSignInWithoutUserVerification(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.principal(t, "alice")
	key := passkeytest.New(t)
	key.NoUV = true
	e.register(t, p, key)
	if _, err := e.signIn(t, key, origin, rpID); err != nil {
		t.Fatalf("a passkey without user verification, no second factor: %v", err)
	}

	enrol, err := e.svc.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enrol.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ConfirmTOTP(ctx, p, totp.Code(secret, totp.Step(e.now)), auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	_, err = e.signIn(t, key, origin, rpID)
	wantCode(t, "a passkey without user verification, an authenticator app set up", err, keycard.EUNAUTHORIZED)

	key.NoUV = false
	tok, err := e.signIn(t, key, origin, rpID)
	if err != nil {
		t.Fatalf("the same passkey verifying its user: %v", err)
	}
	if got := sessionAMR(t, e, tok); !slices.Equal(got, []string{"hwk", "mfa"}) {
		t.Errorf("amr %v, want [hwk mfa]", got)
	}
}
