package auth

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// client registers a service client and returns it with its secret.
func (f *fixture) client(t *testing.T, scopes, audiences []string) (*keycard.Client, string) {
	t.Helper()
	c, secret, err := f.svc.CreateClient(context.Background(), Operator(), ClientSpec{Name: "svc", Scopes: scopes, Audiences: audiences})
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	return c, secret
}

// verify checks a token against the published JWKS, with aud when not
// empty, and returns its claims.
func (f *fixture) verify(t *testing.T, token, aud string) jwt.AccessClaims {
	t.Helper()
	jwks, err := f.svc.Keys().JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	set, err := jose.ParseKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	opts := []jwt.ParserOption{jwt.WithType("at+jwt"), jwt.WithIssuer("https://auth.test"), jwt.WithNow(f.clock.Now)}
	if aud != "" {
		opts = append(opts, jwt.WithAudience(aud))
	}
	var c jwt.AccessClaims
	if err := jwt.NewParser(set, opts...).Parse(token, &c); err != nil {
		t.Fatalf("verify against JWKS: %v", err)
	}
	return c
}

func TestCreateClient(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c, secret, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: "gateway", Scopes: []string{"feed:read", "weather:read", "feed:read"}, Audiences: []string{"api", "feed"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ID) != 22 || len(secret) != 43 {
		t.Errorf("got id %q and a %d-character secret, want 22 and 43 characters", c.ID, len(secret))
	}
	stored, err := f.db.Stores().Clients.Client(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.SecretHash, keycard.HashClientSecret(secret)) || bytes.Contains(stored.SecretHash, []byte(secret)) {
		t.Errorf("stored secret hash %x, want the SHA-256 of the secret", stored.SecretHash)
	}
	if got := strings.Join(stored.Scopes, " "); got != "feed:read weather:read" {
		t.Errorf("stored scopes %q, want repeats dropped: %q", got, "feed:read weather:read")
	}
	if got := strings.Join(stored.Audiences, " "); got != "api feed" {
		t.Errorf("stored audiences %q, want %q", got, "api feed")
	}

	many := make([]string, MaxClientScopes+1)
	for i := range many {
		many[i] = "s" + strings.Repeat("x", i)
	}
	bad := []struct {
		name      string
		cname     string
		scopes    []string
		audiences []string
	}{
		{"empty name", "", nil, nil},
		{"control character in name", "a\nb", nil, nil},
		{"long name", strings.Repeat("n", MaxClientNameLen+1), nil, nil},
		{"empty scope", "x", []string{""}, nil},
		{"scope with a space", "x", []string{"a b"}, nil},
		{"scope with a quote", "x", []string{`a"b`}, nil},
		{"non-ASCII scope", "x", []string{"café"}, nil},
		{"long scope", "x", []string{strings.Repeat("s", MaxScopeLen+1)}, nil},
		{"too many scopes", "x", many, nil},
		{"audience with a space", "x", nil, []string{"my api"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.svc.CreateClient(ctx, Operator(), ClientSpec{Name: tt.cname, Scopes: tt.scopes, Audiences: tt.audiences})
			if keycard.ErrorCode(err) != keycard.EINVALID {
				t.Errorf("CreateClient: got %v, want EINVALID", err)
			}
		})
	}
}

