package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLogsHoldNoSecrets walks through the whole API with the log captured
// at debug level, for the server and the auth service alike, and fails if
// a token, a password or an Authorization value appears in it.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFixture(t)
	const (
		pass1 = "first secret passphrase"
		pass2 = "second secret passphrase"
		wrong = "not my passphrase at all"
	)
	var secrets []string
	note := func(s ...string) { secrets = append(secrets, s...) }
	note(pass1, pass2, wrong)
	noteTokens := func(tok tokenResponse) {
		_, secret, _ := strings.Cut(tok.RefreshToken, ".")
		parts := strings.Split(tok.AccessToken, ".")
		note(tok.AccessToken, tok.RefreshToken, secret, parts[1], parts[2], "Bearer "+tok.AccessToken)
	}

	f.register(t, "alice", pass1)
	f.postJSON(t, "/v1/login", "", credentialsJSON("alice", wrong)).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	f.postJSON(t, "/v1/login", "", credentialsJSON("nobody", wrong)).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	tok := f.login(t, "alice", pass1)
	noteTokens(tok)
	other := f.login(t, "alice", pass1)
	noteTokens(other)

	if res := f.send(t, http.MethodGet, "/v1/me", tok.AccessToken); res.status != http.StatusOK {
		t.Fatalf("me: %d %s", res.status, res.body)
	}
	if res := f.send(t, http.MethodGet, "/v1/sessions", tok.AccessToken); res.status != http.StatusOK {
		t.Fatalf("sessions: %d %s", res.status, res.body)
	}
	// Tokens sent where they do not belong: the query string, a bad header.
	f.send(t, http.MethodGet, "/v1/me?access_token="+url.QueryEscape(tok.AccessToken), "").wantError(t, http.StatusUnauthorized, codeUnauthorized)
	f.send(t, http.MethodGet, "/v1/me", tok.AccessToken+"x").wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.postForm(t, "/oauth/token?refresh_token="+url.QueryEscape(tok.RefreshToken), "grant_type=refresh_token").wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login", "", `{"username":"alice","password":"`+pass1+`","token":"`+tok.RefreshToken+`"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)

	res := f.refresh(t, tok.RefreshToken)
	var next tokenResponse
	res.decode(t, &next)
	noteTokens(next)
	f.refresh(t, tok.RefreshToken) // replay within the grace window

	body := `{"current_password":"` + pass1 + `","new_password":"` + pass2 + `"}`
	if res := f.postJSON(t, "/v1/password", next.AccessToken, body); res.status != http.StatusNoContent {
		t.Fatalf("password: %d %s", res.status, res.body)
	}
	f.postJSON(t, "/v1/password", next.AccessToken, `{"current_password":"`+wrong+`","new_password":"`+pass2+`"}`).wantError(t, http.StatusForbidden, codeAccessDenied)

	// Reuse after the grace window: theft, logged by the service.
	f.clock.Advance(time.Minute)
	f.refresh(t, tok.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)

	third := f.login(t, "alice", pass2)
	noteTokens(third)
	if res := f.send(t, http.MethodPost, "/v1/logout", third.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", res.status, res.body)
	}
	f.send(t, http.MethodPost, "/v1/logout", third.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	fourth := f.login(t, "alice", pass2)
	noteTokens(fourth)
	if res := f.send(t, http.MethodPost, "/v1/logout/all", fourth.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("logout all: %d %s", res.status, res.body)
	}

	out := f.logs.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds a secret (%.12s…):\n%s", s, out)
		}
		// JSON logs escape some characters; look for the escaped form too.
		b, _ := json.Marshal(s)
		if esc := strings.Trim(string(b), `"`); esc != s && strings.Contains(out, esc) {
			t.Errorf("the log holds a secret, escaped (%.12s…)", s)
		}
	}
	if strings.Contains(strings.ToLower(out), "authorization") {
		t.Errorf("the log mentions the Authorization header:\n%s", out)
	}
	// The log is there: a line per request, with what it should carry.
	lines := strings.Count(out, `"msg":"request"`)
	if lines < 20 {
		t.Errorf("got %d request log lines, want one per request:\n%s", lines, out)
	}
	for _, want := range []string{`"path":"/v1/me"`, `"path":"/oauth/token"`, `"method":"POST"`, `"status":401`, `"request_id":`, `"duration":`, "refresh token reuse"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log misses %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "access_token=") || strings.Contains(out, "?") {
		t.Errorf("the log holds a query string:\n%s", out)
	}
}
