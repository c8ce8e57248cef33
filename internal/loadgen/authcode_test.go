package loadgen

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"
)

func TestAuthCodeResponse(t *testing.T) {
	w := &authcodeWorkload{issuer: "http://auth.example"}
	const ok = AuthCodeRedirectURI + "?code=C0de&state=s1&iss=http%3A%2F%2Fauth.example"
	tests := []struct {
		name, location string
		wantCode       string
		wantKind       string
	}{
		{name: "code", location: ok, wantCode: "C0de"},
		{name: "sign-in page", location: "/signin?next=%2Foauth%2Fauthorize", wantKind: KindNoCode},
		{name: "another redirect URI", location: "http://127.0.0.1/other?code=C0de&state=s1&iss=http%3A%2F%2Fauth.example", wantKind: KindNoCode},
		{name: "error", location: AuthCodeRedirectURI + "?error=login_required&state=s1&iss=http%3A%2F%2Fauth.example", wantKind: KindNoCode},
		{name: "no code", location: AuthCodeRedirectURI + "?state=s1&iss=http%3A%2F%2Fauth.example", wantKind: KindNoCode},
		{name: "other state", location: AuthCodeRedirectURI + "?code=C0de&state=s2&iss=http%3A%2F%2Fauth.example", wantKind: KindBadResponse},
		{name: "other issuer", location: AuthCodeRedirectURI + "?code=C0de&state=s1&iss=http%3A%2F%2Fevil.example", wantKind: KindBadResponse},
		{name: "no issuer", location: AuthCodeRedirectURI + "?code=C0de&state=s1", wantKind: KindBadResponse},
		{name: "bad query", location: AuthCodeRedirectURI + "?code=%zz", wantKind: KindBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := w.codeOf(tt.location, "s1")
			var ke *KindError
			switch {
			case tt.wantKind == "" && (err != nil || code != tt.wantCode):
				t.Errorf("codeOf = %q, %v; want %q", code, err, tt.wantCode)
			case tt.wantKind != "" && (!errors.As(err, &ke) || ke.Kind != tt.wantKind):
				t.Errorf("codeOf = %q, %v; want the error %s", code, err, tt.wantKind)
			}
		})
	}
}

// TestPKCE: every verifier is fresh, 43 characters, and its challenge is
// its S256 hash (RFC 7636 section 4.2).
func TestPKCE(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		v, c := pkce()
		sum := sha256.Sum256([]byte(v))
		if len(v) != 43 || c != base64.RawURLEncoding.EncodeToString(sum[:]) || seen[v] {
			t.Fatalf("verifier %q challenge %q (seen before: %v)", v, c, seen[v])
		}
		seen[v] = true
	}
}
