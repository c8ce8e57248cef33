package jwt

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// NumericDate is a JWT NumericDate (RFC 7519 section 2): seconds since the
// Unix epoch. The zero value means the claim is absent.
type NumericDate struct {
	time.Time
}

// maxNumericDate is 9999-12-31T23:59:59Z: later dates are refused.
const maxNumericDate = 253402300799

// NewNumericDate returns t as a NumericDate truncated to whole seconds.
func NewNumericDate(t time.Time) NumericDate {
	return NumericDate{time.Unix(t.Unix(), 0)}
}

// MarshalJSON encodes the date as an integer number of seconds.
func (d NumericDate) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, d.Unix(), 10), nil
}

// UnmarshalJSON accepts a JSON number between 0 and the end of year 9999;
// strings, negative and out-of-range numbers are refused.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	t, err := parseNumericDate(b)
	if err != nil {
		return err
	}
	d.Time = t
	return nil
}

func parseNumericDate(b []byte) (time.Time, error) {
	// Fast path: a plain non-negative integer.
	var n int64
	i := 0
	for ; i < len(b) && i < 12 && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == len(b) && i > 0 && (b[0] != '0' || len(b) == 1) {
		if n > maxNumericDate {
			return time.Time{}, fmt.Errorf("%w: NumericDate out of range", ErrInvalidClaim)
		}
		return time.Unix(n, 0), nil
	}
	if len(b) == 0 || !(b[0] == '-' || (b[0] >= '0' && b[0] <= '9')) {
		return time.Time{}, fmt.Errorf("%w: NumericDate must be a JSON number", ErrInvalidClaim)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%w: NumericDate out of range", ErrInvalidClaim)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// Audience is the "aud" claim (RFC 7519 section 4.1.3): one or more
// strings. It decodes from a string or an array and encodes a single
// audience as a string.
type Audience []string

// MarshalJSON encodes one audience as a string and several as an array.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	return a.decode(b, false)
}

func (a *Audience) decode(b []byte, plain bool) error {
	if len(b) > 0 && b[0] == '"' {
		s, err := b, error(nil)
		if plain {
			s = b[1 : len(b)-1]
		} else if s, err = jsonscan.Unquote(b); err != nil {
			return fmt.Errorf("%w: aud", ErrInvalidClaim)
		}
		*a = setStrings(*a, 1)
		setString(&(*a)[0], s)
		return nil
	}
	list, err := decodeStrings([]string(*a), b)
	if err != nil {
		return fmt.Errorf("%w: aud must be a string or an array of strings", ErrInvalidClaim)
	}
	*a = list
	return nil
}

// Contains reports whether aud is one of the audiences, compared exactly.
func (a Audience) Contains(aud string) bool {
	for _, x := range a {
		if x == aud {
			return true
		}
	}
	return false
}

// RegisteredClaims are the claims registered by RFC 7519 section 4.1.
// Embed it in a struct of your own to add claims.
type RegisteredClaims struct {
	Issuer    string      `json:"iss,omitempty"`
	Subject   string      `json:"sub,omitempty"`
	Audience  Audience    `json:"aud,omitempty"`
	ExpiresAt NumericDate `json:"exp,omitzero"`
	NotBefore NumericDate `json:"nbf,omitzero"`
	IssuedAt  NumericDate `json:"iat,omitzero"`
	ID        string      `json:"jti,omitempty"`
}

// Registered returns c itself; it lets a struct that embeds
// RegisteredClaims hand them over.
func (c *RegisteredClaims) Registered() *RegisteredClaims { return c }

// AccessClaims is the access-token profile of RFC 9068 as Keycard issues
// it: the registered claims plus the session, client, scopes, roles, and
// the time and strength of authentication. Parsing into an *AccessClaims that is reused
// across calls does not allocate when the values repeat.
type AccessClaims struct {
	RegisteredClaims
	SessionID string      `json:"sid,omitempty"`       // session the token belongs to
	ClientID  string      `json:"client_id,omitempty"` // RFC 9068 section 2.2
	Scope     string      `json:"scope,omitempty"`     // space-separated (RFC 8693 section 4.2)
	Roles     []string    `json:"roles,omitempty"`     // RFC 9068 section 2.2.3.1
	AuthTime  NumericDate `json:"auth_time,omitzero"`  // when the user authenticated
	// ACR is the authentication context class of the user's sign-in
	// (OpenID Connect Core section 2, RFC 9470 section 3): Keycard
	// issues "pwd" for a password alone and "mfa" for a sign-in with a
	// second factor. Empty for a token without a user.
	ACR string `json:"acr,omitempty"`
	// AMR lists the authentication methods of the sign-in (RFC 8176:
	// "pwd", "otp", "hwk", "swk", "mfa", "fed", …).
	AMR []string `json:"amr,omitempty"`
	// Scp and Scopes are scopes as arrays of strings, as some issuers
	// (Azure AD, Okta, Ory) send them; Keycard issues Scope. Readers
	// that check scopes should accept all three (verifier does).
	Scp    []string `json:"scp,omitempty"`
	Scopes []string `json:"scopes,omitempty"`
	// Act is the actor claim of a token obtained by token exchange (RFC
	// 8693 section 4.1): the party acting on behalf of the subject, and
	// through its own Act the parties before it. Nil when the subject
	// acts for itself.
	Act *Actor `json:"act,omitempty"`
	// Confirmation is the cnf claim (RFC 7800): for a token bound to a
	// DPoP key, the key's thumbprint (RFC 9449 section 6.1). A verifier
	// must refuse such a token without a proof signed by that key.
	Confirmation Confirmation `json:"cnf,omitzero"`
}

// Actor is the "act" (actor) claim of RFC 8693 section 4.1: a party that
// acts on behalf of the token's subject. Act, when not nil, is the actor
// before this one in a chain of delegations (section 4.1 nests them, the
// most recent outermost). Only "sub" and "act" are read; other members of
// the object are ignored, as the RFC leaves them to the issuer.
type Actor struct {
	Subject string `json:"sub"`
	Act     *Actor `json:"act,omitempty"`
}

// Chain returns the subjects of a and the actors before it, most recent
// first; nil for a nil Actor.
func (a *Actor) Chain() []string {
	var out []string
	for ; a != nil; a = a.Act {
		out = append(out, a.Subject)
	}
	return out
}

// Depth is the number of actors in the chain a starts: 0 for nil.
func (a *Actor) Depth() int {
	n := 0
	for ; a != nil; a = a.Act {
		n++
	}
	return n
}

// Confirmation is a cnf claim (RFC 7800 section 3.1), reduced to the
// member Keycard issues.
type Confirmation struct {
	// JKT is the base64url SHA-256 JWK thumbprint (RFC 7638) of the DPoP
	// key the token is bound to (RFC 9449 section 6.1).
	JKT string `json:"jkt,omitempty"`
}

// MapClaims is a claims set as a map, decoded with encoding/json (numbers
// as float64).
type MapClaims map[string]any

// setString replaces *dst with b only when they differ, so decoding the
// same value into a reused struct does not allocate.
func setString(dst *string, b []byte) {
	if *dst != string(b) {
		*dst = string(b)
	}
}

// setStrings returns s resized to n, reusing its backing array.
func setStrings(s []string, n int) []string {
	if cap(s) >= n {
		return s[:n]
	}
	return append(s[:cap(s)], make([]string, n-cap(s))...)
}

// decodeStrings decodes a JSON array of strings (already validated by
// jsonscan.ScanObject) into dst, reusing its backing array and strings.
func decodeStrings(dst []string, b []byte) ([]string, error) {
	if len(b) < 2 || b[0] != '[' {
		return dst, ErrInvalidClaim
	}
	n := 0
	i := 1
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i < len(b) && b[i] == ']' && n == 0 {
			return dst[:0], nil
		}
		if i >= len(b) || b[i] != '"' {
			return dst, ErrInvalidClaim
		}
		j := i + 1
		escaped := false
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j >= len(b) {
			return dst, ErrInvalidClaim
		}
		s := b[i+1 : j]
		if escaped {
			var err error
			if s, err = jsonscan.Unquote(b[i : j+1]); err != nil {
				return dst, err
			}
		}
		dst = setStrings(dst, n+1)
		setString(&dst[n], s)
		n++
		i = j + 1
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return dst[:n], nil
		}
		return dst, ErrInvalidClaim
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
