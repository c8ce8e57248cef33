package authtest

import (
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
)

// TOTPCode returns the code of an authenticator app with the base32
// secret at the given time (SHA-1, 6 digits, 30 s), computed by
// github.com/pquerna/otp: an implementation independent of Keycard's, so
// that the tests do not check Keycard against itself.
func TOTPCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}
