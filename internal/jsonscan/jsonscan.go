// Package jsonscan is the strict JSON reader of Keycard's token core:
// packages jose and jwt read JOSE headers, JWKs and claims sets with it,
// and verifier reads discovery documents. It checks a document against
// RFC 8259 and I-JSON (RFC 7493) and hands each top-level member to the
// caller without building a tree, so that a token is read without
// allocating. It also writes JSON strings for the signers. Outside the
// token core, internal/passkey reads passkey assertions with it.
//
// It is internal so that jose, jwt and verifier can share it without it
// becoming part of their API. Like them it depends on the standard
// library alone (their dependency tests check it), and its errors are
// jose's: ErrMalformed and ErrDuplicateMember are jose.ErrMalformed and
// jose.ErrDuplicateMember, so callers of jose, jwt and verifier match
// them with errors.Is as before.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays and objects that [ScanObject]
// accepts (jose.MaxJSONDepth).
const MaxDepth = 32

// Errors, exported by package jose under the same names.
var (
	// ErrMalformed is jose.ErrMalformed: input that is not well-formed
	// as package jose accepts it. Every error of this package wraps it.
	ErrMalformed = errors.New("jose: malformed input")
	// ErrDuplicateMember is jose.ErrDuplicateMember: a JSON object with
	// the same member name twice (compared after unescaping). It wraps
	// ErrMalformed.
	ErrDuplicateMember error = &wrapped{"jose: duplicate JSON member name", ErrMalformed}
)

// wrapped is an error with its own message that also matches a parent
// sentinel under errors.Is.
type wrapped struct {
	msg    string
	parent error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.parent }

// ScanObject checks that data is exactly one strict JSON object and calls
// fn for each of its top-level members in order, with the member's
// unescaped name and its raw JSON value.
//
// Strict means: RFC 8259 grammar with no trailing data, valid UTF-8 and no
// lone surrogate escapes (I-JSON, RFC 7493), member names unique at every
// depth after unescaping ([ErrDuplicateMember]), and nesting no deeper than
// [MaxDepth]. If fold is true, top-level names that differ only in case
// also count as duplicates: they are compared with Unicode simple case
// folding ([bytes.EqualFold]), as encoding/json matches names to fields,
// so "ſub" (long s) duplicates "sub".
//
// The name slice passed to fn may point into a scratch buffer and is only
// valid during the call; value points into data. Errors returned by fn stop
// the scan and are returned unchanged; every other error wraps
// [ErrMalformed]. ScanObject does not allocate unless a member name
// contains escapes or an object has more than 16 members.
func ScanObject(data []byte, fold bool, fn func(name, value []byte) error) error {
	return scanObject(data, fold, func(name, value []byte, _ bool) error { return fn(name, value) })
}

// ScanObjectPlain is [ScanObject] for a caller that reads string values:
// fn is also told whether value is a JSON string without escapes (plain),
// whose contents are then value[1:len(value)-1] — what [Unquote] would
// return, without its second pass over them.
func ScanObjectPlain(data []byte, fold bool, fn func(name, value []byte, plain bool) error) error {
	return scanObject(data, fold, fn)
}

func scanObject(data []byte, fold bool, fn func(name, value []byte, plain bool) error) error {
	s := scanner{data: data}
	s.skipSpace()
	if s.i >= len(s.data) || s.data[s.i] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if err := s.object(0, fold, fn); err != nil {
		return err
	}
	s.skipSpace()
	if s.i != len(s.data) {
		return fmt.Errorf("%w: trailing data after JSON object", ErrMalformed)
	}
	return nil
}

// Unquote returns the contents of the raw JSON string value (with its
// quotes, as [ScanObject] hands it over) without copying when it has no
// escapes, and an unescaped copy otherwise. It returns an error wrapping
// [ErrMalformed] if value is not a JSON string.
func Unquote(value []byte) ([]byte, error) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return nil, fmt.Errorf("%w: want a JSON string", ErrMalformed)
	}
	inner := value[1 : len(value)-1]
	if !hasBackslash(inner) {
		return inner, nil
	}
	return unescape(nil, inner)
}