func TestAuthenticateClient(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c, secret := f.client(t, []string{"a"}, nil)
	got, err := f.svc.AuthenticateClient(ctx, c.ID, secret)
	if err != nil || got.ID != c.ID {
		t.Fatalf("AuthenticateClient(right secret) = %v, %v; want the client", got, err)
	}
	// A secret differing in its first character: the last one carries
	// only 4 bits of the 256 and is often the same.
	wrong := "A" + secret[1:]
	if secret[0] == 'A' {
		wrong = "B" + secret[1:]
	}
	want := errClient()
	tests := []struct {
		name, id, secret string
	}{
		{"wrong secret", c.ID, wrong},
		{"unknown id", "nosuchclientnosuchclie", secret},
		{"empty secret", c.ID, ""},
		{"empty id", "", secret},
		{"long id", strings.Repeat("i", 1000), secret},
		{"long secret", c.ID, strings.Repeat(secret, 100)},
		{"another client's secret", c.ID, func() string { _, s := f.client(t, nil, nil); return s }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.svc.AuthenticateClient(ctx, tt.id, tt.secret)
			if got != nil || keycard.ErrorCode(err) != keycard.EUNAUTHORIZED || keycard.ErrorMessage(err) != keycard.ErrorMessage(want) {
				t.Errorf("AuthenticateClient = %v, %v; want nil and %v, the same for every failure", got, err, want)
			}
		})
	}

	next, err := f.svc.RotateClientSecret(ctx, Operator(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateClient(ctx, c.ID, secret); err == nil {
		t.Errorf("AuthenticateClient(old secret after rotation): got nil error, want one")
	}
	if _, err := f.svc.AuthenticateClient(ctx, c.ID, next); err != nil {
		t.Errorf("AuthenticateClient(new secret): %v", err)
	}
	if _, err := f.svc.RotateClientSecret(ctx, Operator(), "missing"); keycard.ErrorCode(err) != keycard.ENOTFOUND {
		t.Errorf("RotateClientSecret(missing): got %v, want ENOTFOUND", err)
	}
}

func TestClientCredentials(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	c, _ := f.client(t, []string{"weather:read", "orders:write", "feed:read"}, []string{"weather", "orders"})
	bare, _ := f.client(t, nil, nil)
	tests := []struct {
		name      string
		client    *keycard.Client
		scope     string
		wantScope string
		wantAud   string
	}{
		{"all allowed by default", c, "", "weather:read orders:write feed:read", "weather"},
		{"blank means default", c, "  ", "weather:read orders:write feed:read", "weather"},
		{"one", c, "feed:read", "feed:read", "weather"},
		{"several, repeated, extra spaces", c, "orders:write  weather:read orders:write", "orders:write weather:read", "weather"},
		{"no scopes, default audience", bare, "", "", DefaultAudience},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.svc.ClientCredentials(ctx, tt.client, tt.scope)
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken != "" || tok.SessionID != "" || tok.ExpiresIn != int64(DefaultAccessTTL/time.Second) || tok.Scope != tt.wantScope {
				t.Errorf("got %+v, want scope %q, no refresh token and no session", tok, tt.wantScope)
			}
			claims := f.verify(t, tok.AccessToken, tt.wantAud)
			if claims.Subject != tt.client.ID || claims.ClientID != tt.client.ID || claims.SessionID != "" ||
				claims.Scope != tt.wantScope || claims.ID == "" || len(claims.Roles) != 0 || len(claims.Audience) != 1 {
				t.Errorf("got claims %+v, want sub and client_id %s, scope %q, aud %q, no sid", claims, tt.client.ID, tt.wantScope, tt.wantAud)
			}
			// A client's token is not a user's: the user API refuses it.
			if _, err := f.svc.Authenticate(ctx, tok.AccessToken); err == nil {
				t.Errorf("Authenticate(client token): got nil error, want one")
			}
		})
	}
	for _, scope := range []string{"admin", "feed:read admin", `feed:read "x"`, "weather:read\tfeed:read"} {
		_, err := f.svc.ClientCredentials(ctx, c, scope)
		if keycard.ErrorCode(err) != keycard.EFORBIDDEN {
			t.Errorf("ClientCredentials(scope %q): got %v, want EFORBIDDEN (invalid_scope)", scope, err)
		}
	}
}

