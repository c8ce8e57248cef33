package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// TestCommandsNeedAnExistingDatabase: a mistyped or missing --data is an
// error for every command that works on a server's data, never a new,
// empty database.
func TestCommandsNeedAnExistingDatabase(t *testing.T) {
	for _, args := range [][]string{
		{"users", "list"},
		{"users", "add", "--username", "u", "--password-stdin"},
		{"users", "disable", "--username", "u"},
		{"users", "delete", "--username", "u"},
		{"users", "set-password", "--username", "u", "--password-stdin"},
		{"clients", "list"},
		{"clients", "add", "--name", "x"},
		{"clients", "delete", "--id", "x"},
		{"webhooks", "list"},
		{"webhooks", "add", "--url", "https://hooks.example"},
		{"webhooks", "replay", "--id", "1"},
		{"keys", "list"},
		{"keys", "rotate", "--dev"},
		{"keys", "revoke", "--dev", "kid"},
		{"revoke-all"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			missing := filepath.Join(t.TempDir(), "typo")
			words := 1 // the command, then its subcommand if it has them
			if args[0] == "users" || args[0] == "clients" || args[0] == "keys" || args[0] == "webhooks" {
				words = 2
			}
			full := append(append(append([]string{}, args[:words]...), "--data", missing), args[words:]...)
			code, out, errOut := run(t, "a good long password\n", full...)
			want := "no Keycard database at " + missing + "; run serve first or pass --data"
			if code != exitFailure || !strings.Contains(errOut, want) || out != "" {
				t.Errorf("keycard %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(full, " "), code, out, errOut, want)
			}
			if _, err := os.Stat(missing); err == nil {
				t.Errorf("keycard %s made %s", strings.Join(full, " "), missing)
			}
		})
	}
}

// TestCommandsNeedTheirRequiredFlags: a command without the flag naming
// what it works on is a usage error saying which flag, before any data
// is touched.
func TestCommandsNeedTheirRequiredFlags(t *testing.T) {
	data := filepath.Join(t.TempDir(), "never-made")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"users", "add"}, "username"},
		{[]string{"users", "enable"}, "username"},
		{[]string{"users", "disable"}, "username"},
		{[]string{"users", "delete"}, "username"},
		{[]string{"users", "set-password"}, "username"},
		{[]string{"users", "set-email"}, "username"},
		{[]string{"users", "remove-mfa"}, "username"},
		{[]string{"clients", "delete"}, "id"},
		{[]string{"webhooks", "add"}, "url"},
		{[]string{"webhooks", "remove"}, "id"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "--data", data)
			code, out, errOut := run(t, "a good long password\n", args...)
			want := "keycard " + strings.Join(tc.args, " ") + ": --" + tc.flag + " is required"
			if code != exitUsage || !strings.Contains(errOut, want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, exitUsage, want)
			}
		})
	}
}