// AppendQuote appends s to dst as a JSON string. It escapes '"', '\\'
// and control characters and copies everything else, so s should be valid
// UTF-8.
func AppendQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = appendEscape(append(dst, s[start:i]...), c)
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape appends the JSON escape of c, a control character, '"'
// or '\\'.
func appendEscape(dst []byte, c byte) []byte {
	if c < 0x20 {
		const hex = "0123456789abcdef"
		return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
	}
	return append(dst, '\\', c)
}

// AppendQuoteValid is AppendQuote for a string that must be valid
// UTF-8, checked in the same pass: ok is false, and dst is returned with
// an unspecified tail, when s is not. Eight plain ASCII bytes at a time
// are skipped and copied in one append at the end, so a string that needs
// no escape costs one read of it and one copy; one that is all plain ASCII
// (claims usually are) is read eight bytes at a time to its end first.
func AppendQuoteValid(dst []byte, s string) (_ []byte, ok bool) {
	if plainString(s) {
		return append(append(append(dst, '"'), s...), '"'), true
	}
	dst = append(dst, '"')
	start, i := 0, 0
	for i < len(s) {
		for i+8 <= len(s) && plainASCII(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\':
			i++
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				return dst, false
			}
			i += size
		default:
			dst = appendEscape(append(dst, s[start:i]...), c)
			i++
			start = i
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}

// plainString reports whether every byte of s is printable ASCII other
// than '"' and '\\', eight at a time: a string of fewer than eight bytes is
// padded with plain ones, and the last eight bytes of a longer one are read
// in one load that overlaps those before them.
func plainString(s string) bool {
	if len(s) < 8 {
		b := [8]byte{'a', 'a', 'a', 'a', 'a', 'a', 'a', 'a'}
		copy(b[:], s)
		return plainASCII(binary.LittleEndian.Uint64(b[:]))
	}
	for i := 0; i+8 <= len(s); i += 8 {
		if !plainASCII(load64(s, i)) {
			return false
		}
	}
	return plainASCII(load64(s, len(s)-8))
}

// load64 is the little-endian uint64 of s[i:i+8] (the compiler makes it
// one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// hasBackslash is bytes.IndexByte(b, '\\') >= 0, with a plain loop for the
// short strings claims usually are, where it is faster.
func hasBackslash(b []byte) bool {
	for len(b) >= 8 {
		if hasZeroByte(binary.LittleEndian.Uint64(b) ^ ('\\' * lsb)) {
			return true
		}
		b = b[8:]
	}
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// SWAR helpers: tests on eight bytes at once.
const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte reports whether any byte of x is zero.
func hasZeroByte(x uint64) bool { return (x-lsb)&^x&msb != 0 }

// plainASCII reports whether all eight bytes of x are printable ASCII
// other than '"' and '\\': bytes a JSON string scanner can skip.
func plainASCII(x uint64) bool {
	return x&msb == 0 && // all < 0x80
		(x-0x20*lsb)&^x&msb == 0 && // none < 0x20
		!hasZeroByte(x^('"'*lsb)) &&
		!hasZeroByte(x^('\\'*lsb))
}

// firstSpecial returns the index of the first of the eight bytes of x
// (loaded little-endian) that plainASCII would not skip — a byte of 0x80
// or more, a control character, '"' or '\\' — or 8 when there is none.
// Each test below flags its own lowest matching byte exactly (a borrow
// runs only from a flagged byte to the bytes above it), so the lowest
// flag of all four is the first such byte. The top bit of x | (x-0x20*lsb)
// is x's own (a byte of 0x80 or more) or, for a byte below 0x80 and no
// borrow from below, that of a byte under 0x20 wrapped around: the two
// first tests in one, with a single mask at the end for all four.
func firstSpecial(x uint64) int {
	q, b := x^('"'*lsb), x^('\\'*lsb)
	m := (x | (x - 0x20*lsb) | (q-lsb)&^q | (b-lsb)&^b) & msb
	return bits.TrailingZeros64(m) >> 3
}

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	data     []byte
	i        int
	nonASCII bool // whether the last string scanned had non-ASCII bytes
}

// lower returns b[i] folded to ASCII lower case, or 0 when i is out of
// range.
func lower(b []byte, i int) byte {
	if i < 0 || i >= len(b) {
		return 0
	}
	if c := b[i]; c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return b[i]
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (s *scanner) fail(what string) error {
	return fmt.Errorf("%w: %s: %s at offset %d", ErrMalformed, errSyntax, what, s.i)
}

// skipSpace steps over JSON whitespace. Every byte above ' ' ends it at
// the first comparison: tokens' JSON usually has no whitespace at all.
func (s *scanner) skipSpace() {
	for s.i < len(s.data) && s.data[s.i] <= ' ' {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object scans an object starting at '{'. At depth 0, fn (if non-nil) is
// called for each member.
func (s *scanner) object(depth int, fold bool, fn func(name, value []byte, plain bool) error) error {
	if depth >= MaxDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '{'
	// Names seen so far, for the duplicate check. Most objects are small,
	// so the quadratic check is cheapest; it skips pairs of ASCII names of
	// different lengths, which can be neither equal nor case variants.
	type seenName struct {
		name  []byte
		ascii bool
	}
	var seenArr [16]seenName
	seen := seenArr[:0]
	var filter uint64
	nonASCIISeen := false
	foldHere := fold && depth == 0
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return s.fail("want member name")
		}
		start := s.i
		escaped, err := s.str()
		if err != nil {
			return err
		}
		name := s.data[start+1 : s.i-1]
		ascii := !s.nonASCII
		if escaped {
			// Unescaped names live in their own allocation so that later
			// names cannot overwrite them while they sit in seen.
			if name, err = unescape(nil, name); err != nil {
				return s.fail("bad escape in member name")
			}
			ascii = isASCII(name)
		}
		// A 64-bit filter on (length, first and last byte folded to
		// lower case) lets most names skip the comparisons; non-ASCII
		// names, whose case variants may differ in length, always do them.
		bit := uint64(1) << (uint(len(name)*7+int(lower(name, 0))+int(lower(name, len(name)-1))*3) & 63)
		if !ascii || nonASCIISeen || filter&bit != 0 {
			for _, prev := range seen {
				if len(prev.name) != len(name) && ascii && prev.ascii {
					continue
				}
				if bytes.Equal(prev.name, name) || (foldHere && bytes.EqualFold(prev.name, name)) {
					return fmt.Errorf("%w: %q", ErrDuplicateMember, name)
				}
			}
		}
		filter |= bit
		nonASCIISeen = nonASCIISeen || !ascii
		seen = append(seen, seenName{name, ascii})
		s.skipSpace()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return s.fail("want ':'")
		}
		s.i++
		s.skipSpace()
		vstart := s.i
		plain := false
		if s.i < len(s.data) && s.data[s.i] == '"' {
			// A string, as most members' values are: what value would
			// do for it, and whether it had escapes.
			escaped, err := s.str()
			if err != nil {
				return err
			}
			plain = !escaped
		} else if err := s.value(depth + 1); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(name, s.data[vstart:s.i], plain); err != nil {
				return err
			}
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return s.fail("unterminated object")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("want ',' or '}'")
		}
	}
}

