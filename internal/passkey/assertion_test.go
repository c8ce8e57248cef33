package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

const (
	tRPID   = "example.com"
	tOrigin = "https://auth.example.com"
)

var b64u = base64.RawURLEncoding

// coseES256 is the COSE_Key of an ES256 key, its members in the order
// given (1 kty, 3 alg, -1 crv, -2 x, -3 y by default, CTAP2's order).
func coseES256(pub *ecdsa.PublicKey, order ...int) []byte {
	raw, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	members := map[int][]byte{
		1:  {0x01, 0x02},
		3:  {0x03, 0x26},
		-1: {0x20, 0x01},
		-2: append([]byte{0x21, 0x58, 0x20}, raw[1:33]...),
		-3: append([]byte{0x22, 0x58, 0x20}, raw[33:65]...),
	}
	if len(order) == 0 {
		order = []int{1, 3, -1, -2, -3}
	}
	out := []byte{0xa0 | byte(len(order))}
	for _, k := range order {
		out = append(out, members[k]...)
	}
	return out
}

// fixture is a relying party, a user with one passkey (and a second
// one, of another key, for the allow list), and the authenticator's key.
type fixture struct {
	rp       *RelyingParty
	key      *ecdsa.PrivateKey
	user     *keycard.User
	pk, pk2  *keycard.Passkey
	otherKey *ecdsa.PrivateKey
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	rp, err := New(Config{RPID: tRPID, Origins: []string{tOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, id2 := make([]byte, 16), make([]byte, 16)
	rand.Read(id)
	rand.Read(id2)
	user := &keycard.User{ID: "CgLRygpaBhuZLxOmVOOPMQ", Username: "alice"}
	return &fixture{
		rp: rp, key: key, otherKey: other, user: user,
		pk:  &keycard.Passkey{ID: "pk1", UserID: user.ID, CredentialID: id, PublicKey: coseES256(&key.PublicKey), SignCount: 3},
		pk2: &keycard.Passkey{ID: "pk2", UserID: user.ID, CredentialID: id2, PublicKey: coseES256(&other.PublicKey)},
	}
}

// session begins a ceremony: discoverable, or for the user with both
// passkeys allowed.
func (f *fixture) session(t testing.TB, discoverable bool) *webauthn.SessionData {
	t.Helper()
	var u *keycard.User
	var allow []*keycard.Passkey
	if !discoverable {
		u, allow = f.user, []*keycard.Passkey{f.pk, f.pk2}
	}
	_, state, err := f.rp.BeginLogin(u, allow)
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeState(state)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// answer is an assertion being built: each part may be changed by a
// test case before and after signing.
type answer struct {
	clientData string
	authData   []byte
	sig        []byte
	// outer and response are the members of the JSON, raw values.
	outer, response [][2]string
	body            []byte
}

type tamper struct {
	name string
	// The parts, changed in this order: before signing, the client
	// data text and the authenticator data; after, the signature;
	// then the JSON members and the body.
	clientData func(string) string
	authData   func([]byte) []byte
	key        *ecdsa.PrivateKey // signs instead of the credential's key
	// signer, when set, signs authData || SHA-256(clientDataJSON)
	// instead of ECDSA.
	signer  func(msg []byte) []byte
	sig     func([]byte) []byte
	members func(a *answer)
	body    func([]byte) []byte
	session func(*webauthn.SessionData)
	stored  func(*keycard.Passkey)
	// fast: the fast path must accept this one (it is a browser's
	// ordinary answer), unless the ceremony is discoverable and
	// notDiscoverable is set.
	fast, notDiscoverable bool
}

func (f *fixture) build(t testing.TB, s *webauthn.SessionData, tc tamper) []byte {
	t.Helper()
	a := answer{
		clientData: `{"type":"webauthn.get","challenge":"` + s.Challenge + `","origin":"` + tOrigin + `","crossOrigin":false}`,
	}
	h := sha256.Sum256([]byte(tRPID))
	a.authData = append(h[:], flagUP|flagUV)
	a.authData = binary.BigEndian.AppendUint32(a.authData, 7)
	if tc.clientData != nil {
		a.clientData = tc.clientData(a.clientData)
	}
	if tc.authData != nil {
		a.authData = tc.authData(a.authData)
	}
	key := f.key
	if tc.key != nil {
		key = tc.key
	}
	cdHash := sha256.Sum256([]byte(a.clientData))
	msg := append(append([]byte{}, a.authData...), cdHash[:]...)
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if tc.signer != nil {
		sig = tc.signer(msg)
	}
	a.sig = sig
	if tc.sig != nil {
		a.sig = tc.sig(append([]byte{}, sig...))
	}
	q := func(b []byte) string { return `"` + b64u.EncodeToString(b) + `"` }
	id := q(f.pk.CredentialID)
	a.response = [][2]string{
		{"clientDataJSON", q([]byte(a.clientData))},
		{"authenticatorData", q(a.authData)},
		{"signature", q(a.sig)},
		{"userHandle", q([]byte(f.user.ID))},
	}
	a.outer = [][2]string{
		{"id", id}, {"rawId", id}, {"type", `"public-key"`},
		{"authenticatorAttachment", `"platform"`},
		{"response", ""}, {"clientExtensionResults", "{}"},
	}
	if tc.members != nil {
		tc.members(&a)
	}
	obj := func(ms [][2]string) string {
		var parts []string
		for _, m := range ms {
			parts = append(parts, fmt.Sprintf("%q:%s", m[0], m[1]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	for i, m := range a.outer {
		if m[0] == "response" && m[1] == "" {
			a.outer[i][1] = obj(a.response)
		}
	}
	a.body = []byte(obj(a.outer))
	if tc.body != nil {
		a.body = tc.body(a.body)
	}
	return a.body
}

// set replaces (or, if absent, adds) the member name of ms.
func set(ms *[][2]string, name, value string) {
	for i := range *ms {
		if (*ms)[i][0] == name {
			(*ms)[i][1] = value
			return
		}
	}
	*ms = append(*ms, [2]string{name, value})
}

// drop removes the member name of ms.
func drop(ms *[][2]string, name string) {
	for i := range *ms {
		if (*ms)[i][0] == name {
			*ms = append((*ms)[:i], (*ms)[i+1:]...)
			return
		}
	}
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

func flags(set, clear byte) func([]byte) []byte {
	return func(ad []byte) []byte { ad[32] = ad[32]&^clear | set; return ad }
}

func tampers(f *fixture) []tamper {
	q := func(b []byte) string { return `"` + b64u.EncodeToString(b) + `"` }
	otherHash := sha256.Sum256([]byte("evil.example"))
	return []tamper{
		// Accepted, by the fast path.
		{name: "valid", fast: true},
		{name: "valid, UV clear", authData: flags(0, flagUV), fast: true},
		{name: "valid, backed up", authData: flags(flagBE|flagBS, 0), stored: func(p *keycard.Passkey) { p.BackupEligible = true }, fast: true},
		{name: "valid, BE without BS", authData: flags(flagBE, 0), stored: func(p *keycard.Passkey) { p.BackupEligible = true }, fast: true},
		{name: "valid, counter 0", authData: func(ad []byte) []byte { copy(ad[33:], []byte{0, 0, 0, 0}); return ad }, fast: true},
		{name: "valid, counter max", authData: func(ad []byte) []byte { copy(ad[33:], []byte{255, 255, 255, 255}); return ad }, fast: true},
		{name: "valid, RFU flags", authData: flags(0x02|0x20, 0), fast: true},
		{name: "valid, Chrome's extra member", clientData: replace(`}`, `,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template"}`), fast: true},
		{name: "valid, escaped client data", clientData: replace(`"webauthn.get"`, `"webauthn\u002eget"`), fast: true},
		{name: "valid, topOrigin empty", clientData: replace(`}`, `,"topOrigin":""}`), fast: true},
		{name: "valid, no crossOrigin", clientData: replace(`,"crossOrigin":false`, ``), fast: true},
		{name: "valid, UserHandle capitalised", members: func(a *answer) { a.response[3][0] = "UserHandle" }, fast: true},
		{name: "valid, no userHandle", members: func(a *answer) { drop(&a.response, "userHandle") }, fast: true, notDiscoverable: true},
		{name: "valid, no clientExtensionResults", members: func(a *answer) { drop(&a.outer, "clientExtensionResults") }, fast: true},
		{name: "valid, unknown member", members: func(a *answer) { set(&a.outer, "hints", `["x",{"y":[1,2.5e3,null,true]}]`) }, fast: true},
		{name: "valid, no attachment", members: func(a *answer) { drop(&a.outer, "authenticatorAttachment") }, fast: true},
		{name: "valid, whitespace", body: func(b []byte) []byte { return append(append([]byte(" \n"), b...), " \t\r\n"...) }, fast: true},
		{name: "valid, key members reordered", stored: func(p *keycard.Passkey) { p.PublicKey = coseES256(&f.key.PublicKey, -3, -2, -1, 3, 1) }, fast: true},
		{name: "valid, UV required", session: func(s *webauthn.SessionData) { s.UserVerification = protocol.VerificationRequired }, fast: true},

		// Accepted by the library, left to it or not.
		{name: "origin in capitals", clientData: replace(tOrigin, "https://AUTH.example.com")},
		{name: "origin with the default port", clientData: replace(tOrigin, tOrigin+":443")},
		{name: "base64 padding", members: func(a *answer) { set(&a.response, "signature", strings.TrimSuffix(q(a.sig), `"`)+`=="`) }},
		{name: "base64 escaped", members: func(a *answer) {
			set(&a.response, "userHandle", `"`+strings.Replace(b64u.EncodeToString([]byte(f.user.ID)), "C", `\u0043`, 1)+`"`)
		}},
		{name: "valid, userHandle null", members: func(a *answer) { set(&a.response, "userHandle", "null") }, fast: true, notDiscoverable: true},
		{name: "valid, attachment null", members: func(a *answer) { set(&a.outer, "authenticatorAttachment", "null") }, fast: true},
		{name: "crossOrigin null", clientData: replace(`"crossOrigin":false`, `"crossOrigin":null`)},
		{name: "tokenBinding supported", clientData: replace(`}`, `,"tokenBinding":{"status":"supported"}}`)},
		{name: "key with a trailing member order", stored: func(p *keycard.Passkey) { p.PublicKey = coseES256(&f.key.PublicKey, 3, 1, -2, -1, -3) }},
		{name: "session bound to the origin", session: func(s *webauthn.SessionData) { s.Origin = tOrigin }},
		{name: "attachment cross-platform", members: func(a *answer) { set(&a.outer, "authenticatorAttachment", `"cross-platform"`) }},
		{name: "attachment unknown", members: func(a *answer) { set(&a.outer, "authenticatorAttachment", `"elsewhere"`) }},
		{name: "duplicate member", body: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"type":"public-key"`), []byte(`"type":"x","type":"public-key"`), 1)
		}},
		{name: "duplicate member in other case", body: func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"type":"public-key"`), []byte(`"TYPE":"x","type":"public-key"`), 1)
		}},

		// Refused.
		{name: "type create", clientData: replace(`webauthn.get`, `webauthn.create`)},
		{name: "type missing", clientData: replace(`"type":"webauthn.get",`, ``)},
		{name: "type number", clientData: replace(`"webauthn.get"`, `7`)},
		{name: "challenge other", clientData: func(s string) string { return strings.Replace(s, `"challenge":"`, `"challenge":"A`, 1) }},
		{name: "challenge missing", clientData: func(s string) string {
			i := strings.Index(s, `"challenge"`)
			j := strings.Index(s, `"origin"`)
			return s[:i] + s[j:]
		}},
		{name: "origin other", clientData: replace(tOrigin, "https://evil.example")},
		{name: "origin look-alike", clientData: replace(tOrigin, tOrigin+".evil.example")},
		{name: "origin http", clientData: replace(tOrigin, "http://auth.example.com")},
		{name: "origin missing", clientData: replace(`"origin":"`+tOrigin+`",`, ``)},
		{name: "crossOrigin true", clientData: replace(`"crossOrigin":false`, `"crossOrigin":true`)},
		{name: "crossOrigin string", clientData: replace(`"crossOrigin":false`, `"crossOrigin":"false"`)},
		{name: "topOrigin", clientData: replace(`}`, `,"topOrigin":"https://evil.example"}`)},
		{name: "topOrigin with crossOrigin", clientData: replace(`"crossOrigin":false`, `"crossOrigin":true,"topOrigin":"`+tOrigin+`"`)},
		{name: "tokenBinding bad status", clientData: replace(`}`, `,"tokenBinding":{"status":"maybe"}}`)},
		{name: "type in other case", clientData: replace(`"type"`, `"TYPE"`)},
		{name: "type twice", clientData: replace(`"type":"webauthn.get"`, `"type":"webauthn.create","type":"webauthn.get"`)},
		{name: "client data not JSON", clientData: func(string) string { return `type=webauthn.get` }},
		{name: "client data array", clientData: func(s string) string { return "[" + s + "]" }},
		{name: "client data trailing", clientData: func(s string) string { return s + "x" }},
		{name: "client data invalid UTF-8", clientData: replace(`webauthn.get`, "webauthn.get\xff")},
		{name: "rpIdHash other", authData: func(ad []byte) []byte { copy(ad, otherHash[:]); return ad }},
		{name: "rpIdHash one bit", authData: func(ad []byte) []byte { ad[5] ^= 0x10; return ad }},
		{name: "UP clear", authData: flags(0, flagUP)},
		{name: "UV clear, required", authData: flags(0, flagUV), session: func(s *webauthn.SessionData) { s.UserVerification = protocol.VerificationRequired }},
		{name: "BE set, not eligible", authData: flags(flagBE, 0)},
		{name: "BE clear, eligible", stored: func(p *keycard.Passkey) { p.BackupEligible = true }},
		{name: "BS without BE", authData: flags(flagBS, 0)},
		{name: "AT without data", authData: flags(flagAT, 0)},
		{name: "AT with junk", authData: func(ad []byte) []byte { return append(flags(flagAT, 0)(ad), make([]byte, 40)...) }},
		{name: "ED without data", authData: flags(flagED, 0)},
		{name: "ED with an empty map", authData: func(ad []byte) []byte { return append(flags(flagED, 0)(ad), 0xa0) }},
		{name: "ED with credProtect", authData: func(ad []byte) []byte {
			return append(flags(flagED, 0)(ad), 0xa1, 0x6b, 'c', 'r', 'e', 'd', 'P', 'r', 'o', 't', 'e', 'c', 't', 0x01)
		}},
		{name: "extension data without ED", authData: func(ad []byte) []byte { return append(ad, 0xa0) }},
		{name: "trailing authenticator data", authData: func(ad []byte) []byte { return append(ad, 0) }},
		{name: "truncated authenticator data", authData: func(ad []byte) []byte { return ad[:36] }},
		{name: "empty authenticator data", authData: func([]byte) []byte { return nil }},
		{name: "signature by another key", key: f.otherKey},
		{name: "signature empty", sig: func([]byte) []byte { return nil }},
		{name: "signature truncated", sig: func(s []byte) []byte { return s[:len(s)-1] }},
		{name: "signature trailing byte", sig: func(s []byte) []byte { return append(s, 0) }},
		{name: "signature raw r||s", sig: func(s []byte) []byte { return make([]byte, 64) }},
		{name: "signature BER length", sig: func(s []byte) []byte { return append([]byte{0x30, 0x81, s[1]}, s[2:]...) }},
		{name: "stored key of another", stored: func(p *keycard.Passkey) { p.PublicKey = coseES256(&f.otherKey.PublicKey) }},
		{name: "stored key off the curve", stored: func(p *keycard.Passkey) { p.PublicKey = bytes.Clone(p.PublicKey); p.PublicKey[76] ^= 1 }},
		{name: "stored key EdDSA label", stored: func(p *keycard.Passkey) { p.PublicKey = bytes.Clone(p.PublicKey); p.PublicKey[4] = 0x27 }},
		{name: "stored key none", stored: func(p *keycard.Passkey) { p.PublicKey = nil }},
		{name: "stored key truncated", stored: func(p *keycard.Passkey) { p.PublicKey = p.PublicKey[:60] }},
		{name: "stored key duplicate member", stored: func(p *keycard.Passkey) { p.PublicKey = coseES256(&f.key.PublicKey, 1, 3, -1, -2, -2) }},
		{name: "id not rawId", members: func(a *answer) { set(&a.outer, "id", q(f.pk2.CredentialID)) }},
		{name: "id missing", members: func(a *answer) { drop(&a.outer, "id") }},
		{name: "id padded", members: func(a *answer) { set(&a.outer, "id", strings.TrimSuffix(q(f.pk.CredentialID), `"`)+`=="`) }},
		{name: "rawId missing", members: func(a *answer) { drop(&a.outer, "rawId") }},
		{name: "credential unknown", members: func(a *answer) {
			set(&a.outer, "id", q([]byte("unknown credential")))
			set(&a.outer, "rawId", q([]byte("unknown credential")))
		}},
		{name: "credential the other one", members: func(a *answer) {
			set(&a.outer, "id", q(f.pk2.CredentialID))
			set(&a.outer, "rawId", q(f.pk2.CredentialID))
		}},
		{name: "type other", members: func(a *answer) { set(&a.outer, "type", `"public-key "`) }},
		{name: "type missing", members: func(a *answer) { drop(&a.outer, "type") }},
		{name: "userHandle other", members: func(a *answer) { set(&a.response, "userHandle", q([]byte("another user"))) }},
		{name: "userHandle empty", members: func(a *answer) { set(&a.response, "userHandle", `""`) }},
		{name: "userHandle not base64", members: func(a *answer) { set(&a.response, "userHandle", `"!!"`) }},
		{name: "signature not base64", members: func(a *answer) { set(&a.response, "signature", `"a+b/"`) }},
		{name: "authenticatorData not base64", members: func(a *answer) { set(&a.response, "authenticatorData", `"*"`) }},
		{name: "clientDataJSON not base64", members: func(a *answer) { set(&a.response, "clientDataJSON", `"@"`) }},
		{name: "clientDataJSON number", members: func(a *answer) { set(&a.response, "clientDataJSON", `12`) }},
		{name: "signature missing", members: func(a *answer) { drop(&a.response, "signature") }},
		{name: "response missing", members: func(a *answer) { drop(&a.outer, "response") }},
		{name: "response array", members: func(a *answer) { set(&a.outer, "response", `[]`) }},
		{name: "extension appid", members: func(a *answer) { set(&a.outer, "clientExtensionResults", `{"appid":true}`) }},
		{name: "extension unknown", members: func(a *answer) { set(&a.outer, "clientExtensionResults", `{"prf":{}}`) }},
		{name: "extensions null", members: func(a *answer) { set(&a.outer, "clientExtensionResults", `null`) }},
		{name: "attachment number", members: func(a *answer) { set(&a.outer, "authenticatorAttachment", `1`) }},
		{name: "trailing data", body: func(b []byte) []byte { return append(b, "{}"...) }},
		{name: "truncated body", body: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "empty body", body: func([]byte) []byte { return nil }},
		{name: "body array", body: func(b []byte) []byte { return append(append([]byte("["), b...), ']') }},
		{name: "deep nesting", members: func(a *answer) { set(&a.outer, "x", strings.Repeat("[", 40)+strings.Repeat("]", 40)) }},
		{name: "session expired", session: func(s *webauthn.SessionData) { s.Expires = time.Now().Add(-time.Minute) }},
		{name: "session with appid", session: func(s *webauthn.SessionData) { s.Extensions.AppID = "https://example.com/appid" }},
		{name: "session bad challenge", session: func(s *webauthn.SessionData) { s.Challenge = "c2hvcnQ" }},
		{name: "session for another RP id", session: func(s *webauthn.SessionData) { s.RelyingPartyID = "evil.example" }},
		{name: "session for another origin", session: func(s *webauthn.SessionData) { s.Origin = "https://evil.example" }},
		{name: "session for another user", session: func(s *webauthn.SessionData) {
			if len(s.UserID) != 0 {
				s.UserID = []byte("another user")
			}
		}},
		{name: "session allows a credential not the user's", session: func(s *webauthn.SessionData) {
			if len(s.UserID) != 0 {
				s.AllowedCredentialIDs = append(s.AllowedCredentialIDs, []byte("not hers"))
			}
		}},
		{name: "session allows only the other", session: func(s *webauthn.SessionData) {
			if len(s.UserID) != 0 {
				s.AllowedCredentialIDs = s.AllowedCredentialIDs[1:]
			}
		}},
	}
}

// TestFastPathAgrees is the differential test of the fast path: for
// valid answers and for answers tampered with in each part, in a
// discoverable and a username-first ceremony, the fast path accepts
// only what go-webauthn accepts, with the same result, and it accepts
// the ordinary answers (so that it is the path they take);
// FinishLogin's verdict is go-webauthn's.
func TestFastPathAgrees(t *testing.T) {
	f := newFixture(t)
	for _, discoverable := range []bool{true, false} {
		for _, tc := range tampers(f) {
			t.Run(fmt.Sprintf("%s/discoverable=%v", tc.name, discoverable), func(t *testing.T) {
				s := f.session(t, discoverable)
				if tc.session != nil {
					tc.session(s)
				}
				body := f.build(t, s, tc)
				pk := *f.pk
				if tc.stored != nil {
					tc.stored(&pk)
				}
				calls := 0
				lookup := func(handle []byte) (*keycard.User, []*keycard.Passkey, error) {
					calls++
					if string(handle) != f.user.ID {
						return nil, nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "no such user"}
					}
					return f.user, []*keycard.Passkey{&pk, f.pk2}, nil
				}
				// Fresh relying parties, so that no cached key is shared.
				fastRP, libRP := newFixtureRP(t), newFixtureRP(t)
				fast, fastErr := fastRP.fastLogin(s, body, lookup)
				if fastErr != nil && !errors.Is(fastErr, errNotFast) {
					t.Fatalf("fast path error %v does not wrap errNotFast", fastErr)
				}
				if calls > 1 {
					t.Errorf("fast path looked up %d times", calls)
				}
				lib, libErr := libRP.libraryLogin(s, body, lookup)
				if fastErr == nil && libErr != nil {
					t.Fatalf("fast path accepted what go-webauthn refuses: %v", libErr)
				}
				if fastErr == nil && !sameAssertion(fast, lib) {
					t.Fatalf("fast path result %+v, go-webauthn's %+v", fast, lib)
				}
				wantFast := tc.fast && !(discoverable && tc.notDiscoverable)
				if wantFast && fastErr != nil {
					t.Errorf("fast path did not accept an ordinary answer: %v (go-webauthn: %v)", fastErr, libErr)
				}
				if wantFast && libErr != nil {
					t.Errorf("go-webauthn refused an answer the test thinks valid: %v", libErr)
				}
				got, gotErr := fastRP.FinishLogin(mustState(t, s), body, lookup)
				if (gotErr == nil) != (libErr == nil) || gotErr == nil && !sameAssertion(got, lib) {
					t.Errorf("FinishLogin: %+v, %v; go-webauthn: %+v, %v", got, gotErr, lib, libErr)
				}
				if gotErr != nil && keycard.ErrorCode(gotErr) != keycard.ErrorCode(libErr) && !errors.Is(gotErr, libErr) {
					t.Errorf("FinishLogin error %v, go-webauthn path's %v", gotErr, libErr)
				}
				if gotErr != nil {
					if c := keycard.ErrorCode(gotErr); c != keycard.EINVALID && c != keycard.EUNAUTHORIZED && c != keycard.ENOTFOUND {
						t.Errorf("FinishLogin error %v: code %q, want a client error", gotErr, c)
					}
				}
			})
		}
	}
}

func newFixtureRP(t testing.TB) *RelyingParty {
	rp, err := New(Config{RPID: tRPID, Origins: []string{tOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func mustState(t testing.TB, s *webauthn.SessionData) []byte {
	b, err := s.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameAssertion(a, b *auth.PasskeyAssertion) bool {
	return a != nil && b != nil && a.User == b.User && a.Passkey.CredentialID != nil &&
		bytes.Equal(a.Passkey.CredentialID, b.Passkey.CredentialID) && a.SignCount == b.SignCount &&
		a.UserVerified == b.UserVerified && a.BackupEligible == b.BackupEligible && a.BackupState == b.BackupState
}

// TestFallbackEdDSA: a credential of an algorithm the fast path does
// not take (EdDSA here; also ES384, ES512, RS* and PS*, which
// registration accepts) signs in through go-webauthn.
func TestFallbackEdDSA(t *testing.T) {
	f := newFixture(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk := *f.pk
	// COSE_Key: kty OKP, alg EdDSA, crv Ed25519, x.
	pk.PublicKey = append([]byte{0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20}, pub...)
	lookup := func([]byte) (*keycard.User, []*keycard.Passkey, error) { return f.user, []*keycard.Passkey{&pk}, nil }
	for _, tc := range []struct {
		name string
		sign func([]byte) []byte
		ok   bool
	}{
		{"valid", func(m []byte) []byte { return ed25519.Sign(priv, m) }, true},
		{"bad signature", func(m []byte) []byte { s := ed25519.Sign(priv, m); s[3] ^= 1; return s }, false},
	} {
		s := f.session(t, true)
		body := f.build(t, s, tamper{signer: tc.sign})
		if _, err := f.rp.fastLogin(s, body, lookup); !errors.Is(err, errFastKey) {
			t.Errorf("%s: fast path: %v, want errFastKey", tc.name, err)
		}
		a, err := f.rp.FinishLogin(mustState(t, s), body, lookup)
		if tc.ok && (err != nil || a.Passkey != &pk) {
			t.Errorf("%s: FinishLogin: %+v, %v; want the EdDSA passkey", tc.name, a, err)
		}
		if !tc.ok && keycard.ErrorCode(err) != keycard.EUNAUTHORIZED {
			t.Errorf("%s: FinishLogin: %v, want unauthorized", tc.name, err)
		}
	}
}

// TestFastPathLookupError: a failing lookup's error is FinishLogin's,
// as it was with go-webauthn alone, and the store is asked once.
func TestFastPathLookupError(t *testing.T) {
	f := newFixture(t)
	s := f.session(t, true)
	body := f.build(t, s, tamper{})
	boom := errors.New("store down")
	calls := 0
	_, err := f.rp.FinishLogin(mustState(t, s), body, func([]byte) (*keycard.User, []*keycard.Passkey, error) {
		calls++
		return nil, nil, boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("FinishLogin: %v after %d lookups, want the lookup's error after 1", err, calls)
	}
}

// FuzzParseAssertion: the fast path's parser never panics, and what it
// accepts go-webauthn parses to the same values.
func FuzzParseAssertion(f *testing.F) {
	fx := newFixture(f)
	s := fx.session(f, true)
	for _, tc := range tampers(fx) {
		if tc.members != nil || tc.body != nil || tc.clientData != nil || tc.fast {
			f.Add(fx.build(f, s, tc))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, c, err := parseFast(data)
		if err != nil {
			if !errors.Is(err, errNotFast) {
				t.Fatalf("error %v does not wrap errNotFast", err)
			}
			return
		}
		p, err := protocol.ParseCredentialRequestResponseBytes(data)
		if err != nil {
			t.Fatalf("parseFast accepted what go-webauthn refuses: %v", err)
		}
		r := p.Raw.AssertionResponse
		if !bytes.Equal(a.rawID, p.RawID) || !bytes.Equal(a.clientDataJSON, r.ClientDataJSON) ||
			!bytes.Equal(a.authData, r.AuthenticatorData) || !bytes.Equal(a.signature, r.Signature) ||
			!bytes.Equal(a.userHandle, r.UserHandle) {
			t.Fatalf("parseFast read %+v, go-webauthn %+v", a, r)
		}
		cc := p.Response.CollectedClientData
		if string(c.typ) != string(cc.Type) || string(c.challenge) != cc.Challenge || string(c.origin) != cc.Origin || cc.CrossOrigin || cc.TopOrigin != "" {
			t.Fatalf("parseFast read client data %q %q %q, go-webauthn %+v", c.typ, c.challenge, c.origin, cc)
		}
		if !p.ClientExtensionResults.IsZero() {
			t.Fatalf("parseFast accepted client extension results %+v", p.ClientExtensionResults)
		}
	})
}

// FuzzParseES256: parseES256 never panics and accepts only keys
// go-webauthn parses to the same point.
func FuzzParseES256(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(coseES256(&key.PublicKey))
	f.Add(coseES256(&key.PublicKey, -3, -2, -1, 3, 1))
	f.Add(coseES256(&key.PublicKey, 1, 3, -1, -2, -2))
	f.Fuzz(func(t *testing.T, cose []byte) {
		k, err := parseES256(cose)
		if err != nil {
			return
		}
		lib, err := parseLibraryKey(cose)
		if err != nil {
			t.Fatalf("parseES256 accepted a key go-webauthn refuses: %v", err)
		}
		if !k.Equal(lib) {
			t.Fatalf("parseES256 read another key than go-webauthn")
		}
	})
}

// parseLibraryKey is go-webauthn's reading of an EC2 COSE key.
func parseLibraryKey(cose []byte) (*ecdsa.PublicKey, error) {
	k, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(webauthncose.EC2PublicKeyData)
	if !ok {
		return nil, fmt.Errorf("key of type %T", k)
	}
	return ec.ToECDSA()
}
