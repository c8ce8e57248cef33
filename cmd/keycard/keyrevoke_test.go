package main

// The emergency key revocation by the CLI, against a running server on the
// same data: from the moment "keycard keys revoke" returns, the server
// signs nothing with the revoked key. This file has helpers of its own (a
// krv prefix), so that it depends on nothing but Main and the documented
// command line.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/jose"
)

// krvBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type krvBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *krvBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *krvBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// krvRun runs the keycard command line in this process and returns its
// exit code and output.
func krvRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

var krvListening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// krvServe starts "keycard serve" with args on port 0 and returns its base
// URL; the server stops when the test ends.
func krvServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := &krvBuffer{}
	done := make(chan int, 1)
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--argon2-memory", "64", "--argon2-iterations", "1"}, args...)
	go func() { done <- Main(ctx, args, strings.NewReader(""), io.Discard, log) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := krvListening.FindStringSubmatch(log.String()); m != nil {
			return "http://" + m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited with %d: %s", code, log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", log.String())
		}
	}
}

// krvPost posts a body and decodes the JSON answer into out, failing the
// test unless the status is 200.
func krvPost(t *testing.T, u, contentType, basic, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d, body %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("POST %s: decoding %q: %v", u, b, err)
	}
}

// krvKID returns the kid of a token's header.
func krvKID(t *testing.T, token string) string {
	t.Helper()
	m, err := jose.UnsafeParse(token)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return m.Header.KeyID
}

type krvTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// From the moment "keycard keys revoke" returns, a server running on the
// same SQLite data directory, or the same PostgreSQL database, signs the
// very next token — a login's, a refresh's, a service client's — with
// another key, and serves that key, not the revoked one, in its JWKS: no
// waiting for a notification or a cache.
func TestKeysRevokeHoldsAtARunningServer(t *testing.T) {
	const pass = "correct horse battery staple"
	backends := []struct {
		name  string
		store func(t *testing.T) []string // the flags naming the store
	}{
		{"sqlite", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"--store", pgtest.NewDatabase(t)} }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			data := t.TempDir()
			storage := append([]string{"--data", data}, b.store(t)...)
			on := append([]string{"--dev"}, storage...)
			base := krvServe(t, on...) // makes the database the commands below work on
			if code, _, errOut := krvRun(t, pass+"\n", append([]string{"users", "add", "--username", "alice", "--password-stdin",
				"--argon2-memory", "64", "--argon2-iterations", "1"}, storage...)...); code != 0 {
				t.Fatalf("users add: exit %d, %s", code, errOut)
			}
			code, out, errOut := krvRun(t, "", append([]string{"clients", "add", "--name", "gateway"}, storage...)...)
			var client struct {
				ID     string `json:"client_id"`
				Secret string `json:"client_secret"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &client) != nil {
				t.Fatalf("clients add: exit %d, %s %s", code, out, errOut)
			}

			login := func(t *testing.T) krvTokens {
				var tok krvTokens
				krvPost(t, base+"/v1/login", "application/json", "", `{"username":"alice","password":"`+pass+`"}`, &tok)
				return tok
			}
			refresh := login(t).RefreshToken
			mints := []struct {
				name string
				mint func(t *testing.T) string
			}{
				{"login", func(t *testing.T) string { return login(t).AccessToken }},
				{"refresh", func(t *testing.T) string {
					var tok krvTokens
					krvPost(t, base+"/oauth/token", "application/x-www-form-urlencoded", "",
						url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode(), &tok)
					refresh = tok.RefreshToken
					return tok.AccessToken
				}},
				{"client_credentials", func(t *testing.T) string {
					var tok krvTokens
					krvPost(t, base+"/oauth/token", "application/x-www-form-urlencoded", client.ID+":"+client.Secret,
						"grant_type=client_credentials", &tok)
					return tok.AccessToken
				}},
			}
			for _, m := range mints {
				t.Run(m.name, func(t *testing.T) {
					revoked := krvKID(t, m.mint(t))
					// "--": a kid (base64url) may start with "-".
					code, out, errOut := krvRun(t, "", append([]string{"keys", "revoke"}, append(on, "--", revoked)...)...)
					var res struct {
						RevokedKID string `json:"revoked_kid"`
						ActiveKID  string `json:"active_kid"`
					}
					if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.RevokedKID != revoked || res.ActiveKID == revoked {
						t.Fatalf("keys revoke %s: exit %d, %s %s", revoked, code, out, errOut)
					}

					tok := m.mint(t)
					if kid := krvKID(t, tok); kid != res.ActiveKID {
						t.Errorf("the next %s token after keys revoke is signed by %s, want %s (revoked: %s)", m.name, kid, res.ActiveKID, revoked)
					}
					resp, err := http.Get(base + "/.well-known/jwks.json")
					if err != nil {
						t.Fatal(err)
					}
					jwks, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					set, err := jose.ParseKeySet(jwks)
					if err != nil {
						t.Fatalf("JWKS %s: %v", jwks, err)
					}
					if set.Lookup(revoked) != nil || set.Lookup(res.ActiveKID) == nil {
						t.Errorf("the server's JWKS right after keys revoke: %s; want %s and not %s", jwks, res.ActiveKID, revoked)
					}
				})
			}
		})
	}
}
