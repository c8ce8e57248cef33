package jose

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// DefaultMaxTokenSize is the largest compact JWS accepted when a
// [JWSVerifier] sets no MaxSize: 8 KiB. The limit is checked before any
// decoding.
const DefaultMaxTokenSize = 8 << 10

// MaxJSONDepth is the deepest nesting of arrays and objects accepted in a
// JOSE header, a JWK or a JWT claims set.
const MaxJSONDepth = jsonscan.MaxDepth

// Header is the protected JOSE header of a compact JWS, reduced to the
// members this package understands (RFC 7515 section 4.1). Other members
// are checked to be well-formed JSON and otherwise ignored; in particular
// "jwk", "jku", "x5u" and "x5c" are never used to find a key.
type Header struct {
	Algorithm   Algorithm // "alg"
	KeyID       string    // "kid"
	Type        string    // "typ", for example "JWT" or "at+jwt"
	ContentType string    // "cty"
}

// KeyResolver chooses the verification key for a token from its header.
// [*Key] and [*KeySet] implement it. Implementations must return
// [ErrKeyNotFound] for an unknown kid and must never fall back to another
// key.
type KeyResolver interface {
	ResolveKey(h *Header) (*Key, error)
}

// Message is a verified compact JWS.
type Message struct {
	Header  Header
	Payload []byte
}

// JWSVerifier verifies compact JWS (RFC 7515 section 5.2) with the keys of
// a KeyResolver. The zero value is not usable: Keys must be set. A
// JWSVerifier is safe for concurrent use if Keys is.
type JWSVerifier struct {
	// Keys chooses the key; the key's algorithm decides which "alg" is
	// accepted. Required.
	Keys KeyResolver
	// Algorithms, if not empty, further restricts the accepted algorithms.
	Algorithms []Algorithm
	// MaxSize is the largest token accepted, in bytes;
	// DefaultMaxTokenSize when zero.
	MaxSize int

	// last memoizes the most recent header: tokens from one issuer and
	// key share their header segment byte for byte, so decoding and
	// parsing it again can be skipped. It holds only what decodeSegment
	// and parseHeader accepted and produced from those bytes.
	last atomic.Pointer[parsedHeader]
}

// parsedHeader is a header segment, still base64url-encoded, that decoded
// canonically and parsed without error, and what parseHeader made of it.
// Equal segments decode to equal bytes, so a token whose first segment is
// seg has header h, and no other check applies to it.
type parsedHeader struct {
	seg string
	h   Header
}

// Verify verifies a compact JWS with keys and returns its header and
// payload (RFC 7515 section 5.2).
func Verify(token string, keys KeyResolver) (*Message, error) {
	v := JWSVerifier{Keys: keys}
	return v.Verify(token)
}

// Verify verifies a compact JWS and returns its header and payload.
func (v *JWSVerifier) Verify(token string) (*Message, error) {
	m := new(Message)
	p, err := v.VerifyAppend(nil, token, &m.Header)
	if err != nil {
		return nil, err
	}
	m.Payload = p
	return m, nil
}

