package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// enrolOverHTTP sets up an authenticator app for the holder of token
// through the user API; it returns the secret and the recovery codes.
func (f *fixture) enrolOverHTTP(t *testing.T, token string) (string, []string) {
	t.Helper()
	res := f.postJSON(t, "/v1/me/mfa/totp", token, "")
	if res.status != http.StatusOK {
		t.Fatalf("begin: %d %s", res.status, res.body)
	}
	var e totpEnrollmentResponse
	res.decode(t, &e)
	if !strings.HasPrefix(e.OTPAuthURI, "otpauth://totp/") || !strings.Contains(e.OTPAuthURI, "secret="+e.Secret) {
		t.Errorf("enrolment %+v", e)
	}
	if _, err := otp.NewKeyFromURL(e.OTPAuthURI); err != nil {
		t.Errorf("pquerna/otp cannot read the otpauth URI: %v", err)
	}
	f.postJSON(t, "/v1/me/mfa/totp/confirm", token, `{"code":"abcdef"}`).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	res = f.postJSON(t, "/v1/me/mfa/totp/confirm", token, `{"code":"`+authtest.TOTPCode(t, e.Secret, f.clock.Now())+`"}`)
	if res.status != http.StatusOK {
		t.Fatalf("confirm: %d %s", res.status, res.body)
	}
	var rc recoveryCodesResponse
	res.decode(t, &rc)
	if len(rc.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes %v", rc.RecoveryCodes)
	}
	f.postJSON(t, "/v1/me/mfa/totp", token, "").wantError(t, http.StatusConflict, codeConflict)
	return e.Secret, rc.RecoveryCodes
}

// mfaStep logs in with the password and returns the 403's body.
func (f *fixture) mfaStep(t *testing.T, user, wantCode string) mfaRequiredBody {
	t.Helper()
	res := f.postJSON(t, "/v1/login", "", credentialsJSON(user, testPassword))
	var body mfaRequiredBody
	res.decode(t, &body)
	if res.status != http.StatusForbidden || body.Error != wantCode || !strings.HasPrefix(body.MFAToken, "mfa1.") || body.ExpiresIn != 300 {
		t.Fatalf("login: %d %s, want 403 %s with an MFA token", res.status, res.body, wantCode)
	}
	return body
}

func mfaJSON(token, code string) string {
	return `{"mfa_token":` + jsonString(token) + `,"code":` + jsonString(code) + `}`
}

// wantRetry checks a refused code's 401 and returns the next MFA token.
func wantRetry(t *testing.T, res *response, what string) string {
	t.Helper()
	var body mfaRequiredBody
	res.decode(t, &body)
	if res.status != http.StatusUnauthorized || body.Error != codeInvalidGrant || body.MFAToken == "" || res.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("%s: %d %s, want 401 invalid_grant with a new mfa_token", what, res.status, res.body)
	}
	return body.MFAToken
}

