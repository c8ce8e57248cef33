package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/mailpittest"
)

// TestServeSendsMail: keycard serve with --smtp-url and --mail-from mails
// the verification link of a registration to a real SMTP server, and a
// reset link whose page is the server's own; the SMTP password never
// reaches the log.
func TestServeSendsMail(t *testing.T) {
	mp := mailpittest.Start(t, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
	s := startServer(t, "--smtp-url", "smtp://mailer:hunter2-secret@"+mp.SMTPAddr, "--mail-from", "keycard@example.com")
	const pass = "correct horse battery staple"
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json",
		`{"username":"alice","password":"`+pass+`","email":"alice@example.com"}`, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}
	m := mp.WaitFor(t, "alice@example.com", 1)
	link := regexp.MustCompile(`(http://[^\s]+/verify-email\?token=[A-Za-z0-9_.-]+)`).FindString(m.Text)
	if !strings.HasPrefix(link, s.base+"/verify-email?token=") {
		t.Fatalf("verification mail without a link to %s:\n%s", s.base, m.Text)
	}
	if code, _ := call(t, "GET", link, "", "", "", nil); code != 200 {
		t.Errorf("GET the verification link: %d", code)
	}
	var me struct {
		EmailVerified bool `json:"email_verified"`
	}
	tok := s.login(t, "alice", pass)
	call(t, "GET", s.base+"/v1/me", tok.AccessToken, "", "", &me)
	if !me.EmailVerified {
		t.Error("the address is not verified after the link")
	}
	if code, _ := call(t, "POST", s.base+"/v1/password/reset-request", "", "application/json", `{"email":"alice@example.com"}`, nil); code != 202 {
		t.Errorf("reset-request: %d", code)
	}
	reset := mp.WaitFor(t, "alice@example.com", 2)
	if !strings.Contains(reset.Text, s.base+"/reset-password?token=") {
		t.Errorf("reset mail without a link:\n%s", reset.Text)
	}
	if strings.Contains(s.log.String(), "hunter2-secret") {
		t.Error("the log holds the SMTP password")
	}
	if !strings.Contains(s.log.String(), "smtp://mailer:xxxxx@") {
		t.Errorf("the log does not name the SMTP server (redacted): %s", s.log.String())
	}
}

// TestServeDevLogsMail: with --dev and no --smtp-url, mail is written to
// the log with its link.
func TestServeDevLogsMail(t *testing.T) {
	s := startServer(t)
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json",
		`{"username":"bob","password":"correct horse battery staple","email":"bob@example.com"}`, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}
	deadline := time.Now().Add(mailpittest.Wait)
	for !strings.Contains(s.log.String(), "/verify-email?token=") {
		if time.Now().After(deadline) {
			t.Fatalf("no verification link in the log: %s", s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeMailFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--smtp-url", "smtp://u:hunter2-secret@mail.example.com"}, "--mail-from"},
		{[]string{"--mail-from", "a@example.com"}, "--smtp-url"},
		{[]string{"--smtp-url", "smtp://u:hunter2-secret@mail.example.com:x", "--mail-from", "a@example.com"}, "--smtp-url"},
		{[]string{"--smtp-url", "http://mail.example.com", "--mail-from", "a@example.com"}, "smtp or smtps"},
		{[]string{"--smtp-url", "smtp://mail.example.com", "--mail-from", "nope"}, "sender"},
		{[]string{"--mail-templates", "/nonexistent/templates"}, "--mail-templates"},
	} {
		args := append([]string{"serve", "--dev", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, tt.args...)
		code, _, errOut := run(t, "", args...)
		if code == exitOK || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "hunter2-secret") {
			t.Errorf("serve %v: exit %d, stderr %q; want a failure naming %s, without the password", tt.args, code, errOut, tt.want)
		}
	}
}

func TestUsersEmailCommands(t *testing.T) {
	data := newData(t)
	code, out, errOut := run(t, "a good long password\n", "users", "add", "--data", data, "--username", "carol",
		"--password-stdin", "--email", "Carol@Example.com", "--email-verified")
	var u map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &u) != nil || u["email"] != "carol@example.com" || u["email_verified"] != true {
		t.Fatalf("users add --email: exit %d, %q %q", code, out, errOut)
	}
	// Taken, in another case.
	if code, _, errOut := run(t, "a good long password\n", "users", "add", "--data", data, "--username", "dave",
		"--password-stdin", "--email", "CAROL@example.com"); code != exitFailure || !strings.Contains(errOut, "taken") {
		t.Errorf("users add with a taken address: exit %d, %q", code, errOut)
	}
	code, out, errOut = run(t, "", "users", "set-email", "--data", data, "--username", "carol", "--email", "carol@example.org")
	if code != exitOK || json.Unmarshal([]byte(out), &u) != nil || u["email"] != "carol@example.org" || u["email_verified"] != false {
		t.Errorf("users set-email: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := run(t, "", "users", "set-email", "--data", data, "--username", "carol", "--email", "bad address"); code != exitFailure {
		t.Errorf("users set-email with a bad address: exit %d, %q", code, errOut)
	}
	code, out, _ = run(t, "", "users", "set-email", "--data", data, "--username", "carol", "--email", "")
	if code != exitOK || json.Unmarshal([]byte(out), &u) != nil || u["email"] != "" {
		t.Errorf("users set-email --email \"\": exit %d, %q", code, out)
	}
}
