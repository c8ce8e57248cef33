package passkey

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keycard-auth/keycard"
)

// agree checks one answer both ways: the fast path accepts it only if
// go-webauthn does, with the same result. It returns whether the fast
// path accepted.
func (f *fixture) agree(t *testing.T, name string, discoverable bool, tc tamper) bool {
	t.Helper()
	s := f.session(t, discoverable)
	if tc.session != nil {
		tc.session(s)
	}
	body := f.build(t, s, tc)
	pk := *f.pk
	if tc.stored != nil {
		tc.stored(&pk)
	}
	lookup := func(handle []byte) (*keycard.User, []*keycard.Passkey, error) {
		if string(handle) != f.user.ID {
			return nil, nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "no such user"}
		}
		return f.user, []*keycard.Passkey{&pk, f.pk2}, nil
	}
	fast, fastErr := newFixtureRP(t).fastLogin(s, body, lookup)
	if fastErr != nil && !errors.Is(fastErr, errNotFast) {
		t.Fatalf("%s: fast path error %v does not wrap errNotFast", name, fastErr)
	}
	lib, libErr := newFixtureRP(t).libraryLogin(s, body, lookup)
	if fastErr == nil && libErr != nil {
		t.Errorf("%s: fast path accepted what go-webauthn refuses: %v", name, libErr)
	}
	if fastErr == nil && libErr == nil && !sameAssertion(fast, lib) {
		t.Errorf("%s: fast path result %+v, go-webauthn's %+v", name, fast, lib)
	}
	return fastErr == nil
}

// TestFastPathAgreesOnFlags: every value of the authenticator data's
// flags byte (the reserved bits, UP, UV, BE, BS; AT and ED, which the
// fast path hands over), under each user verification policy, for a
// stored passkey backup eligible or not, in both kinds of ceremony.
func TestFastPathAgreesOnFlags(t *testing.T) {
	f := newFixture(t)
	accepted := 0
	for _, discoverable := range []bool{true, false} {
		for _, uv := range []protocol.UserVerificationRequirement{protocol.VerificationRequired, protocol.VerificationPreferred, protocol.VerificationDiscouraged} {
			for _, be := range []bool{false, true} {
				for fl := 0; fl < 256; fl++ {
					tc := tamper{
						authData: func(ad []byte) []byte { ad[32] = byte(fl); return ad },
						session:  func(s *webauthn.SessionData) { s.UserVerification = uv },
						stored:   func(p *keycard.Passkey) { p.BackupEligible = be },
					}
					if f.agree(t, fmt.Sprintf("flags %#02x uv=%s be=%v discoverable=%v", fl, uv, be, discoverable), discoverable, tc) {
						accepted++
					}
				}
			}
		}
	}
	if accepted == 0 {
		t.Error("the fast path accepted no flags at all")
	}
}