// VerifyAppend verifies a compact JWS, fills h from its header, and returns
// the decoded payload, which is stored in dst's spare capacity (or a new
// slice when it lacks room). With a dst of enough capacity and a reused h
// whose string fields already hold the token's values, it does not
// allocate for HMAC keys. The payload is returned only if the signature is
// valid. All of dst's spare capacity may be written as scratch (the token,
// its decoded segments), also beyond the returned payload's end.
func (v *JWSVerifier) VerifyAppend(dst []byte, token string, h *Header) ([]byte, error) {
	if v.Keys == nil {
		return nil, fmt.Errorf("%w: no keys given", ErrKeyNotFound)
	}
	maxSize := v.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxTokenSize
	}
	if len(token) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(token), maxSize)
	}
	dot1, dot2, err := splitCompact(token)
	if err != nil {
		return nil, err
	}
	// Copy the token into dst, with room for everything decoded from it,
	// so that hashing and decoding work on bytes without further copies:
	// dst becomes [token | header | signature | payload].
	base := len(dst)
	dst = slices.Grow(dst, 2*len(token))
	dst = append(dst, token...)
	tok := dst[base:]
	if seg := tok[:dot1]; !v.lastHeader(seg, h) {
		dst, err = decodeSegment(dst, seg, "header")
		if err != nil {
			return nil, segmentError(token, err)
		}
		if err := parseHeader(dst[base+len(tok):], h); err != nil {
			return nil, err
		}
		v.last.Store(&parsedHeader{seg: string(seg), h: *h})
	}
	if len(v.Algorithms) > 0 && !slices.Contains(v.Algorithms, h.Algorithm) {
		return nil, fmt.Errorf("%w: %s", ErrAlgorithmMismatch, h.Algorithm)
	}
	key, err := v.Keys.ResolveKey(h)
	if err != nil {
		return nil, err
	}
	if key == nil { // a faulty custom resolver
		return nil, ErrKeyNotFound
	}
	if key.alg != h.Algorithm {
		return nil, fmt.Errorf("%w: token alg %s, key alg %s", ErrAlgorithmMismatch, h.Algorithm, key.alg)
	}
	// Both remaining segments are decoded before the signature is
	// checked, so that a non-canonical encoding is reported as malformed;
	// the payload is returned only once the signature has verified.
	sigStart := len(dst)
	dst, err = decodeSegment(dst, tok[dot2+1:], "signature")
	if err != nil {
		return nil, segmentError(token, err)
	}
	payloadStart := len(dst)
	dst, err = decodeSegment(dst, tok[dot1+1:dot2], "payload")
	if err != nil {
		return nil, segmentError(token, err)
	}
	if err := key.verify(tok[:dot2], dst[sigStart:payloadStart]); err != nil {
		return nil, err
	}
	return dst[payloadStart:], nil
}

// lastHeader fills h from the memoized header if seg is byte for byte
// the encoded header segment it was decoded and parsed from.
func (v *JWSVerifier) lastHeader(seg []byte, h *Header) bool {
	p := v.last.Load()
	if p == nil || p.seg != string(seg) {
		return false
	}
	*h = p.h
	return true
}

// splitCompact checks the shape of a compact serialization: only
// base64url characters and exactly two dots, with non-empty header and
// signature. It recognises JWE and JSON serialization to give clear errors.
func splitCompact(token string) (dot1, dot2 int, err error) {
	// Fast path, for the shape every real token has: exactly two dots,
	// non-empty header and signature. Every other byte is checked by
	// decodeSegment, which refuses anything outside the alphabet, CR and
	// LF too; the slow path below exists to name what is wrong with a
	// token that fails here, and segmentError to name it for one whose
	// segment fails to decode.
	if dot1 = strings.IndexByte(token, '.'); dot1 > 0 && token[0] != '{' {
		if d := strings.IndexByte(token[dot1+1:], '.'); d >= 0 {
			dot2 = dot1 + 1 + d
			if dot2 < len(token)-1 && strings.IndexByte(token[dot2+1:], '.') < 0 {
				return dot1, dot2, nil
			}
		}
	}
	return splitCompactSlow(token)
}

// splitCompactSlow is splitCompact byte by byte, for the error.
func splitCompactSlow(token string) (dot1, dot2 int, err error) {
	if token == "" {
		return 0, 0, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if token[0] == '{' {
		return 0, 0, ErrJSONSerialization
	}
	dots := 0
	dot1, dot2 = -1, -1
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			dots++
			if dots == 1 {
				dot1 = i
			} else if dots == 2 {
				dot2 = i
			}
		default:
			if dots < 2 && countDots(token) == 4 {
				return 0, 0, ErrEncrypted
			}
			if dots >= 1 && declaresExtension(token[:dot1]) {
				// An RFC 7797 unencoded payload: say so rather than
				// complain about its characters.
				return 0, 0, fmt.Errorf("%w: unencoded payload (RFC 7797 \"b64\":false)", ErrCritical)
			}
			return 0, 0, fmt.Errorf("%w: character %q at offset %d is not base64url (no padding, whitespace, '+' or '/')", ErrMalformed, c, i)
		}
	}
	switch {
	case dots == 4:
		return 0, 0, ErrEncrypted
	case dots != 2:
		return 0, 0, fmt.Errorf("%w: %d segments, want 3", ErrMalformed, dots+1)
	case dot1 == 0:
		return 0, 0, fmt.Errorf("%w: empty header", ErrMalformed)
	case dot2 == len(token)-1:
		return 0, 0, fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	return dot1, dot2, nil
}

