package demo_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/demo"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

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
			page, err := demo.NewWeather(tc.v, demo.WeatherOptions{Path: "/w/", Scope: tc.scope})
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
			body := rec.Body.String()
			switch {
			case tc.method == http.MethodHead && body != "":
				t.Errorf("HEAD answered with a body of %d bytes", len(body))
			case tc.status == http.StatusOK && tc.method == http.MethodGet && (!strings.Contains(body, `<dd id="weather-user">alice-id</dd>`) || strings.Count(body, " °C</td>") != 4):
				t.Errorf("the page lacks the user or the forecast:\n%s", body)
			case tc.status == http.StatusForbidden && !strings.Contains(body, "needs the weather:read scope"):
				t.Errorf("the refusal does not name the scope:\n%s", body)
			}
		})
	}
	for _, path := range []string{"", "w/", "/w", "//w/"} {
		if _, err := demo.NewWeather(fakeVerifier{}, demo.WeatherOptions{Path: path}); err == nil {
			t.Errorf("path %q accepted", path)
		}
	}
}

func TestWeatherSPAAnswers(t *testing.T) {
	page, err := demo.NewWeatherSPA(demo.WeatherSPAOptions{Path: "/w/", Issuer: "https://auth.example:4000", ClientID: "c1</script>", Scope: "openid", Cities: []string{"Oslo"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
	}{
		{http.MethodGet, "/w/", http.StatusOK, "text/html; charset=utf-8"},
		{http.MethodHead, "/w/", http.StatusOK, "text/html; charset=utf-8"},
		{http.MethodGet, "/w/weather-app.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodGet, "/w/keycard-browser.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{http.MethodPost, "/w/", http.StatusMethodNotAllowed, "text/plain; charset=utf-8"},
		{http.MethodGet, "/w/other.js", http.StatusNotFound, "text/plain; charset=utf-8"},
		{http.MethodGet, "/", http.StatusNotFound, "text/plain; charset=utf-8"},
	} {
		rec := httptest.NewRecorder()
		page.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
		}
		if tc.status == http.StatusOK && rec.Header().Get("Content-Security-Policy") != "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' https://auth.example:4000; form-action 'none'; frame-ancestors 'none'; base-uri 'none'" {
			t.Errorf("%s: Content-Security-Policy %q", tc.path, rec.Header().Get("Content-Security-Policy"))
		}
		body := rec.Body.String()
		switch {
		case tc.method == http.MethodHead && body != "":
			t.Errorf("HEAD answered with a body")
		case tc.path == "/w/" && tc.method == http.MethodGet && (strings.Contains(body, "c1</script>") || !strings.Contains(body, `"clientId":"c1\u003c/script\u003e"`)):
			t.Errorf("the configuration is not escaped for its script element:\n%s", body)
		case tc.path == "/w/keycard-browser.js" && body != string(demo.BrowserBundle()):
			t.Errorf("another bundle is served")
		}
	}
	for _, opt := range []demo.WeatherSPAOptions{
		{Path: "w/", Issuer: "https://a.example", ClientID: "c", Cities: []string{"Oslo"}},
		{Path: "/w/", Issuer: "javascript:alert(1)", ClientID: "c", Cities: []string{"Oslo"}},
		{Path: "/w/", Issuer: "https://a.example", Cities: []string{"Oslo"}},
		{Path: "/w/", Issuer: "https://a.example", ClientID: "c"},
	} {
		if _, err := demo.NewWeatherSPA(opt); err == nil {
			t.Errorf("%+v accepted", opt)
		}
	}
	if len(demo.BrowserBundle()) < 1000 || !strings.Contains(string(demo.BrowserBundle()), "KeycardClient") {
		t.Errorf("the embedded bundle is not @keycard/browser")
	}
}
