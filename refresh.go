package keycard

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// RefreshSecretLen is the number of random bytes in a refresh token's
// secret: 256 bits.
const RefreshSecretLen = 32

// Encoded lengths of the two parts of a refresh token: unpadded base64url
// of IDLen and RefreshSecretLen bytes.
const (
	refreshIDLen     = (IDLen*8 + 5) / 6
	refreshSecretLen = (RefreshSecretLen*8 + 5) / 6
)

// NewRefreshToken returns a new opaque refresh token "<id>.<secret>" read
// from r (normally crypto/rand.Reader), its id, and the SHA-256 hash of its
// secret, which is all that may be stored. The token string itself is a
// bearer credential: it must never be logged or stored in plaintext.
//
// Its format is NewOpaqueToken's, but the id's first seven characters are
// the time it was made (see refreshIDTime): ids made one after the other
// sort next to each other, so that the stores' indexes on the id take each
// new token on the same few pages instead of one random page per token
// (each page a rotation changes is written whole to SQLite's WAL at
// commit). The id's other 86 bits are random, and the 256-bit secret
// alone is what proves a token; its id is a lookup key, not a secret.
// Authorization and device codes are made with NewOpaqueToken.
func NewRefreshToken(r io.Reader) (token, id string, secretHash []byte, err error) {
	return newRefreshToken(r, time.Now())
}

func newRefreshToken(r io.Reader, now time.Time) (token, id string, secretHash []byte, err error) {
	var b [IDLen + RefreshSecretLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", nil, fmt.Errorf("keycard: reading random refresh token: %w", err)
	}
	refreshIDTime(b[:IDLen], now)
	id = base64.RawURLEncoding.EncodeToString(b[:IDLen])
	secret := base64.RawURLEncoding.EncodeToString(b[IDLen:])
	return id + "." + secret, id, HashRefreshSecret(secret), nil
}

// sortedBase64URL is the base64url alphabet in byte order, the order in
// which the stores compare ids (SQLite's BINARY collation, PostgreSQL's
// "C" collation of the id column).
const sortedBase64URL = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// base64URLValue maps each character of sortedBase64URL, by its place
// there, to the 6-bit value that base64url encodes as that character.
var base64URLValue = func() (v [64]byte) {
	const std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range v {
		v[i] = byte(strings.IndexByte(std, sortedBase64URL[i]))
	}
	return v
}()

// refreshIDTime sets the first 42 bits of id, the first seven characters
// of its base64url encoding, to now in milliseconds since the Unix epoch
// (modulo 2^42, which wraps in 2109), as seven base-64 digits written with
// sortedBase64URL: the encoded ids of later milliseconds sort after those
// of earlier ones. The other bits of id are left as they are.
func refreshIDTime(id []byte, now time.Time) {
	ms := uint64(now.UnixMilli()) & (1<<42 - 1)
	var v uint64 // the first 48 bits of id: eight base64url characters
	for _, c := range id[:6] {
		v = v<<8 | uint64(c)
	}
	v &= 63 // the eighth character stays random
	for i := range 7 {
		digit := ms >> (6 * (6 - i)) & 63
		v |= uint64(base64URLValue[digit]) << (6 * (7 - i))
	}
	for i := 5; i >= 0; i-- {
		id[i] = byte(v)
		v >>= 8
	}
}

// NewOpaqueToken returns a new opaque credential "<id>.<secret>" (128
// random bits of id, 256 of secret) read from r, its id, and the SHA-256
// of its secret: authorization codes, device codes. Refresh tokens have
// the same format, with the time they were made in their id
// (NewRefreshToken).
func NewOpaqueToken(r io.Reader) (token, id string, secretHash []byte, err error) {
	var b [IDLen + RefreshSecretLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", "", nil, fmt.Errorf("keycard: reading random refresh token: %w", err)
	}
	id = base64.RawURLEncoding.EncodeToString(b[:IDLen])
	secret := base64.RawURLEncoding.EncodeToString(b[IDLen:])
	return id + "." + secret, id, HashRefreshSecret(secret), nil
}

// ParseRefreshToken splits a refresh token into its id and the SHA-256 hash
// of its secret. Anything but the exact format made by NewRefreshToken is
// an EUNAUTHORIZED error with the same message as an unknown token, so a
// client learns nothing from the difference.
func ParseRefreshToken(token string) (id string, secretHash []byte, err error) {
	id, secretHash, ok := ParseOpaqueToken(token)
	if !ok {
		return "", nil, ErrInvalidRefreshToken()
	}
	return id, secretHash, nil
}

// ParseOpaqueToken splits a credential made by NewOpaqueToken into its id
// and the SHA-256 of its secret; ok is false for anything but that exact
// format.
func ParseOpaqueToken(token string) (id string, secretHash []byte, ok bool) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != refreshIDLen || len(secret) != refreshSecretLen ||
		!isBase64URL(id) || !isBase64URL(secret) {
		return "", nil, false
	}
	return id, HashRefreshSecret(secret), true
}

// ErrInvalidRefreshToken returns the error for a refresh token that is
// malformed, unknown, or does not match: one message for all of them.
func ErrInvalidRefreshToken() *Error {
	return &Error{Code: EUNAUTHORIZED, Message: "Invalid refresh token."}
}

// HashRefreshSecret returns the SHA-256 of a refresh token's secret part.
// A fast hash is enough: the secret has 256 random bits.
func HashRefreshSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
