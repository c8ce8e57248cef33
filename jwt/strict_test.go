package jwt_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// This file holds the claims half of the "Strictness" list of the
// token-core issue (package jose has the header and key half): tables of
// tokens an attacker would send. Each token is written by hand and signed
// with the verifier's own HS256 secret, so that the claim under test is
// the only thing wrong with it, and every table has control cases that
// parse. Each case runs against every form of claims: *AccessClaims,
// *RegisteredClaims, *MapClaims and a caller's struct. The tokens also
// seed FuzzParse.

const (
	// strictSecret is exactly 32 bytes, the shortest HS256 secret allowed.
	strictSecret = "keycard-test-hmac-secret-32bytes"
	strictNow    = 1_800_000_000 // the parsers' clock, in Unix seconds
	strictIss    = "https://auth.example.com"
	strictHeader = `{"alg":"HS256","typ":"JWT"}`
)

func strictClock() time.Time { return time.Unix(strictNow, 0) }

// at returns the NumericDate d seconds from the test clock, as JSON.
func at(d int) string { return strconv.Itoa(strictNow + d) }

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// strictSign returns a compact JWS of header and claims, written exactly as
// given and signed with HMAC-SHA-256 from the standard library.
func strictSign(secret, header, claims string) string {
	return strictSignInput(secret, b64url(header)+"."+b64url(claims))
}

// strictSignInput returns input + "." + base64url(HMAC-SHA-256 of input).
func strictSignInput(secret, input string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func strictKey(t testing.TB) *jose.Key {
	t.Helper()
	k, err := jose.NewHMACKey(jose.HS256, []byte(strictSecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// customClaims is a caller's own claims struct.
type customClaims struct {
	jwt.RegisteredClaims
	Role string         `json:"role,omitempty"`
	Ctx  map[string]any `json:"ctx,omitempty"`
}

// claimForm is one way of receiving claims from Parse.
type claimForm struct {
	name string
	new  func() any // a fresh, zero value
	// prefilled returns a value holding claims from an earlier token.
	prefilled func() any
}

func claimForms() []claimForm {
	return []claimForm{
		{"AccessClaims", func() any { return new(jwt.AccessClaims) }, func() any {
			return &jwt.AccessClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "previous", Audience: jwt.Audience{"previous-api"}}, Roles: []string{"reader"}, Scope: "read"}
		}},
		{"RegisteredClaims", func() any { return new(jwt.RegisteredClaims) }, func() any {
			return &jwt.RegisteredClaims{Subject: "previous", Audience: jwt.Audience{"previous-api"}}
		}},
		{"MapClaims", func() any { return new(jwt.MapClaims) }, func() any {
			return &jwt.MapClaims{"sub": "previous", "role": "reader"}
		}},
		{"custom struct", func() any { return new(customClaims) }, func() any {
			return &customClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "previous"}, Role: "reader"}
		}},
	}
}

// claimCase is one token and the verdict Parse must give it.
type claimCase struct {
	name   string
	header string // strictHeader when empty
	claims string
	token  string // when set, used instead of header and claims
	opts   []jwt.ParserOption
	want   error // nil for a control case, which must parse
}

func (c claimCase) compact() string {
	if c.token != "" {
		return c.token
	}
	h := c.header
	if h == "" {
		h = strictHeader
	}
	return strictSign(strictSecret, h, c.claims)
}

func runClaimCases(t *testing.T, cases []claimCase) {
	t.Helper()
	key := strictKey(t)
	for _, tc := range cases {
		p := jwt.NewParser(key, append([]jwt.ParserOption{jwt.WithNow(strictClock)}, tc.opts...)...)
		tok := tc.compact()
		for _, form := range claimForms() {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				v := form.new()
				err := p.Parse(tok, v)
				if tc.want == nil {
					if err != nil {
						t.Fatalf("control token: got %v, want it to parse", err)
					}
					return
				}
				if !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
				if !reflect.ValueOf(v).Elem().IsZero() {
					t.Errorf("got claims %+v from a rejected token, want the zero value", reflect.ValueOf(v).Elem())
				}
			})
		}
	}
}

// allClaimCases returns every table; FuzzParse uses them as seeds.
func allClaimCases() []claimCase {
	var all []claimCase
	for _, group := range []func() []claimCase{
		sizeCases, utf8Cases, notObjectCases, duplicateCases, caseVariantCases, numericDateCases,
		timeCases, issuerCases, audienceCases, typeCases, requiredCases, lifetimeCases,
	} {
		all = append(all, group()...)
	}
	return all
}

