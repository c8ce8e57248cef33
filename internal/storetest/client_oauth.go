package storetest

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// createClient stores a new confidential client named name.
func createClient(t *testing.T, s keycard.Stores, name string) *keycard.Client {
	t.Helper()
	c := newClient(t, name)
	c.OAuth = keycard.OAuthSettings{
		RedirectURIs: []string{"https://" + name + ".example/callback"},
		GrantTypes:   []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken, keycard.GrantDeviceCode},
	}
	if err := s.Clients.CreateClient(context.Background(), c); err != nil {
		t.Fatalf("CreateClient(%q): %v", name, err)
	}
	return c
}

// oauthSettings returns OAuth settings with every field set, each
// different from what variant 1 and 2 set, so that a store that drops or
// mixes up a field fails the round trip.
func oauthSettings(t *testing.T, variant int) keycard.OAuthSettings {
	t.Helper()
	n := time.Duration(variant)
	o := keycard.OAuthSettings{
		Public:                 variant%2 == 0,
		RedirectURIs:           []string{"https://app.example/cb", "http://127.0.0.1/native", "com.example.app:/oauth"},
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		GrantTypes:             []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
		FirstParty:             true,
		BackchannelLogoutURI:   "https://app.example/backchannel",
		TokenAuthMethod:        keycard.AuthPrivateKeyJWT,
		JWKS:                   json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`),
		JWKSURI:                "https://app.example/jwks.json",
		AccessTTL:              n * 5 * time.Minute,
		RefreshLifetime:        n * 24 * time.Hour,
		RefreshIdle:            n * time.Hour,
		TokenExchangeAudiences: []string{"orders-api", "https://orders.example/"},
		DPoP:                   keycard.DPoPRequired,
	}
	if variant == 2 {
		o.RedirectURIs = []string{"https://other.example/cb"}
		o.PostLogoutRedirectURIs = []string{"https://other.example/bye", "https://other.example/"}
		o.GrantTypes = []string{keycard.GrantClientCredentials, keycard.GrantDeviceCode}
		o.BackchannelLogoutURI = "https://other.example/logout"
		o.TokenAuthMethod = keycard.AuthNone
		o.JWKS = json.RawMessage(`{"keys":[]}`)
		o.JWKSURI = "https://other.example/jwks"
		o.TokenExchangeAudiences = []string{"billing-api"}
		o.DPoP = keycard.DPoPOptional
	}
	// Every field is set, so a field added to OAuthSettings and not stored
	// fails the round trip below.
	v := reflect.ValueOf(o)
	for i := range v.NumField() {
		if v.Field(i).IsZero() && v.Type().Field(i).Name != "Public" {
			t.Fatalf("oauthSettings(%d) leaves %s empty: set it, so that the round trip covers it", variant, v.Type().Field(i).Name)
		}
	}
	return o
}

// testClientOAuth checks the OAuth settings of clients: they round-trip
// through CreateClient and UpdateClient, public clients are the ones
// without a secret, and a client keeps its type.
func testClientOAuth(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)

	app := newClient(t, "app")
	app.OAuth = oauthSettings(t, 1)
	if err := s.Clients.CreateClient(ctx, app); err != nil {
		t.Fatalf("CreateClient(app): %v", err)
	}
	got, err := s.Clients.Client(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Client(app)", got, app)

	spa := newClient(t, "spa")
	spa.SecretHash = nil
	spa.OAuth = oauthSettings(t, 2)
	if !spa.OAuth.Public {
		t.Fatal("oauthSettings(2) must be public")
	}
	if err := s.Clients.CreateClient(ctx, spa); err != nil {
		t.Fatalf("CreateClient(public): %v", err)
	}
	got, err = s.Clients.Client(ctx, spa.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Client(public)", got, spa)
	if !got.Public() || len(got.SecretHash) != 0 || got.CheckSecret("") || got.CheckSecret("anything") {
		t.Errorf("public client: Public %v, SecretHash %q; want public, without a secret that any string matches", got.Public(), got.SecretHash)
	}

	publicWithSecret := newClient(t, "public-with-secret")
	publicWithSecret.OAuth.Public = true
	confidentialWithout := newClient(t, "confidential-without-secret")
	confidentialWithout.SecretHash = nil
	for _, tt := range []struct {
		name string
		c    *keycard.Client
	}{{"public with a secret", publicWithSecret}, {"confidential without a secret", confidentialWithout}} {
		wantCode(t, "CreateClient("+tt.name+")", s.Clients.CreateClient(ctx, tt.c), keycard.EINVALID)
		_, err := s.Clients.Client(ctx, tt.c.ID)
		wantCode(t, "Client("+tt.name+")", err, keycard.ENOTFOUND)
	}
	wantCode(t, "SetClientSecret(public)", s.Clients.SetClientSecret(ctx, spa.ID, keycard.HashClientSecret("s"), t0), keycard.EINVALID)

	// A confidential client of private_key_jwt needs no secret, and may be
	// given one (to move to client_secret_basic later).
	keyed := newClient(t, "keyed")
	keyed.SecretHash = nil
	keyed.OAuth = keycard.OAuthSettings{TokenAuthMethod: keycard.AuthPrivateKeyJWT, JWKSURI: "https://keyed.example/jwks.json"}
	if err := s.Clients.CreateClient(ctx, keyed); err != nil {
		t.Fatalf("CreateClient(private_key_jwt without a secret): %v", err)
	}
	if got, err := s.Clients.Client(ctx, keyed.ID); err != nil || got.Public() || len(got.SecretHash) != 0 {
		t.Errorf("Client(private_key_jwt) = %+v, %v; want confidential, without a secret", got, err)
	}
	if err := s.Clients.SetClientSecret(ctx, keyed.ID, keycard.HashClientSecret("first"), t0.Add(time.Minute)); err != nil {
		t.Errorf("SetClientSecret(private_key_jwt without a secret): %v", err)
	}
	if got, err := s.Clients.Client(ctx, keyed.ID); err != nil || !got.CheckSecret("first") || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after SetClientSecret: %+v, %v; want the secret set at t0+1m", got, err)
	}
	wantCode(t, "SetClientSecret(unknown)", s.Clients.SetClientSecret(ctx, "missing", keycard.HashClientSecret("s"), t0), keycard.ENOTFOUND)

	// UpdateClient replaces name, scopes, audiences and every OAuth
	// setting, and keeps the id, secret and creation time.
	later := t0.Add(time.Hour)
	upd := &keycard.Client{
		ID: app.ID, Name: "App, renamed", SecretHash: keycard.HashClientSecret("ignored"),
		Scopes: []string{"orders:write"}, Audiences: nil,
		OAuth: oauthSettings(t, 3), CreatedAt: later, UpdatedAt: later,
	}
	got, err = s.Clients.UpdateClient(ctx, upd)
	if err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	want := *upd
	want.SecretHash, want.CreatedAt = app.SecretHash, app.CreatedAt
	check(t, "UpdateClient result", got, &want)
	stored, err := s.Clients.Client(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "client after UpdateClient", stored, &want)
	// And back to the zero settings: a service client again.
	upd2 := *app
	upd2.OAuth, upd2.UpdatedAt = keycard.OAuthSettings{}, later.Add(time.Hour)
	got, err = s.Clients.UpdateClient(ctx, &upd2)
	if err != nil {
		t.Fatalf("UpdateClient(zero settings): %v", err)
	}
	check(t, "UpdateClient(zero settings)", got, &upd2)
	if !got.AllowsGrant(keycard.GrantClientCredentials) || got.AllowsGrant(keycard.GrantAuthorizationCode) {
		t.Errorf("client with zero settings: want client_credentials only")
	}

	// The public client's settings change too; its type does not.
	spaUpd := *spa
	spaUpd.OAuth = oauthSettings(t, 4)
	spaUpd.UpdatedAt = later
	if got, err = s.Clients.UpdateClient(ctx, &spaUpd); err != nil {
		t.Fatalf("UpdateClient(public): %v", err)
	}
	check(t, "UpdateClient(public)", got, &spaUpd)

	toPublic := *app
	toPublic.OAuth.Public = true
	toConfidential := *spa
	toConfidential.OAuth.Public = false
	toConfidential.SecretHash = keycard.HashClientSecret("new")
	noName := *app
	noName.Name = ""
	missing := *app
	missing.ID = "missing"
	tests := []struct {
		name string
		c    *keycard.Client
		want string
	}{
		{"confidential to public", &toPublic, keycard.EINVALID},
		{"public to confidential", &toConfidential, keycard.EINVALID},
		{"no name", &noName, keycard.EINVALID},
		{"unknown client", &missing, keycard.ENOTFOUND},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Clients.UpdateClient(ctx, tt.c)
			wantCode(t, "UpdateClient", err, tt.want)
		})
	}
	if got, err := s.Clients.Client(ctx, app.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "client after refused updates", got, &upd2)
	}
	if got, err := s.Clients.Client(ctx, spa.ID); err != nil {
		t.Fatal(err)
	} else {
		check(t, "public client after refused updates", got, &spaUpd)
	}
}

// testDeleteClientCascade checks that DeleteClient revokes the client's
// live grant sessions (with feed entries) and deletes its consents, codes
// and pushed requests, and touches no other client's.
func testDeleteClientCascade(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	u := createUser(t, s, "uma")
	other := createUser(t, s, "vera")
	c := createClient(t, s, "doomed")
	keep := createClient(t, s, "kept")
	p, _ := createSession(t, s, u.ID, t0)
	op, _ := createSession(t, s, other.ID, t0)
	g1, _ := createGrantSession(t, s, p, c.ID, t0.Add(time.Minute))
	g2, _ := createGrantSession(t, s, op, c.ID, t0.Add(2*time.Minute))
	ended, _ := createGrantSession(t, s, p, c.ID, t0.Add(3*time.Minute))
	if _, err := s.Sessions.RevokeSession(ctx, ended.ID, t0.Add(4*time.Minute), keycard.RevokeLogout); err != nil {
		t.Fatal(err)
	}
	gKeep, _ := createGrantSession(t, s, p, keep.ID, t0.Add(time.Minute))
	saveConsent(t, s, u.ID, c.ID)
	saveConsent(t, s, other.ID, c.ID)
	saveConsent(t, s, u.ID, keep.ID)
	code := createAuthCode(t, s, p, c.ID, t0)
	keptCode := createAuthCode(t, s, p, keep.ID, t0)
	dc := createDeviceCode(t, s, c.ID, "DOOMED01", t0)
	keptDC := createDeviceCode(t, s, keep.ID, "KEPT0001", t0)
	par := createPushedRequest(t, s, c.ID, t0)
	keptPar := createPushedRequest(t, s, keep.ID, t0)

	at := t0.Add(time.Hour)
	seq := lastSeq(t, s)
	if err := s.Clients.DeleteClient(ctx, c.ID, at); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	wantRevoked(t, s, "DeleteClient", at, map[string]string{
		g1.ID: keycard.RevokeClientDeleted, g2.ID: keycard.RevokeClientDeleted,
		p.ID: "", op.ID: "", gKeep.ID: "",
	})
	wantRevoked(t, s, "DeleteClient", t0.Add(4*time.Minute), map[string]string{ended.ID: keycard.RevokeLogout})
	check(t, "feed after DeleteClient", feedSince(t, s, seq, at), []string{g1.ID, g2.ID})

	for _, uid := range []string{u.ID, other.ID} {
		_, err := s.Grants.Consent(ctx, uid, c.ID)
		wantCode(t, "Consent(to a deleted client)", err, keycard.ENOTFOUND)
	}
	_, err := s.Grants.AuthCode(ctx, code.ID)
	wantCode(t, "AuthCode(of a deleted client)", err, keycard.ENOTFOUND)
	_, err = s.Grants.DeviceCode(ctx, dc.ID)
	wantCode(t, "DeviceCode(of a deleted client)", err, keycard.ENOTFOUND)
	_, err = s.Grants.PushedRequest(ctx, par.ID, t0)
	wantCode(t, "PushedRequest(of a deleted client)", err, keycard.ENOTFOUND)

	if _, err := s.Grants.Consent(ctx, u.ID, keep.ID); err != nil {
		t.Errorf("Consent(to another client): %v", err)
	}
	if _, err := s.Grants.AuthCode(ctx, keptCode.ID); err != nil {
		t.Errorf("AuthCode(of another client): %v", err)
	}
	if _, err := s.Grants.DeviceCode(ctx, keptDC.ID); err != nil {
		t.Errorf("DeviceCode(of another client): %v", err)
	}
	if _, err := s.Grants.PushedRequest(ctx, keptPar.ID, t0); err != nil {
		t.Errorf("PushedRequest(of another client): %v", err)
	}
	// A failed delete revokes nothing.
	seq = lastSeq(t, s)
	wantCode(t, "DeleteClient(again)", s.Clients.DeleteClient(ctx, c.ID, at), keycard.ENOTFOUND)
	if got := feedSince(t, s, seq, at); len(got) != 0 {
		t.Errorf("feed after a failed DeleteClient: %v, want nothing", got)
	}
}
