package web_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
	"github.com/keycard-auth/keycard/web"
)

// TestWeatherPage: through the gateway, the demo weather page sends a
// signed-out browser to sign in and back, shows the signed-in user and the
// weather, and, once the user signs out, refuses even the old access
// token (the revocation feed reached its verifier).
func TestWeatherPage(t *testing.T) {
	f := newFixture(t, fixtureOptions{weather: true})
	f.addUser(t, "alice")
	b := f.browserAt(t, f.gateway)
	_, visited := b.follow(weatherPath)
	want := []string{weatherPath, "/session/refresh?next=%2Fweather-app%2F", "/signin?next=%2Fweather-app%2F"}
	if strings.Join(visited, " ") != strings.Join(want, " ") {
		t.Errorf("signed out: visited %v, want %v", visited, want)
	}
	if p := b.signIn("alice", testPassword, weatherPath); p.location() != weatherPath {
		t.Fatalf("sign in: %d %q", p.status, p.location())
	}
	p := b.get(weatherPath)
	if p.status != http.StatusOK || !strings.Contains(p.body, `<dd id="weather-user">alice</dd>`) || strings.Count(p.body, " °C</td>") != 4 {
		t.Fatalf("weather page: status %d\n%s", p.status, p.body)
	}
	wantSecurityHeaders(t, weatherPath, p)
	wantAccessibleHTML(t, weatherPath, p.body)

	stale := b.cookies["__Host-keycard_access"].Value
	if r := b.post("/signout", url.Values{"csrf_token": {b.csrf(p)}}); r.location() != "/signin?signedout=1" {
		t.Fatalf("sign out from the weather page: %d %q", r.status, r.location())
	}
	if _, visited := b.follow(weatherPath); !strings.HasPrefix(visited[len(visited)-1], "/signin") {
		t.Errorf("after signing out the weather page is still there: %v", visited)
	}
	// The old access token, replayed, is refused as soon as the feed
	// brings the session's revocation (milliseconds; bounded wait).
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := b.send(http.MethodGet, weatherPath, nil, http.Header{"Cookie": {"__Host-keycard_access=" + stale}})
		if r.status == http.StatusSeeOther {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token still shows the page: %d", r.status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeVerifier answers AuthenticateFrom with fixed claims or an error.
type fakeVerifier struct {
	claims *verifier.Claims
	err    error
}

func (v fakeVerifier) AuthenticateFrom(r *http.Request, src verifier.Sources) (*verifier.Claims, error) {
	if src.Cookie != verifier.AccessCookie {
		return nil, errors.New("the page does not read the access cookie")
	}
	return v.claims, v.err
}

func TestWeatherPageAnswers(t *testing.T) {
	alice := &verifier.Claims{AccessClaims: jwt.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice-id"}}}
	for _, tc := range []struct {
		name         string
		v            fakeVerifier
		scope        string
		method, path string
		status       int
		location     string
	}{
		{"signed in", fakeVerifier{claims: alice}, "", http.MethodGet, "/w/", http.StatusOK, ""},
		{"HEAD", fakeVerifier{claims: alice}, "", http.MethodHead, "/w/", http.StatusOK, ""},
		{"no token", fakeVerifier{err: verifier.ErrNoToken}, "", http.MethodGet, "/w/", http.StatusSeeOther, "/session/refresh?next=%2Fw%2F"},
		{"revoked", fakeVerifier{err: &verifier.Error{Status: http.StatusUnauthorized, Code: verifier.CodeInvalidToken, Err: verifier.ErrInvalidToken}}, "", http.MethodGet, "/w/", http.StatusSeeOther, "/session/refresh?next=%2Fw%2F"},
		{"feed down", fakeVerifier{err: &verifier.Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable"}}, "", http.MethodGet, "/w/", http.StatusServiceUnavailable, ""},
		{"missing scope", fakeVerifier{claims: alice}, "weather:read", http.MethodGet, "/w/", http.StatusForbidden, ""},
		{"POST", fakeVerifier{claims: alice}, "", http.MethodPost, "/w/", http.StatusMethodNotAllowed, ""},
		{"other path", fakeVerifier{claims: alice}, "", http.MethodGet, "/w/x", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := web.NewWeather(tc.v, web.WeatherOptions{Path: "/w/", Scope: tc.scope})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			page.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
				t.Errorf("status %d Location %q, want %d %q", rec.Code, rec.Header().Get("Location"), tc.status, tc.location)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("security headers missing")
			}
		})
	}
	for _, path := range []string{"", "w/", "/w", "//w/"} {
		if _, err := web.NewWeather(fakeVerifier{}, web.WeatherOptions{Path: path}); err == nil {
			t.Errorf("path %q accepted", path)
		}
	}
}
