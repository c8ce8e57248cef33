package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
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
	// brings the session's revocation (milliseconds; the generous
	// deadline is for a busy machine).
	deadline := time.Now().Add(30 * time.Second)
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
