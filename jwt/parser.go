package jwt

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jose"
)

// DefaultLeeway is the clock skew allowed when checking "exp", "nbf" and
// "iat" unless [WithLeeway] says otherwise.
const DefaultLeeway = 30 * time.Second

// Parser verifies and validates JWTs. Build it with [NewParser]; it is
// safe for concurrent use.
type Parser struct {
	jws         jose.JWSVerifier
	issuer      string
	audience    string
	typ         string
	leeway      time.Duration
	required    []string
	maxLifetime time.Duration
	expOptional bool
	now         func() time.Time
	pool        sync.Pool // of *parseState
}

// ParserOption configures a [Parser].
type ParserOption func(*Parser)

// WithIssuer requires the "iss" claim to equal iss exactly.
func WithIssuer(iss string) ParserOption { return func(p *Parser) { p.issuer = iss } }

// WithAudience requires the "aud" claim (a string or an array) to contain
// aud exactly.
func WithAudience(aud string) ParserOption { return func(p *Parser) { p.audience = aud } }

// WithType requires the header "typ" to equal typ exactly, for example
// "at+jwt" for RFC 9068 access tokens.
func WithType(typ string) ParserOption { return func(p *Parser) { p.typ = typ } }

// WithLeeway sets the clock skew allowed for "exp", "nbf" and "iat";
// the default is [DefaultLeeway].
func WithLeeway(d time.Duration) ParserOption { return func(p *Parser) { p.leeway = d } }

// WithRequired requires the named top-level claims to be present.
func WithRequired(names ...string) ParserOption {
	return func(p *Parser) { p.required = append(p.required, names...) }
}

// WithMaxLifetime requires "iat" and limits "exp" minus "iat" to d.
func WithMaxLifetime(d time.Duration) ParserOption { return func(p *Parser) { p.maxLifetime = d } }

// WithAlgorithms restricts the accepted algorithms further than the keys
// already do.
func WithAlgorithms(algs ...jose.Algorithm) ParserOption {
	return func(p *Parser) { p.jws.Algorithms = append(p.jws.Algorithms, algs...) }
}

// WithMaxSize sets the largest token accepted, in bytes; the default is
// jose.DefaultMaxTokenSize (8 KiB).
func WithMaxSize(n int) ParserOption { return func(p *Parser) { p.jws.MaxSize = n } }

// WithoutExpiration makes "exp" optional. When present it is still checked.
// Tokens that never expire cannot be revoked by waiting: use with care.
func WithoutExpiration() ParserOption { return func(p *Parser) { p.expOptional = true } }

// WithNow sets the clock; the default is time.Now.
func WithNow(now func() time.Time) ParserOption { return func(p *Parser) { p.now = now } }

