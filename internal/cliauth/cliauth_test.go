package cliauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// fakeIssuer is an OpenID Provider whose answers a test chooses, to send
// the client what a real server never would: ID tokens with a wrong
// nonce, audience or signature, and the device grant's answers in order.
type fakeIssuer struct {
	t   *testing.T
	srv *httptest.Server
	key *jose.Key

	mu sync.Mutex
	// token answers the token endpoint; nil: 500.
	token    func(form url.Values) (int, any)
	requests []url.Values // the token endpoint's, in order
	revoked  []url.Values
	// published are more keys in the JWKS, beside the issuer's own.
	published []*jose.Key
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	k, err := jose.GenerateKey(jose.ES256, nil)
	if err == nil {
		k, err = k.WithKeyID(k.Thumbprint())
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeIssuer{t: t, key: k}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/authorize", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "revocation_endpoint": f.srv.URL + "/revoke", "device_authorization_endpoint": f.srv.URL + "/device_authorization",
			"authorization_response_iss_parameter_supported": true,
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		keys := append([]*jose.Key{k.Public()}, f.published...)
		f.mu.Unlock()
		set, err := jose.NewKeySet(keys...)
		if err != nil {
			t.Error(err)
		}
		b, _ := set.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.requests = append(f.requests, r.PostForm)
		answer := f.token
		f.mu.Unlock()
		if answer == nil {
			w.WriteHeader(500)
			return
		}
		status, body := answer(r.PostForm)
		writeJSON(w, status, body)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		f.mu.Lock()
		f.revoked = append(f.revoked, r.PostForm)
		f.mu.Unlock()
	})
	mux.HandleFunc("POST /device_authorization", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"device_code": "dc", "user_code": "BCDF-GHJK", "verification_uri": f.srv.URL + "/device",
			"verification_uri_complete": f.srv.URL + "/device?user_code=BCDF-GHJK", "expires_in": 600, "interval": 5})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// idToken signs ID token claims: a valid token for the client "cli" with