// TestFastPathAgreesOnClientDataJSON: client data in the corners of
// JSON where a reader may differ from encoding/json — escaped and
// case-folded member names, duplicates under escapes or case, escapes
// in values, a byte order mark, whitespace, members of other types.
func TestFastPathAgreesOnClientDataJSON(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name string
		fn   func(string) string
	}{
		{"escaped name duplicating type", replace(`"crossOrigin":false`, `"crossOrigin":false,"typ\u0065":"webauthn.create"`)},
		{"escaped name duplicating origin", replace(`"crossOrigin":false`, `"crossOrigin":false,"\u006frigin":"https://evil.example"`)},
		{"escaped name duplicating challenge", replace(`"crossOrigin":false`, `"crossOrigin":false,"challeng\u0065":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`)},
		{"case variant duplicating type", replace(`"crossOrigin":false`, `"crossOrigin":false,"TYPE":"webauthn.create"`)},
		{"case variant duplicating origin", replace(`"crossOrigin":false`, `"crossOrigin":false,"Origin":"https://evil.example"`)},
		{"kelvin-sign name", replace(`"crossOrigin":false`, `"crossOrigin":false,"tOKenBinding":{"status":"bogus"}`)},
		{"long-s name", replace(`"crossOrigin":false`, `"crossOrigin":false,"ſype":"x"`)},
		{"crossOrigin true under an escaped name", replace(`"crossOrigin":false`, `"crossOrigin":false,"cross\u004frigin":true`)},
		{"crossOrigin true under a case variant", replace(`"crossOrigin":false`, `"CROSSORIGIN":true`)},
		{"topOrigin under a case variant", replace(`"crossOrigin":false`, `"crossOrigin":false,"toporigin":"https://evil.example"`)},
		{"tokenBinding under a case variant", replace(`"crossOrigin":false`, `"crossOrigin":false,"TokenBinding":{"status":"bogus"}`)},
		{"tokenBinding with '_'", replace(`"crossOrigin":false`, `"crossOrigin":false,"token_binding":{"status":"bogus"}`)},
		{"escaped value of type", replace(`"webauthn.get"`, `"webauthn\u002eget"`)},
		{"escaped value of origin", replace(`"https://auth`, `"https:\/\/auth`)},
		{"origin with a trailing slash", replace(tOrigin+`"`, tOrigin+`/"`)},
		{"origin in upper case", replace(tOrigin, strings.ToUpper(tOrigin))},
		{"origin with the default port", replace(tOrigin, tOrigin+":443")},
		{"origin with a NUL", replace(tOrigin+`"`, tOrigin+`\u0000"`)},
		{"byte order mark", func(s string) string { return "\ufeff" + s }},
		{"whitespace around", func(s string) string { return " \n\t" + s + "\r\n " }},
		{"trailing data", func(s string) string { return s + "{}" }},
		{"crossOrigin 0", replace(`"crossOrigin":false`, `"crossOrigin":0`)},
		{"crossOrigin null", replace(`"crossOrigin":false`, `"crossOrigin":null`)},
		{"crossOrigin \"false\"", replace(`"crossOrigin":false`, `"crossOrigin":"false"`)},
		{"topOrigin null", replace(`"crossOrigin":false`, `"crossOrigin":false,"topOrigin":null`)},
		{"topOrigin empty", replace(`"crossOrigin":false`, `"crossOrigin":false,"topOrigin":""`)},
		{"type null", replace(`"type":"webauthn.get"`, `"type":null`)},
		{"extra member of any type", replace(`"crossOrigin":false`, `"crossOrigin":false,"other_keys_can_be_added_here":[1,{"a":null}]`)},
		{"invalid UTF-8 in an ignored member", replace(`"crossOrigin":false`, "\"crossOrigin\":false,\"x\":\"\xff\"")},
		{"lone surrogate in an ignored member", replace(`"crossOrigin":false`, `"crossOrigin":false,"x":"\ud800"`)},
		{"challenge with padding", replace(`","origin"`, `=","origin"`)},
		{"not an object", func(s string) string { return "[" + s + "]" }},
	} {
		for _, discoverable := range []bool{true, false} {
			f.agree(t, fmt.Sprintf("%s, discoverable=%v", c.name, discoverable), discoverable, tamper{clientData: c.fn})
		}
	}
}

// TestFastPathAgreesOnMembers: the outer and response JSON in the same
// corners, and the user handle against the ceremony's user.
func TestFastPathAgreesOnMembers(t *testing.T) {
	f := newFixture(t)
	q := func(b []byte) string { return `"` + b64u.EncodeToString(b) + `"` }
	for _, c := range []struct {
		name string
		fn   func(a *answer)
	}{
		{"escaped rawId name duplicating", func(a *answer) { a.outer = append(a.outer, [2]string{`raw\u0049d`, q(f.pk2.CredentialID)}) }},
		{"case variant of rawId", func(a *answer) { a.outer = append(a.outer, [2]string{"RAWID", q(f.pk2.CredentialID)}) }},
		{"userHandle of another user", func(a *answer) { set(&a.response, "userHandle", q([]byte("someone-else"))) }},
		{"userHandle empty", func(a *answer) { set(&a.response, "userHandle", `""`) }},
		{"userHandle null", func(a *answer) { set(&a.response, "userHandle", `null`) }},
		{"userHandle case variant duplicating", func(a *answer) {
			a.response = append(a.response, [2]string{"UserHandle", q([]byte("someone-else"))})
		}},
		{"signature under an escaped name", func(a *answer) {
			for i := range a.response {
				if a.response[i][0] == "signature" {
					a.response[i][0] = `sign\u0061ture`
				}
			}
		}},
		{"id non-canonical base64", func(a *answer) {
			id := b64u.EncodeToString(f.pk.CredentialID)
			last := id[len(id)-1]
			alt := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", last) + 1
			set(&a.outer, "id", `"`+id[:len(id)-1]+string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[alt%64])+`"`)
		}},
		{"clientExtensionResults with appid", func(a *answer) { set(&a.outer, "clientExtensionResults", `{"appid":true}`) }},
		{"clientExtensionResults null", func(a *answer) { set(&a.outer, "clientExtensionResults", `null`) }},
		{"authenticatorAttachment number", func(a *answer) { set(&a.outer, "authenticatorAttachment", `1`) }},
		{"type under a case variant", func(a *answer) { drop(&a.outer, "type"); a.outer = append(a.outer, [2]string{"TYPE", `"public-key"`}) }},
	} {
		for _, discoverable := range []bool{true, false} {
			f.agree(t, fmt.Sprintf("%s, discoverable=%v", c.name, discoverable), discoverable, tamper{members: c.fn})
		}
	}
}
