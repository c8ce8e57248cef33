package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/authtest"
)

// TestRequireMFAForRoles: keycard serve --require-mfa-for-roles admin
// (and the same from the configuration file and the environment) stops an admin without a
// second factor at the password with mfa_enrollment_required; the admin
// enrols over the JSON API and gets tokens; keycard users remove-mfa
// takes the factor away again.
func TestRequireMFAForRoles(t *testing.T) {
	for _, how := range []string{"flag", "config", "env"} {
		t.Run(how, func(t *testing.T) {
			data := t.TempDir()
			extra := []string{"--require-mfa-for-roles", "admin, ops"}
			if how == "config" {
				cfg := filepath.Join(t.TempDir(), "keycard.yaml")
				if err := os.WriteFile(cfg, []byte("require_mfa_for_roles: admin,ops\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				extra = []string{"--config", cfg}
			}
			if how == "env" {
				t.Setenv("KEYCARD_REQUIRE_MFA_FOR_ROLES", "ops,admin")
				extra = nil
			}
			s := startServerIn(t, data, extra...)
			const pass = "correct horse battery staple"
			for _, u := range []struct{ name, role string }{{"root", "admin"}, {"ann", "user"}} {
				if code, _, errOut := run(t, pass+"\n", "users", "add", "--data", data, "--username", u.name, "--role", u.role,
					"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
					t.Fatalf("users add %s: %d %s", u.name, code, errOut)
				}
			}
			s.login(t, "ann", pass) // not in the policy
			var step struct {
				Error    string `json:"error"`
				MFAToken string `json:"mfa_token"`
			}
			if code, _ := call(t, "POST", s.base+"/v1/login", "", "application/json", fmt.Sprintf(`{"username":"root","password":%q}`, pass), &step); code != 403 || step.Error != "mfa_enrollment_required" {
				t.Fatalf("admin login: %d %+v", code, step)
			}
			var e struct {
				Secret string `json:"secret"`
			}
			if code, _ := call(t, "POST", s.base+"/v1/login/mfa/enroll", "", "application/json", `{"mfa_token":"`+step.MFAToken+`"}`, &e); code != 200 {
				t.Fatalf("enroll: %d", code)
			}
			code := authtest.TOTPCode(t, e.Secret, time.Now())
			var tok struct {
				AccessToken   string   `json:"access_token"`
				RecoveryCodes []string `json:"recovery_codes"`
			}
			if status, _ := call(t, "POST", s.base+"/v1/login/mfa", "", "application/json", `{"mfa_token":"`+step.MFAToken+`","code":"`+code+`"}`, &tok); status != 200 || tok.AccessToken == "" || len(tok.RecoveryCodes) != 10 {
				t.Fatalf("login/mfa: %d %+v", status, tok)
			}
			if strings.Contains(s.log.String(), e.Secret) || strings.Contains(s.log.String(), tok.RecoveryCodes[0]) || strings.Contains(s.log.String(), step.MFAToken) {
				t.Error("the server log holds a secret of the MFA step")
			}
			if exit := s.stop(); exit != 0 {
				t.Fatalf("serve exited %d", exit)
			}
			status, out, errOut := run(t, "", "users", "remove-mfa", "--data", data, "--username", "root")
			var res map[string]any
			if status != 0 || json.Unmarshal([]byte(out), &res) != nil || res["mfa_removed"] != true {
				t.Fatalf("users remove-mfa: %d %s %s", status, out, errOut)
			}
			if status, _, _ := run(t, "", "users", "remove-mfa", "--data", data, "--username", "root"); status == 0 {
				t.Error("users remove-mfa of a user without a second factor succeeded")
			}
		})
	}
}
