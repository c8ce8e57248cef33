package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/sqlite"
)

// run calls Main and returns its exit code, stdout and stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// newData returns a data directory with an empty Keycard database, as
// the first "keycard serve" leaves it: the commands that work on a
// server's data refuse to create one.
func newData(t *testing.T) string {
	t.Helper()
	return initData(t, t.TempDir())
}

// initData makes an empty Keycard database in dir and returns dir.
func initData(t *testing.T, dir string) string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "keycard.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return dir
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeysGenerateSignVerify(t *testing.T) {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	claims := `{"iss":"https://issuer.test","sub":"alice","aud":"api","exp":` + exp + `}`
	for _, alg := range []string{"HS256", "RS256", "PS384", "ES256", "ES512", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			args := []string{"keys", "generate", "--alg", alg}
			if strings.HasPrefix(alg, "HS") {
				args = append(args, "--kid", "hmac-1")
			}
			code, priv, errOut := run(t, "", args...)
			if code != 0 {
				t.Fatalf("keys generate: exit %d, stderr %s", code, errOut)
			}
			privFile := writeFile(t, "priv.jwk", priv)
			verifyFile := privFile
			if !strings.HasPrefix(alg, "HS") {
				code, pub, errOut := run(t, "", "keys", "generate", "--alg", alg, "--public")
				if code != 0 || strings.Contains(pub, `"d"`) {
					t.Fatalf("keys generate --public: exit %d, stdout %s, stderr %s", code, pub, errOut)
				}
				// The public half of the key we sign with, exported through
				// the library, is what verify gets.
				verifyFile = writeFile(t, "pub.jwk", publicOf(t, priv))
			}
			code, tok, errOut := run(t, "", "token", "sign", "--key", privFile, "--claims", claims, "--typ", "at+jwt")
			if code != 0 {
				t.Fatalf("token sign: exit %d, stderr %s", code, errOut)
			}
			tok = strings.TrimSpace(tok)
			code, out, errOut := run(t, "", "token", "verify", "--key", verifyFile, "--iss", "https://issuer.test", "--aud", "api", "--typ", "at+jwt", tok)
			if code != 0 || !strings.Contains(out, `"sub": "alice"`) {
				t.Fatalf("token verify: exit %d, stdout %s, stderr %s", code, out, errOut)
			}
			// From stdin.
			if code, _, errOut := run(t, tok+"\n", "token", "verify", "--key", verifyFile, "-"); code != 0 {
				t.Fatalf("token verify -: exit %d, stderr %s", code, errOut)
			}
			// Wrong audience: exit 1 and the reason on stderr.
			code, out, errOut = run(t, "", "token", "verify", "--key", verifyFile, "--aud", "other", tok)
			if code != 1 || out != "" || !strings.Contains(errOut, "audience") {
				t.Errorf("wrong aud: got exit %d stdout %q stderr %q, want exit 1 and an audience error", code, out, errOut)
			}
			// Tampered payload.
			parts := strings.Split(tok, ".")
			parts[1] = parts[1][:len(parts[1])-2] + "xx"
			if code, _, _ := run(t, "", "token", "verify", "--key", verifyFile, strings.Join(parts, ".")); code != 1 {
				t.Errorf("tampered token: got exit %d, want 1", code)
			}
			// decode marks its output as unverified.
			code, out, _ = run(t, "", "token", "decode", tok)
			if code != 0 || !strings.Contains(out, "UNVERIFIED") || !strings.Contains(out, `"alg": "`+alg+`"`) || !strings.Contains(out, `"sub": "alice"`) {
				t.Errorf("decode: exit %d, output %s", code, out)
			}
		})
	}
}

func TestVerifyJWSOnly(t *testing.T) {
	_, priv, _ := run(t, "", "keys", "generate", "--alg", "ES256")
	keyFile := writeFile(t, "k.jwk", priv)
	// A payload that is not a claims set: --jws verifies it, plain verify refuses.
	code, tok, errOut := run(t, "", "token", "sign", "--key", keyFile, "--claims", `{"hello":"world"}`)
	if code != 0 {
		t.Fatalf("sign: %d %s", code, errOut)
	}
	tok = strings.TrimSpace(tok)
	if code, out, errOut := run(t, "", "token", "verify", "--key", keyFile, "--jws", tok); code != 0 || !strings.Contains(out, `"hello":"world"`) {
		t.Errorf("--jws: got exit %d stdout %q stderr %q", code, out, errOut)
	}
	if code, _, errOut := run(t, "", "token", "verify", "--key", keyFile, tok); code != 1 || !strings.Contains(errOut, "exp") {
		t.Errorf("no exp: got exit %d stderr %q, want 1 and a missing exp", code, errOut)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no args", nil, exitUsage},
		{"unknown command", []string{"frobnicate"}, exitUsage},
		{"verify without key", []string{"token", "verify", "x.y.z"}, exitUsage},
		{"bad alg", []string{"keys", "generate", "--alg", "none"}, exitUsage},
		{"decode garbage", []string{"token", "decode", "not-a-token"}, exitFailure},
		{"help", []string{"help"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _, _ := run(t, "", tt.args...); got != tt.want {
				t.Errorf("got exit %d, want %d", got, tt.want)
			}
		})
	}
}
