package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// redisURL returns KEYCARD_TEST_REDIS, or skips the test.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("KEYCARD_TEST_REDIS")
	if u == "" {
		t.Skip("set KEYCARD_TEST_REDIS=redis://127.0.0.1:6379/0 to run the Redis tests")
	}
	return u
}

// TestRedisSharedLoginThrottle: with --redis, failed logins on one
// instance count on another (two servers, each on its own database,
// sharing one Redis).
func TestRedisSharedLoginThrottle(t *testing.T) {
	url := redisURL(t)
	var b [6]byte
	rand.Read(b[:])
	prefix := "keycard-test-" + hex.EncodeToString(b[:]) + ":"
	args := []string{"--redis", url, "--redis-prefix", prefix, "--login-attempts", "2", "--login-address-attempts", "100"}
	a, other := startServer(t, args...), startServer(t, args...)
	for _, s := range []*runningServer{a, other} {
		if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"carol","password":"correct horse battery staple"}`, nil); code != 201 {
			t.Fatalf("register: %d", code)
		}
	}
	bad := `{"username":"carol","password":"wrong password"}`
	for i := range 2 {
		if code, _ := call(t, "POST", a.base+"/v1/login", "", "application/json", bad, nil); code != 401 {
			t.Fatalf("failure %d on the first instance: %d, want 401", i+1, code)
		}
	}
	code, h := call(t, "POST", other.base+"/v1/login", "", "application/json", bad, nil)
	if code != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("third failure, on the second instance: %d (Retry-After %q), want 429: the throttle is not shared", code, h.Get("Retry-After"))
	}
	// A Redis call slower than the throttle's bound (200 ms) marks the
	// instance degraded until a later call gets through; on a loaded
	// machine that can happen with Redis up, so readyz is asked until a
	// login has reached Redis again.
	eventually(t, "readyz ok with Redis up", func() bool {
		call(t, "POST", a.base+"/v1/login", "", "application/json", bad, nil)
		var ready map[string]any
		code, _ := call(t, "GET", a.base+"/readyz", "", "", "", &ready)
		return code == 200 && ready["status"] == "ok"
	})
}

// TestRedisDownFallsBack: with Redis unreachable, logins go on with
// per-instance limits, and /readyz and /metrics say so.
func TestRedisDownFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "redis://" + ln.Addr().String() + "/0"
	ln.Close() // nothing listens there now
	s := startServer(t, "--redis", dead, "--login-attempts", "2")
	const pass = "correct horse battery staple"
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"dora","password":"`+pass+`"}`, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}
	s.login(t, "dora", pass)
	bad := `{"username":"dora","password":"wrong password"}`
	codes := []int{}
	for range 3 {
		code, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", bad, nil)
		codes = append(codes, code)
	}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != 429 {
		t.Errorf("failed logins with Redis down: %v, want [401 401 429] from the local limits", codes)
	}
	var ready struct {
		Status   string   `json:"status"`
		Degraded []string `json:"degraded"`
	}
	code, _ := call(t, "GET", s.base+"/readyz", "", "", "", &ready)
	if code != 200 || ready.Status != "degraded" || len(ready.Degraded) == 0 || !strings.Contains(ready.Degraded[0], "Redis") {
		t.Errorf("readyz with Redis down: %d %+v, want 200 degraded", code, ready)
	}
	b, _ := json.Marshal(ready)
	if strings.Contains(string(b), "password") {
		t.Errorf("readyz leaks: %s", b)
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metricsText), "keycard_login_throttle_degraded 2") {
		t.Errorf("metrics lack keycard_login_throttle_degraded 2")
	}
}
