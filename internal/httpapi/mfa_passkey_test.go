package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/passkey/passkeytest"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// The origin and relying party id of the fixture's passkeys (testIssuer).
const (
	passkeyOrigin = "https://auth.test"
	passkeyRPID   = "auth.test"
)

// registerPasskey registers a's credential for the holder of access
// through the real ceremony, from the right origin.
func (f *fixture) registerPasskey(t *testing.T, access string, a *passkeytest.Authenticator) {
	t.Helper()
	ctx := context.Background()
	p, err := f.svc.Authenticate(ctx, access)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.BeginPasskeyRegistration(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.FinishPasskeyRegistration(ctx, p, c.ID, "Key", a.Create(t, c.Options, passkeyOrigin, passkeyRPID), auth.Agent{}); err != nil {
		t.Fatal(err)
	}
}

// passkeyOptions begins the passkey ceremony of the MFA token.
func (f *fixture) passkeyOptions(t *testing.T, mfaToken string) passkeyOptionsResponse {
	t.Helper()
	res := f.postJSON(t, "/v1/login/mfa/passkey/options", "", `{"mfa_token":`+jsonString(mfaToken)+`}`)
	var o passkeyOptionsResponse
	res.decode(t, &o)
	if res.status != http.StatusOK || o.Ceremony == "" || len(o.Options) == 0 || o.ExpiresIn <= 0 {
		t.Fatalf("passkey options: %d %s", res.status, res.body)
	}
	return o
}

func passkeyMFAJSON(token, ceremony string, response []byte) string {
	return `{"mfa_token":` + jsonString(token) + `,"factor":"passkey","ceremony":` + jsonString(ceremony) + `,"response":` + string(response) + `}`
}

// TestMFAPasskeyJSON: the JSON API's MFA step answered with a passkey —
// the options bound to the attempt, the assertion through
// POST /v1/login/mfa; malformed bodies, an answer from another origin,
// an answer to another attempt's ceremony and a replayed assertion are
// refused; failures count on the account's second-factor throttle.
func TestMFAPasskeyJSON(t *testing.T) {
	f := newFixture(t, fixtureOptions{passkeys: true, limits: limits(throttle.Policy{Burst: 8, BaseDelay: time.Minute}, throttle.Policy{Burst: 1000})})
	ctx := context.Background()
	f.register(t, "alice", testPassword)
	access := f.login(t, "alice", testPassword).AccessToken
	f.enrolOverHTTP(t, access)
	key := passkeytest.New(t)
	f.registerPasskey(t, access, key)

	step := f.mfaStep(t, "alice", codeMFARequired)
	if !slices.Contains(step.Factors, auth.FactorPasskey) {
		t.Fatalf("factors %v, want passkey among them", step.Factors)
	}

	// The options: for alice's passkey, at this relying party.
	o := f.passkeyOptions(t, step.MFAToken)
	po := passkeytest.ParseOptions(t, o.Options)
	if po.PublicKey.RPID != passkeyRPID || len(po.PublicKey.AllowCredentials) != 1 ||
		po.PublicKey.AllowCredentials[0].ID != passkeytest.B64.EncodeToString(key.CredentialID) {
		t.Errorf("options %s: want rpId %s allowing alice's credential", o.Options, passkeyRPID)
	}
	// Malformed option requests: 4xx, never 5xx.
	for _, body := range []string{`{`, `{}`, `[]`, `{"mfa_token":1}`, `{"mfa_token":"x","code":"1"}`,
		`{"mfa_token":` + jsonString(step.MFAToken) + `,"response":{}}`} {
		if res := f.postJSON(t, "/v1/login/mfa/passkey/options", "", body); res.status != http.StatusBadRequest {
			t.Errorf("options %s: %d %s, want 400", body, res.status, res.body)
		}
	}
	f.postJSON(t, "/v1/login/mfa/passkey/options", "", `{"mfa_token":"mfa1.AAAA"}`).wantError(t, http.StatusUnauthorized, codeInvalidGrant)

	// Malformed answers: 400, and the token is not used up by them.
	good := key.Get(t, o.Options, passkeyOrigin, passkeyRPID)
	tok := jsonString(step.MFAToken)
	for _, body := range []string{
		`{"mfa_token":` + tok + `,"factor":"passkey"}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","response":` + string(good) + `}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","ceremony":` + jsonString(o.Ceremony) + `}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","ceremony":` + jsonString(o.Ceremony) + `,"response":"x"}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","ceremony":` + jsonString(o.Ceremony) + `,"response":null}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","ceremony":` + jsonString(strings.Repeat("a", 65)) + `,"response":{}}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","code":"123456","ceremony":` + jsonString(o.Ceremony) + `,"response":{}}`,
		`{"mfa_token":` + tok + `,"code":"123456","ceremony":` + jsonString(o.Ceremony) + `}`,
		`{"mfa_token":` + tok + `,"factor":"passkey","ceremony":` + jsonString(o.Ceremony) + `,"response":` + string(good),
	} {
		if res := f.postJSON(t, "/v1/login/mfa", "", body); res.status != http.StatusBadRequest {
			t.Errorf("login/mfa %.120s…: %d %s, want 400", body, res.status, res.body)
		}
	}
	// An assertion that is JSON but no PublicKeyCredential: 400 with the
	// next token (the attempt, and the ceremony, are used).
	res := f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(step.MFAToken, o.Ceremony, []byte(`{"id":"x","response":{}}`)))
	var bad mfaRequiredBody
	res.decode(t, &bad)
	if res.status != http.StatusBadRequest || bad.MFAToken == "" {
		t.Fatalf("not a credential: %d %s, want 400 with the next mfa_token", res.status, res.body)
	}
	next := bad.MFAToken

	// An answer made for another origin (a phishing page): refused.
	o = f.passkeyOptions(t, next)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, key.Get(t, o.Options, "https://evil.example", passkeyRPID))), "another origin")
	// For another relying party id: refused.
	o = f.passkeyOptions(t, next)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, key.Get(t, o.Options, passkeyOrigin, "evil.example"))), "another RP id")

	// A ceremony begun for another sign-in attempt (another MFA token
	// of the same user): refused, whatever the assertion.
	other := f.mfaStep(t, "alice", codeMFARequired)
	o = f.passkeyOptions(t, other.MFAToken)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, key.Get(t, o.Options, passkeyOrigin, passkeyRPID))), "another attempt's ceremony")
	// The token a refused answer returns is a new attempt: the
	// ceremony of the one before is not its own.
	o = f.passkeyOptions(t, next)
	retry := wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, "00000000000000000000000000", key.Get(t, o.Options, passkeyOrigin, passkeyRPID))), "an unknown ceremony")
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(retry, o.Ceremony, key.Get(t, o.Options, passkeyOrigin, passkeyRPID))), "the previous attempt's ceremony")

	// The right answer signs in: AMR pwd, hwk (not backup eligible), mfa.
	o = f.passkeyOptions(t, next)
	assertion := key.Get(t, o.Options, passkeyOrigin, passkeyRPID)
	res = f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, assertion))
	if res.status != http.StatusOK {
		t.Fatalf("passkey: %d %s", res.status, res.body)
	}
	var tokens mfaTokensResponse
	res.decode(t, &tokens)
	sess, err := f.stores.Sessions.Session(ctx, tokens.SessionID)
	if err != nil || !slices.Equal(sess.AMR, []string{"pwd", "hwk", "mfa"}) {
		t.Errorf("session AMR %v (%v), want [pwd hwk mfa]", sess.AMR, err)
	}

	// Replayed: to its own (used) ceremony in a new sign-in, and to a
	// new ceremony (another challenge): refused both.
	step = f.mfaStep(t, "alice", codeMFARequired)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(step.MFAToken, o.Ceremony, assertion)), "replayed to its ceremony")
	o = f.passkeyOptions(t, next)
	next = wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, assertion)), "replayed to a new ceremony")

	// Failures count on the account's throttle: six so far (and the
	// enrolment's wrong code); the flood meets 429 with Retry-After.
	var throttled *response
	for range 10 {
		o = f.passkeyOptions(t, next)
		res := f.postJSON(t, "/v1/login/mfa", "", passkeyMFAJSON(next, o.Ceremony, key.Get(t, o.Options, "https://evil.example", passkeyRPID)))
		if res.status == http.StatusTooManyRequests {
			throttled = res
			break
		}
		next = wantRetry(t, res, "flood")
	}
	if throttled == nil {
		t.Fatal("ten more refused passkeys were never throttled")
	}
	throttled.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	if throttled.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	n := f.auditTypes(t)
	if n[auth.AuditMFAFailed] < 7 || n[auth.AuditMFAThrottled] < 1 {
		t.Errorf("audit %v: want the refused passkeys as mfa.failed and the throttle as mfa.throttled", n)
	}
	// The refused passkeys' own events name the client, as a password
	// sign-in's do.
	failed, err := f.stores.Audit.ListAudit(ctx, keycard.AuditFilter{Type: keycard.AuditLoginFailed, Limit: keycard.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	passkeyFailures := 0
	for _, e := range failed {
		if strings.Contains(string(e.Detail), `"method":"passkey"`) {
			passkeyFailures++
			if e.ClientAddr == "" {
				t.Errorf("%s %s: no client address", e.Type, e.Detail)
			}
		}
	}
	if passkeyFailures == 0 {
		t.Error("no login.failed event of a refused passkey")
	}
	if logs := f.logs.String(); strings.Contains(logs, next) || strings.Contains(logs, step.MFAToken) {
		t.Error("the log holds an MFA token")
	}
}

// TestMFAPasskeyJSONOff: without a relying party, the passkey options
// are refused, and a user's factors never list passkey.
func TestMFAPasskeyJSONOff(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	f.enrolOverHTTP(t, f.login(t, "alice", testPassword).AccessToken)
	step := f.mfaStep(t, "alice", codeMFARequired)
	if slices.Contains(step.Factors, auth.FactorPasskey) {
		t.Errorf("factors %v with passkeys off", step.Factors)
	}
	f.postJSON(t, "/v1/login/mfa/passkey/options", "", `{"mfa_token":`+jsonString(step.MFAToken)+`}`).wantError(t, http.StatusForbidden, codeAccessDenied)
}

// TestMFAPasskeyOptionsThrottled: each passkey ceremony begun at the MFA
// step takes one of the client address's burst; the flood meets 429
// with Retry-After.
func TestMFAPasskeyOptionsThrottled(t *testing.T) {
	f := newFixture(t, fixtureOptions{passkeys: true, limits: limits(throttle.Policy{Burst: 100}, throttle.Policy{Burst: 3, BaseDelay: time.Minute, Refill: time.Hour})})
	f.register(t, "alice", testPassword)
	access := f.login(t, "alice", testPassword).AccessToken
	f.enrolOverHTTP(t, access)
	f.registerPasskey(t, access, passkeytest.New(t))
	step := f.mfaStep(t, "alice", codeMFARequired)
	for range 3 {
		f.passkeyOptions(t, step.MFAToken)
	}
	res := f.postJSON(t, "/v1/login/mfa/passkey/options", "", `{"mfa_token":`+jsonString(step.MFAToken)+`}`)
	res.wantError(t, http.StatusTooManyRequests, codeTooManyRequests)
	if res.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	f.clock.Advance(time.Minute + time.Second)
	f.passkeyOptions(t, step.MFAToken)
}