// NewParser returns a parser that accepts tokens signed by one of keys (a
// *jose.Key or *jose.KeySet, or any jose.KeyResolver). Each key is bound
// to one algorithm, so keys also say which algorithms are accepted.
func NewParser(keys jose.KeyResolver, opts ...ParserOption) *Parser {
	p := &Parser{jws: jose.JWSVerifier{Keys: keys}, leeway: DefaultLeeway, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	p.pool.New = func() any { return &parseState{buf: make([]byte, 0, 2048)} }
	return p
}

// parseState is the per-call scratch space, pooled so that parsing a
// token does not allocate.
type parseState struct {
	buf []byte
	hdr jose.Header
	reg RegisteredClaims
}

// Parse verifies token's signature, decodes its claims into claims and
// validates them. claims may be an *AccessClaims, *RegisteredClaims,
// *MapClaims, a pointer to the caller's own struct (decoded with
// encoding/json, typically embedding RegisteredClaims), or nil to only
// validate. On any error, claims is left zeroed or untouched: nothing from
// an invalid token is handed back. A value reused across calls holds only
// the last token's claims: whatever it held before is replaced.
//
// Parser is safe for concurrent use, but a claims value is not: give each
// goroutine its own. An *AccessClaims or *RegisteredClaims reuses its
// Audience and Roles slices (and the Actor values of Act) from call to
// call, so clone them if you keep them beyond the next Parse into the
// same value.
func (p *Parser) Parse(token string, claims any) error {
	_, err := p.parse(token, claims, nil)
	return err
}

// ParseWithHeader is Parse that also returns the verified JOSE header.
func (p *Parser) ParseWithHeader(token string, claims any) (jose.Header, error) {
	var h jose.Header
	_, err := p.parse(token, claims, &h)
	return h, err
}

func (p *Parser) parse(token string, claims any, hdrOut *jose.Header) (bool, error) {
	st := p.pool.Get().(*parseState)
	defer p.pool.Put(st)
	payload, err := p.jws.VerifyAppend(st.buf[:0], token, &st.hdr)
	if cap(payload) > cap(st.buf) && cap(payload) <= 64<<10 {
		st.buf = payload[:0]
	}
	if err != nil {
		return false, err
	}
	if hdrOut != nil {
		*hdrOut = st.hdr
	}
	if p.typ != "" && st.hdr.Type != p.typ {
		return false, fmt.Errorf("%w: got %q, want %q", ErrInvalidType, st.hdr.Type, p.typ)
	}
	var present uint64
	switch c := claims.(type) {
	case *AccessClaims:
		present, err = p.scan(payload, &c.RegisteredClaims, c)
		if err == nil {
			err = p.validate(&c.RegisteredClaims, present)
		}
		if err != nil {
			*c = AccessClaims{}
		}
		return true, err
	case *RegisteredClaims:
		present, err = p.scan(payload, c, nil)
		if err == nil {
			err = p.validate(c, present)
		}
		if err != nil {
			*c = RegisteredClaims{}
		}
		return true, err
	}
	// Any other form: validate from our own strict reading of the
	// registered claims first, then let encoding/json fill the caller's
	// value. encoding/json merges into maps and leaves struct fields the
	// token lacks alone, so clear the value first: it must end up holding
	// this token's claims and nothing else, or nothing.
	zeroClaims(claims)
	if present, err = p.scan(payload, &st.reg, nil); err != nil {
		return false, err
	}
	if err := p.validate(&st.reg, present); err != nil {
		return false, err
	}
	if claims == nil {
		return true, nil
	}
	if err := json.Unmarshal(payload, claims); err != nil {
		zeroClaims(claims)
		return false, fmt.Errorf("%w: %v", ErrInvalidClaim, err)
	}
	return true, nil
}

// zeroClaims sets the value claims points to, if any, to its zero value.
func zeroClaims(claims any) {
	if v := reflect.ValueOf(claims); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
}

// Claim presence bits returned by scan, followed by one bit per required
// claim name.
const (
	hasExp = 1 << iota
	hasIat
	hasNbf
	hasIss
	hasAud
	requiredShift = iota
)

// accessNames are the claim names the fast path understands; a top-level
// member equal to one of them except for case is refused, because
// encoding/json would match it case-insensitively.
var accessNames = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "client_id", "scope", "roles", "auth_time", "scp", "scopes", "act", "cnf", "acr", "amr"}

