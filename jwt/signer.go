package jwt

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jose"
)

// Signer signs claims sets with one key and a fixed header. It is safe for
// concurrent use.
type Signer struct {
	js   *jose.Signer
	bufs sync.Pool // of *signBuf
}

// signBuf is the scratch space of one Sign call: the encoded claims.
type signBuf struct {
	payload []byte
}

// SignerOption configures a [Signer].
type SignerOption func(*jose.Header)

// WithHeaderType sets the header "typ"; the default is "JWT". RFC 9068
// access tokens use "at+jwt".
func WithHeaderType(typ string) SignerOption { return func(h *jose.Header) { h.Type = typ } }

// WithKeyID sets the header "kid"; the default is the key's own kid.
func WithKeyID(kid string) SignerOption { return func(h *jose.Header) { h.KeyID = kid } }

// NewSigner returns a Signer for key, which must be a private or HMAC key.
func NewSigner(key *jose.Key, opts ...SignerOption) (*Signer, error) {
	h := jose.Header{Type: "JWT"}
	for _, o := range opts {
		o(&h)
	}
	js, err := jose.NewSigner(key, h)
	if err != nil {
		return nil, err
	}
	s := &Signer{js: js}
	s.bufs.New = func() any { return &signBuf{payload: make([]byte, 0, 1024)} }
	return s, nil
}

// Sign returns a compact JWT of claims signed with key.
func Sign(key *jose.Key, claims any, opts ...SignerOption) (string, error) {
	s, err := NewSigner(key, opts...)
	if err != nil {
		return "", err
	}
	return s.Sign(claims)
}

// Sign encodes claims and returns the signed compact JWT. claims may be an
// AccessClaims or RegisteredClaims (value or pointer), encoded by a fast
// path, a [ClaimsAppender], or anything encoding/json turns into a JSON
// object.
func (s *Signer) Sign(claims any) (string, error) {
	b := s.bufs.Get().(*signBuf)
	defer s.bufs.Put(b)
	var err error
	if b.payload, err = appendClaims(b.payload[:0], claims); err != nil {
		return "", err
	}
	// Built in an allocation of its own, of the exact size, which the
	// string shares.
	return s.js.Sign(b.payload)
}

// ClaimsAppender is implemented by claims that encode themselves, which
// Sign then prefers to encoding/json: AppendClaims appends the claims
// set, one JSON object, to dst. Sign checks only that what was appended
// starts with '{' and ends with '}'.
type ClaimsAppender interface {
	AppendClaims(dst []byte) ([]byte, error)
}

func appendClaims(dst []byte, claims any) ([]byte, error) {
	switch c := claims.(type) {
	case *AccessClaims:
		return appendAccess(dst, c)
	case AccessClaims:
		return appendAccess(dst, &c)
	case *RegisteredClaims:
		return appendAccess(dst, &AccessClaims{RegisteredClaims: *c})
	case RegisteredClaims:
		return appendAccess(dst, &AccessClaims{RegisteredClaims: c})
	}
	if a, ok := claims.(ClaimsAppender); ok {
		start := len(dst)
		out, err := a.AppendClaims(dst)
		if err != nil {
			return dst, fmt.Errorf("jwt: encoding claims: %w", err)
		}
		if len(out) < start+2 || out[start] != '{' || out[len(out)-1] != '}' {
			return dst, fmt.Errorf("jwt: claims must encode to a JSON object, got %T", claims)
		}
		return out, nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return dst, fmt.Errorf("jwt: encoding claims: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return dst, fmt.Errorf("jwt: claims must encode to a JSON object, got %T", claims)
	}
	return append(dst, b...), nil
}

// appendActor encodes an "act" claim (RFC 8693 section 4.1), nested
// actors inside; ok is false if a subject is not valid UTF-8.
func appendActor(dst []byte, a *Actor) (_ []byte, ok bool) {
	ok = true
	depth := 0
	for ; a != nil; a = a.Act {
		if depth > 0 {
			dst = append(dst, `,"act":`...)
		}
		if !utf8.ValidString(a.Subject) {
			ok = false
		}
		dst = append(dst, `{"sub":`...)
		dst = jsonscan.AppendQuote(dst, a.Subject)
		depth++
	}
	for range depth {
		dst = append(dst, '}')
	}
	return dst, ok
}

// digitPairs holds "00" to "99", two bytes each.
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendSeconds appends v in decimal, as strconv.AppendInt(dst, v, 10)
// does. The ten-digit values of the dates a token carries (2001 to 2286)
// take five steps of two digits; other values go to strconv.
func appendSeconds(dst []byte, v int64) []byte {
	if v < 1e9 || v >= 1e10 {
		return strconv.AppendInt(dst, v, 10)
	}
	var b [10]byte
	u := uint64(v)
	for i := 8; i >= 0; i -= 2 {
		r := u % 100
		u /= 100
		b[i], b[i+1] = digitPairs[2*r], digitPairs[2*r+1]
	}
	return append(dst, b[:]...)
}

// appendAccess encodes c as a JSON object, omitting empty members.
func appendAccess(dst []byte, c *AccessClaims) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	var bad bool
	str := func(name, v string) {
		if v == "" {
			return
		}
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
		var ok bool
		if dst, ok = jsonscan.AppendQuoteValid(dst, v); !ok {
			bad = true
		}
	}
	date := func(name string, d NumericDate) {
		if d.IsZero() {
			return
		}
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
		dst = appendSeconds(dst, d.Unix())
	}
	list := func(name string, v []string, single bool) {
		if len(v) == 0 {
			return
		}
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, name...)
		var ok bool
		if single && len(v) == 1 {
			if dst, ok = jsonscan.AppendQuoteValid(dst, v[0]); !ok {
				bad = true
			}
			return
		}
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, ok = jsonscan.AppendQuoteValid(dst, s); !ok {
				bad = true
			}
		}
		dst = append(dst, ']')
	}
	str(`"iss":`, c.Issuer)
	str(`"sub":`, c.Subject)
	list(`"aud":`, c.Audience, true)
	date(`"exp":`, c.ExpiresAt)
	date(`"nbf":`, c.NotBefore)
	date(`"iat":`, c.IssuedAt)
	str(`"jti":`, c.ID)
	str(`"sid":`, c.SessionID)
	str(`"client_id":`, c.ClientID)
	str(`"scope":`, c.Scope)
	list(`"roles":`, c.Roles, false)
	date(`"auth_time":`, c.AuthTime)
	str(`"acr":`, c.ACR)
	list(`"amr":`, c.AMR, false)
	list(`"scp":`, c.Scp, false)
	list(`"scopes":`, c.Scopes, false)
	if c.Act != nil {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"act":`...)
		var ok bool
		if dst, ok = appendActor(dst, c.Act); !ok {
			bad = true
		}
	}
	if c.Confirmation.JKT != "" {
		str(`"cnf":{"jkt":`, c.Confirmation.JKT)
		dst = append(dst, '}')
	}
	if bad {
		return dst[:start], fmt.Errorf("jwt: claim values must be valid UTF-8")
	}
	return append(dst, '}'), nil
}
