package server

import (
	"strings"
	"testing"
)

// TestRelyingParty: the passkeys' relying party is the issuer's host and
// origin by default, off for an IP address, and --webauthn-rp-id and
// --webauthn-origin are checked at start-up.
func TestRelyingParty(t *testing.T) {
	for _, tt := range []struct {
		name    string
		issuer  string
		rpID    string
		origins []string
		page    []string
		off     bool
		err     string
	}{
		{name: "the issuer's host", issuer: "https://auth.example.com"},
		{name: "localhost", issuer: "http://localhost:4000"},
		{name: "an IP address: off", issuer: "http://127.0.0.1:4000", off: true},
		{name: "an IPv6 address: off", issuer: "http://[::1]:4000", off: true},
		{name: "no issuer: off", issuer: "", off: true},
		{name: "a parent domain", issuer: "https://auth.example.com", rpID: "example.com", origins: []string{"https://auth.example.com", "https://app.example.com"}},
		{name: "page origins on the domain", issuer: "https://auth.example.com", rpID: "example.com", page: []string{"https://app.example.com", "https://other.test"}},
		{name: "an origin off the domain", issuer: "https://auth.example.com", rpID: "example.com", origins: []string{"https://evil.test"}, err: "not example.com"},
		{name: "an origin of a look-alike domain", issuer: "https://auth.example.com", rpID: "example.com", origins: []string{"https://notexample.com"}, err: "not example.com"},
		{name: "an RP id the issuer is not under", issuer: "https://auth.example.com", rpID: "other.test", err: "not other.test"},
		{name: "an invalid RP id", issuer: "https://auth.example.com", rpID: "exa mple.com", err: "webauthn"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Issuer: tt.issuer, PageOrigins: tt.page, WebAuthn: WebAuthnConfig{RPID: tt.rpID, Origins: tt.origins}}
			rp, off, err := c.relyingParty()
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err %v, want one saying %q", err, tt.err)
				}
			case tt.off:
				if err != nil || rp != nil || off == "" {
					t.Errorf("got %v, %q, %v; want passkeys off with a reason", rp, off, err)
				}
			case err != nil || rp == nil:
				t.Errorf("got %v, %q, %v; want a relying party", rp, off, err)
			}
		})
	}
}