func countDots(s string) int { return strings.Count(s, ".") }

// segmentError is the error for token, which splitCompact accepted but one
// of whose segments did not decode (err): what splitCompactSlow finds wrong
// with a character of it, if anything, and err otherwise.
func segmentError(token string, err error) error {
	if _, _, serr := splitCompactSlow(token); serr != nil {
		return serr
	}
	return err
}

// declaresExtension reports whether hdr, the first segment of a token that
// is already known to be malformed, is a JOSE header declaring "b64" or
// "crit". It is only used to choose the error.
func declaresExtension(hdr string) bool {
	raw, err := b64.DecodeString(hdr)
	if err != nil {
		return false
	}
	var h Header
	return errors.Is(parseHeader(raw, &h), ErrCritical)
}

// decodeSegment appends the canonical base64url decoding of seg to dst.
// It refuses CR and LF, which b64 would skip.
func decodeSegment(dst, seg []byte, what string) ([]byte, error) {
	n := b64.DecodedLen(len(seg))
	dst = slices.Grow(dst, n+2) // b64Decode's last 64-bit store
	m, ok := b64Decode(dst[len(dst):len(dst)+n+2], seg)
	if !ok {
		return dst, fmt.Errorf("%w: %s is not canonical base64url", ErrMalformed, what)
	}
	return dst[:len(dst)+m], nil
}

// headerNames are the registered header parameters; a member whose name
// matches one of them only when case is ignored is rejected.
var headerNames = [...]string{"alg", "jku", "jwk", "kid", "x5u", "x5c", "x5t", "x5t#S256", "typ", "cty", "crit", "b64"}

