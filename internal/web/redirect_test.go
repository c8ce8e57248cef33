package web

import (
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
