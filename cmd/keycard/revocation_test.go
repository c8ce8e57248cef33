package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type feedPage struct {
	Entries []struct {
		Seq       int64     `json:"seq"`
		Kind      string    `json:"kind"`
		Value     string    `json:"value"`
		At        time.Time `json:"at"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"entries"`
	Next     int64 `json:"next"`
	Snapshot bool  `json:"snapshot"`
}

func (p feedPage) has(kind, value string) bool {
	for _, e := range p.Entries {
		if e.Kind == kind && e.Value == value {
			return true
		}
	}
	return false
}

// readFeed reads GET /v1/revocations?<query> as the service client.
func readFeed(t *testing.T, s *runningServer, c clientSecret, query string) (int, feedPage) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+"/v1/revocations?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != "" {
		req.SetBasicAuth(c.ClientID, c.ClientSecret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, feedPage{}
	}
	defer resp.Body.Close()
	var p feedPage
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("feed: decoding %q: %v", b, err)
		}
	}
	return resp.StatusCode, p
}

// eventually retries cond every 100 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRevocationFeedEndToEnd(t *testing.T) {
	s := startServer(t)
	const pass = "correct horse battery staple"
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", s.data, "--username", "alice", "--password-stdin",
		"--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	reader := addClient(t, s.data, "--name", "gateway")

	if code, _ := readFeed(t, s, clientSecret{}, "after=0"); code != http.StatusUnauthorized {
		t.Errorf("feed without client credentials: %d, want 401", code)
	}
	if code, _ := readFeed(t, s, reader, "after=x"); code != http.StatusBadRequest {
		t.Errorf("feed with a bad cursor: %d, want 400", code)
	}
	code, start := readFeed(t, s, reader, "after=0")
	if code != http.StatusOK {
		t.Fatalf("feed: %d", code)
	}

	// A long-poll waits for the logout, which is in the feed by the time
	// its 204 is sent.
	tok := s.login(t, "alice", pass)
	polled := make(chan feedPage, 1)
	var wokeAt time.Time
	go func() {
		_, p := readFeed(t, s, reader, fmt.Sprintf("after=%d&wait=30s", start.Next))
		wokeAt = time.Now()
		polled <- p
	}()
	time.Sleep(200 * time.Millisecond)
	loggedOut := time.Now()
	if code, _ := call(t, "POST", s.base+"/v1/logout", tok.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	if _, p := readFeed(t, s, reader, fmt.Sprintf("after=%d", start.Next)); !p.has("session", tok.SessionID) {
		t.Errorf("feed right after logout: %+v, want session %s", p, tok.SessionID)
	}
	// Introspection agrees, for the access and the refresh token alike.
	for name, token := range map[string]string{"access": tok.AccessToken, "refresh": tok.RefreshToken} {
		var in map[string]any
		if status, body := callBasic(t, s.base+"/oauth/introspect", reader.ClientID, reader.ClientSecret, "token="+token, &in); status != 200 || in["active"] != false {
			t.Errorf("introspect %s token after logout: %d %s, want active:false", name, status, body)
		}
	}
	select {
	case p := <-polled:
		if !p.has("session", tok.SessionID) {
			t.Errorf("long-poll: %+v, want session %s", p, tok.SessionID)
		}
		// Reported, not asserted: timing belongs in measurements.
		t.Logf("long-poll woke %v after the logout request was sent", wokeAt.Sub(loggedOut))
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not wake within 10s of the logout")
	}

	// keycard keys revoke, on the data directory of the running server.
	tok = s.login(t, "alice", pass)
	oldKID := kidOf(t, tok.AccessToken)
	code, out, errOut := run(t, "", "keys", "revoke", "--dev", "--data", s.data, oldKID)
	if code != 0 {
		t.Fatalf("keys revoke: %d %s", code, errOut)
	}
	var revoked struct {
		RevokedKID string `json:"revoked_kid"`
		ActiveKID  string `json:"active_kid"`
	}
	if err := json.Unmarshal([]byte(out), &revoked); err != nil || revoked.RevokedKID != oldKID || revoked.ActiveKID == "" || revoked.ActiveKID == oldKID {
		t.Fatalf("keys revoke printed %q", out)
	}
	if _, p := readFeed(t, s, reader, fmt.Sprintf("after=%d", start.Next)); !p.has("key", oldKID) {
		t.Errorf("feed after keys revoke: %+v, want key %s", p, oldKID)
	}
	// The running server reads the keys again within seconds.
	eventually(t, "old kid gone from the JWKS", func() bool {
		resp, err := http.Get(s.base + "/.well-known/jwks.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return !strings.Contains(string(b), oldKID) && strings.Contains(string(b), revoked.ActiveKID)
	})
	eventually(t, "token of the revoked key refused", func() bool {
		code, _ := call(t, "GET", s.base+"/v1/me", tok.AccessToken, "", "", nil)
		return code == http.StatusUnauthorized
	})
	if kid := kidOf(t, s.login(t, "alice", pass).AccessToken); kid != revoked.ActiveKID {
		t.Errorf("new token signed by %s, want %s", kid, revoked.ActiveKID)
	}
	if code, _, _ := run(t, "", "keys", "revoke", "--dev", "--data", s.data, oldKID); code != exitFailure {
		t.Errorf("keys revoke of a gone kid: exit %d, want %d", code, exitFailure)
	}
	if code, _, _ := run(t, "", "keys", "revoke", "--dev", "--data", s.data); code != exitUsage {
		t.Errorf("keys revoke without a kid: exit %d, want %d", code, exitUsage)
	}

	// Shutdown ends a waiting long-poll instead of waiting for it.
	polled = make(chan feedPage, 1)
	_, now := readFeed(t, s, reader, "after=0")
	go func() {
		_, p := readFeed(t, s, reader, fmt.Sprintf("after=%d&wait=60s", now.Next))
		polled <- p
	}()
	// Stopping before the long-poll arrives would refuse its connection
	// instead: wait until the server counts it as waiting.
	eventually(t, "the long-poll waits", func() bool {
		_, metrics := get(t, http.DefaultClient, s.base+"/metrics", nil)
		return strings.Contains(metrics, "\n"+`keycard_revocation_feed_subscribers{kind="long_poll"} 1`+"\n")
	})
	stopped := time.Now()
	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("shutdown took %v with a long-poll waiting", d)
	}
	select {
	case <-polled:
	case <-time.After(10 * time.Second):
		t.Error("long-poll still waiting after shutdown")
	}
}
