package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoginThrottleEndToEnd hammers login with a wrong password until the
// server answers 429 with Retry-After, the same for an unknown account,
// and checks that the throttle lifts and that /metrics counted it all.
// The first back-off is 4 s, not the default 1 s, so that a busy machine
// stalling between two attempts does not let the fourth one through.
func TestLoginThrottleEndToEnd(t *testing.T) {
	const backoff = 4 * time.Second
	s := startServer(t, "--login-attempts", "3", "--login-backoff", backoff.String())
	const pass = "correct horse battery staple"
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"alice","password":"`+pass+`"}`, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}

	hammer := func(name string) (string, http.Header) {
		t.Helper()
		for i := range 10 {
			var body map[string]any
			code, h := call(t, "POST", s.base+"/v1/login", "", "application/json", `{"username":"`+name+`","password":"wrong password"}`, &body)
			switch code {
			case 401:
				continue
			case 429:
				if i != 3 {
					t.Errorf("%s: first 429 after %d failures, want 3", name, i)
				}
				if body["error"] != "too_many_requests" {
					t.Errorf("%s: 429 body %v", name, body)
				}
				return fmt.Sprint(body), h
			default:
				t.Fatalf("%s: login attempt %d: status %d", name, i+1, code)
			}
		}
		t.Fatalf("%s: 10 wrong passwords, never a 429", name)
		return "", nil
	}
	b1, h1 := hammer("alice")
	// Throttled, the right password is not even checked.
	if code, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", `{"username":"alice","password":"`+pass+`"}`, nil); code != 429 {
		t.Fatalf("right password while throttled: %d, want 429", code)
	}
	b2, h2 := hammer("nobody")
	if b1 != b2 {
		t.Errorf("throttled answers differ for an existing and an unknown account: %s vs %s", b1, b2)
	}
	for _, h := range []http.Header{h1, h2} {
		if got := h.Get("Retry-After"); got != "4" {
			t.Errorf("Retry-After %q, want 4 (the first back-off, --login-backoff)", got)
		}
	}
	// It lifts after Retry-After.
	time.Sleep(backoff + 100*time.Millisecond)
	s.login(t, "alice", pass)

	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`keycard_logins_total{outcome="failed"} 6`,
		`keycard_logins_total{outcome="throttled"} 3`,
		`keycard_logins_total{outcome="succeeded"} 1`,
		`keycard_http_requests_total{code="429",route="POST /v1/login"} 3`,
	} {
		if !strings.Contains(text, "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(text, "\nkeycard_signing_key_age_seconds ") {
		t.Error("/metrics lacks the signing key age")
	}
	if strings.Contains(s.log.String(), "wrong password") || strings.Contains(s.log.String(), pass) {
		t.Error("a password reached the log")
	}
}

func TestLoginThrottleFlagsChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--login-attempts", "-1"},
		{"--login-address-attempts", "-1"},
		{"--login-lockout-max", "0s"},
		{"--login-backoff", "0s"},
		{"--login-lockout-max", "2s", "--login-backoff", "3s"},
		{"--login-refill", "0s"},
	} {
		full := append([]string{"serve", "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, args...)
		if code, _, errOut := run(t, "", full...); code == 0 || !strings.Contains(errOut, args[0]) {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming the flag", args, code, errOut)
		}
	}
}
