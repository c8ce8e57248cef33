package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// browserCall sends a request as a page of origin would, with the cookies
// and, when not empty, the CSRF header; it returns the status, the body
// and the cookies the response sets, by name.
func browserCall(t *testing.T, method, u, origin, contentType, body string, cookies map[string]string, csrf string) (int, map[string]any, map[string]string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for name, v := range cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q is not JSON", method, u, b)
		}
	}
	set := map[string]string{}
	for _, c := range resp.Cookies() {
		set[c.Name] = c.Value
	}
	return resp.StatusCode, out, set
}

func TestCookieModeEndToEnd(t *testing.T) {
	data := t.TempDir()
	s := startServerIn(t, data, "--cookie-mode")
	const pass = "correct horse battery staple"
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", data, "--username", "alice", "--password-stdin",
		"--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	login := `{"username":"alice","password":"` + pass + `","cookies":true}`
	code, body, jar := browserCall(t, http.MethodPost, s.base+"/v1/login", s.base, "application/json", login, nil, "")
	if code != http.StatusOK || len(jar) != 3 || body["access_token"] != nil || body["refresh_token"] != nil {
		t.Fatalf("cookie login: %d %v, cookies %v", code, body, jar)
	}
	csrf, _ := body["csrf_token"].(string)
	access := map[string]string{"__Host-keycard_access": jar["__Host-keycard_access"], "__Host-keycard_csrf": jar["__Host-keycard_csrf"]}
	refresh := map[string]string{"__Secure-keycard_refresh": jar["__Secure-keycard_refresh"], "__Host-keycard_csrf": jar["__Host-keycard_csrf"]}

	// CSRF attempts: without the token, from another origin.
	for _, tc := range []struct {
		name, origin, csrf string
	}{
		{"no CSRF token", s.base, ""},
		{"wrong CSRF token", s.base, strings.Repeat("A", 43)},
		{"another origin", "https://evil.example", csrf},
	} {
		if code, body, _ := browserCall(t, http.MethodPost, s.base+"/v1/logout", tc.origin, "", "", access, tc.csrf); code != http.StatusForbidden || body["error"] != "csrf_failed" {
			t.Errorf("logout, %s: %d %v, want 403 csrf_failed", tc.name, code, body)
		}
		if code, body, _ := browserCall(t, http.MethodPost, s.base+"/oauth/token", tc.origin, "application/x-www-form-urlencoded", "grant_type=refresh_token", refresh, tc.csrf); code != http.StatusForbidden || body["error"] != "csrf_failed" {
			t.Errorf("refresh, %s: %d %v, want 403 csrf_failed", tc.name, code, body)
		}
	}
	if code, body, _ := browserCall(t, http.MethodGet, s.base+"/v1/me", s.base, "", "", access, ""); code != http.StatusOK || body["username"] != "alice" {
		t.Fatalf("GET /v1/me with cookies: %d %v", code, body)
	}

	// The CSRF key comes from the master key: the token outlives a
	// restart.
	firstLog := s.log
	if code := s.stop(); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	s = startServerIn(t, data, "--cookie-mode")
	code, body, jar = browserCall(t, http.MethodPost, s.base+"/oauth/token", s.base, "application/x-www-form-urlencoded", "grant_type=refresh_token", refresh, csrf)
	if code != http.StatusOK || body["csrf_token"] != csrf || jar["__Secure-keycard_refresh"] == "" || jar["__Secure-keycard_refresh"] == refresh["__Secure-keycard_refresh"] {
		t.Fatalf("cookie refresh after restart: %d %v, cookies %v; want 200, the same CSRF token and a new refresh cookie", code, body, jar)
	}
	for _, secret := range []string{refresh["__Secure-keycard_refresh"], access["__Host-keycard_access"], csrf} {
		if strings.Contains(firstLog.String()+s.log.String(), secret) {
			t.Errorf("the server log contains a cookie's secret")
		}
	}
}