// scan reads the claims set strictly into reg (and ac, when not nil) and
// reports which claims were present.
func (p *Parser) scan(payload []byte, reg *RegisteredClaims, ac *AccessClaims) (uint64, error) {
	var present uint64
	// Reset what a reused value may hold; strings are kept for reuse
	// until overwritten, and cleared below when absent.
	var seen uint32
	err := jsonscan.ScanObjectPlain(payload, true, func(name, value []byte, plain bool) error {
		var err error
		bit := uint32(0)
		switch string(name) {
		case "iss":
			bit, err = 1<<0, stringClaim(&reg.Issuer, value, plain)
			present |= hasIss
		case "sub":
			bit, err = 1<<1, stringClaim(&reg.Subject, value, plain)
		case "aud":
			bit, err = 1<<2, reg.Audience.decode(value, plain)
			present |= hasAud
		case "exp":
			bit, err = 1<<3, dateClaim(&reg.ExpiresAt, value)
			present |= hasExp
		case "nbf":
			bit, err = 1<<4, dateClaim(&reg.NotBefore, value)
			present |= hasNbf
		case "iat":
			bit, err = 1<<5, dateClaim(&reg.IssuedAt, value)
			present |= hasIat
		case "jti":
			bit, err = 1<<6, stringClaim(&reg.ID, value, plain)
		default:
			if ac != nil {
				switch string(name) {
				case "sid":
					bit, err = 1<<7, stringClaim(&ac.SessionID, value, plain)
				case "client_id":
					bit, err = 1<<8, stringClaim(&ac.ClientID, value, plain)
				case "scope":
					bit, err = 1<<9, stringClaim(&ac.Scope, value, plain)
				case "roles":
					bit = 1 << 10
					ac.Roles, err = decodeStrings(ac.Roles, value)
					if err != nil {
						err = fmt.Errorf("%w: roles must be an array of strings", ErrInvalidClaim)
					}
				case "auth_time":
					bit, err = 1<<11, dateClaim(&ac.AuthTime, value)
				case "scp":
					bit = 1 << 12
					ac.Scp, err = decodeStrings(ac.Scp, value)
					if err != nil {
						err = fmt.Errorf("%w: scp must be an array of strings", ErrInvalidClaim)
					}
				case "scopes":
					bit = 1 << 13
					ac.Scopes, err = decodeStrings(ac.Scopes, value)
					if err != nil {
						err = fmt.Errorf("%w: scopes must be an array of strings", ErrInvalidClaim)
					}
				case "act":
					bit = 1 << 14
					ac.Act, err = decodeActor(ac.Act, value)
				case "cnf":
					bit, err = 1<<15, confirmationClaim(&ac.Confirmation, value)
				case "acr":
					bit, err = 1<<16, stringClaim(&ac.ACR, value, plain)
				case "amr":
					bit = 1 << 17
					ac.AMR, err = decodeStrings(ac.AMR, value)
					if err != nil {
						err = fmt.Errorf("%w: amr must be an array of strings", ErrInvalidClaim)
					}
				}
			}
			if bit == 0 {
				for _, n := range accessNames {
					if n != string(name) && strings.EqualFold(n, string(name)) {
						return fmt.Errorf("%w: case-variant claim name %q", ErrInvalidClaim, name)
					}
				}
			}
		}
		if err != nil {
			return err
		}
		seen |= bit
		for i, r := range p.required {
			if i < 64-requiredShift && r == string(name) {
				present |= 1 << (requiredShift + i)
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrInvalidClaim) {
			err = fmt.Errorf("%w: %w", ErrInvalidClaim, err)
		}
		return 0, err
	}
	// Clear fields the token did not carry.
	if seen&(1<<0) == 0 {
		reg.Issuer = ""
	}
	if seen&(1<<1) == 0 {
		reg.Subject = ""
	}
	if seen&(1<<2) == 0 {
		reg.Audience = reg.Audience[:0]
	}
	if seen&(1<<3) == 0 {
		reg.ExpiresAt = NumericDate{}
	}
	if seen&(1<<4) == 0 {
		reg.NotBefore = NumericDate{}
	}
	if seen&(1<<5) == 0 {
		reg.IssuedAt = NumericDate{}
	}
	if seen&(1<<6) == 0 {
		reg.ID = ""
	}
	if ac != nil {
		if seen&(1<<7) == 0 {
			ac.SessionID = ""
		}
		if seen&(1<<8) == 0 {
			ac.ClientID = ""
		}
		if seen&(1<<9) == 0 {
			ac.Scope = ""
		}
		if seen&(1<<10) == 0 {
			ac.Roles = ac.Roles[:0]
		}
		if seen&(1<<11) == 0 {
			ac.AuthTime = NumericDate{}
		}
		if seen&(1<<12) == 0 {
			ac.Scp = ac.Scp[:0]
		}
		if seen&(1<<13) == 0 {
			ac.Scopes = ac.Scopes[:0]
		}
		if seen&(1<<14) == 0 {
			ac.Act = nil
		}
		if seen&(1<<15) == 0 {
			ac.Confirmation.JKT = ""
		}
		if seen&(1<<16) == 0 {
			ac.ACR = ""
		}
		if seen&(1<<17) == 0 {
			ac.AMR = ac.AMR[:0]
		}
	}
	return present, nil
}

// decodeActor decodes an "act" claim (RFC 8693 section 4.1), already
// validated by jsonscan.ScanObject, reusing a's values where it can. The
// object must have a string "sub"; its "act", when present, is decoded
// the same way; other members are ignored, but not names that differ
// from sub or act only in case, which encoding/json would read as them.
// Nesting is bounded by jsonscan.MaxDepth.
func decodeActor(a *Actor, value []byte) (*Actor, error) {
	if len(value) == 0 || value[0] != '{' {
		return a, fmt.Errorf("%w: act must be an object", ErrInvalidClaim)
	}
	if a == nil {
		a = new(Actor)
	}
	var hasSub, hasAct bool
	err := jsonscan.ScanObject(value, true, func(name, v []byte) error {
		switch string(name) {
		case "sub":
			hasSub = true
			return stringClaim(&a.Subject, v, false)
		case "act":
			hasAct = true
			var err error
			a.Act, err = decodeActor(a.Act, v)
			return err
		}
		// encoding/json would read these as sub and act.
		if strings.EqualFold(string(name), "sub") || strings.EqualFold(string(name), "act") {
			return fmt.Errorf("%w: case-variant member %q in act", ErrInvalidClaim, name)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrInvalidClaim) {
			err = fmt.Errorf("%w: act: %w", ErrInvalidClaim, err)
		}
		return nil, err
	}
	if !hasSub || a.Subject == "" {
		return nil, fmt.Errorf("%w: act needs a sub", ErrInvalidClaim)
	}
	if !hasAct {
		a.Act = nil
	}
	return a, nil
}

// confirmationClaim reads a cnf claim (RFC 7800): an object whose jkt,
// when present, is a string. Other confirmation methods are ignored.
func confirmationClaim(dst *Confirmation, value []byte) error {
	var jkt []byte
	hasJKT := false
	err := jsonscan.ScanObject(value, false, func(name, v []byte) error {
		if string(name) != "jkt" {
			return nil
		}
		s, err := jsonscan.Unquote(v)
		if err != nil {
			return fmt.Errorf("%w: cnf jkt must be a string", ErrInvalidClaim)
		}
		jkt, hasJKT = s, true
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrInvalidClaim) {
			err = fmt.Errorf("%w: cnf must be an object", ErrInvalidClaim)
		}
		return err
	}
	if !hasJKT {
		dst.JKT = ""
		return nil
	}
	setString(&dst.JKT, jkt)
	return nil
}

// stringClaim sets *dst to the JSON string value, whose contents are
// taken as they are when plain (jsonscan.ScanObjectPlain found it a string
// without escapes).
func stringClaim(dst *string, value []byte, plain bool) error {
	if plain {
		setString(dst, value[1:len(value)-1])
		return nil
	}
	s, err := jsonscan.Unquote(value)
	if err != nil {
		return fmt.Errorf("%w: want a string", ErrInvalidClaim)
	}
	setString(dst, s)
	return nil
}

func dateClaim(dst *NumericDate, value []byte) error {
	t, err := parseNumericDate(value)
	if err != nil {
		return err
	}
	dst.Time = t
	return nil
}

// validate checks the registered claims (RFC 7519 section 4.1) against the
// parser's rules.
func (p *Parser) validate(c *RegisteredClaims, present uint64) error {
	now := p.now()
	if c.ExpiresAt.IsZero() {
		if !p.expOptional {
			return fmt.Errorf("%w: exp", ErrMissingClaim)
		}
	} else if !now.Before(c.ExpiresAt.Add(p.leeway)) {
		return ErrTokenExpired
	}
	if !c.NotBefore.IsZero() && now.Add(p.leeway).Before(c.NotBefore.Time) {
		return ErrTokenNotValidYet
	}
	if !c.IssuedAt.IsZero() && now.Add(p.leeway).Before(c.IssuedAt.Time) {
		return ErrTokenUsedBeforeIssued
	}
	if p.issuer != "" && (present&hasIss == 0 || c.Issuer != p.issuer) {
		return ErrInvalidIssuer
	}
	if p.audience != "" && !c.Audience.Contains(p.audience) {
		return ErrInvalidAudience
	}
	if p.maxLifetime > 0 {
		if c.IssuedAt.IsZero() {
			return fmt.Errorf("%w: iat (a maximum lifetime is set)", ErrMissingClaim)
		}
		if !c.ExpiresAt.IsZero() && c.ExpiresAt.Sub(c.IssuedAt.Time) > p.maxLifetime {
			return ErrLifetimeTooLong
		}
	}
	for i, r := range p.required {
		if i >= 64-requiredShift {
			return fmt.Errorf("jwt: at most %d required claims are supported", 64-requiredShift)
		}
		if present&(1<<(requiredShift+i)) == 0 {
			return fmt.Errorf("%w: %s", ErrMissingClaim, r)
		}
	}
	return nil
}
