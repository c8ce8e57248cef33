package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzSafeNext checks that safeNext returns either its input or the
// fallback, and never a target a browser would read as another site.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/account", "//evil", "/\\evil", "https://evil", "/%2F/evil", "/admin/users?q=a", "/weather/x", "/a/../b", "\t//evil"} {
		f.Add(s)
	}
	h := &Handler{redirects: []string{"/weather/"}}
	f.Fuzz(func(t *testing.T, target string) {
		got := h.safeNext(target)
		if got != target && got != "/account" {
			t.Fatalf("safeNext(%q) = %q, want the input or /account", target, got)
		}
		if got == "/account" {
			return
		}
		// What a browser would do with it: resolve it against the site.
		base, _ := url.Parse("https://site.example/signin")
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) kept an unparsable target", target)
		}
		if u := base.ResolveReference(ref); u.Host != "site.example" || u.Scheme != "https" {
			t.Fatalf("safeNext(%q) kept a target that leaves the site: %s", target, u)
		}
		if strings.ContainsAny(got, "\\\r\n\t ") || strings.HasPrefix(got, "//") {
			t.Fatalf("safeNext(%q) kept %q", target, got)
		}
	})
}

func TestCheckOrigin(t *testing.T) {
	h := &Handler{origins: []string{"https://auth.example", "https://app.example"}}
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
		{"port differs", http.Header{"Origin": {"https://auth.example:8443"}}, false},
	} {
		r := &http.Request{Header: tc.header}
		if err := h.checkOrigin(r); (err == nil) != tc.ok {
			t.Errorf("%s: checkOrigin = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	noIssuer := &Handler{}
	if noIssuer.checkOrigin(&http.Request{Header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}) == nil {
		t.Error("a handler without an issuer origin accepted a post")
	}
}