// nonce, changed by edit.
func (f *fakeIssuer) idToken(nonce string, edit func(m map[string]any), key *jose.Key, typ string) string {
	now := time.Now()
	m := map[string]any{"iss": f.srv.URL, "sub": "u1", "aud": "cli", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(),
		"nonce": nonce, "preferred_username": "alice", "sid": "browser-session"}
	if edit != nil {
		edit(m)
	}
	if key == nil {
		key = f.key
	}
	// Always the issuer's kid: a token signed by another key claims to
	// be signed by the issuer's.
	tok, err := jwt.Sign(key, jwt.MapClaims(m), jwt.WithHeaderType(typ), jwt.WithKeyID(f.key.KeyID()))
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func (f *fakeIssuer) client(t *testing.T) *Client {
	t.Helper()
	p, err := Discover(context.Background(), nil, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &Client{Provider: p, ClientID: "cli"}
}

// get sends a GET like a browser following the redirect, returning the
// status and the page.
func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestLoginAuthorizationRequest: the authorization request is the code
// flow with PKCE S256, a state, a nonce, openid, and a loopback redirect
// on 127.0.0.1 with a port of the system's; the code is exchanged with
// the verifier of the challenge sent.
func TestLoginAuthorizationRequest(t *testing.T) {
	f := newFakeIssuer(t)
	c := f.client(t)
	l, err := c.StartLogin(context.Background(), LoginOptions{Scope: "profile offline_access"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := url.Parse(l.URL)
	if err != nil || !strings.HasPrefix(l.URL, f.srv.URL+"/authorize?") {
		t.Fatalf("authorization URL %q", l.URL)
	}
	q := u.Query()
	for name, want := range map[string]string{"response_type": "code", "client_id": "cli", "code_challenge_method": "S256",
		"scope": "openid profile offline_access", "redirect_uri": l.RedirectURI} {
		if got := q.Get(name); got != want {
			t.Errorf("got %s %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(l.RedirectURI, "http://127.0.0.1:") || !strings.HasSuffix(l.RedirectURI, CallbackPath) || strings.HasPrefix(l.RedirectURI, "http://127.0.0.1:0/") {
		t.Errorf("got redirect URI %q, want a loopback port of the system's", l.RedirectURI)
	}
	if len(q.Get("state")) < 22 || len(q.Get("nonce")) < 22 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("got state %q, nonce %q, challenge %q", q.Get("state"), q.Get("nonce"), q.Get("code_challenge"))
	}
	f.token = func(form url.Values) (int, any) {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if form.Get("grant_type") != "authorization_code" || form.Get("code") != "the-code" || form.Get("redirect_uri") != l.RedirectURI ||
			form.Get("client_id") != "cli" || base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") {
			return 400, map[string]string{"error": "invalid_grant", "error_description": "wrong request"}
		}
		return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 900, "refresh_token": "rt",
			"id_token": f.idToken(q.Get("nonce"), nil, nil, "JWT"), "scope": "openid profile offline_access"}
	}
	pages := make(chan string, 1)
	go func() {
		status, body := get(t, l.RedirectURI+"?"+url.Values{"code": {"the-code"}, "state": {q.Get("state")}, "iss": {f.srv.URL}}.Encode())
		if status != 200 {
			t.Errorf("the browser's page: status %d", status)
		}
		pages <- body
	}()
	tok, id, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at" || tok.RefreshToken != "rt" || !tok.ValidFor(time.Now(), 10*time.Minute) || id.Subject != "u1" || id.Username != "alice" {
		t.Errorf("got %+v, %+v", tok, id)
	}
	if body := <-pages; !strings.Contains(body, "You are signed in") {
		t.Errorf("the browser's page: %s", body)
	}
}

// TestLoginRefusals: responses that must not sign the user in. A wrong
// state is refused by the listener and the login goes on; the others end
// it with their error, and a response from another issuer never reaches
// the token endpoint.
func TestLoginRefusals(t *testing.T) {
	f := newFakeIssuer(t)
	other, _ := jose.GenerateKey(jose.ES256, nil)
	// A secret published in the JWKS: anyone who read it could sign with
	// it, so the client must not take it as a key of the issuer's.
	shared, err := jose.NewHMACKey(jose.HS256, []byte("a secret that anyone reading the JWKS can see, 32+ bytes"))
	if err == nil {
		shared, err = shared.WithKeyID("shared")
	}
	if err != nil {
		t.Fatal(err)
	}
	f.published = []*jose.Key{shared}
	for _, tc := range []struct {
		name     string
		response func(state string) url.Values
		idToken  func(nonce string) string
		tokenErr bool
		want     error
		page     int
		exchange bool
	}{
		{name: "another issuer (mix-up)", response: func(s string) url.Values {
			return url.Values{"code": {"c"}, "state": {s}, "iss": {"https://evil.example"}}
		}, want: ErrIssuerMismatch, page: 400},
		{name: "no iss from a server that sends it", response: func(s string) url.Values {
			return url.Values{"code": {"c"}, "state": {s}}
		}, want: ErrIssuerMismatch, page: 400},
		{name: "denied", response: func(s string) url.Values {
			return url.Values{"error": {"access_denied"}, "state": {s}, "iss": {f.srv.URL}}
		}, want: ErrAccessDenied, page: 403},
		{name: "another error", response: func(s string) url.Values {
			return url.Values{"error": {"invalid_scope"}, "state": {s}, "iss": {f.srv.URL}}
		}, want: &OAuthError{}, page: 400},
		{name: "no code", response: func(s string) url.Values { return url.Values{"state": {s}, "iss": {f.srv.URL}} }, want: &OAuthError{}, page: 400},
		{name: "the code refused", tokenErr: true, want: &OAuthError{}, page: 400, exchange: true},
		{name: "a replayed ID token (wrong nonce)", idToken: func(string) string { return f.idToken("another", nil, nil, "JWT") }, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an ID token for another client", idToken: func(n string) string {
			return f.idToken(n, func(m map[string]any) { m["aud"] = "other" }, nil, "JWT")
		}, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an ID token with another azp", idToken: func(n string) string {
			return f.idToken(n, func(m map[string]any) { m["aud"] = []string{"cli", "other"}; m["azp"] = "other" }, nil, "JWT")
		}, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an ID token of another issuer", idToken: func(n string) string {
			return f.idToken(n, func(m map[string]any) { m["iss"] = "https://evil.example" }, nil, "JWT")
		}, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an expired ID token", idToken: func(n string) string {
			return f.idToken(n, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, nil, "JWT")
		}, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an ID token signed by another key", idToken: func(n string) string { return f.idToken(n, nil, other, "JWT") }, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an ID token signed with a secret published in the JWKS", idToken: func(n string) string {
			now := time.Now()
			tok, err := jwt.Sign(shared, jwt.MapClaims{"iss": f.srv.URL, "sub": "u1", "aud": "cli", "exp": now.Add(time.Minute).Unix(), "iat": now.Unix(), "nonce": n},
				jwt.WithHeaderType("JWT"), jwt.WithKeyID("shared"))
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "an access token as the ID token", idToken: func(n string) string { return f.idToken(n, nil, nil, "at+jwt") }, want: ErrInvalidIDToken, page: 400, exchange: true},
		{name: "no ID token", idToken: func(string) string { return "" }, want: ErrInvalidIDToken, page: 400, exchange: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex // the listener and the fake issuer run apart from the test
			var refused []string
			c := f.client(t)
			l, err := c.StartLogin(context.Background(), LoginOptions{Refused: func(r string) { mu.Lock(); refused = append(refused, r); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			q, _ := url.Parse(l.URL)
			state, nonce := q.Query().Get("state"), q.Query().Get("nonce")
			exchanged := false
			f.mu.Lock()
			f.token = func(url.Values) (int, any) {
				mu.Lock()
				exchanged = true
				mu.Unlock()
				if tc.tokenErr {
					return 400, map[string]string{"error": "invalid_grant", "error_description": "Invalid authorization code."}
				}
				id := f.idToken(nonce, nil, nil, "JWT")
				if tc.idToken != nil {
					id = tc.idToken(nonce)
				}
				return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 900, "id_token": id}
			}
			f.mu.Unlock()
			response := url.Values{"code": {"c"}, "state": {state}, "iss": {f.srv.URL}}
			if tc.response != nil {
				response = tc.response(state)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				// A forged response first: refused, and the login waits on.
				if status, _ := get(t, l.RedirectURI+"?"+url.Values{"code": {"evil"}, "state": {"forged"}, "iss": {f.srv.URL}}.Encode()); status != 400 {
					t.Errorf("a wrong state: status %d, want 400", status)
				}
				if status, _ := get(t, l.RedirectURI+"?code=evil&iss="+url.QueryEscape(f.srv.URL)); status != 400 {
					t.Errorf("no state: status %d, want 400", status)
				}
				if status, _ := get(t, l.RedirectURI+"?"+response.Encode()); status != tc.page {
					t.Errorf("the response: status %d, want %d", status, tc.page)
				}
				// Answered, the login takes no second response.
				if status, _ := get(t, l.RedirectURI+"?"+url.Values{"code": {"c"}, "state": {state}, "iss": {f.srv.URL}}.Encode()); status == 200 {
					t.Error("a second response was taken")
				}
			}()
			tok, _, err := l.Wait(context.Background())
			<-done
			mu.Lock()
			defer mu.Unlock()
			var oe *OAuthError
			if wantOAuth := errors.As(tc.want, &oe); wantOAuth && !errors.As(err, &oe) || !wantOAuth && !errors.Is(err, tc.want) {
				t.Errorf("got %v, %v; want %T %v", tok, err, tc.want, tc.want)
			}
			if exchanged != tc.exchange {
				t.Errorf("the code was exchanged: %v, want %v", exchanged, tc.exchange)
			}
			if len(refused) != 2 {
				t.Errorf("refused %q, want the two forged responses", refused)
			}
		})
	}
}