func TestMFASignInJSON(t *testing.T) {
	f, mp := mailFixture(t, fixtureOptions{limits: limits(throttle.Policy{Burst: 5, BaseDelay: time.Minute}, throttle.Policy{Burst: 1000})})
	ctx := context.Background()
	id := f.register(t, "alice", testPassword)
	if _, err := f.svc.SetEmail(ctx, auth.Operator(), id, "alice@example.com", true); err != nil {
		t.Fatal(err)
	}
	secret, codes := f.enrolOverHTTP(t, f.login(t, "alice", testPassword).AccessToken)
	if m := mp.WaitFor(t, "alice@example.com", 1); m.Subject != "Two-step sign-in is on" {
		t.Errorf("enrolment mail %q", m.Subject)
	}
	if n := f.auditTypes(t)[auth.AuditMFAEnrolled]; n != 1 {
		t.Errorf("%d mfa.enrolled events", n)
	}

	step := f.mfaStep(t, "alice", codeMFARequired)
	if !slices.Equal(step.Factors, []string{"totp", "recovery_code"}) {
		t.Errorf("factors %v", step.Factors)
	}
	// Malformed requests: 400.
	f.postJSON(t, "/v1/login/mfa", "", `{"mfa_token":"x"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login/mfa", "", `{"code":"123456"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login/mfa", "", `{"mfa_token":1,"code":"123456"}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, strings.Repeat("1", 65))).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login/mfa", "", `{"mfa_token":"x","code":"1","factor":"sms"}`).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	// A forged token, and an unknown factor with a real one.
	f.postJSON(t, "/v1/login/mfa", "", mfaJSON("mfa1.AAAA", "123456")).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	res := f.postJSON(t, "/v1/login/mfa", "", `{"mfa_token":`+jsonString(step.MFAToken)+`,"code":"1","factor":"sms"}`)
	if res.status != http.StatusBadRequest {
		t.Errorf("unknown factor: %d %s", res.status, res.body)
	}
	var body mfaRequiredBody
	res.decode(t, &body)
	next := body.MFAToken

	// The confirming code's step is used: the same code is a replay.
	now := f.clock.Now()
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, authtest.TOTPCode(t, secret, now))), "replayed code")
	// The used token is refused, without a new one.
	f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, authtest.TOTPCode(t, secret, now))).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, "99999x")), "wrong code")
	f.clock.Advance(30 * time.Second)
	good := authtest.TOTPCode(t, secret, f.clock.Now())
	res = f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, good))
	if res.status != http.StatusOK {
		t.Fatalf("login/mfa: %d %s", res.status, res.body)
	}
	var tok mfaTokensResponse
	res.decode(t, &tok)
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.RecoveryCodes != nil || tok.RecoveryCodesLeft != nil {
		t.Errorf("tokens %s", res.body)
	}
	sess, err := f.stores.Sessions.Session(ctx, tok.SessionID)
	if err != nil || !slices.Equal(sess.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Errorf("session AMR %v (%v), want [pwd otp mfa]", sess.AMR, err)
	}
	// Replayed in a new sign-in: refused.
	step = f.mfaStep(t, "alice", codeMFARequired)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, good)), "code replayed in a new sign-in")
	// Expired MFA token.
	f.clock.Advance(auth.MFATokenLifetime)
	f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, authtest.TOTPCode(t, secret, f.clock.Now()))).wantError(t, http.StatusUnauthorized, codeInvalidGrant)

	// A recovery code, once.
	step = f.mfaStep(t, "alice", codeMFARequired)
	res = f.postJSON(t, "/v1/login/mfa", "", `{"mfa_token":`+jsonString(step.MFAToken)+`,"code":`+jsonString(strings.ToUpper(codes[0]))+`,"factor":"recovery_code"}`)
	if res.status != http.StatusOK {
		t.Fatalf("recovery code: %d %s", res.status, res.body)
	}
	res.decode(t, &tok)
	if tok.RecoveryCodesLeft == nil || *tok.RecoveryCodesLeft != 9 {
		t.Errorf("recovery_codes_left in %s", res.body)
	}
	if m := mp.WaitFor(t, "alice@example.com", 2); m.Subject != "A recovery code was used" {
		t.Errorf("recovery mail %q", m.Subject)
	}
	step = f.mfaStep(t, "alice", codeMFARequired)
	wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, codes[0])), "recovery code reused")

	// Status, regeneration, removal.
	access := tok.AccessToken
	res = f.send(t, http.MethodGet, "/v1/me/mfa", access)
	var st mfaStatusResponse
	res.decode(t, &st)
	if !st.TOTP || st.RecoveryCodesLeft != 9 || st.Required {
		t.Errorf("status %s", res.body)
	}
	res = f.postJSON(t, "/v1/me/mfa/recovery-codes", access, "")
	var rc recoveryCodesResponse
	res.decode(t, &rc)
	if res.status != http.StatusOK || len(rc.RecoveryCodes) != 10 {
		t.Fatalf("regenerate: %d %s", res.status, res.body)
	}
	step = f.mfaStep(t, "alice", codeMFARequired)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, codes[1])), "an old recovery code")
	if res := f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, rc.RecoveryCodes[0])); res.status != http.StatusOK {
		t.Errorf("a new recovery code: %d %s", res.status, res.body)
	}
	if res := f.send(t, http.MethodDelete, "/v1/me/mfa/totp", access); res.status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", res.status, res.body)
	}
	f.login(t, "alice", testPassword) // the password alone again
	if m := mp.WaitFor(t, "alice@example.com", 5); m.Subject != "Two-step sign-in was turned off" {
		t.Errorf("removal mail %q", m.Subject)
	}
	n := f.auditTypes(t)
	if n[auth.AuditMFARemoved] != 1 || n[auth.AuditRecoveryCodeUsed] != 2 || n[auth.AuditRecoveryCodesRegenerated] != 1 || n[auth.AuditMFAFailed] < 4 {
		t.Errorf("audit %v", n)
	}

	// Nothing secret in the logs: the secret, codes, MFA tokens.
	logs := f.logs.String()
	for _, secretText := range []string{secret, codes[0], codes[1], rc.RecoveryCodes[0], step.MFAToken, next, good} {
		if strings.Contains(logs, secretText) {
			t.Errorf("the log holds a secret %q", secretText)
		}
	}
}

