package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/outbox"
)

// TestBackchannelLogout: the server's background work sends back-channel
// logouts: a sign-out over HTTP is answered while the app's back-channel
// endpoint still holds its request, and the app is told once; a user
// disabled by the command line (another process, which runs no worker)
// is told by the server.
func TestBackchannelLogout(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t)
	c.Backchannel = backchannel.Options{Settings: outbox.Settings{Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, PollInterval: 20 * time.Millisecond}}
	srv := serve(t, c)
	// The test's own App on the same data, with the server's issuer, sets
	// the scene as the API would.
	c.Issuer = srv.base
	a, err := Open(ctx, c, Options{Keys: true, Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	var (
		mu     sync.Mutex
		tokens []string
	)
	release, entered := make(chan struct{}), make(chan struct{}, 10)
	var releaseOnce sync.Once
	defer releaseOnce.Do(func() { close(release) })
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		mu.Lock()
		defer mu.Unlock()
		tokens = append(tokens, r.PostFormValue("logout_token"))
	}))
	defer app.Close()

	svc := a.Service()
	client, _, err := svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "App", OAuth: keycard.OAuthSettings{
		GrantTypes: []string{keycard.GrantAuthorizationCode}, RedirectURIs: []string{"https://app.example/cb"},
		FirstParty: true, BackchannelLogoutURI: app.URL + "/backchannel",
	}})
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(name string) *auth.Tokens {
		t.Helper()
		if _, err := svc.UserByName(ctx, name); keycard.ErrorCode(err) == keycard.ENOTFOUND {
			if _, err := svc.CreateUser(ctx, auth.Operator(), name, "correct horse battery", nil); err != nil {
				t.Fatal(err)
			}
		}
		tok, err := svc.Login(ctx, name, "correct horse battery", auth.Agent{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := svc.BrowserSession(ctx, tok.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
		sum := sha256.Sum256([]byte(verifier))
		authz, err := svc.Authorize(ctx, url.Values{"client_id": {client.ID}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
			"scope": {"openid"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}})
		if err != nil {
			t.Fatal(err)
		}
		code, err := svc.IssueCode(ctx, authz, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ExchangeCode(ctx, client, code, "https://app.example/cb", verifier, auth.Agent{}); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	delivered := func(n int) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			ds, err := svc.Logouts(ctx, keycard.LogoutFilter{State: keycard.LogoutDelivered})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == n {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("%d deliveries delivered, want %d", len(ds), n)
			}
		}
	}

	// Sign out over HTTP while the app holds its request.
	tok := signIn("alice")
	req, _ := http.NewRequest(http.MethodPost, c.Issuer+"/v1/logout", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /v1/logout: got %d, want 204", resp.StatusCode)
	}
	select {
	case <-entered: // the app holds the request: the logout did not wait for it
	case <-time.After(30 * time.Second):
		t.Fatal("the app was never told")
	}
	releaseOnce.Do(func() { close(release) })
	delivered(1)

	// The command line disables bob; the server tells the app.
	signIn("bob")
	cli, err := Open(ctx, c, Options{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	bob, err := cli.Service().UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Service().SetUserDisabled(ctx, auth.Operator(), bob.ID, true); err != nil {
		t.Fatal(err)
	}
	delivered(2)
	mu.Lock()
	defer mu.Unlock()
	if len(tokens) != 2 {
		t.Errorf("the app got %d logout tokens, want 2", len(tokens))
	}
}