// TestMigrateMakesTheDatabase: keycard migrate is the one command that
// makes a new SQLite database, so that the first admin can be added before
// the first serve.
func TestMigrateMakesTheDatabase(t *testing.T) {
	data := filepath.Join(t.TempDir(), "new")
	code, out, errOut := run(t, "", "migrate", "--data", data)
	if code != exitOK || !strings.Contains(out, `"schema_version"`) {
		t.Fatalf("migrate: exit %d, %q %q", code, out, errOut)
	}
	// Not silently: a mistyped --data would otherwise go unseen.
	if want := "no Keycard database at " + data + "; made a new one"; !strings.Contains(errOut, want) {
		t.Errorf("migrate of a new directory: stderr %q, want %q", errOut, want)
	}
	if code, _, errOut := run(t, "", "migrate", "--data", data); code != exitOK || errOut != "" {
		t.Errorf("migrate again: exit %d, stderr %q; want 0 and nothing", code, errOut)
	}
	if code, _, errOut := run(t, "a good long password\n", "users", "add", "--data", data, "--username", "root", "--role", "admin",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != exitOK {
		t.Fatalf("users add after migrate: exit %d, %s", code, errOut)
	}
}

// TestHelp: help goes to stdout with exit 0, and each command's or
// subcommand's help shows only what it uses.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"--help"}, []string{"keycard serve", "keycard keys revoke", "keycard users add"}, nil},
		{[]string{"keys", "--help"}, []string{"keycard keys list", "keycard keys revoke"}, []string{"keycard serve", "keycard users"}},
		{[]string{"users", "-h"}, []string{"keycard users disable"}, []string{"keycard keys"}},
		{[]string{"keys", "revoke", "-h"}, []string{"-data", "-kid", "-master-key-file"}, []string{"-redis", "-cookie-mode", "-tls-cert", "-role-scopes"}},
		{[]string{"keys", "list", "-h"}, []string{"-data", "-store"}, []string{"-master-key-file", "-redis", "-argon2-memory"}},
		{[]string{"users", "add", "-h"}, []string{"-username", "-argon2-memory", "-data"}, []string{"-redis", "-cookie-mode", "-tls-cert", "-master-key-file", "-issuer"}},
		{[]string{"clients", "add", "--help"}, []string{"-name", "-scope", "-audience"}, []string{"-redis", "-argon2-memory"}},
		{[]string{"serve", "-h"}, []string{"-redis", "-tls-cert", "-role-scopes", "-argon2-memory", "-master-key-file"}, nil},
		{[]string{"token", "verify", "-h"}, []string{"-key"}, nil},
		{[]string{"gateway", "-h"}, []string{"-config"}, nil},
	} {
		code, out, errOut := run(t, "", tc.args...)
		if code != exitOK || errOut != "" {
			t.Errorf("keycard %s: exit %d, stderr %q; want exit 0 and help on stdout", strings.Join(tc.args, " "), code, errOut)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("keycard %s: help lacks %q:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(out, w+" ") || strings.Contains(out, w+"\n") {
				t.Errorf("keycard %s: help shows %q, which it does not use:\n%s", strings.Join(tc.args, " "), w, out)
			}
		}
	}
	// Mistakes are usage errors, on stderr.
	for _, args := range [][]string{{}, {"frob"}, {"keys"}, {"keys", "frob"}, {"users", "list", "--bogus"}} {
		if code, out, errOut := run(t, "", args...); code != exitUsage || out != "" || errOut == "" {
			t.Errorf("keycard %s: exit %d, stdout %q, stderr %q; want exit 2 and the reason on stderr", strings.Join(args, " "), code, out, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := run(t, "", "version")
	var v map[string]string
	if code != exitOK || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["go"] == "" {
		t.Errorf("keycard version: exit %d, stdout %q, stderr %q; want a JSON object with version and go", code, out, errOut)
	}
}

// TestKeysRevokeDashKID revokes keys whose id starts with "-", as about
// one thumbprint in 64 does: as the argument, after "--", and as --kid.
func TestKeysRevokeDashKID(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	env := &cmdEnv{ctx: ctx, stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: func(string) string { return "" }}
	var f serverFlags
	fs := env.serverFlagSet("test", &f, keyFlags)
	f.data, f.dev = data, true
	initData(t, data)
	// Rotate until three keys with such ids are published.
	var dashed []string
	if code := env.onData(fs, &f, true, func(svc *auth.Service) int {
		for i := 0; len(dashed) < 3 && i < 4000; i++ {
			k, err := svc.RotateKey(ctx, auth.Operator(), false)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(k.KID, "-") {
				dashed = append(dashed, k.KID)
			}
		}
		return exitOK
	}); code != exitOK || len(dashed) < 3 {
		t.Fatalf("making keys: exit %d, %d ids with a dash", code, len(dashed))
	}
	for i, args := range [][]string{
		{"keys", "revoke", "--data", data, "--dev", dashed[0]},
		{"keys", "revoke", dashed[1], "--data", data, "--dev"},
		{"keys", "revoke", "--data", data, "--dev", "--kid", dashed[2]},
	} {
		code, out, errOut := run(t, "", args...)
		var res map[string]string
		if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res["revoked_kid"] != dashed[i] {
			t.Errorf("keycard %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, out, errOut)
		}
	}
	// After "--", and when it is not a key: not found.
	code, _, errOut := run(t, "", "keys", "revoke", "--data", data, "--dev", "--", "-Xyz")
	if code != exitFailure || !strings.Contains(errOut, "Key not found") {
		t.Errorf("an unknown id like a flag: exit %d, stderr %q; want exit 1, Key not found", code, errOut)
	}
	// Two ids are one too many.
	if code, _, _ := run(t, "", "keys", "revoke", "--data", data, "--dev", "-a", "-b"); code != exitUsage {
		t.Errorf("two ids: exit %d, want 2", code)
	}
	// An id given as a flag's value may start with "-" too.
	if code, _, errOut := run(t, "", "clients", "delete", "--data", data, "--id", "-abc"); code != exitFailure || !strings.Contains(errOut, "not found") {
		t.Errorf("clients delete --id -abc: exit %d, stderr %q; want exit 1, not found", code, errOut)
	}
}

// TestCommandLineIsAudited: the command line changes the server's data
// through the same service as the admin API, so each change is in the
// audit log with the command line as actor.
func TestCommandLineIsAudited(t *testing.T) {
	data := newData(t)
	steps := [][]string{
		{"users", "add", "--data", data, "--username", "alice", "--password-stdin"},
		{"users", "disable", "--data", data, "--username", "alice"},
		{"users", "enable", "--data", data, "--username", "alice"},
		{"users", "set-password", "--data", data, "--username", "alice", "--password-stdin"},
		{"revoke-all", "--data", data},
		{"users", "delete", "--data", data, "--username", "alice"},
	}
	for _, args := range steps {
		if code, _, errOut := run(t, "a good long password\n", args...); code != exitOK {
			t.Fatalf("keycard %s: exit %d, %s", strings.Join(args, " "), code, errOut)
		}
	}
	c := addClient(t, data, "--name", "svc")
	if code, _, errOut := run(t, "", "clients", "delete", "--data", data, "--id", c.ClientID); code != exitOK {
		t.Fatalf("clients delete: %d %s", code, errOut)
	}
	env := &cmdEnv{ctx: context.Background(), stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &strings.Builder{}, getenv: func(string) string { return "" }}
	var f serverFlags
	fs := env.serverFlagSet("test", &f)
	f.data = data
	env.onData(fs, &f, false, func(svc *auth.Service) int {
		for _, typ := range []string{auth.AuditUserCreatedByAdmin, auth.AuditUserDisabled, auth.AuditUserEnabled, keycard.AuditPasswordChanged,
			keycard.AuditRevokeAll, auth.AuditClientCreated, auth.AuditClientDeleted, auth.AuditUserDeleted} {
			events, err := svc.AuditEvents(env.ctx, keycard.AuditFilter{Type: typ})
			if err != nil || len(events) != 1 || events[0].Actor != "cli" {
				t.Errorf("%s: events %+v, %v; want one, by cli", typ, events, err)
			}
		}
		return exitOK
	})
}

// TestRevokeAllCommand signs every user out from the command line while
// the server runs: refresh tokens and access tokens stop working.
func TestRevokeAllCommand(t *testing.T) {
	s := startServer(t)
	const pass = "correct horse battery staple"
	if code, _ := call(t, "POST", s.base+"/v1/users", "", "application/json", `{"username":"alice","password":"`+pass+`"}`, nil); code != 201 {
		t.Fatalf("register: %d", code)
	}
	tok := s.login(t, "alice", pass)
	code, out, errOut := run(t, "", "revoke-all", "--data", s.data)
	if code != exitOK || !strings.Contains(out, "1 sessions ended") {
		t.Fatalf("revoke-all: exit %d, %q %q", code, out, errOut)
	}
	if code, _ := call(t, "GET", s.base+"/v1/me", tok.AccessToken, "", "", nil); code != 401 {
		t.Errorf("/v1/me after revoke-all: %d, want 401", code)
	}
	if code, _ := call(t, "POST", s.base+"/oauth/token", "", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+tok.RefreshToken, nil); code != 400 {
		t.Errorf("refresh after revoke-all: %d, want 400", code)
	}
}

// TestServeChecksSettingsFirst: a bad setting is reported as itself, even
// when the port is taken: the settings are checked before it is opened.
func TestServeChecksSettingsFirst(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dev", "--login-attempts", "-1"}, "--login-attempts"},
		{[]string{"--dev", "--signing-alg", "none"}, "--signing-alg"},
		{[]string{"--dev", "--store", "mysql://x"}, "--store"},
		{[]string{"--dev", "--registration", "maybe"}, "--registration"},
		{[]string{"--dev", "--role-scopes", "admin"}, "--role-scopes"},
		{[]string{"--dev", "--tls-cert", "x.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{}, "no master key"},
		{[]string{"--issuer", "http://auth.example.com"}, "refusing --issuer"},
		{[]string{"--dev", "--claims-hook-url", "http://127.0.0.1:9/c"}, "--claims-hook-url needs a secret"},
		{[]string{"--dev", "--claims-hook-url", "http://127.0.0.1:9/c", "--claims-hook-on-failure", "maybe"}, "--claims-hook-on-failure"},
	} {
		args := append([]string{"serve", "--data", t.TempDir(), "--addr", addr}, tc.args...)
		code, _, errOut := run(t, "", args...)
		if code == exitOK || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "address already in use") {
			t.Errorf("keycard %s: exit %d, stderr %q; want a failure naming %q", strings.Join(args, " "), code, errOut, tc.want)
		}
	}
	// With good settings the busy port is what is reported.
	code, _, errOut := run(t, "", "serve", "--dev", "--data", t.TempDir(), "--addr", addr)
	if code == exitOK || !strings.Contains(errOut, "address already in use") {
		t.Errorf("busy port: exit %d, stderr %q", code, errOut)
	}
}

// TestEnvironmentNeverPicksTheTarget: a subcommand's own flags come from
// its command line alone. With KEYCARD_ID and KEYCARD_USERNAME in the
// environment (of another tool, or a shell left so), commands that act
// on one client or user still ask for it, rather than acting on the one
// the environment names.
func TestEnvironmentNeverPicksTheTarget(t *testing.T) {
	data := newData(t)
	if code, _, errOut := run(t, "a good long password\n", "users", "add", "--data", data, "--username", "victim", "--password-stdin",
		"--argon2-memory", "64", "--argon2-iterations", "1"); code != exitOK {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	t.Setenv("KEYCARD_ID", "some-client")
	t.Setenv("KEYCARD_USERNAME", "victim")
	for _, args := range [][]string{
		{"clients", "show", "--data", data},
		{"clients", "delete", "--data", data},
		{"users", "disable", "--data", data},
		{"users", "delete", "--data", data},
		{"webhooks", "remove", "--data", data},
	} {
		code, _, errOut := run(t, "", args...)
		if code == exitOK || !strings.Contains(errOut, "required") {
			t.Errorf("keycard %s with KEYCARD_ID and KEYCARD_USERNAME set: exit %d, stderr %q; want a usage error asking for the flag",
				strings.Join(args, " "), code, errOut)
		}
	}
	if code, out, _ := run(t, "", "users", "list", "--data", data); code != exitOK || strings.Contains(out, `"disabled":true`) {
		t.Errorf("users list: %d %s; want victim still enabled", code, out)
	}
}