func TestMFAThrottledJSON(t *testing.T) {
	f := newFixture(t, fixtureOptions{limits: limits(throttle.Policy{Burst: 3, BaseDelay: time.Minute}, throttle.Policy{Burst: 1000})})
	f.register(t, "alice", testPassword)
	secret, _ := f.enrolOverHTTP(t, f.login(t, "alice", testPassword).AccessToken) // one wrong code there
	step := f.mfaStep(t, "alice", codeMFARequired)
	next := step.MFAToken
	for i := range 2 {
		next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, "000000")), "wrong code "+string(rune('1'+i)))
	}
	res := f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, authtest.TOTPCode(t, secret, f.clock.Now().Add(30*time.Second))))
	res.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// The password still signs in to the MFA step (its own throttle),
	// and the second factor waits.
	step = f.mfaStep(t, "alice", codeMFARequired)
	f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, "000000")).wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	f.clock.Advance(2 * time.Minute)
	if res := f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, authtest.TOTPCode(t, secret, f.clock.Now()))); res.status != http.StatusOK {
		t.Errorf("after the wait: %d %s", res.status, res.body)
	}
}

func TestMFAPolicyJSON(t *testing.T) {
	f := newFixture(t, fixtureOptions{requireMFA: []string{"admin"}})
	ctx := context.Background()
	root, err := f.svc.Register(ctx, "root", testPassword, []string{auth.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	step := f.mfaStep(t, "root", codeMFAEnrollmentRequired)
	if !slices.Equal(step.Factors, []string{"totp"}) {
		t.Errorf("factors %v", step.Factors)
	}
	f.postJSON(t, "/v1/login/mfa/enroll", "", `{}`).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	f.postJSON(t, "/v1/login/mfa/enroll", "", `{"mfa_token":"mfa1.nope"}`).wantError(t, http.StatusUnauthorized, codeInvalidGrant)
	res := f.postJSON(t, "/v1/login/mfa/enroll", "", `{"mfa_token":`+jsonString(step.MFAToken)+`}`)
	var e totpEnrollmentResponse
	res.decode(t, &e)
	if res.status != http.StatusOK || e.Secret == "" {
		t.Fatalf("enroll: %d %s", res.status, res.body)
	}
	res = f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, authtest.TOTPCode(t, e.Secret, f.clock.Now())))
	if res.status != http.StatusOK {
		t.Fatalf("login/mfa: %d %s", res.status, res.body)
	}
	var tok mfaTokensResponse
	res.decode(t, &tok)
	if len(tok.RecoveryCodes) != 10 || tok.AccessToken == "" {
		t.Errorf("answer %s", res.body)
	}
	// The policy keeps the factor: the user cannot remove it; an admin
	// can (step-up applies to the admin API), and it is audited.
	f.send(t, http.MethodDelete, "/v1/me/mfa/totp", tok.AccessToken).wantError(t, http.StatusForbidden, codeAccessDenied)
	if res := f.send(t, http.MethodDelete, "/admin/v1/users/"+root.ID+"/mfa", tok.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("admin removal: %d %s", res.status, res.body)
	}
	if res := f.send(t, http.MethodDelete, "/admin/v1/users/"+root.ID+"/mfa", tok.AccessToken); res.status != http.StatusNotFound {
		t.Errorf("second removal: %d %s", res.status, res.body)
	}
	if n := f.auditTypes(t)[auth.AuditMFARemoved]; n != 1 {
		t.Errorf("%d mfa.removed events", n)
	}
	f.mfaStep(t, "root", codeMFAEnrollmentRequired)
	// A user without the admin role may not remove anyone's factors.
	f.register(t, "bob", testPassword)
	bob := f.login(t, "bob", testPassword)
	f.send(t, http.MethodDelete, "/admin/v1/users/"+root.ID+"/mfa", bob.AccessToken).wantError(t, http.StatusForbidden, codeInsufficientRole)
}

