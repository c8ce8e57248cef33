package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/webhook"
	"github.com/keycard-auth/keycard/jose"
)

// testConfig is a development server on SQLite in a temporary directory,
// with cheap password hashing.
func testConfig(t *testing.T) Config {
	c := Defaults()
	c.Data, c.Dev, c.Registration = t.TempDir(), true, true
	c.Argon2Memory, c.Argon2Iterations = 64, 1
	c.Addr = "127.0.0.1:0"
	return c
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *Config)
		want   string // in the error; "" for none
	}{
		{"defaults in dev", func(c *Config) {}, ""},
		{"no master key outside dev", func(c *Config) { c.Dev = false }, "no master key"},
		{"a master key file", func(c *Config) { c.Dev, c.MasterKeyFile = false, "mk" }, ""},
		{"a bad store", func(c *Config) { c.Store = "mysql://u:secret@h/db" }, "--store"},
		{"a bad algorithm", func(c *Config) { c.Alg = "none" }, "--signing-alg"},
		{"negative attempts", func(c *Config) { c.LoginAttempts = -1 }, "--login-attempts"},
		{"no refill", func(c *Config) { c.LoginRefill = 0 }, "--login-refill"},
		{"short lockout", func(c *Config) { c.LoginLockoutMax = time.Millisecond }, "--login-lockout-max"},
		{"short back-off", func(c *Config) { c.LoginBackoff = 500 * time.Millisecond }, "--login-backoff"},
		{"lockout below the back-off", func(c *Config) { c.LoginBackoff, c.LoginLockoutMax = time.Minute, 30*time.Second }, "--login-lockout-max"},
		{"a longer back-off", func(c *Config) { c.LoginBackoff, c.LoginLockoutMax = time.Minute, time.Minute }, ""},
		{"negative session cap", func(c *Config) { c.MaxSessionsPerUser = -1 }, "--max-sessions-per-user"},
		{"negative lifetime", func(c *Config) { c.AccessTTL = -time.Second }, "--access-ttl"},
		{"certificate without key", func(c *Config) { c.TLS.CertFile = "c.pem" }, "go together"},
		{"bad proxies", func(c *Config) { c.TLS.BehindProxy, c.TLS.TrustedProxies = true, "lb.example" }, "--trusted-proxies"},
		{"http issuer", func(c *Config) { c.Dev, c.MasterKey, c.Issuer = false, "k", "http://auth.example.com" }, "refusing --issuer"},
		{"negative back-channel attempts", func(c *Config) { c.Backchannel.MaxAttempts = -1 }, "--backchannel-attempts"},
		{"negative back-channel timeout", func(c *Config) { c.Backchannel.Timeout = -time.Second }, "--backchannel-timeout"},
		{"cookie mode without TLS", func(c *Config) { c.Dev, c.MasterKey, c.CookieMode = false, "k", true }, "--cookie-mode"},
		{"an OTLP endpoint", func(c *Config) { c.OTLPEndpoint = "http://127.0.0.1:4318" }, ""},
		{"an OTLP endpoint with credentials", func(c *Config) { c.OTLPEndpoint = "https://u:secret@otel.example" }, "--otlp-endpoint"},
		{"an OTLP gRPC endpoint", func(c *Config) { c.OTLPEndpoint = "grpc://otel.example:4317" }, "--otlp-endpoint"},
		{"a claims hook", func(c *Config) { c.ClaimsHook = ClaimsHookConfig{URL: "https://hooks.example/c", Secret: hookSecret} }, ""},
		{"a claims hook without a secret", func(c *Config) { c.ClaimsHook.URL = "https://hooks.example/c" }, "needs a secret"},
		{"a claims hook secret without a hook", func(c *Config) { c.ClaimsHook.Secret = hookSecret }, "without --claims-hook-url"},
		{"a claims hook secret in the wrong form", func(c *Config) {
			c.ClaimsHook = ClaimsHookConfig{URL: "https://hooks.example/c", Secret: "secret-of-the-hook"}
		}, "whsec_"},
		{"a plain-http claims hook outside dev", func(c *Config) {
			c.Dev, c.MasterKey, c.ClaimsHook = false, "k", ClaimsHookConfig{URL: "http://hooks.example/c", Secret: hookSecret}
		}, "--claims-hook-url"},
		{"a missing claims hook secret file", func(c *Config) {
			c.ClaimsHook = ClaimsHookConfig{URL: "https://hooks.example/c", SecretFile: "/nonexistent/hook.secret"}
		}, "--claims-hook-secret-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.change(&c)
			err := c.Check()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Check() = %v, want %q", err, tc.want)
			}
			for _, secret := range []string{"u:secret", hookSecret[len("whsec_"):], "secret-of-the-hook"} {
				if err != nil && strings.Contains(err.Error(), secret) {
					t.Errorf("the error repeats a secret: %v", err)
				}
			}
		})
	}
}

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestClaimsHook: a server configured with a custom-claims hook asks it
// at sign-in, with a signed request, and puts its claims in the access
// token; a hook that fails fails the sign-in with a server_error and no
// token, or with Continue, gives a token without its claims.
func TestClaimsHook(t *testing.T) {
	var fail atomic.Bool
	var signed atomic.Bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get("Webhook-Timestamp"), 10, 64)
		want, err := webhook.Sign(hookSecret, r.Header.Get("Webhook-Id"), time.Unix(ts, 0), body)
		signed.Store(err == nil && r.Header.Get("Webhook-Signature") == want)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token": {"https://app.example/tenant": "acme"}}`)
	}))
	defer hook.Close()
	for _, cont := range []bool{false, true} {
		c := testConfig(t)
		c.ClaimsHook = ClaimsHookConfig{URL: hook.URL, Secret: hookSecret, Continue: cont}
		s := serve(t, c)
		login := func() (int, map[string]any) {
			t.Helper()
			resp, err := http.Post(s.base+"/v1/login", "application/json", strings.NewReader(`{"username":"alice","password":"correct horse battery"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		resp, err := http.Post(s.base+"/v1/users", "application/json", strings.NewReader(`{"username":"alice","password":"correct horse battery"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		fail.Store(false)
		code, out := login()
		tok, _ := out["access_token"].(string)
		if code != 200 || tok == "" || !signed.Load() {
			t.Fatalf("login: %d %v (request signed: %v)", code, out, signed.Load())
		}
		if claims := payload(t, tok); claims["https://app.example/tenant"] != "acme" {
			t.Errorf("access token claims %v: want the hook's", claims)
		}
		fail.Store(true)
		code, out = login()
		if !cont {
			if code != 500 || out["error"] != "server_error" || out["access_token"] != nil {
				t.Errorf("deny, hook down: login %d %v; want 500 server_error", code, out)
			}
		} else if tok, _ := out["access_token"].(string); code != 200 || tok == "" || payload(t, tok)["https://app.example/tenant"] != nil {
			t.Errorf("continue, hook down: login %d %v; want a token without the hook's claims", code, out)
		}
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	}
}

// payload decodes a JWT's claims without verifying them.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	msg, err := jose.UnsafeParse(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(msg.Payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t)
	// The command line's commands never make a database.
	missing := c
	missing.Data = filepath.Join(t.TempDir(), "typo")
	if _, err := Open(ctx, missing, Options{Existing: true}); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("Open(Existing) of a missing directory: %v, want ErrNoDatabase", err)
	}
	if _, err := os.Stat(missing.Data); err == nil {
		t.Error("Open(Existing) made the data directory")
	}
	// Without keys, no master key is needed or made.
	a, err := Open(ctx, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Service().CreateUser(ctx, auth.Operator(), "alice", "correct horse battery", nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := os.Stat(filepath.Join(c.Data, "master.key")); err == nil {
		t.Error("Open without keys made a master key")
	}
	// With keys in dev mode, the master key is made 0600 and kept.
	a, err = Open(ctx, c, Options{Keys: true, Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := a.Service().SigningKeys(ctx)
	if err != nil || len(keys) != 1 || keys[0].State != keycard.KeyActive {
		t.Errorf("signing keys: %+v, %v; want one active", keys, err)
	}
	a.Close()
	fi, err := os.Stat(filepath.Join(c.Data, "master.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v, %v; want mode 0600", fi, err)
	}
	mk, _ := os.ReadFile(filepath.Join(c.Data, "master.key"))
	// The same key opens the same keys; another key does not.
	withFile := c
	withFile.Dev, withFile.MasterKeyFile = false, filepath.Join(c.Data, "master.key")
	a, err = Open(ctx, withFile, Options{Keys: true, Existing: true})
	if err != nil {
		t.Fatalf("reopening with the master key file: %v", err)
	}
	a.Close()
	other, _ := auth.GenerateMasterKey(nil)
	withOther := c
	withOther.Dev, withOther.MasterKey = false, other
	if a, err := Open(ctx, withOther, Options{Keys: true, Existing: true}); err == nil {
		a.Close()
		t.Error("another master key opened the signing keys")
	}
	if strings.TrimSpace(string(mk)) == other {
		t.Fatal("two generated master keys are equal")
	}
}

// started is an App serving on a loopback port.
type started struct {
	base string
	stop func() error
}

func serve(t *testing.T, c Config) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.Issuer = "http://" + ln.Addr().String()
	a, err := Open(ctx, c, Options{Keys: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- a.Serve(ctx, ln, &tlsconfig.Secured{}, func() { close(ready) }) }()
	<-ready
	var once sync.Once
	var serr error
	s := &started{base: c.Issuer, stop: func() error {
		once.Do(func() {
			cancel()
			serr = <-done
			a.Close()
		})
		return serr
	}}
	t.Cleanup(func() { s.stop() })
	return s
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %q is not JSON", url, b)
		}
	}
	return resp.StatusCode
}

// TestServe: the App answers its API and pages, is ready, and a shutdown
// ends the feed's long-polls so that it drains at once.
func TestServe(t *testing.T) {
	s := serve(t, testConfig(t))
	var meta map[string]any
	if code := getJSON(t, s.base+"/.well-known/openid-configuration", &meta); code != 200 || meta["issuer"] != s.base {
		t.Errorf("discovery: %d %v", code, meta)
	}
	if code := getJSON(t, s.base+"/readyz", nil); code != 200 {
		t.Errorf("readyz: %d", code)
	}
	resp, err := http.Get(s.base + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("sign-in page: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if code := getJSON(t, s.base+"/metrics", nil); code != 200 {
		t.Errorf("metrics: %d", code)
	}
	// A long-poll of the feed (as a service client) is in flight while
	// the server stops: the shutdown does not wait for its 25 s.
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		resp, err := http.Get(s.base + "/v1/revocations?after=0&wait=25s")
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	<-polled
}

// TestBackgroundWakesFeedReaders: an entry another process appends to the
// revocation feed (the command line, on the same SQLite database) wakes
// the server's feed readers, through the watch of Background.
func TestBackgroundWakesFeedReaders(t *testing.T) {
	ctx := context.Background()
	c := testConfig(t)
	a, err := Open(ctx, c, Options{Keys: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	bg, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Background(bg) }()
	defer func() { stop(); <-done }()
	changed := a.Service().RevocationsChanged()

	// The other process: the command line's own App on the same data.
	cli, err := Open(ctx, c, Options{Existing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// The watch reads the feed's position when it starts, which a loaded
	// machine may delay past an append: append until one wakes them.
	deadline := time.Now().Add(30 * time.Second)
	for woken := false; !woken; {
		if time.Now().After(deadline) {
			t.Fatal("the feed's readers were not woken")
		}
		if _, err := cli.Service().RevokeAll(ctx, auth.Operator()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			woken = true
		case <-time.After(2 * time.Second):
		}
	}
}
