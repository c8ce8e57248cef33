package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningServer is a keycard serve started through Main on port 0.
type runningServer struct {
	base string
	data string
	log  *syncBuffer
	stop func() int
}

var listenRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

func startServer(t *testing.T, extra ...string) *runningServer {
	t.Helper()
	data := t.TempDir()
	return startServerIn(t, data, extra...)
}

func startServerIn(t *testing.T, data string, extra ...string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logBuf := &syncBuffer{}
	args := append([]string{"serve", "--dev", "--data", data, "--addr", "127.0.0.1:0",
		"--argon2-memory", "64", "--argon2-iterations", "1"}, extra...)
	done := make(chan int, 1)
	go func() { done <- Main(ctx, args, strings.NewReader(""), io.Discard, logBuf) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(logBuf.String()); m != nil {
			s := &runningServer{base: "http://" + m[1], data: data, log: logBuf}
			var once sync.Once
			code := 0
			s.stop = func() int {
				once.Do(func() { cancel(); code = <-done })
				return code
			}
			t.Cleanup(func() { s.stop() })
			return s
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("serve exited with %d: %s", code, logBuf.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not start: %s", logBuf.String())
		}
	}
}

// call sends a request and decodes a JSON answer into out (when not nil).
func call(t *testing.T, method, u, bearer, contentType, body string, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	req.Header.Set("User-Agent", "keycard-e2e")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, u, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

type tokenResponse struct {
	Error        string `json:"error"`
	Description  string `json:"error_description"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

func (s *runningServer) login(t *testing.T, user, pass string) tokenResponse {
	t.Helper()
	var tr tokenResponse
	code, h := call(t, "POST", s.base+"/v1/login", "", "application/json", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass), &tr)
	if code != 200 || tr.AccessToken == "" || tr.TokenType != "Bearer" || tr.RefreshToken == "" {
		t.Fatalf("login: %d %+v", code, tr)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("login Cache-Control: got %q, want no-store", h.Get("Cache-Control"))
	}
	return tr
}

func (s *runningServer) refresh(t *testing.T, refresh string) (int, tokenResponse) {
	t.Helper()
	var tr tokenResponse
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}.Encode()
	code, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded", form, &tr)
	if code != 200 {
		t.Logf("refresh: %d %+v", code, tr)
	}
	return code, tr
}

// verifyWithCLI checks a token against the served JWKS with
// "keycard token verify".
func verifyWithCLI(t *testing.T, s *runningServer, token string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "", "token", "verify", "--key", path, "--iss", s.base, "--aud", "api", "--typ", "at+jwt", token)
	return code, out + errOut
}

func TestServeEndToEnd(t *testing.T) {
	s := startServer(t, "--refresh-grace", "4s")
	const pass = "correct horse battery staple"

	// Health and discovery.
	if code, _ := call(t, "GET", s.base+"/healthz", "", "", "", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, _ := call(t, "GET", s.base+"/readyz", "", "", "", nil); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
	var disc map[string]any
	if code, _ := call(t, "GET", s.base+"/.well-known/openid-configuration", "", "", "", &disc); code != 200 || disc["issuer"] != s.base || disc["jwks_uri"] != s.base+"/.well-known/jwks.json" {
		t.Fatalf("discovery: %d %v", code, disc)
	}

	// Register (on with --dev), then a duplicate under another case.
	var reg map[string]any
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"Alice","password":"`+pass+`"}`, &reg); code != 201 || reg["username"] != "Alice" {
		t.Fatalf("register: %d %v", code, reg)
	}
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"ALICE","password":"`+pass+`"}`, nil); code != 409 {
		t.Errorf("duplicate username: got %d, want 409", code)
	}

	// Login, /v1/me, and the same failure for unknown user and bad password.
	tok := s.login(t, "alice", pass)
	var me map[string]any
	if code, _ := call(t, "GET", s.base+"/v1/me", tok.AccessToken, "", "", &me); code != 200 || me["username"] != "Alice" {
		t.Fatalf("me: %d %v", code, me)
	}
	var e1, e2 map[string]any
	c1, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", `{"username":"alice","password":"wrong password"}`, &e1)
	c2, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", `{"username":"nobody","password":"wrong password"}`, &e2)
	if c1 != 401 || c2 != 401 || fmt.Sprint(e1) != fmt.Sprint(e2) {
		t.Errorf("login failures differ: %d %v vs %d %v", c1, e1, c2, e2)
	}
	if code, out := verifyWithCLI(t, s, tok.AccessToken); code != 0 {
		t.Errorf("token verify against served JWKS: exit %d: %s", code, out)
	}

	// Refresh, then 50 concurrent refreshes of one token.
	code, r1 := s.refresh(t, tok.RefreshToken)
	if code != 200 || r1.RefreshToken == "" || r1.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %d %+v", code, r1)
	}
	var wg sync.WaitGroup
	got := make([]tokenResponse, 50)
	codes := make([]int, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], got[i] = s.refresh(t, r1.RefreshToken)
		}()
	}
	wg.Wait()
	for i := range got {
		if codes[i] != 200 || got[i].RefreshToken != got[0].RefreshToken {
			t.Fatalf("concurrent refresh %d: %d, successor equal: %v", i, codes[i], got[i].RefreshToken == got[0].RefreshToken)
		}
	}
	r2 := got[0]

	// Reuse of r1 after the grace window is theft: the session dies.
	time.Sleep(4100 * time.Millisecond)
	if code, _ := s.refresh(t, r1.RefreshToken); code != 400 {
		t.Errorf("reuse after grace: got %d, want 400", code)
	}
	if code, _ := s.refresh(t, r2.RefreshToken); code != 400 {
		t.Errorf("successor after theft: got %d, want 400", code)
	}
	if code, h := call(t, "GET", s.base+"/v1/me", r2.AccessToken, "", "", nil); code != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("me after theft: %d %q, want 401 invalid_token", code, h.Get("WWW-Authenticate"))
	}

	// Logout and logout all.
	a := s.login(t, "alice", pass)
	b := s.login(t, "alice", pass)
	c := s.login(t, "alice", pass)
	var list struct {
		Sessions []map[string]any `json:"sessions"`
	}
	if code, _ := call(t, "GET", s.base+"/v1/sessions", a.AccessToken, "", "", &list); code != 200 || len(list.Sessions) != 3 {
		t.Fatalf("sessions: %d %v", code, list)
	}
	if code, _ := call(t, "POST", s.base+"/v1/logout", a.AccessToken, "", "", nil); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, _ := call(t, "GET", s.base+"/v1/me", a.AccessToken, "", "", nil); code != 401 {
		t.Errorf("me after logout: %d", code)
	}
	if code, _ := s.refresh(t, a.RefreshToken); code != 400 {
		t.Errorf("refresh after logout: %d", code)
	}

	// Password change keeps the caller's session and kills the others.
	if code, _ := call(t, "POST", s.base+"/v1/password", b.AccessToken, "application/json", `{"current_password":"`+pass+`","new_password":"another long password"}`, nil); code != 204 {
		t.Fatalf("password change: %d", code)
	}
	if code, _ := call(t, "GET", s.base+"/v1/me", b.AccessToken, "", "", nil); code != 200 {
		t.Errorf("caller's session after password change: %d", code)
	}
	if code, _ := s.refresh(t, c.RefreshToken); code != 400 {
		t.Errorf("other session after password change: %d", code)
	}
	d := s.login(t, "alice", "another long password")
	if code, _ := call(t, "POST", s.base+"/v1/logout/all", d.AccessToken, "", "", nil); code != 204 {
		t.Fatalf("logout all: %d", code)
	}
	for _, tr := range []tokenResponse{b, d} {
		if code, _ := call(t, "GET", s.base+"/v1/me", tr.AccessToken, "", "", nil); code != 401 {
			t.Errorf("me after logout all: %d", code)
		}
	}

	// Key rotation from the CLI while the server runs: tokens from before
	// and after both verify against the served JWKS.
	before := s.login(t, "alice", "another long password")
	if code, out, errOut := run(t, "", "keys", "rotate", "--dev", "--data", s.data, "--now"); code != 0 {
		t.Fatalf("keys rotate: %d %s %s", code, out, errOut)
	}
	var after tokenResponse
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = s.login(t, "alice", "another long password")
		if kidOf(t, after.AccessToken) != kidOf(t, before.AccessToken) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not pick up the rotated key")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, tr := range map[string]tokenResponse{"before": before, "after": after} {
		if code, out := verifyWithCLI(t, s, tr.AccessToken); code != 0 {
			t.Errorf("%s rotation: token verify exit %d: %s", name, code, out)
		}
	}

	if code := s.stop(); code != 0 {
		t.Errorf("serve exit code %d", code)
	}
	// No secret ever reached the log.
	logText := s.log.String()
	for _, secret := range []string{pass, "another long password", tok.AccessToken, tok.RefreshToken, r1.RefreshToken, r2.RefreshToken, after.AccessToken} {
		if strings.Contains(logText, secret) {
			t.Errorf("a secret reached the log: %.12s…", secret)
		}
	}
	if strings.Contains(strings.ToLower(logText), "bearer ") {
		t.Error("an Authorization value reached the log")
	}
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	code, out, _ := run(t, "", "token", "decode", token)
	if code != 0 {
		t.Fatalf("decode: %d", code)
	}
	m := regexp.MustCompile(`"kid": "([^"]+)"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no kid in %s", out)
	}
	return m[1]
}

