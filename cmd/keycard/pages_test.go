package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServePages: serve shows the web pages by default (with their
// security headers) and not with --pages=false.
func TestServePages(t *testing.T) {
	s := startServer(t)
	res, err := http.Get(s.base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "<form") {
		t.Fatalf("GET /signin: %d", res.StatusCode)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("security headers: CSP %q, XFO %q", csp, res.Header.Get("X-Frame-Options"))
	}
	off := startServer(t, "--pages=false")
	if code, _ := call(t, "GET", off.base+"/signin", "", "", "", nil); code != 404 {
		t.Errorf("GET /signin with --pages=false: %d, want 404", code)
	}
}