// TestMFAAdminRemoveStepUp: DELETE /admin/v1/users/{id}/mfa with a
// sign-in older than --reauth-within is 401
// insufficient_user_authentication, and nothing is removed.
func TestMFAAdminRemoveStepUp(t *testing.T) {
	f := newFixture(t, fixtureOptions{reauthWithin: time.Minute})
	ctx := context.Background()
	if _, err := f.svc.Register(ctx, "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	bob := f.register(t, "bob", testPassword)
	f.enrolOverHTTP(t, f.login(t, "bob", testPassword).AccessToken)
	admin := f.login(t, "root", testPassword)
	f.clock.Advance(2 * time.Minute)
	f.send(t, http.MethodDelete, "/admin/v1/users/"+bob+"/mfa", admin.AccessToken).wantError(t, http.StatusUnauthorized, codeInsufficientUserAuthentication)
	if n := f.auditTypes(t)[auth.AuditMFARemoved]; n != 0 {
		t.Errorf("%d mfa.removed events after a refused removal", n)
	}
}

// TestAdminStepUpWithSecondFactor: an admin who has a second factor
// acting with a password sign-in (made before the factor was set up) is
// refused the destructive actions with 401 insufficient_user_authentication
// naming acr_values="mfa"; after signing in with the factor they pass.
func TestAdminStepUpWithSecondFactor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.Register(ctx, "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	bob := f.register(t, "bob", testPassword)
	f.enrolOverHTTP(t, f.login(t, "bob", testPassword).AccessToken)
	admin := f.login(t, "root", testPassword)
	secret, _ := f.enrolOverHTTP(t, admin.AccessToken)
	for _, path := range []string{"/admin/v1/users/" + bob + "/mfa", "/admin/v1/users/" + bob} {
		res := f.send(t, http.MethodDelete, path, admin.AccessToken)
		res.wantError(t, http.StatusUnauthorized, codeInsufficientUserAuthentication)
		if h := res.header.Get("WWW-Authenticate"); !strings.Contains(h, `acr_values="mfa"`) || !strings.Contains(h, "max_age=") {
			t.Errorf("DELETE %s: WWW-Authenticate %q, want acr_values=\"mfa\" and max_age", path, h)
		}
	}
	step := f.mfaStep(t, "root", codeMFARequired)
	f.clock.Advance(30 * time.Second)
	res := f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, authtest.TOTPCode(t, secret, f.clock.Now())))
	var tok mfaTokensResponse
	res.decode(t, &tok)
	if res.status != http.StatusOK {
		t.Fatalf("login/mfa: %d %s", res.status, res.body)
	}
	if res := f.send(t, http.MethodDelete, "/admin/v1/users/"+bob+"/mfa", tok.AccessToken); res.status != http.StatusNoContent {
		t.Errorf("removal with acr mfa: %d %s", res.status, res.body)
	}
}