// The size cap, 8 KiB by default or set by WithMaxSize, is checked before
// any decoding.
func sizeCases() []claimCase {
	nineKiB := strictSign(strictSecret, strictHeader, `{"exp":`+at(600)+`,"pad":"`+strings.Repeat("x", 6850)+`"}`)
	small := strictSign(strictSecret, strictHeader, `{"exp":`+at(600)+`}`)
	return []claimCase{
		{name: "9 KiB token", token: nineKiB, want: jwt.ErrTooLarge},
		{name: "control: 9 KiB token, WithMaxSize 16 KiB", token: nineKiB, opts: []jwt.ParserOption{jwt.WithMaxSize(16 << 10)}},
		{name: "9 KiB of non-base64url bytes", token: strings.Repeat("!", 9<<10), want: jwt.ErrTooLarge},
		{name: "small token, WithMaxSize 64", token: small, opts: []jwt.ParserOption{jwt.WithMaxSize(64)}, want: jwt.ErrTooLarge},
		{name: "control: small token, WithMaxSize of its length", token: small, opts: []jwt.ParserOption{jwt.WithMaxSize(len(small))}},
		{name: "9 KiB token, WithMaxSize 9000", token: nineKiB, opts: []jwt.ParserOption{jwt.WithMaxSize(9000)}, want: jwt.ErrTooLarge},
	}
}

// Claims are valid UTF-8 (I-JSON, RFC 7493).
func utf8Cases() []claimCase {
	e := `,"exp":` + at(600) + `}`
	return []claimCase{
		{name: "control: multi-byte sub", claims: `{"sub":"ü-🔑"` + e},
		{name: "control: escaped surrogate pair", claims: `{"sub":"\ud83d\udd11"` + e},
		{name: "sub with byte 0xFF", claims: `{"sub":"` + "\xff" + `"` + e, want: jwt.ErrInvalidClaim},
		{name: "sub with an overlong '/' (C0 AF)", claims: `{"sub":"` + "\xc0\xaf" + `"` + e, want: jwt.ErrInvalidClaim},
		{name: "sub with an encoded surrogate (ED A0 80)", claims: `{"sub":"` + "\xed\xa0\x80" + `"` + e, want: jwt.ErrInvalidClaim},
		{name: "iss with a truncated sequence", claims: `{"iss":"x` + "\xe2\x82" + `"` + e, want: jwt.ErrInvalidClaim},
		{name: "claim name with byte 0xFE", claims: `{"` + "\xfe" + `":1` + e, want: jwt.ErrInvalidClaim},
		{name: "lone surrogate escape in sub", claims: `{"sub":"\ud800"` + e, want: jwt.ErrInvalidClaim},
		{name: "invalid UTF-8 in the aud array", claims: `{"aud":["api","` + "\xff" + `"]` + e, want: jwt.ErrInvalidClaim},
		{name: "invalid UTF-8 in a nested claim", claims: `{"ctx":{"k":"` + "\xff" + `"}` + e, want: jwt.ErrInvalidClaim},
	}
}

// deepClaims returns claims whose total nesting, counting the claims
// object itself, is levels.
func deepClaims(levels int) string {
	return `{"exp":` + at(600) + `,"deep":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`
}