func TestIntrospect(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "Alice")
	c, _ := f.client(t, []string{"feed:read"}, nil)
	login := func() *Tokens {
		t.Helper()
		tok, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	introspect := func(token string) *Introspection {
		t.Helper()
		in, err := f.svc.Introspect(ctx, token)
		if err != nil {
			t.Fatalf("Introspect: %v", err)
		}
		return in
	}
	wantInactive := func(what, token string) {
		t.Helper()
		if in := introspect(token); in.Active || in.Subject != "" || in.TokenType != "" {
			t.Errorf("Introspect(%s) = %+v, want just inactive", what, in)
		}
	}

	user := login()
	in := introspect(user.AccessToken)
	if !in.Active || in.TokenType != TokenTypeAccess || in.Username != "Alice" || in.SessionID != user.SessionID ||
		in.ClientID != DefaultClientID || in.Issuer != "https://auth.test" || in.JTI == "" || in.Subject == "" ||
		!in.ExpiresAt.Equal(f.clock.Now().Add(DefaultAccessTTL).Truncate(time.Second)) || in.IssuedAt.IsZero() ||
		len(in.Audience) != 1 || in.Audience[0] != DefaultAudience {
		t.Errorf("Introspect(user access token) = %+v", in)
	}
	in = introspect(user.RefreshToken)
	if !in.Active || in.TokenType != TokenTypeRefresh || in.Username != "Alice" || in.SessionID != user.SessionID || in.JTI != "" {
		t.Errorf("Introspect(refresh token) = %+v", in)
	}
	ct, err := f.svc.ClientCredentials(ctx, c, "")
	if err != nil {
		t.Fatal(err)
	}
	in = introspect(ct.AccessToken)
	if !in.Active || in.ClientID != c.ID || in.Subject != c.ID || in.Scope != "feed:read" || in.Username != "" || in.SessionID != "" {
		t.Errorf("Introspect(client token) = %+v", in)
	}

	for _, garbage := range []string{"", "garbage", "a.b.c", user.AccessToken + "x", flipSecret(user.RefreshToken),
		"AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", strings.Repeat("a", 100000)} {
		wantInactive("garbage", garbage)
	}

	// A rotated refresh token is inactive; its successor is active.
	next, err := f.svc.Refresh(ctx, user.RefreshToken, Agent{})
	if err != nil {
		t.Fatal(err)
	}
	wantInactive("rotated refresh token", user.RefreshToken)
	if !introspect(next.RefreshToken).Active {
		t.Errorf("Introspect(successor refresh token): inactive, want active")
	}

	// Revoking the session ends its access and refresh tokens.
	if _, err := f.db.Stores().Sessions.RevokeSession(ctx, user.SessionID, f.clock.Now(), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	wantInactive("access token of a revoked session", user.AccessToken)
	wantInactive("refresh token of a revoked session", next.RefreshToken)

	// A disabled user's tokens are inactive.
	other := login()
	u, _ := f.db.Stores().Users.UserByUsername(ctx, "alice")
	disabled := true
	if _, err := f.db.Stores().Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Disabled: &disabled}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantInactive("access token of a disabled user", other.AccessToken)

	// A revoked jti is inactive; the client's other tokens are not.
	ct2, _ := f.svc.ClientCredentials(ctx, c, "")
	if err := f.db.Stores().Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeToken, Value: in.JTI, At: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	wantInactive("revoked client token", ct.AccessToken)
	if !introspect(ct2.AccessToken).Active {
		t.Errorf("Introspect(another token of the client): inactive, want active")
	}

	// Expiry is exact: no leeway on the server's own clock.
	f.clock.Advance(DefaultAccessTTL - time.Second)
	if !introspect(ct2.AccessToken).Active {
		t.Errorf("Introspect(a second before exp): inactive, want active")
	}
	f.clock.Advance(time.Second)
	wantInactive("expired token", ct2.AccessToken)

	// A deleted client's tokens are inactive.
	ct3, _ := f.svc.ClientCredentials(ctx, c, "")
	if err := f.db.Stores().Clients.DeleteClient(ctx, c.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	wantInactive("token of a deleted client", ct3.AccessToken)
}

func TestRevokeToken(t *testing.T) {
	f := newFixture(t, jose.ES256)
	ctx := context.Background()
	f.user(t, "Alice")
	c, _ := f.client(t, []string{"feed:read"}, nil)
	other, _ := f.client(t, nil, nil)
	feed := func() []*keycard.Revocation {
		t.Helper()
		revs, err := f.db.Stores().Revocations.Revocations(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return revs
	}

	// A refresh token revokes its whole session.
	user, err := f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeToken(ctx, c, user.RefreshToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	sess, _ := f.db.Stores().Sessions.Session(ctx, user.SessionID)
	if !sess.Revoked() || sess.RevokeReason != keycard.RevokeTokenRevocation {
		t.Errorf("session after revoking its refresh token: %+v, want revoked", sess)
	}
	if _, err := f.svc.Authenticate(ctx, user.AccessToken); err == nil {
		t.Errorf("Authenticate after revoking the refresh token: got nil error, want one")
	}
	if revs := feed(); len(revs) != 1 || revs[0].Kind != keycard.RevokeSession || revs[0].Value != user.SessionID {
		t.Errorf("feed after revoking a refresh token: %+v, want the session", revs)
	}

	// A user's access token gets a jti entry; its session lives on.
	user, _ = f.svc.Login(ctx, "alice", "correct horse battery", Agent{})
	if err := f.svc.RevokeToken(ctx, c, user.AccessToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	jti := f.verify(t, user.AccessToken, "").ID
	if revs := feed(); len(revs) != 2 || revs[1].Kind != keycard.RevokeToken || revs[1].Value != jti {
		t.Errorf("feed after revoking an access token: %+v, want its jti", revs)
	}
	if _, err := f.svc.Authenticate(ctx, user.AccessToken); err == nil {
		t.Errorf("Authenticate(revoked access token): got nil error, want one")
	}
	if _, err := f.svc.Refresh(ctx, user.RefreshToken, Agent{}); err != nil {
		t.Errorf("Refresh after revoking only the access token: %v, want the session alive", err)
	}
	// Again: no second entry.
	if err := f.svc.RevokeToken(ctx, c, user.AccessToken, Agent{}); err != nil || len(feed()) != 2 {
		t.Errorf("revoking again: %v, %d feed entries; want nil and still 2", err, len(feed()))
	}

	// A client's token: by that client only.
	ct, _ := f.svc.ClientCredentials(ctx, c, "")
	if err := f.svc.RevokeToken(ctx, other, ct.AccessToken, Agent{}); keycard.ErrorCode(err) != keycard.EFORBIDDEN {
		t.Errorf("RevokeToken(another client's token): got %v, want EFORBIDDEN", err)
	}
	if in, _ := f.svc.Introspect(ctx, ct.AccessToken); !in.Active {
		t.Errorf("token after a refused revocation: inactive, want active")
	}
	if err := f.svc.RevokeToken(ctx, c, ct.AccessToken, Agent{}); err != nil {
		t.Fatal(err)
	}
	if in, _ := f.svc.Introspect(ctx, ct.AccessToken); in.Active {
		t.Errorf("token after its client revoked it: active, want inactive")
	}

	// Unknown, malformed and expired tokens are not an error and change
	// nothing (RFC 7009 section 2.2).
	n := len(feed())
	ct2, _ := f.svc.ClientCredentials(ctx, c, "")
	f.clock.Advance(DefaultAccessTTL)
	for _, tok := range []string{"", "garbage", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ct2.AccessToken} {
		if err := f.svc.RevokeToken(ctx, c, tok, Agent{}); err != nil {
			t.Errorf("RevokeToken(%.20q): %v, want nil", tok, err)
		}
	}
	if len(feed()) != n {
		t.Errorf("feed grew by revoking nothing: %d entries, want %d", len(feed()), n)
	}
}

// flipSecret returns a refresh token with the first character of its
// secret changed: well-formed, and wrong.
func flipSecret(token string) string {
	id, secret, _ := strings.Cut(token, ".")
	c := byte('A')
	if secret[0] == 'A' {
		c = 'B'
	}
	return id + "." + string(c) + secret[1:]
}