func (s *scanner) array(depth int) error {
	if depth >= MaxDepth {
		return s.fail("nesting too deep")
	}
	s.i++ // '['
	s.skipSpace()
	if s.i < len(s.data) && s.data[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.data) {
			return s.fail("unterminated array")
		}
		switch s.data[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("want ',' or ']'")
		}
	}
}

func (s *scanner) value(depth int) error {
	if s.i >= len(s.data) {
		return s.fail("want value")
	}
	switch c := s.data[s.i]; {
	case c == '{':
		return s.object(depth, false, nil)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.fail("want value")
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.i < len(lit) || string(s.data[s.i:s.i+len(lit)]) != lit {
		return s.fail("bad literal")
	}
	s.i += len(lit)
	return nil
}

func (s *scanner) number() error {
	// The index lives in a local until the end, so that the digit loops
	// do not load and store s.i for every digit.
	d, i := s.data, s.i
	if d[i] == '-' {
		i++
	}
	if i >= len(d) {
		s.i = i
		return s.fail("bad number")
	}
	if d[i] == '0' {
		i++
	} else if d[i] >= '1' && d[i] <= '9' {
		i = skipDigits(d, i)
	} else {
		s.i = i
		return s.fail("bad number")
	}
	if i < len(d) && d[i] == '.' {
		n := i + 1
		if i = skipDigits(d, n); i == n {
			s.i = i
			return s.fail("bad fraction")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		n := i
		if i = skipDigits(d, n); i == n {
			s.i = i
			return s.fail("bad exponent")
		}
	}
	s.i = i
	return nil
}

// skipDigits returns the index of the first byte of d at or after i that
// is not an ASCII digit.
func skipDigits(d []byte, i int) int {
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	return i
}

// str scans a string starting at '"', validating escapes and UTF-8, and
// reports whether it contained escapes.
func (s *scanner) str() (escaped bool, err error) {
	d := s.data
	i := s.i + 1 // after the opening quote
	s.nonASCII = false
	for i < len(d) {
		// Skip eight plain bytes at a time, then straight to the first
		// byte that is not plain.
		for i+8 <= len(d) {
			n := firstSpecial(binary.LittleEndian.Uint64(d[i:]))
			i += n
			if n < 8 {
				break
			}
		}
		if i >= len(d) {
			break
		}
		c := d[i]
		// The common case first: printable ASCII other than '"' and '\'.
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		switch {
		case c == '"':
			s.i = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				s.i = i
				return escaped, s.fail("bad escape")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(d, i+2)
				if !ok {
					s.i = i
					return escaped, s.fail("bad \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A high surrogate must be followed by an escaped low one.
					r2, ok := rune(0), false
					if i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
						r2, ok = hex4(d, i+2)
					}
					if !ok || r >= 0xdc00 || utf16.DecodeRune(r, r2) == utf8.RuneError {
						s.i = i
						return escaped, s.fail("lone surrogate")
					}
					i += 6
				}
			default:
				s.i = i
				return escaped, s.fail("bad escape")
			}
		case c < 0x20:
			s.i = i
			return escaped, s.fail("control character in string")
		default:
			s.nonASCII = true
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				s.i = i
				return escaped, s.fail("invalid UTF-8")
			}
			i += size
		}
	}
	s.i = i
	return escaped, s.fail("unterminated string")
}

func hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape appends the unescaped form of the inside of a validated JSON
// string to dst.
func unescape(dst, in []byte) ([]byte, error) {
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		if i+1 >= len(in) {
			return dst, fmt.Errorf("%w: bad escape", ErrMalformed)
		}
		switch in[i+1] {
		case '"', '\\', '/':
			dst = append(dst, in[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(in, i+2)
			if !ok {
				return dst, fmt.Errorf("%w: bad \\u escape", ErrMalformed)
			}
			if utf16.IsSurrogate(r) {
				r2, ok := hex4(in, i+8)
				if !ok || i+7 >= len(in) || in[i+6] != '\\' || in[i+7] != 'u' {
					return dst, fmt.Errorf("%w: lone surrogate", ErrMalformed)
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return dst, fmt.Errorf("%w: lone surrogate", ErrMalformed)
				}
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default:
			return dst, fmt.Errorf("%w: bad escape", ErrMalformed)
		}
		i += 2
	}
	return dst, nil
}