func TestServeRefusesWithoutMasterKey(t *testing.T) {
	code, _, errOut := run(t, "", "serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "master key") {
		t.Errorf("got exit %d, stderr %q; want a refusal naming the master key", code, errOut)
	}
}

func TestDevMasterKeyFileMode(t *testing.T) {
	s := startServer(t)
	fi, err := os.Stat(filepath.Join(s.data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("master.key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestUsersCommands(t *testing.T) {
	data := newData(t)
	code, out, errOut := run(t, "hunter2hunter2\n", "users", "add", "--data", data, "--username", "Root", "--role", "admin", "--password-stdin")
	if code != 0 || !strings.Contains(out, `"admin"`) {
		t.Fatalf("users add: %d %s %s", code, out, errOut)
	}
	if code, _, _ := run(t, "short\n", "users", "add", "--data", data, "--username", "x", "--password-stdin"); code != 1 {
		t.Errorf("short password: got exit %d, want 1", code)
	}
	code, out, _ = run(t, "", "users", "list", "--data", data)
	if code != 0 || !strings.Contains(out, `"username":"Root"`) {
		t.Errorf("users list: %d %s", code, out)
	}
	s := startServerIn(t, data)
	tok := s.login(t, "root", "hunter2hunter2")
	if code, _, errOut := run(t, "", "users", "disable", "--data", data, "--username", "ROOT"); code != 0 {
		t.Fatalf("users disable: %d %s", code, errOut)
	}
	if code, _ := call(t, "GET", s.base+"/v1/me", tok.AccessToken, "", "", nil); code != 401 {
		t.Errorf("me of a disabled user: %d", code)
	}
	var e map[string]any
	if code, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", `{"username":"root","password":"hunter2hunter2"}`, &e); code != 401 {
		t.Errorf("login of a disabled user: %d", code)
	}
}

func TestConfigLayering(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "keycard.yaml")
	os.WriteFile(cfg, []byte("data: "+dir+"\nbogus_key: 1\n"), 0o600)
	if code, _, errOut := run(t, "", "users", "list", "--config", cfg); code != exitUsage || !strings.Contains(errOut, "bogus_key") {
		t.Errorf("unknown YAML key: got exit %d, stderr %q", code, errOut)
	}
	for _, d := range []string{"from-yaml", "from-env", "from-flag"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
		initData(t, filepath.Join(dir, d))
	}
	os.WriteFile(cfg, []byte("data: "+filepath.Join(dir, "from-yaml")+"\n"), 0o600)
	if code, _, errOut := run(t, "pass-word-123\n", "users", "add", "--config", cfg, "--username", "u1", "--password-stdin"); code != 0 {
		t.Fatalf("users add with config: %d %s", code, errOut)
	}
	wantUser := func(data, name, source string) {
		t.Helper()
		if _, out, _ := run(t, "", "users", "list", "--data", data); !strings.Contains(out, `"username":"`+name+`"`) {
			t.Errorf("%s not used: %s is not in %s", source, name, data)
		}
	}
	wantUser(filepath.Join(dir, "from-yaml"), "u1", "the YAML data key")
	t.Setenv("KEYCARD_DATA", filepath.Join(dir, "from-env"))
	if code, _, _ := run(t, "pass-word-123\n", "users", "add", "--config", cfg, "--username", "u2", "--password-stdin"); code != 0 {
		t.Fatal("users add with env")
	}
	wantUser(filepath.Join(dir, "from-env"), "u2", "KEYCARD_DATA, over YAML,")
	flagDir := filepath.Join(dir, "from-flag")
	if code, _, _ := run(t, "pass-word-123\n", "users", "add", "--config", cfg, "--data", flagDir, "--username", "u3", "--password-stdin"); code != 0 {
		t.Fatal("users add with flag")
	}
	wantUser(flagDir, "u3", "--data, over KEYCARD_DATA,")
}
