package browser

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

func TestOrigin(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://auth.test", "https://auth.test"},
		{"https://Auth.Test:443/base/", "https://auth.test"},
		{"http://127.0.0.1:4000", "http://127.0.0.1:4000"},
		{"http://localhost:80", "http://localhost"},
		{"https://[::1]:8443", "https://[::1]:8443"},
		{"ftp://auth.test", ""},
		{"auth.test", ""},
		{"https://user@auth.test", ""},
		{"", ""},
	} {
		if got := Origin(tc.in); got != tc.want {
			t.Errorf("Origin(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOriginsCheck(t *testing.T) {
	o, err := NewOrigins("https://auth.example/", "https://app.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"same origin", http.Header{"Origin": {"https://auth.example"}}, true},
		{"another allowed origin", http.Header{"Origin": {"https://app.example"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"fetch metadata only", http.Header{"Sec-Fetch-Site": {"same-origin"}}, true},
		{"both", http.Header{"Origin": {"https://auth.example"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		// A form of a no-referrer page: what Chromium sends.
		{"null origin, same-origin fetch", http.Header{"Origin": {"null"}, "Sec-Fetch-Site": {"same-origin"}}, true},
		{"null origin alone", http.Header{"Origin": {"null"}}, false},
		{"other origin", http.Header{"Origin": {"https://evil.example"}}, false},
		{"other origin, same-origin fetch", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"same-origin"}}, false},
		{"cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"none", http.Header{"Sec-Fetch-Site": {"none"}}, false},
		{"neither", http.Header{}, false},
		{"two fetch sites", http.Header{"Sec-Fetch-Site": {"same-origin", "same-origin"}}, false},
		{"two origins", http.Header{"Origin": {"https://auth.example", "https://auth.example"}}, false},
		{"port differs", http.Header{"Origin": {"https://auth.example:8443"}}, false},
		{"scheme differs", http.Header{"Origin": {"http://auth.example"}}, false},
	} {
		err := o.Check(&http.Request{Header: tc.header})
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && keycard.ErrorCode(err) != keycard.EFORBIDDEN {
			t.Errorf("%s: Check = %v, want an EFORBIDDEN error", tc.name, err)
		}
	}
	var none Origins
	if none.Check(&http.Request{Header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}) == nil {
		t.Error("the zero Origins accepted a request")
	}
	if _, err := NewOrigins("https://auth.example", "https://app.example/path"); err == nil {
		t.Error("NewOrigins accepted a URL with a path as an origin")
	}
}

func TestCookie(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxAge   time.Duration
		httpOnly bool
		want     string
	}{
		{"session", 15 * time.Minute, true, "n=v; Path=/p; Max-Age=900; HttpOnly; Secure; SameSite=Strict"},
		{"script-readable", time.Hour, false, "n=v; Path=/p; Max-Age=3600; Secure; SameSite=Strict"},
		{"under a second", time.Millisecond, true, "n=v; Path=/p; Max-Age=1; HttpOnly; Secure; SameSite=Strict"},
		{"deleted", -1, true, "n=v; Path=/p; Max-Age=0; HttpOnly; Secure; SameSite=Strict"},
	} {
		if got := Cookie("n", "/p", "v", tc.maxAge, tc.httpOnly).String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCSRFToken(t *testing.T) {
	k1, k2 := []byte(strings.Repeat("a", 32)), []byte(strings.Repeat("b", 32))
	a := CSRFToken(k1, "session-1")
	if a != CSRFToken(k1, "session-1") {
		t.Error("the token of a session changed")
	}
	if len(a) != 43 {
		t.Errorf("token %q: want 43 base64url characters", a)
	}
	if a == CSRFToken(k1, "session-2") || a == CSRFToken(k2, "session-1") {
		t.Error("two sessions, or two keys, share a token")
	}
}

func TestAgentOf(t *testing.T) {
	for _, tc := range []struct {
		remote string
		want   string
	}{
		{"192.0.2.1:5555", "192.0.2.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"@", "@"}, // a unix socket's peer
		{strings.Repeat("9", 100), strings.Repeat("9", maxClientAddr)},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{"User-Agent": {"ua/1"}, "X-Forwarded-For": {"203.0.113.7"}}}
		if got := AgentOf(r); got != (auth.Agent{UserAgent: "ua/1", Addr: tc.want}) {
			t.Errorf("AgentOf(%q) = %+v, want address %q (X-Forwarded-For ignored)", tc.remote, got, tc.want)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{keycard.Errorf(keycard.EINVALID, "x"), http.StatusBadRequest},
		{keycard.Errorf(keycard.EUNAUTHORIZED, "x"), http.StatusUnauthorized},
		{&auth.ReauthRequiredError{MaxAge: time.Minute}, http.StatusUnauthorized},
		{keycard.Errorf(keycard.EFORBIDDEN, "x"), http.StatusForbidden},
		{keycard.Errorf(keycard.ENOTFOUND, "x"), http.StatusNotFound},
		{keycard.Errorf(keycard.ECONFLICT, "x"), http.StatusConflict},
		{keycard.Errorf(keycard.ETHROTTLED, "x"), http.StatusTooManyRequests},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		if got := StatusOf(tc.err); got != tc.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
