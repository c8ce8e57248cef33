package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestPostgresEndToEnd runs two servers on one fresh PostgreSQL database,
// as two instances behind a load balancer: a session made on one refreshes
// on the other, and a logout on one wakes a long-poll of the revocation
// feed on the other (LISTEN/NOTIFY).
func TestPostgresEndToEnd(t *testing.T) {
	url := pgtest.NewDatabase(t)

	// keycard migrate creates the schema, and running it again is a no-op.
	for range 2 {
		code, out, errOut := run(t, "", "migrate", "--store", url)
		var got struct {
			Store         string `json:"store"`
			SchemaVersion int    `json:"schema_version"`
		}
		if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.Store != "postgres" || got.SchemaVersion != postgres.SchemaVersion() {
			t.Fatalf("migrate: exit %d, stdout %q, stderr %q; want store postgres at version %d", code, out, errOut, postgres.SchemaVersion())
		}
	}

	const pass = "correct horse battery staple"
	data := t.TempDir() // the dev master key, shared by both instances
	if code, _, errOut := run(t, pass+"\n", "users", "add", "--store", url, "--data", data, "--username", "alice", "--password-stdin",
		"--argon2-memory", "64", "--argon2-iterations", "1"); code != exitOK {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	reader := addClient(t, data, "--store", url, "--name", "gateway")
	// Instances behind one load balancer share the issuer.
	a := startServerIn(t, data, "--store", url, "--issuer", "https://keycard.test")
	b := startServerIn(t, data, "--store", url, "--issuer", "https://keycard.test")
	if code, _ := call(t, "GET", a.base+"/readyz", "", "", "", nil); code != http.StatusOK {
		t.Errorf("readyz on PostgreSQL: %d, want 200", code)
	}
	if !strings.Contains(a.log.String(), `"store":"postgres"`) {
		t.Errorf("serve log does not name the store: %s", a.log.String())
	}

	// Login on a, refresh on b, and the rotated token is spent on a too.
	tok := a.login(t, "alice", pass)
	code, r1 := b.refresh(t, tok.RefreshToken)
	if code != http.StatusOK || r1.RefreshToken == "" || r1.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh on the other instance: %d %+v", code, r1)
	}
	if code, r2 := a.refresh(t, tok.RefreshToken); code != http.StatusOK || r2.RefreshToken != r1.RefreshToken {
		t.Errorf("replay on the first instance within the grace window: %d, same successor %v", code, r2.RefreshToken == r1.RefreshToken)
	}
	var me map[string]any
	if code, _ := call(t, "GET", b.base+"/v1/me", r1.AccessToken, "", "", &me); code != http.StatusOK || me["username"] != "alice" {
		t.Fatalf("me on b: %d %v", code, me)
	}

	// A long-poll on b wakes for a logout on a.
	_, start := readFeed(t, b, reader, "after=0")
	polled := make(chan feedPage, 1)
	var wokeAt time.Time
	go func() {
		_, p := readFeed(t, b, reader, fmt.Sprintf("after=%d&wait=30s", start.Next))
		wokeAt = time.Now()
		polled <- p
	}()
	time.Sleep(200 * time.Millisecond)
	loggedOut := time.Now()
	if code, _ := call(t, "POST", a.base+"/v1/logout", r1.AccessToken, "", "", nil); code != http.StatusNoContent {
		t.Fatalf("logout on a: %d", code)
	}
	select {
	case p := <-polled:
		if !p.has("session", tok.SessionID) {
			t.Errorf("long-poll on b: %+v, want session %s", p, tok.SessionID)
		}
		// Reported, not asserted: timing belongs in measurements.
		t.Logf("long-poll on b woke %v after the logout was sent to a", wokeAt.Sub(loggedOut))
	case <-time.After(20 * time.Second):
		t.Fatal("long-poll on b did not wake after a logout on a")
	}
	if code, _ := b.refresh(t, r1.RefreshToken); code != http.StatusBadRequest {
		t.Errorf("refresh on b after logout on a: %d, want 400", code)
	}
	if code, _ := call(t, "GET", b.base+"/v1/me", r1.AccessToken, "", "", nil); code != http.StatusUnauthorized {
		t.Errorf("me on b after logout on a: %d, want 401", code)
	}

	// The CLI works on the shared database, and nothing went to SQLite.
	if code, out, errOut := run(t, "", "users", "list", "--store", url); code != exitOK || !strings.Contains(out, `"username":"alice"`) {
		t.Errorf("users list --store: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := run(t, "", "keys", "list", "--store", url, "--data", data); code != exitOK || !strings.Contains(out, "active") {
		t.Errorf("keys list --store: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "keycard.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite database was created next to the master key: %v", err)
	}
	for _, s := range []*runningServer{a, b} {
		if code := s.stop(); code != 0 {
			t.Errorf("serve exit code %d", code)
		}
	}
	if strings.Contains(a.log.String()+b.log.String(), pass) {
		t.Error("the password reached the log")
	}
}

// TestStoreFlag checks what --store accepts, and that an unsupported URL
// is refused without echoing it (it may hold a password).
func TestStoreFlag(t *testing.T) {
	for _, store := range []string{"mysql://root:s3cret@db/keycard", "s3cret", "file:///tmp/x.db"} {
		code, _, errOut := run(t, "", "migrate", "--store", store, "--data", t.TempDir())
		if code != exitFailure || !strings.Contains(errOut, "--store") || strings.Contains(errOut, "s3cret") {
			t.Errorf("migrate --store %q: exit %d, stderr %q; want a refusal naming --store, not the URL", store, code, errOut)
		}
	}
	data := newData(t)
	code, out, errOut := run(t, "", "migrate", "--data", data)
	if code != exitOK || !strings.Contains(out, `"store":"sqlite"`) {
		t.Errorf("migrate --data: exit %d, %s %s", code, out, errOut)
	}
	cfg := writeFile(t, "keycard.yaml", "store: mysql://from-yaml\n")
	if code, _, errOut := run(t, "", "migrate", "--config", cfg, "--data", data); code != exitFailure || !strings.Contains(errOut, "--store") {
		t.Errorf("YAML store: mysql://…: exit %d, %s; want the store refused", code, errOut)
	}
	t.Setenv("KEYCARD_STORE", "mysql://x")
	if code, _, errOut := run(t, "", "migrate", "--data", data); code != exitFailure || !strings.Contains(errOut, "--store") {
		t.Errorf("KEYCARD_STORE=mysql://x: exit %d, %s; want the store refused", code, errOut)
	}
}

// TestPostgresReadiness drops the database under a running server:
// /readyz turns 503, without naming the database's host or user.
func TestPostgresReadiness(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := startServer(t, "--store", url)
	if code, _ := call(t, "GET", s.base+"/readyz", "", "", "", nil); code != http.StatusOK {
		t.Fatalf("readyz: %d, want 200", code)
	}
	admin, err := pgx.Connect(context.Background(), pgtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := url[strings.LastIndex(url, "/")+1:]
	name, _, _ = strings.Cut(name, "?")
	if _, err := admin.Exec(context.Background(), `DROP DATABASE `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	eventually(t, "readyz 503 without the database", func() bool {
		body = nil
		code, _ := call(t, "GET", s.base+"/readyz", "", "", "", &body)
		return code == http.StatusServiceUnavailable
	})
	if text := fmt.Sprint(body); strings.Contains(text, "127.0.0.1") || strings.Contains(text, "postgres") || strings.Contains(text, name) {
		t.Errorf("readyz names the database: %s", text)
	}
	s.stop()
}
