package keycard

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
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
// Authorization and device codes are made the same way (NewOpaqueToken).
func NewRefreshToken(r io.Reader) (token, id string, secretHash []byte, err error) {
	return NewOpaqueToken(r)
}

// NewOpaqueToken returns a new opaque credential "<id>.<secret>" (128
// random bits of id, 256 of secret) read from r, its id, and the SHA-256
// of its secret: refresh tokens, authorization codes, device codes.
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
