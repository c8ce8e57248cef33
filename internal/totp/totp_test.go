package totp

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"net/url"
	"testing"
	"time"

	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
)

// TestRFC6238Vectors checks the test vectors of RFC 6238 Appendix B
// (8 digits; the seed is the ASCII "12345678901234567890" repeated to
// the hash's size).
func TestRFC6238Vectors(t *testing.T) {
	seed20 := []byte("12345678901234567890")
	seed32 := []byte("12345678901234567890123456789012")
	seed64 := []byte("1234567890123456789012345678901234567890123456789012345678901234")
	tests := []struct {
		unix int64
		alg  string
		want string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, tt := range tests {
		var h func() hash.Hash
		var key []byte
		switch tt.alg {
		case "SHA1":
			h, key = sha1.New, seed20
		case "SHA256":
			h, key = sha256.New, seed32
		case "SHA512":
			h, key = sha512.New, seed64
		}
		step := Step(time.Unix(tt.unix, 0))
		if got := HOTP(h, key, uint64(step), 8); got != tt.want {
			t.Errorf("%s at %d: got %s, want %s", tt.alg, tt.unix, got, tt.want)
		}
	}
	// The 6-digit SHA-1 code is the vector's last six digits.
	if got := Code(seed20, Step(time.Unix(59, 0))); got != "287082" {
		t.Errorf("Code at 59: got %s, want 287082", got)
	}
}

// TestAgainstPquerna compares codes with an independent implementation,
// github.com/pquerna/otp, at many instants.
func TestAgainstPquerna(t *testing.T) {
	secret, err := NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	enc := EncodeSecret(secret)
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range 200 {
		at := base.Add(time.Duration(i) * 17 * time.Second)
		want, err := pqtotp.GenerateCodeCustom(enc, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		if got := Code(secret, Step(at)); got != want {
			t.Fatalf("at %v: got %s, pquerna/otp says %s", at, got, want)
		}
		if _, ok := Check(secret, want, at, -1); !ok {
			t.Fatalf("at %v: Check refused pquerna/otp's code", at)
		}
	}
}

func TestCheck(t *testing.T) {
	secret := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cur := Step(now)
	tests := []struct {
		name     string
		code     string
		after    int64
		wantOK   bool
		wantStep int64
	}{
		{"current", Code(secret, cur), -1, true, cur},
		{"previous step", Code(secret, cur-1), -1, true, cur - 1},
		{"next step", Code(secret, cur+1), -1, true, cur + 1},
		{"two steps back", Code(secret, cur-2), -1, false, 0},
		{"two steps ahead", Code(secret, cur+2), -1, false, 0},
		{"replayed: its step already used", Code(secret, cur), cur, false, 0},
		{"older than the last used step", Code(secret, cur-1), cur, false, 0},
		{"later than the last used step", Code(secret, cur+1), cur, true, cur + 1},
		{"wrong code", "000000", -1, false, 0},
		{"too short", Code(secret, cur)[:5], -1, false, 0},
		{"too long", Code(secret, cur) + "0", -1, false, 0},
		{"not digits", "12345a", -1, false, 0},
		{"empty", "", -1, false, 0},
		{"sign", "+12345", -1, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := Check(secret, tt.code, now, tt.after)
			if ok != tt.wantOK || (ok && step != tt.wantStep) {
				t.Errorf("Check(%q, after %d) = %d, %v; want %d, %v", tt.code, tt.after, step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

func TestURI(t *testing.T) {
	secret := []byte("12345678901234567890")
	u, err := url.Parse(URI("Keycard Example", "alice@example.com", secret))
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.NewKeyFromURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if key.Issuer() != "Keycard Example" || key.AccountName() != "alice@example.com" || key.Secret() != EncodeSecret(secret) {
		t.Errorf("pquerna/otp reads issuer %q account %q secret %q", key.Issuer(), key.AccountName(), key.Secret())
	}
	if key.Period() != 30 || key.Digits() != otp.DigitsSix || key.Algorithm() != otp.AlgorithmSHA1 {
		t.Errorf("parameters: period %d digits %v algorithm %v", key.Period(), key.Digits(), key.Algorithm())
	}
}
