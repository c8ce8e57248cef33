package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/password"
)

// fast keeps the tests quick; the defaults are exercised in TestDefaults.
var fast = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func TestDefaults(t *testing.T) {
	var h password.Hasher
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if want := "$argon2id$v=19$m=19456,t=2,p=1$"; !strings.HasPrefix(enc, want) {
		t.Errorf("Hash() = %q, want prefix %q", enc, want)
	}
	parts := strings.Split(enc, "$")
	if got, want := len(parts[4]), 22; got != want {
		t.Errorf("salt length = %d chars, want %d", got, want)
	}
	if got, want := len(parts[5]), 43; got != want {
		t.Errorf("hash length = %d chars, want %d", got, want)
	}
	ok, rehash, err := h.Verify("correct horse battery staple", enc)
	if !ok || rehash || err != nil {
		t.Errorf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
}

func TestHashVerify(t *testing.T) {
	h := password.Hasher{Params: fast}
	tests := []struct {
		name     string
		password string
		attempt  string
		want     bool
	}{
		{"same", "password1", "password1", true},
		{"wrong", "password1", "password2", false},
		{"case", "Password1", "password1", false},
		{"prefix", "password12", "password1", false},
		{"unicode", "pässwörd🔑", "pässwörd🔑", true},
		{"max length", strings.Repeat("x", password.MaxLength), strings.Repeat("x", password.MaxLength), true},
		{"nul bytes", "pass\x00word", "pass\x00wore", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := h.Hash(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			ok, rehash, err := h.Verify(tt.attempt, enc)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ok != tt.want {
				t.Errorf("Verify() ok = %v, want %v", ok, tt.want)
			}
			if rehash {
				t.Errorf("Verify() needsRehash = true, want false")
			}
		})
	}
}

func TestHashSalted(t *testing.T) {
	h := password.Hasher{Params: fast}
	a, _ := h.Hash("password1")
	b, _ := h.Hash("password1")
	if a == b {
		t.Errorf("two hashes of one password are equal: %q", a)
	}
}

func TestLengthLimits(t *testing.T) {
	h := password.Hasher{Params: fast}
	tests := []struct {
		name     string
		password string
		want     error
	}{
		{"empty", "", password.ErrTooShort},
		{"seven", "1234567", password.ErrTooShort},
		{"eight", "12345678", nil},
		{"max", strings.Repeat("a", 1024), nil},
		{"over max", strings.Repeat("a", 1025), password.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := password.CheckLength(tt.password); !errors.Is(got, tt.want) {
				t.Errorf("CheckLength() = %v, want %v", got, tt.want)
			}
			_, err := h.Hash(tt.password)
			if !errors.Is(err, tt.want) {
				t.Errorf("Hash() error = %v, want %v", err, tt.want)
			}
		})
	}
	enc, _ := h.Hash("12345678")
	if _, _, err := h.Verify(strings.Repeat("a", 1025), enc); !errors.Is(err, password.ErrTooLong) {
		t.Errorf("Verify(too long) error = %v, want %v", err, password.ErrTooLong)
	}
	// The minimum is a policy for new passwords, not for logging in.
	short := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + strings.Repeat("A", 43)
	if _, _, err := h.Verify("1", short); err != nil {
		t.Errorf("Verify(short password) error = %v, want nil", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	old := password.Hasher{Params: fast}
	enc, err := old.Hash("password1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params password.Params
		want   bool
	}{
		{"same", fast, false},
		{"more memory", password.Params{Memory: 128, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, true},
		{"more iterations", password.Params{Memory: 64, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}, true},
		{"more lanes", password.Params{Memory: 64, Iterations: 1, Parallelism: 2, SaltLength: 16, KeyLength: 32}, true},
		{"longer key", password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 64}, true},
		{"longer salt", password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 32, KeyLength: 32}, true},
		{"defaults", password.Params{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := password.Hasher{Params: tt.params}
			ok, rehash, err := h.Verify("password1", enc)
			if !ok || err != nil {
				t.Fatalf("Verify() = %v, %v; want true, nil", ok, err)
			}
			if rehash != tt.want {
				t.Errorf("Verify() needsRehash = %v, want %v", rehash, tt.want)
			}
			ok, rehash, _ = h.Verify("password2", enc)
			if ok || rehash {
				t.Errorf("Verify(wrong) = %v, %v; want false, false", ok, rehash)
			}
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	h := password.Hasher{Params: fast}
	good, _ := h.Hash("password1")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	tests := []struct {
		name    string
		encoded string
		want    error
	}{
		{"empty", "", password.ErrMalformedHash},
		{"dollar", "$", password.ErrMalformedHash},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", password.ErrMalformedHash},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, password.ErrIncompatibleVersion},
		{"version text", "$argon2id$v=x$m=64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"params order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"missing param", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"extra param", "$argon2id$v=19$m=64,t=1,p=1,k=2$" + salt + "$" + key, password.ErrMalformedHash},
		{"negative", "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"plus", "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"overflow", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, password.ErrMalformedHash},
		{"256 lanes", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key, password.ErrMalformedHash},
		{"memory under 8p", "$argon2id$v=19$m=15,t=1,p=2$" + salt + "$" + key, password.ErrMalformedHash},
		{"many iterations", "$argon2id$v=19$m=64,t=1000000,p=1$" + salt + "$" + key, password.ErrMalformedHash},
		{"bad salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key, password.ErrMalformedHash},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, password.ErrMalformedHash},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key, password.ErrMalformedHash},
		{"empty key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", password.ErrMalformedHash},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10], password.ErrMalformedHash},
		{"trailing", good + "$", password.ErrMalformedHash},
		{"no leading dollar", good[1:], password.ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rehash, err := h.Verify("password1", tt.encoded)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q) error = %v, want %v", tt.encoded, err, tt.want)
			}
			if ok || rehash {
				t.Errorf("Verify(%q) = %v, %v; want false, false", tt.encoded, ok, rehash)
			}
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	h := password.Hasher{Params: fast}
	for _, pw := range []string{"", "password1", strings.Repeat("a", 2000)} {
		if h.VerifyDummy(pw) {
			t.Errorf("VerifyDummy(%q) = true, want false", pw)
		}
	}
}

func TestHashRandFailure(t *testing.T) {
	h := password.Hasher{Params: fast, Rand: strings.NewReader("")}
	if _, err := h.Hash("password1"); err == nil {
		t.Errorf("Hash() with failing Rand: got nil error, want one")
	}
}

func FuzzVerify(f *testing.F) {
	h := password.Hasher{Params: fast}
	good, _ := h.Hash("password1")
	f.Add("password1", good)
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("x", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$c29tZXNhbHQ")
	f.Fuzz(func(t *testing.T, pw, enc string) {
		ok, rehash, err := h.Verify(pw, enc)
		if err != nil && (ok || rehash) {
			t.Errorf("Verify() = %v, %v, %v: ok or rehash with an error", ok, rehash, err)
		}
	})
}

// BenchmarkHash measures the raw hashing rate with the default parameters,
// the intended cost of a login.
func BenchmarkHash(b *testing.B) {
	var h password.Hasher
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	var h password.Hasher
	for b.Loop() {
		h.VerifyDummy("correct horse battery staple")
	}
}