// parseHeader reads a JOSE header strictly into h. String fields of h are
// only replaced when they differ, so a reused Header does not allocate.
func parseHeader(raw []byte, h *Header) error {
	var alg []byte
	var kid, typ, cty []byte
	var hasKid, hasTyp, hasCty bool
	err := jsonscan.ScanObject(raw, true, func(name, value []byte) error {
		switch string(name) {
		case "alg":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: header alg must be a string", ErrMalformed)
			}
			alg = s
		case "kid":
			s, err := jsonscan.Unquote(value)
			if err != nil || len(s) > MaxKeyIDLength {
				return fmt.Errorf("%w: header kid must be a string of at most %d bytes", ErrMalformed, MaxKeyIDLength)
			}
			kid, hasKid = s, true
		case "typ":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: header typ must be a string", ErrMalformed)
			}
			typ, hasTyp = s, true
		case "cty":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: header cty must be a string", ErrMalformed)
			}
			cty, hasCty = s, true
		case "crit", "b64":
			return fmt.Errorf("%w: %q", ErrCritical, name)
		default:
			for _, n := range headerNames {
				if n != string(name) && strings.EqualFold(n, string(name)) {
					return fmt.Errorf("%w: case-variant header name %q", ErrMalformed, name)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if alg == nil {
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	a, ok := parseAlgorithm(alg)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	h.Algorithm = a
	setString(&h.KeyID, kid, hasKid)
	setString(&h.Type, typ, hasTyp)
	setString(&h.ContentType, cty, hasCty)
	return nil
}

func setString(dst *string, b []byte, present bool) {
	if !present {
		*dst = ""
		return
	}
	if *dst != string(b) {
		*dst = string(b)
	}
}

// Signer makes compact JWS with one key and a fixed header, encoded once.
// It is safe for concurrent use.
type Signer struct {
	key    *Key
	prefix []byte // base64url(header) + "."
}

// NewSigner returns a Signer for key, which must be private. h.Algorithm
// may be empty (the key's algorithm is used) or must equal the key's;
// h.KeyID defaults to the key's kid.
func NewSigner(key *Key, h Header) (*Signer, error) {
	if key == nil || !key.IsPrivate() {
		return nil, fmt.Errorf("%w: signing needs a private or HMAC key", ErrInvalidKey)
	}
	if h.Algorithm != "" && h.Algorithm != key.alg {
		return nil, fmt.Errorf("%w: header alg %s, key alg %s", ErrAlgorithmMismatch, h.Algorithm, key.alg)
	}
	if h.KeyID == "" {
		h.KeyID = key.kid
	}
	if err := checkKeyID(h.KeyID); err != nil {
		return nil, err
	}
	if !utf8.ValidString(h.Type) || !utf8.ValidString(h.ContentType) {
		return nil, fmt.Errorf("%w: header values must be valid UTF-8", ErrMalformed)
	}
	hdr := []byte(`{"alg":`)
	hdr = jsonscan.AppendQuote(hdr, string(key.alg))
	if h.KeyID != "" {
		hdr = jsonscan.AppendQuote(append(hdr, `,"kid":`...), h.KeyID)
	}
	if h.Type != "" {
		hdr = jsonscan.AppendQuote(append(hdr, `,"typ":`...), h.Type)
	}
	if h.ContentType != "" {
		hdr = jsonscan.AppendQuote(append(hdr, `,"cty":`...), h.ContentType)
	}
	hdr = append(hdr, '}')
	prefix := b64.AppendEncode(nil, hdr)
	return &Signer{key: key, prefix: append(prefix, '.')}, nil
}

// Sign returns the compact JWS of payload with key and header h.
func Sign(key *Key, h Header, payload []byte) (string, error) {
	s, err := NewSigner(key, h)
	if err != nil {
		return "", err
	}
	return s.Sign(payload)
}

// Sign returns the compact JWS of payload (RFC 7515 section 5.1).
func (s *Signer) Sign(payload []byte) (string, error) {
	n := len(s.prefix) + base64.RawURLEncoding.EncodedLen(len(payload)) + 1 +
		base64.RawURLEncoding.EncodedLen(s.key.sigSize())
	out, err := s.AppendSign(make([]byte, 0, n), payload)
	if err != nil {
		return "", err
	}
	// out is this call's own allocation (made here, or by append should
	// the size be off), never written again: the string shares it rather
	// than copy it.
	return unsafe.String(unsafe.SliceData(out), len(out)), nil
}

// AppendSign appends the compact JWS of payload to dst.
func (s *Signer) AppendSign(dst, payload []byte) ([]byte, error) {
	base := len(dst)
	dst = append(dst, s.prefix...)
	dst = b64AppendEncode(dst, payload)
	signingInput := len(dst)
	var sigBuf [512]byte
	sig, err := s.key.signAppend(sigBuf[:0], dst[base:signingInput])
	if err != nil {
		return dst[:base], err
	}
	dst = append(dst, '.')
	return b64AppendEncode(dst, sig), nil
}

// UnsafeParse decodes a compact JWS without verifying its signature. Use
// it only to display a token or to choose a key in a custom resolver:
// nothing it returns may be trusted. It applies the same shape and header
// checks as verification, with the DefaultMaxTokenSize limit.
func UnsafeParse(token string) (*Message, error) {
	if len(token) > DefaultMaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(token), DefaultMaxTokenSize)
	}
	dot1, dot2, err := splitCompact(token)
	if err != nil {
		return nil, err
	}
	m := new(Message)
	tok := []byte(token)
	raw, err := decodeSegment(nil, tok[:dot1], "header")
	if err != nil {
		return nil, segmentError(token, err)
	}
	if err := parseHeader(raw, &m.Header); err != nil {
		return nil, err
	}
	if _, err := decodeSegment(nil, tok[dot2+1:], "signature"); err != nil {
		return nil, segmentError(token, err)
	}
	if m.Payload, err = decodeSegment(nil, tok[dot1+1:dot2], "payload"); err != nil {
		return nil, segmentError(token, err)
	}
	return m, nil
}

// SignWithHeader returns the compact JWS of payload signed with key under
// header, a JSON object given as is. It is for headers that [Header]
// cannot express, such as the "jwk" of a DPoP proof (RFC 9449 section
// 4.2); the header is read with the same strict rules as on verification
// and its "alg" must be the key's algorithm.
func SignWithHeader(key *Key, header, payload []byte) (string, error) {
	if key == nil || !key.IsPrivate() {
		return "", fmt.Errorf("%w: signing needs a private or HMAC key", ErrInvalidKey)
	}
	var h Header
	if err := parseHeader(header, &h); err != nil {
		return "", err
	}
	if h.Algorithm != key.alg {
		return "", fmt.Errorf("%w: header alg %s, key alg %s", ErrAlgorithmMismatch, h.Algorithm, key.alg)
	}
	s := Signer{key: key, prefix: append(b64.AppendEncode(nil, header), '.')}
	return s.Sign(payload)
}
