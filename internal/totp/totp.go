// Package totp computes and checks time-based one-time passwords
// (RFC 6238) on top of HOTP (RFC 4226), with the standard library only.
//
// Keycard's authenticator-app factor uses the parameters every app
// understands: HMAC-SHA-1, 6 digits, a 30-second step, and one step of
// tolerance either side for clocks that drift (Check). Refusing a code
// used before is the caller's job: Check returns the step that matched,
// which the caller compares with the last step it accepted for the user.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"
	"time"
)

// Keycard's TOTP parameters (RFC 6238 section 4).
const (
	// Digits is the length of a code.
	Digits = 6
	// Period is the time step X.
	Period = 30 * time.Second
	// Skew is how many steps before and after the current one Check
	// accepts (RFC 6238 section 5.2 recommends at most one).
	Skew = 1
	// SecretSize is the length of a secret made by NewSecret, in bytes:
	// 160 bits, the HMAC-SHA-1 output size RFC 4226 section 4 asks for.
	SecretSize = 20
)

// b32 is the secret's text form: RFC 4648 base32 without padding, as
// authenticator apps read it from an otpauth URI.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random secret of SecretSize bytes read from r
// (normally crypto/rand.Reader).
func NewSecret(r io.Reader) ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("totp: reading a secret: %w", err)
	}
	return b, nil
}

// EncodeSecret returns the base32 form of a secret that a user types
// into an authenticator app.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// Step returns the time step of t: the number of whole periods since the
// Unix epoch (RFC 6238 section 4.2, T0 = 0).
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// HOTP returns the HOTP value of counter under key (RFC 4226 section
// 5.3): HMAC with the hash h, dynamic truncation, and the last digits
// decimal digits, zero-padded. digits must be 1 to 9.
func HOTP(h func() hash.Hash, key []byte, counter uint64, digits int) string {
	mac := hmac.New(h, key)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Code returns Keycard's code (SHA-1, Digits digits) for the step.
func Code(secret []byte, step int64) string {
	return HOTP(sha1.New, secret, uint64(step), Digits)
}

// Check reports whether code is the code of the secret at one of the
// steps around now (Skew either side) that is later than after, and
// returns the step it matched. Pass the last step accepted for the user
// as after (or -1 when none), so that a code is accepted at most once
// (RFC 6238 section 5.2). A code of the wrong length or with anything
// but digits never matches. The comparison is in constant time.
func Check(secret []byte, code string, now time.Time, after int64) (int64, bool) {
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := Step(now)
	for step := cur - Skew; step <= cur+Skew; step++ {
		if step <= after {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(Code(secret, step)), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// URI returns the otpauth URI of the secret, the text of the QR code
// authenticator apps scan (the Key Uri Format of Google Authenticator):
// otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30.
func URI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(Digits))
	q.Set("period", fmt.Sprint(int(Period/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}