// The claims set is one strict JSON object.
func notObjectCases() []claimCase {
	e := at(600)
	return []claimCase{
		{name: "control: whitespace around the object", claims: " {\"exp\" : " + e + "}\n"},
		{name: "control: nesting of exactly MaxJSONDepth", claims: deepClaims(jose.MaxJSONDepth)},
		{name: "nesting deeper than MaxJSONDepth", claims: deepClaims(jose.MaxJSONDepth + 1), want: jwt.ErrInvalidClaim},
		{name: "nesting far deeper than MaxJSONDepth", claims: deepClaims(2000), want: jwt.ErrInvalidClaim},
		{name: "array", claims: `[{"exp":` + e + `}]`, want: jwt.ErrInvalidClaim},
		{name: "empty array", claims: `[]`, want: jwt.ErrInvalidClaim},
		{name: "string", claims: `"{\"exp\":` + e + `}"`, want: jwt.ErrInvalidClaim},
		{name: "number", claims: e, want: jwt.ErrInvalidClaim},
		{name: "null", claims: `null`, want: jwt.ErrInvalidClaim},
		{name: "true", claims: `true`, want: jwt.ErrInvalidClaim},
		{name: "empty payload", claims: ``, want: jwt.ErrInvalidClaim},
		{name: "trailing garbage", claims: `{"exp":` + e + `}x`, want: jwt.ErrInvalidClaim},
		{name: "two objects", claims: `{"exp":` + e + `}{"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "trailing comma", claims: `{"exp":` + e + `,}`, want: jwt.ErrInvalidClaim},
		{name: "NUL after the object", claims: `{"exp":` + e + `}` + "\x00", want: jwt.ErrInvalidClaim},
		{name: "byte order mark", claims: "\ufeff" + `{"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "single quotes", claims: `{'exp':` + e + `}`, want: jwt.ErrInvalidClaim},
	}
}

// Duplicate claim names are rejected, after unescaping and at every depth.
// The issue reports that golang-jwt v5 accepts a duplicated "sub" (the
// second one wins) and that jwx accepts duplicated claims.
func duplicateCases() []claimCase {
	e := at(600)
	return []claimCase{
		{name: "control: the same name in sibling objects", claims: `{"exp":` + e + `,"ctx":{"a":{"x":1},"b":{"x":2}}}`},
		{name: "sub twice", claims: `{"sub":"alice","sub":"admin","exp":` + e + `}`, want: jose.ErrDuplicateMember},
		{name: "sub twice through an escape", claims: `{"sub":"alice","s\u0075b":"admin","exp":` + e + `}`, want: jose.ErrDuplicateMember},
		{name: "exp twice, the first expired", claims: `{"exp":1,"exp":` + e + `}`, want: jose.ErrDuplicateMember},
		{name: "exp twice, the second expired", claims: `{"exp":` + e + `,"exp":1}`, want: jose.ErrDuplicateMember},
		{name: "aud twice", claims: `{"aud":"other","aud":"api","exp":` + e + `}`, want: jose.ErrDuplicateMember},
		{name: "iss twice", claims: `{"iss":"https://evil.example","iss":"` + strictIss + `","exp":` + e + `}`, opts: []jwt.ParserOption{jwt.WithIssuer(strictIss)}, want: jose.ErrDuplicateMember},
		{name: "custom claim twice", claims: `{"role":"user","role":"admin","exp":` + e + `}`, want: jose.ErrDuplicateMember},
		{name: "duplicate in a nested object", claims: `{"exp":` + e + `,"ctx":{"role":"user","role":"admin"}}`, want: jose.ErrDuplicateMember},
		{name: "duplicate through an escape in a nested object", claims: `{"exp":` + e + `,"ctx":{"role":"user","r\u006fle":"admin"}}`, want: jose.ErrDuplicateMember},
		{name: "duplicate in an object in an array", claims: `{"exp":` + e + `,"ctx":{"list":[{"a":1,"a":2}]}}`, want: jose.ErrDuplicateMember},
	}
}

// Case variants of registered claim names are rejected: encoding/json,
// which most Go JWT libraries decode with, matches names
// case-insensitively. The issue reports that golang-jwt v5 accepts a
// case-variant "ISS".
func caseVariantCases() []claimCase {
	e := at(600)
	iss := []jwt.ParserOption{jwt.WithIssuer(strictIss)}
	return []claimCase{
		{name: "control: unregistered name in upper case", claims: `{"Foo":1,"exp":` + e + `}`},
		{name: "ISS alone, WithIssuer", claims: `{"ISS":"` + strictIss + `","exp":` + e + `}`, opts: iss, want: jwt.ErrInvalidClaim},
		{name: "ISS alone, no issuer check", claims: `{"ISS":"` + strictIss + `","exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "iss then ISS", claims: `{"iss":"https://evil.example","ISS":"` + strictIss + `","exp":` + e + `}`, opts: iss, want: jose.ErrDuplicateMember},
		{name: "ISS then iss", claims: `{"ISS":"https://evil.example","iss":"` + strictIss + `","exp":` + e + `}`, opts: iss, want: jwt.ErrInvalidClaim},
		{name: "ISS through an escape", claims: `{"\u0049SS":"` + strictIss + `","exp":` + e + `}`, opts: iss, want: jwt.ErrInvalidClaim},
		{name: "Exp alone", claims: `{"Exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "EXP beside exp", claims: `{"exp":` + e + `,"EXP":1}`, want: jose.ErrDuplicateMember},
		{name: "AUD", claims: `{"AUD":"api","exp":` + e + `}`, opts: []jwt.ParserOption{jwt.WithAudience("api")}, want: jwt.ErrInvalidClaim},
		{name: "Sub", claims: `{"Sub":"admin","exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "NBF", claims: `{"NBF":` + at(3600) + `,"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "Scope", claims: `{"Scope":"admin","exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "Roles", claims: `{"Roles":["admin"],"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "SCP", claims: `{"SCP":["admin"],"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "Scopes", claims: `{"Scopes":["admin"],"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "ACR", claims: `{"ACR":"mfa","exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "Amr", claims: `{"Amr":["mfa"],"exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		// encoding/json folds Unicode too: U+017F LATIN SMALL LETTER LONG S
		// matches "s".
		{name: "sub with a long s (U+017F)", claims: `{"ſub":"admin","exp":` + e + `}`, want: jwt.ErrInvalidClaim},
		{name: "iss with an escaped long s", claims: `{"i\u017fs":"` + strictIss + `","exp":` + e + `}`, opts: iss, want: jwt.ErrInvalidClaim},
		{name: "sub then a long-s sub", claims: `{"sub":"alice","ſub":"admin","exp":` + e + `}`, want: jose.ErrDuplicateMember},
	}
}

// NumericDate is a JSON number between 0 and the end of year 9999.
func numericDateCases() []claimCase {
	var out []claimCase
	for _, v := range []struct{ name, value string }{
		{"a string", `"` + at(600) + `"`},
		{"a string in exponent form", `"1.8e9"`},
		{"negative", `-1`},
		{"far negative", `-` + at(600)},
		{"after year 9999", `253402300800`},
		{"1e12", `1e12`},
		{"1e400", `1e400`},
		{"-1e400", `-1e400`},
		{"true", `true`},
		{"false", `false`},
		{"null", `null`},
		{"an array", `[` + at(600) + `]`},
		{"an object", `{}`},
	} {
		out = append(out,
			claimCase{name: "exp " + v.name, claims: `{"exp":` + v.value + `}`, want: jwt.ErrInvalidClaim},
			claimCase{name: "nbf " + v.name, claims: `{"exp":` + at(600) + `,"nbf":` + v.value + `}`, want: jwt.ErrInvalidClaim},
			claimCase{name: "iat " + v.name, claims: `{"exp":` + at(600) + `,"iat":` + v.value + `}`, want: jwt.ErrInvalidClaim},
		)
	}
	return append(out,
		claimCase{name: "control: exp with a fraction", claims: `{"exp":` + at(600) + `.5}`},
		claimCase{name: "control: exp in exponent form", claims: `{"exp":1.8000006e9}`},
		claimCase{name: "control: exp at the end of year 9999", claims: `{"exp":253402300799}`},
	)
}

// exp is required by default and checked with a 30 s leeway, as are nbf
// and iat. The issue reports that go-jose accepts a token without "exp"
// by default.
func timeCases() []claimCase {
	noLeeway := []jwt.ParserOption{jwt.WithLeeway(0)}
	return []claimCase{
		{name: "exp missing", claims: `{"sub":"alice"}`, want: jwt.ErrMissingClaim},
		{name: "control: exp missing, WithoutExpiration", claims: `{"sub":"alice"}`, opts: []jwt.ParserOption{jwt.WithoutExpiration()}},
		{name: "exp an hour ago, WithoutExpiration", claims: `{"exp":` + at(-3600) + `}`, opts: []jwt.ParserOption{jwt.WithoutExpiration()}, want: jwt.ErrTokenExpired},
		{name: "exp 31 s ago", claims: `{"exp":` + at(-31) + `}`, want: jwt.ErrTokenExpired},
		{name: "exp exactly the 30 s leeway ago", claims: `{"exp":` + at(-30) + `}`, want: jwt.ErrTokenExpired},
		{name: "control: exp 29 s ago, within the leeway", claims: `{"exp":` + at(-29) + `}`},
		{name: "control: exp now, within the leeway", claims: `{"exp":` + at(0) + `}`},
		{name: "exp now, WithLeeway 0", claims: `{"exp":` + at(0) + `}`, opts: noLeeway, want: jwt.ErrTokenExpired},
		{name: "control: exp in 1 s, WithLeeway 0", claims: `{"exp":` + at(1) + `}`, opts: noLeeway},
		{name: "exp 0, the epoch", claims: `{"exp":0}`, want: jwt.ErrTokenExpired},
		{name: "exp 2 h ago, WithLeeway 1 h", claims: `{"exp":` + at(-7200) + `}`, opts: []jwt.ParserOption{jwt.WithLeeway(time.Hour)}, want: jwt.ErrTokenExpired},
		{name: "nbf 31 s ahead", claims: `{"exp":` + at(600) + `,"nbf":` + at(31) + `}`, want: jwt.ErrTokenNotValidYet},
		{name: "control: nbf 29 s ahead, within the leeway", claims: `{"exp":` + at(600) + `,"nbf":` + at(29) + `}`},
		{name: "nbf 1 s ahead, WithLeeway 0", claims: `{"exp":` + at(600) + `,"nbf":` + at(1) + `}`, opts: noLeeway, want: jwt.ErrTokenNotValidYet},
		{name: "iat 31 s ahead", claims: `{"exp":` + at(600) + `,"iat":` + at(31) + `}`, want: jwt.ErrTokenUsedBeforeIssued},
		{name: "iat a year ahead", claims: `{"exp":` + at(400*86400) + `,"iat":` + at(365*86400) + `}`, want: jwt.ErrTokenUsedBeforeIssued},
		{name: "control: iat 29 s ahead, within the leeway", claims: `{"exp":` + at(600) + `,"iat":` + at(29) + `}`},
	}
}

// iss matches exactly.
func issuerCases() []claimCase {
	e := `,"exp":` + at(600) + `}`
	iss := []jwt.ParserOption{jwt.WithIssuer(strictIss)}
	var out []claimCase
	for _, v := range []struct {
		name, claims string
		want         error
	}{
		{"control: exact", `{"iss":"` + strictIss + `"` + e, nil},
		{"trailing slash", `{"iss":"` + strictIss + `/"` + e, jwt.ErrInvalidIssuer},
		{"upper-case host", `{"iss":"https://AUTH.example.com"` + e, jwt.ErrInvalidIssuer},
		{"http scheme", `{"iss":"http://auth.example.com"` + e, jwt.ErrInvalidIssuer},
		{"prefix of the issuer", `{"iss":"https://auth.example.co"` + e, jwt.ErrInvalidIssuer},
		{"issuer as a prefix", `{"iss":"https://auth.example.com.evil.example"` + e, jwt.ErrInvalidIssuer},
		{"trailing space", `{"iss":"` + strictIss + ` "` + e, jwt.ErrInvalidIssuer},
		{"empty", `{"iss":""` + e, jwt.ErrInvalidIssuer},
		{"missing", `{"sub":"alice"` + e, jwt.ErrInvalidIssuer},
		{"an array", `{"iss":["` + strictIss + `"]` + e, jwt.ErrInvalidClaim},
		{"a number", `{"iss":1` + e, jwt.ErrInvalidClaim},
		{"null", `{"iss":null` + e, jwt.ErrInvalidClaim},
	} {
		out = append(out, claimCase{name: "iss " + v.name, claims: v.claims, opts: iss, want: v.want})
	}
	return out
}

// aud is a string or an array of strings, matched element by element and
// exactly.
func audienceCases() []claimCase {
	e := `,"exp":` + at(600) + `}`
	aud := []jwt.ParserOption{jwt.WithAudience("api")}
	var out []claimCase
	for _, v := range []struct {
		name, value string
		want        error
	}{
		{"control: the string", `"api"`, nil},
		{"control: an array of it", `["api"]`, nil},
		{"control: an array containing it", `["web","api"]`, nil},
		{"a longer string", `"api2"`, jwt.ErrInvalidAudience},
		{"a prefix", `"ap"`, jwt.ErrInvalidAudience},
		{"containing it", `"https://api"`, jwt.ErrInvalidAudience},
		{"space-separated list", `"web api"`, jwt.ErrInvalidAudience},
		{"upper case", `"API"`, jwt.ErrInvalidAudience},
		{"trailing space", `"api "`, jwt.ErrInvalidAudience},
		{"an array with a longer element", `["apis"]`, jwt.ErrInvalidAudience},
		{"an array with a prefix", `["ap","i"]`, jwt.ErrInvalidAudience},
		{"an array without it", `["web"]`, jwt.ErrInvalidAudience},
		{"an empty array", `[]`, jwt.ErrInvalidAudience},
		{"empty", `""`, jwt.ErrInvalidAudience},
		{"a number", `1`, jwt.ErrInvalidClaim},
		{"null", `null`, jwt.ErrInvalidClaim},
		{"an object", `{"api":true}`, jwt.ErrInvalidClaim},
		{"an array of a number", `[1]`, jwt.ErrInvalidClaim},
		{"an array with it and a number", `["api",1]`, jwt.ErrInvalidClaim},
		{"a nested array", `[["api"]]`, jwt.ErrInvalidClaim},
	} {
		out = append(out, claimCase{name: "aud " + v.name, claims: `{"aud":` + v.value + e, opts: aud, want: v.want})
	}
	return append(out, claimCase{name: "aud missing", claims: `{"sub":"alice"` + e, opts: aud, want: jwt.ErrInvalidAudience})
}

// The header typ matches exactly.
func typeCases() []claimCase {
	claims := `{"exp":` + at(600) + `}`
	typ := []jwt.ParserOption{jwt.WithType("at+jwt")}
	var out []claimCase
	for _, v := range []struct {
		name, header string
		want         error
	}{
		{"control: at+jwt", `{"alg":"HS256","typ":"at+jwt"}`, nil},
		{"JWT", `{"alg":"HS256","typ":"JWT"}`, jwt.ErrInvalidType},
		{"AT+JWT", `{"alg":"HS256","typ":"AT+JWT"}`, jwt.ErrInvalidType},
		{"application/at+jwt", `{"alg":"HS256","typ":"application/at+jwt"}`, jwt.ErrInvalidType},
		{"at+jwt with a trailing space", `{"alg":"HS256","typ":"at+jwt "}`, jwt.ErrInvalidType},
		{"missing", `{"alg":"HS256"}`, jwt.ErrInvalidType},
		{"empty", `{"alg":"HS256","typ":""}`, jwt.ErrInvalidType},
		{"not a string", `{"alg":"HS256","typ":["at+jwt"]}`, jwt.ErrMalformed},
		{"case-variant name", `{"alg":"HS256","TYP":"at+jwt"}`, jwt.ErrMalformed},
		{"twice", `{"alg":"HS256","typ":"JWT","typ":"at+jwt"}`, jose.ErrDuplicateMember},
	} {
		out = append(out, claimCase{name: "typ " + v.name, header: v.header, claims: claims, opts: typ, want: v.want})
	}
	return out
}

// WithRequired names top-level claims that must be present.
func requiredCases() []claimCase {
	e := `"exp":` + at(600) + `}`
	req := []jwt.ParserOption{jwt.WithRequired("sub", "jti")}
	custom := []jwt.ParserOption{jwt.WithRequired("tenant")}
	return []claimCase{
		{name: "control: sub and jti present", claims: `{"sub":"alice","jti":"j1",` + e, opts: req},
		{name: "jti missing", claims: `{"sub":"alice",` + e, opts: req, want: jwt.ErrMissingClaim},
		{name: "sub and jti missing", claims: `{` + e, opts: req, want: jwt.ErrMissingClaim},
		{name: "JTI for jti", claims: `{"sub":"alice","JTI":"j1",` + e, opts: req, want: jwt.ErrInvalidClaim},
		{name: "jti null", claims: `{"sub":"alice","jti":null,` + e, opts: req, want: jwt.ErrInvalidClaim},
		{name: "jti only inside a nested object", claims: `{"sub":"alice","ctx":{"jti":"j1"},` + e, opts: req, want: jwt.ErrMissingClaim},
		{name: "control: custom claim tenant present", claims: `{"tenant":"acme",` + e, opts: custom},
		{name: "custom claim tenant missing", claims: `{` + e, opts: custom, want: jwt.ErrMissingClaim},
		{name: "custom claim Tenant for tenant", claims: `{"Tenant":"acme",` + e, opts: custom, want: jwt.ErrMissingClaim},
	}
}

// WithMaxLifetime requires iat and bounds exp - iat.
func lifetimeCases() []claimCase {
	hour := []jwt.ParserOption{jwt.WithMaxLifetime(time.Hour)}
	return []claimCase{
		{name: "control: lifetime exactly the maximum", claims: `{"iat":` + at(0) + `,"exp":` + at(3600) + `}`, opts: hour},
		{name: "lifetime one second over", claims: `{"iat":` + at(0) + `,"exp":` + at(3601) + `}`, opts: hour, want: jwt.ErrLifetimeTooLong},
		{name: "issued long ago, expiring soon", claims: `{"iat":` + at(-7200) + `,"exp":` + at(600) + `}`, opts: hour, want: jwt.ErrLifetimeTooLong},
		{name: "iat missing", claims: `{"exp":` + at(600) + `}`, opts: hour, want: jwt.ErrMissingClaim},
	}
}

func TestStrictSizeCap(t *testing.T)           { runClaimCases(t, sizeCases()) }
func TestStrictClaimsUTF8(t *testing.T)        { runClaimCases(t, utf8Cases()) }
func TestStrictClaimsObject(t *testing.T)      { runClaimCases(t, notObjectCases()) }
func TestStrictDuplicateClaims(t *testing.T)   { runClaimCases(t, duplicateCases()) }
func TestStrictCaseVariantClaims(t *testing.T) { runClaimCases(t, caseVariantCases()) }
func TestStrictNumericDate(t *testing.T)       { runClaimCases(t, numericDateCases()) }
func TestStrictTimes(t *testing.T)             { runClaimCases(t, timeCases()) }
func TestStrictIssuer(t *testing.T)            { runClaimCases(t, issuerCases()) }
func TestStrictAudience(t *testing.T)          { runClaimCases(t, audienceCases()) }
func TestStrictType(t *testing.T)              { runClaimCases(t, typeCases()) }
func TestStrictRequired(t *testing.T)          { runClaimCases(t, requiredCases()) }
func TestStrictMaxLifetime(t *testing.T)       { runClaimCases(t, lifetimeCases()) }

// malloryClaims are claims an attacker wants read; none of their values may
// ever reach the caller's claims value.
const malloryClaims = `{"iss":"https://auth.example.com","sub":"mallory","aud":"api","role":"admin","roles":["admin"],"scope":"admin","exp":1800000600}`

// No claim is used before the signature is verified: when verification
// fails, the caller's claims value is exactly as it was.
func TestStrictNoClaimsBeforeVerification(t *testing.T) {
	key := strictKey(t)
	k1, err := key.WithKeyID("k1")
	if err != nil {
		t.Fatal(err)
	}
	set, err := jose.NewKeySet(k1)
	if err != nil {
		t.Fatal(err)
	}
	valid := strictSign(strictSecret, strictHeader, `{"sub":"alice","exp":`+at(600)+`}`)
	forged := strictSign("attacker-chosen-hmac-secret-32by", strictHeader, malloryClaims)
	segs := strings.Split(forged, ".")
	fh, fp := segs[0], segs[1]
	vsig := valid[strings.LastIndexByte(valid, '.')+1:]
	rawSig, err := base64.RawURLEncoding.DecodeString(segs[2])
	if err != nil {
		t.Fatal(err)
	}
	short := fh + "." + fp + "." + base64.RawURLEncoding.EncodeToString(rawSig[:len(rawSig)-1])
	none := b64url(`{"alg":"none"}`) + "." + b64url(malloryClaims)
	cases := []struct {
		name  string
		token string
		keys  jose.KeyResolver // the HS256 key without kid when nil
		opts  []jwt.ParserOption
		want  error
	}{
		{"signed with another secret", forged, nil, nil, jwt.ErrSignatureInvalid},
		{"another token's signature", fh + "." + fp + "." + vsig, nil, nil, jwt.ErrSignatureInvalid},
		{"signature one byte short", short, nil, nil, jwt.ErrSignatureInvalid},
		{"alg none, no signature", none + ".", nil, nil, jwt.ErrMalformed},
		{"alg none, a signature", none + "." + vsig, nil, nil, jwt.ErrUnsupportedAlgorithm},
		{"alg ES256", strictSign(strictSecret, `{"alg":"ES256"}`, malloryClaims), nil, nil, jwt.ErrAlgorithmMismatch},
		{"alg outside WithAlgorithms", strictSign(strictSecret, strictHeader, malloryClaims), nil, []jwt.ParserOption{jwt.WithAlgorithms(jose.HS384)}, jwt.ErrAlgorithmMismatch},
		{"kid of no key in the set", strictSign(strictSecret, `{"alg":"HS256","kid":"k9"}`, malloryClaims), set, nil, jwt.ErrKeyNotFound},
		{"padded payload", fh + "." + fp + "==." + vsig, nil, nil, jwt.ErrMalformed},
		{"9 KiB", strictSign(strictSecret, strictHeader, `{"sub":"mallory","pad":"`+strings.Repeat("x", 7000)+`"}`), nil, nil, jwt.ErrTooLarge},
		// typ is checked on the verified header, before any claim is read.
		{"wrong typ", strictSign(strictSecret, strictHeader, malloryClaims), nil, []jwt.ParserOption{jwt.WithType("at+jwt")}, jwt.ErrInvalidType},
	}
	for _, tc := range cases {
		keys := tc.keys
		if keys == nil {
			keys = key
		}
		p := jwt.NewParser(keys, append([]jwt.ParserOption{jwt.WithNow(strictClock)}, tc.opts...)...)
		for _, form := range claimForms() {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				v := form.prefilled()
				err := p.Parse(tc.token, v)
				if !errors.Is(err, tc.want) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
				if want := form.prefilled(); !reflect.DeepEqual(v, want) {
					t.Errorf("claims after a rejected token: got %+v, want them untouched: %+v", v, want)
				}
				if _, err := p.ParseWithHeader(tc.token, nil); !errors.Is(err, tc.want) {
					t.Errorf("ParseWithHeader: got %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// When the signature verifies but the claims do not validate, the caller's
// claims value is zeroed: nothing from the rejected token, and nothing
// left from an earlier one.
func TestStrictClaimsZeroedOnInvalidClaims(t *testing.T) {
	key := strictKey(t)
	cases := []struct {
		name   string
		claims string
		opts   []jwt.ParserOption
		want   error
	}{
		{"expired", strings.Replace(malloryClaims, at(600), at(-3600), 1), nil, jwt.ErrTokenExpired},
		{"not yet valid", strings.Replace(malloryClaims, "}", `,"nbf":`+at(3600)+`}`, 1), nil, jwt.ErrTokenNotValidYet},
		{"issued in the future", strings.Replace(malloryClaims, "}", `,"iat":`+at(3600)+`}`, 1), nil, jwt.ErrTokenUsedBeforeIssued},
		{"wrong issuer", malloryClaims, []jwt.ParserOption{jwt.WithIssuer("https://other.example")}, jwt.ErrInvalidIssuer},
		{"wrong audience", malloryClaims, []jwt.ParserOption{jwt.WithAudience("other")}, jwt.ErrInvalidAudience},
		{"required claim missing", malloryClaims, []jwt.ParserOption{jwt.WithRequired("jti")}, jwt.ErrMissingClaim},
		{"lifetime too long", strings.Replace(malloryClaims, "}", `,"iat":`+at(-86400)+`}`, 1), []jwt.ParserOption{jwt.WithMaxLifetime(time.Hour)}, jwt.ErrLifetimeTooLong},
		{"exp missing", strings.Replace(malloryClaims, `,"exp":`+at(600), "", 1), nil, jwt.ErrMissingClaim},
		{"exp a string", strings.Replace(malloryClaims, at(600), `"`+at(600)+`"`, 1), nil, jwt.ErrInvalidClaim},
		{"duplicate sub", strings.Replace(malloryClaims, "}", `,"sub":"admin"}`, 1), nil, jose.ErrDuplicateMember},
	}
	for _, tc := range cases {
		p := jwt.NewParser(key, append([]jwt.ParserOption{jwt.WithNow(strictClock)}, tc.opts...)...)
		tok := strictSign(strictSecret, strictHeader, tc.claims)
		for _, form := range claimForms() {
			t.Run(tc.name+"/"+form.name, func(t *testing.T) {
				v := form.prefilled()
				err := p.Parse(tok, v)
				if !errors.Is(err, tc.want) || !errors.Is(err, jwt.ErrInvalidClaims) {
					t.Errorf("got %v, want %v (an ErrInvalidClaims)", err, tc.want)
				}
				if e := reflect.ValueOf(v).Elem(); !e.IsZero() {
					t.Errorf("claims after a rejected token: got %+v, want the zero value", e)
				}
			})
		}
	}
}

// A claims value reused for a second token holds that token's claims
// alone: nothing the first token carried and the second does not survives.
func TestStrictReusedClaimsValue(t *testing.T) {
	p := jwt.NewParser(strictKey(t), jwt.WithNow(strictClock))
	first := strictSign(strictSecret, strictHeader, `{"sub":"alice","aud":["api","admin-api"],"role":"admin","roles":["admin"],"scope":"admin","sid":"s1","acr":"mfa","amr":["pwd","otp","mfa"],"ctx":{"a":1},"exp":`+at(600)+`}`)
	second := strictSign(strictSecret, strictHeader, `{"sub":"bob","exp":`+at(600)+`}`)
	for _, form := range claimForms() {
		t.Run(form.name, func(t *testing.T) {
			reused := form.new()
			if err := p.Parse(first, reused); err != nil {
				t.Fatal(err)
			}
			if err := p.Parse(second, reused); err != nil {
				t.Fatal(err)
			}
			fresh := form.new()
			if err := p.Parse(second, fresh); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(reused)
			want, _ := json.Marshal(fresh)
			if string(got) != string(want) {
				t.Errorf("reused value: got %s, want %s", got, want)
			}
		})
	}
}

// TestStrictScopeArrays checks the types of the array forms of scopes
// that AccessClaims reads (scp, scopes), and of acr and amr: a wrong type is a malformed
// claim, and nothing of the token is handed back.
func TestStrictScopeArrays(t *testing.T) {
	key := strictKey(t)
	p := jwt.NewParser(key, jwt.WithNow(strictClock))
	e := at(600)
	for _, c := range []struct{ name, claims string }{
		{"scp as a string", `{"scp":"admin","exp":` + e + `}`},
		{"scopes with a number", `{"scopes":["read",1],"exp":` + e + `}`},
		{"scp as an object", `{"scp":{"a":"b"},"exp":` + e + `}`},
		{"scopes null", `{"scopes":null,"exp":` + e + `}`},
		{"amr as a string", `{"amr":"mfa","exp":` + e + `}`},
		{"amr with a number", `{"amr":["pwd",1],"exp":` + e + `}`},
		{"acr as an array", `{"acr":["mfa"],"exp":` + e + `}`},
		{"acr as a number", `{"acr":1,"exp":` + e + `}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := &jwt.AccessClaims{Scp: []string{"previous"}}
			err := p.Parse(strictSign(strictSecret, strictHeader, c.claims), got)
			if !errors.Is(err, jwt.ErrInvalidClaim) {
				t.Errorf("got %v, want %v", err, jwt.ErrInvalidClaim)
			}
			if !reflect.ValueOf(got).Elem().IsZero() {
				t.Errorf("got claims %+v from a rejected token", got)
			}
		})
	}
}