// TestDevicePolling: the device grant waits the interval between polls, 5
// seconds more after each slow_down, and ends on tokens, a denial or an
// expiry.
func TestDevicePolling(t *testing.T) {
	f := newFakeIssuer(t)
	for _, tc := range []struct {
		name    string
		answers []string // error codes, "" for tokens
		waits   []time.Duration
		want    error
	}{
		{"approved", []string{"authorization_pending", "slow_down", "authorization_pending", "slow_down", ""},
			[]time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second, 15 * time.Second}, nil},
		{"denied", []string{"authorization_pending", "access_denied"}, []time.Duration{5 * time.Second, 5 * time.Second}, ErrAccessDenied},
		{"expired", []string{"authorization_pending", "expired_token"}, []time.Duration{5 * time.Second, 5 * time.Second}, ErrExpired},
		{"another error", []string{"invalid_grant"}, []time.Duration{5 * time.Second}, &OAuthError{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(t)
			var waits []time.Duration
			c.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
			d, err := c.StartDevice(context.Background(), "")
			if err != nil {
				t.Fatal(err)
			}
			if d.UserCode != "BCDF-GHJK" || d.scope != DefaultScope {
				t.Errorf("got %+v", d)
			}
			n := 0
			f.mu.Lock()
			f.requests = nil
			f.token = func(form url.Values) (int, any) {
				code := tc.answers[n]
				n++
				if code != "" {
					return 400, map[string]string{"error": code, "error_description": "x"}
				}
				return 200, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 900, "id_token": f.idToken("", nil, nil, "JWT")}
			}
			f.mu.Unlock()
			tok, id, err := c.PollDevice(context.Background(), d)
			var oe *OAuthError
			switch {
			case tc.want == nil && (err != nil || tok.AccessToken != "at" || id.Username != "alice"):
				t.Errorf("got %+v, %+v, %v", tok, id, err)
			case tc.want != nil && errors.As(tc.want, &oe) && !errors.As(err, &oe):
				t.Errorf("got %v, want an *OAuthError", err)
			case tc.want != nil && !errors.As(tc.want, &oe) && !errors.Is(err, tc.want):
				t.Errorf("got %v, want %v", err, tc.want)
			}
			if len(waits) != len(tc.waits) {
				t.Fatalf("got waits %v, want %v", waits, tc.waits)
			}
			for i := range waits {
				if waits[i] != tc.waits[i] {
					t.Errorf("got waits %v, want %v", waits, tc.waits)
					break
				}
			}
			for _, r := range f.requests {
				if r.Get("grant_type") != deviceGrantType || r.Get("device_code") != "dc" || r.Get("client_id") != "cli" {
					t.Errorf("got poll %v", r)
				}
			}
		})
	}
}

