package gateway

import (
	"strings"
	"testing"
)

// TestPathSpellings sends, with an open route at / and protected routes
// below it, other spellings of the protected paths: letters that a
// case-insensitive upstream reads as the route's (in ASCII, and the
// non-ASCII ones that Unicode case mappings turn into ASCII), and
// segments with trailing dots or spaces, which Windows servers drop.
// Routed by the open route, each would reach a protected path without
// its checks; each is refused with 400 and reaches no upstream.
func TestPathSpellings(t *testing.T) {
	open, protected := newUpstream(t), newUpstream(t)
	g := newTestGateway(t, header+`
routes:
  - {path: /, upstream: '`+open.URL+`', auth: none}
  - {path: /admin/, upstream: '`+protected.URL+`', roles: [admin]}
  - {path: /scoped/, upstream: '`+protected.URL+`', scopes: [x]}
  - {path: /keys/, upstream: '`+protected.URL+`', roles: [admin]}
  - {path: /ssh/, upstream: '`+protected.URL+`', roles: [admin]}
  - {path: /stats/, upstream: '`+protected.URL+`', roles: [admin]}
`)
	admin := g.auth.token(t, "root", "api", "x", "admin")
	for _, tt := range []struct {
		name, target string
	}{
		{name: "upper case", target: "/ADMIN/x"},
		{name: "long s (U+017F) for s", target: "/%C5%BFcoped/x"},
		{name: "long s, not escaped", target: "/ſcoped/x"},
		{name: "dotless i (U+0131) for i", target: "/adm%C4%B1n/x"},
		{name: "dotted capital I (U+0130) for i", target: "/adm%C4%B0n/x"},
		{name: "Kelvin sign (U+212A) for k", target: "/%E2%84%AAeys/x"},
		{name: "sharp s (U+00DF) for ss", target: "/%C3%9Fh/x"},
		{name: "st ligature (U+FB06) for st", target: "/%EF%AC%86ats/x"},
		{name: "trailing dot", target: "/admin./"},
		{name: "trailing dot, deeper", target: "/admin./x"},
		{name: "trailing dots", target: "/admin../x"},
		{name: "trailing space", target: "/admin%20/x"},
		{name: "trailing dot and space", target: "/admin.%20/x"},
		{name: "trailing space and dot", target: "/admin%20./x"},
		{name: "trailing dot on the other route", target: "/scoped./x"},
		{name: "case and a trailing dot", target: "/ADM%C4%B1N.%20/x"},
		{name: "a segment of three dots", target: "/x/.../admin/x"},
		{name: "a segment of a space", target: "/x/%20/admin"},
		{name: "a segment of a dot and a space", target: "/x/.%20/admin"},
	} {
		for _, bearer := range []string{"", admin} {
			w := g.do(t, "GET", tt.target, bearer, nil)
			if w.Code != 400 || !strings.Contains(w.Body.String(), "invalid_request") {
				t.Errorf("%s: GET %s (token: %v): got %d %q, want 400 invalid_request", tt.name, tt.target, bearer != "", w.Code, w.Body)
			}
		}
	}
	if n := open.count() + protected.count(); n != 0 {
		t.Fatalf("upstreams got %d requests, want none", n)
	}

	// The controls: the routes' own spellings, and paths that fold to
	// no protected route, are served as before.
	for _, tt := range []struct {
		name, target, bearer string
		want                 int
		to                   *upstream
	}{
		{name: "protected, no token", target: "/admin/x", want: 401},
		{name: "protected, admin", target: "/admin/x", bearer: admin, want: 200, to: protected},
		{name: "a dot inside a segment", target: "/admin.html", want: 200, to: open},
		{name: "a name that starts like a route", target: "/administrators/x", want: 200, to: open},
		{name: "a non-ASCII letter that folds to none", target: "/sc%C3%B6ped/x", want: 200, to: open},
		{name: "a folding letter elsewhere", target: "/%C4%B1/x", want: 200, to: open},
		{name: "a trailing dot elsewhere", target: "/x./y", want: 200, to: open},
		{name: "a trailing dot under the chosen route", target: "/admin/x./y", bearer: admin, want: 200, to: protected},
	} {
		before := 0
		if tt.to != nil {
			before = tt.to.count()
		}
		w := g.do(t, "GET", tt.target, tt.bearer, nil)
		if w.Code != tt.want || tt.to != nil && tt.to.count() != before+1 {
			t.Errorf("%s: GET %s: got %d %q, want %d from its route's upstream", tt.name, tt.target, w.Code, w.Body, tt.want)
		}
	}
}

func TestFoldPath(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{name: "unchanged", path: "/admin/users", want: "/admin/users"},
		{name: "root", path: "/", want: "/"},
		{name: "ASCII upper case", path: "/Admin/USERS", want: "/admin/users"},
		{name: "long s", path: "/ſcoped", want: "/scoped"},
		{name: "dotless i", path: "/admın", want: "/admin"},
		{name: "dotted capital I", path: "/ADMİN", want: "/admin"},
		{name: "Kelvin sign", path: "/Keys", want: "/keys"},
		{name: "sharp s and capital sharp s", path: "/ßhẞ", want: "/sshss"},
		{name: "ligatures", path: "/ﬀﬁﬂﬃﬄﬅﬆ", want: "/fffiflffifflstst"},
		{name: "non-ASCII that folds to non-ASCII", path: "/ÉCOLE", want: "/École"},
		{name: "trailing dots and spaces of every segment", path: "/a. /b../c ", want: "/a/b/c"},
		{name: "inner dots and spaces stay", path: "/a.b c/d", want: "/a.b c/d"},
		{name: "trailing slash stays", path: "/admin./", want: "/admin/"},
	}
	for _, tt := range tests {
		if got := foldPath(tt.path); got != tt.want {
			t.Errorf("%s: foldPath(%q) = %q, want %q", tt.name, tt.path, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { foldPath("/api/items/1.json") }); n != 0 {
		t.Errorf("foldPath of a lower-case ASCII path: got %v allocations, want 0", n)
	}
}
