package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// idClaimsOf builds ID claims from the fuzzer's values: strs fill the
// string members in turn, lists (split at '|') the lists, n the dates and
// the email_verified flag.
func idClaimsOf(strs []string, n int64) *IDClaims {
	s := func(i int) string { return strs[i%len(strs)] }
	list := func(v string) []string {
		if v == "" {
			return nil
		}
		return strings.Split(v, "|")
	}
	date := func(shift uint) jwt.NumericDate {
		if (n>>shift)&1 == 0 {
			return jwt.NumericDate{}
		}
		return jwt.NewNumericDate(time.Unix(n&0xffffffff, 0))
	}
	c := &IDClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: s(0), Subject: s(1), Audience: list(s(2)),
			ExpiresAt: date(40), NotBefore: date(41), IssuedAt: date(42), ID: s(3)},
		Nonce: s(4), AuthTime: date(43), ACR: s(5), AMR: list(s(6)), AZP: s(7), SessionID: s(8), AccessTokenHash: s(9),
		PreferredUsername: s(10), Roles: list(s(11)), Email: s(12), IdP: s(13),
	}
	if n&(1<<44) != 0 {
		v := n&(1<<45) != 0
		c.EmailVerified = &v
	}
	return c
}

// checkIDClaimsAppend checks that AppendClaims appends, after a prefix
// it must keep, what encoding/json encodes c to: the same bytes for
// strings that need no escaping, the same JSON otherwise.
func checkIDClaimsAppend(t *testing.T, c *IDClaims) {
	t.Helper()
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	prefix := []byte("prefix")
	got, err := c.AppendClaims(prefix)
	if err != nil {
		t.Fatalf("AppendClaims(%+v): %v", c, err)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendClaims changed the bytes before it: %q", got)
	}
	got = got[len(prefix):]
	if bytes.Equal(got, want) {
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("AppendClaims = %s, not JSON: %v (encoding/json: %s)", got, err, want)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("AppendClaims = %s\nencoding/json = %s", got, want)
	}
}

// TestIDClaimsAppend holds the ID token's encoder to encoding/json's
// encoding of IDClaims: an ID token as idToken makes them, every member
// empty, several audiences, strings to escape, and strings that are not
// valid UTF-8 (left to encoding/json, byte for byte).
func TestIDClaimsAppend(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	yes := true
	full := &IDClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://auth.example", Subject: "u-1", Audience: jwt.Audience{"app"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)},
		Nonce: "n-0S6_WzA2Mj", AuthTime: jwt.NewNumericDate(now.Add(-time.Minute)), ACR: ACRPassword, AMR: []string{"pwd"},
		AZP: "app", SessionID: "s-1", AccessTokenHash: "77QmUPtjPfzWtF2AnpK9RQ", PreferredUsername: "alice",
		Roles: []string{"user", "admin"}, Email: "alice@example.com", EmailVerified: &yes, IdP: "corp",
	}
	for _, tt := range []struct {
		name string
		c    *IDClaims
		same bool // byte for byte
	}{
		{"an ID token", full, true},
		{"empty", &IDClaims{}, true},
		{"audiences", &IDClaims{RegisteredClaims: jwt.RegisteredClaims{Audience: jwt.Audience{"a", "b"}, NotBefore: jwt.NewNumericDate(now), ID: "j"}}, true},
		{"escapes", &IDClaims{Nonce: "a\"b\\c\n\x01</script>&", PreferredUsername: "zoë 🙂"}, false},
		{"nonce not UTF-8", &IDClaims{RegisteredClaims: jwt.RegisteredClaims{Subject: "u"}, Nonce: "n\xff\xfe"}, true},
		{"role not UTF-8", &IDClaims{Roles: []string{"ok", "\xc3"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkIDClaimsAppend(t, tt.c)
			if tt.same {
				want, _ := json.Marshal(tt.c)
				if got, _ := tt.c.AppendClaims(nil); !bytes.Equal(got, want) {
					t.Errorf("AppendClaims = %s, want encoding/json's %s", got, want)
				}
			}
		})
	}
	// Signed, the token carries the same claims.
	key, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Sign(key, full)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := json.Marshal(full); !bytes.Equal(payload, want) {
		t.Errorf("signed ID token's payload = %s, want %s", payload, want)
	}
}

func FuzzIDClaimsAppend(f *testing.F) {
	f.Add("https://auth.example", "u-1", "app", "n\xff", "pwd|otp", "alice", "a|b", int64(1<<44|1<<40|12345))
	f.Add("", "", "a|b|c", "\"\\\n", "", "zoë", "", int64(-1))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, h string, n int64) {
		checkIDClaimsAppend(t, idClaimsOf([]string{a, b, c, d, e, g, h}, n))
	})
}

// BenchmarkIDClaimsEncoding compares an ID token's claims encoded by
// AppendClaims with encoding/json's encoding of them.
func BenchmarkIDClaimsEncoding(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	c := &IDClaims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: "https://auth.example", Subject: "Yb3kq0n0jVd3Hc2mWq8m9Q", Audience: jwt.Audience{"kcbench-app"},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), IssuedAt: jwt.NewNumericDate(now)},
		Nonce: "n-0S6_WzA2Mj4kq9Jd8s7Q", AuthTime: jwt.NewNumericDate(now.Add(-time.Minute)), ACR: ACRPassword, AMR: []string{"pwd"},
		AZP: "kcbench-app", SessionID: "Qm9yZWQgYnV0IHVuaXF1ZQ", AccessTokenHash: "77QmUPtjPfzWtF2AnpK9RQ", PreferredUsername: "kcbench-user-1",
		Roles: []string{"user"},
	}
	buf := make([]byte, 0, 1024)
	b.Run("AppendClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = c.AppendClaims(buf[:0])
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out, _ := json.Marshal(c)
			buf = append(buf[:0], out...)
		}
	})
}