// TestDiscover refuses metadata that names another issuer, and issuers
// and endpoints that are neither https nor on this machine.
func TestDiscover(t *testing.T) {
	f := newFakeIssuer(t)
	for _, issuer := range []string{f.srv.URL + "/", "http://auth.example.com", "ftp://127.0.0.1", "https://", "/relative", f.srv.URL + "?x=1"} {
		if _, err := Discover(context.Background(), nil, issuer); err == nil {
			t.Errorf("Discover(%q) succeeded", issuer)
		}
	}
	for _, raw := range []string{"https://auth.example.com/x", "http://127.0.0.1:4000/x", "http://[::1]/x", "http://localhost/x"} {
		if err := checkServerURL("endpoint", raw); err != nil {
			t.Errorf("checkServerURL(%q): %v", raw, err)
		}
	}
	for _, raw := range []string{"http://auth.example.com/x", "javascript:alert(1)", "https://user@auth.example.com/", "-x", "file:///etc/passwd"} {
		if err := checkServerURL("endpoint", raw); err == nil {
			t.Errorf("checkServerURL(%q) accepted it", raw)
		}
	}
}

// TestRefreshAndRevoke: a refresh keeps the old refresh token when the
// answer has none and verifies a new ID token; a revocation sends the
// token with its hint and the client's id.
func TestRefreshAndRevoke(t *testing.T) {
	f := newFakeIssuer(t)
	c := f.client(t)
	f.token = func(form url.Values) (int, any) {
		if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt1" || form.Get("client_id") != "cli" {
			return 400, map[string]string{"error": "invalid_grant", "error_description": "x"}
		}
		return 200, map[string]any{"access_token": "at2", "token_type": "Bearer", "expires_in": 900, "refresh_token": "rt2"}
	}
	tok, _, err := c.Refresh(context.Background(), "rt1")
	if err != nil || tok.AccessToken != "at2" || tok.RefreshToken != "rt2" {
		t.Fatalf("got %+v, %v", tok, err)
	}
	f.token = func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at3", "token_type": "Bearer", "expires_in": 900,
			"id_token": f.idToken("", func(m map[string]any) { m["aud"] = "other" }, nil, "JWT")}
	}
	if _, _, err := c.Refresh(context.Background(), "rt2"); !errors.Is(err, ErrInvalidIDToken) {
		t.Errorf("a refresh with a bad ID token: got %v", err)
	}
	f.token = func(url.Values) (int, any) {
		return 200, map[string]any{"access_token": "at4", "token_type": "Bearer", "expires_in": 900}
	}
	if tok, _, err := c.Refresh(context.Background(), "rt2"); err != nil || tok.RefreshToken != "rt2" {
		t.Errorf("a refresh without a new refresh token: got %+v, %v; want rt2 kept", tok, err)
	}
	if err := c.Revoke(context.Background(), "rt2", "refresh_token"); err != nil {
		t.Fatal(err)
	}
	if len(f.revoked) != 1 || f.revoked[0].Get("token") != "rt2" || f.revoked[0].Get("token_type_hint") != "refresh_token" || f.revoked[0].Get("client_id") != "cli" {
		t.Errorf("revoked %v", f.revoked)
	}
}

func TestBrowserCommand(t *testing.T) {
	const u = "https://auth.example.com/oauth/authorize?a=1&b=2"
	for _, tc := range []struct {
		goos, name string
		args       []string
	}{
		{"linux", "xdg-open", []string{u}},
		{"freebsd", "xdg-open", []string{u}},
		{"darwin", "open", []string{u}},
		{"windows", "rundll32", []string{"url.dll,FileProtocolHandler", u}},
	} {
		name, args := browserCommand(tc.goos, u)
		if name != tc.name || strings.Join(args, " ") != strings.Join(tc.args, " ") {
			t.Errorf("%s: got %s %q, want %s %q", tc.goos, name, args, tc.name, tc.args)
		}
	}
}
