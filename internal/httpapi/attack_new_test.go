package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/authtest"
)

// TestAttackMalformedSecondFactorBodies sends every JSON body of the
// second-factor, passkey and federation endpoints with wrong types,
// missing and unknown fields, huge values and broken JSON, and odd path
// values to the new admin routes: each must be a 4xx, never a 5xx.
func TestAttackMalformedSecondFactorBodies(t *testing.T) {
	f := newAdminFixture(t)
	alice := f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword).AccessToken
	pk := f.storePasskey(t, alice, "Laptop")

	huge := strings.Repeat("9", 1<<16)
	generic := []string{"", "null", "[]", `"x"`, "1", "{", `{"a":`, "{}", `{"unknown":1}`,
		strings.Repeat("[", 10000), "{\"mfa_token\":\"\xff\"}", `{"x":"` + strings.Repeat("a", MaxBodyBytes) + `"}`}
	perEndpoint := map[string][]string{
		"/v1/login/mfa": {`{"mfa_token":1,"code":"123456"}`, `{"mfa_token":"x","code":123456}`, `{"mfa_token":null,"code":null}`,
			`{"mfa_token":["x"],"code":"1"}`, `{"mfa_token":"x","code":"1","factor":1}`, `{"mfa_token":"x","code":"1","cookies":"yes"}`,
			`{"mfa_token":"` + huge + `","code":"123456"}`, `{"mfa_token":"mfa1.` + huge + `","code":"123456"}`,
			`{"mfa_token":"x","code":"123456","factor":"` + huge + `"}`, `{"mfa_token":"mfa1.AAAA","code":"\u0000\u0000\u0000\u0000\u0000\u0000"}`,
			`{"mfa_token":"mfa1.AAAA","code":"１２３４５６"}`, `{"mfa_token":"mfa1.AAAA","code":"123456","response":{"id":1}}`},
		"/v1/login/mfa/enroll":     {`{"mfa_token":1}`, `{"mfa_token":null}`, `{"mfa_token":"` + huge + `"}`, `{"mfa_token":"mfa1.!!"}`},
		"/v1/me/mfa/totp/confirm":  {`{"code":1}`, `{"code":null}`, `{"code":"` + huge + `"}`, `{"code":"12345６"}`, `{"code":["123456"]}`},
		"/v1/me/passkeys/" + pk.ID: {`{"name":1}`, `{"name":null}`, `{"name":"` + huge + `"}`, `{"name":"\u0007bell"}`, `{"name":""}`, `{"name":{"a":1}}`},
	}
	for path, specific := range perEndpoint {
		method, token := http.MethodPost, ""
		if strings.HasPrefix(path, "/v1/me/") {
			token = tok
		}
		if strings.HasPrefix(path, "/v1/me/passkeys/") {
			method = http.MethodPatch
		}
		for _, body := range append(append([]string{}, generic...), specific...) {
			h := http.Header{"Content-Type": {"application/json"}}
			if token != "" {
				h.Set("Authorization", "Bearer "+token)
			}
			res := f.do(t, request{method: method, path: path, header: h, body: body})
			if res.status < 400 || res.status >= 500 {
				t.Errorf("%s %s %.60q: status %d, want a 4xx (body %.200s)", method, path, body, res.status, res.body)
			}
		}
	}

	// Odd path values on the new admin routes.
	odd := []string{"x", strings.Repeat("a", 4000), "%00", "%ff%fe", "..", url.PathEscape("a/b"), "%E2%80%AE", "' OR 1=1 --"}
	for _, v := range odd {
		for _, rt := range []struct{ method, path string }{
			{http.MethodDelete, "/admin/v1/users/" + v + "/mfa"},
			{http.MethodGet, "/admin/v1/users/" + v + "/passkeys"},
			{http.MethodDelete, "/admin/v1/users/" + alice + "/passkeys/" + v},
			{http.MethodDelete, "/admin/v1/users/" + v + "/passkeys/" + pk.ID},
			{http.MethodGet, "/admin/v1/users/" + v + "/identities"},
			{http.MethodDelete, "/admin/v1/users/" + alice + "/identities/" + v + "/" + v},
			{http.MethodDelete, "/v1/me/passkeys/" + v},
		} {
			token := f.token
			if strings.HasPrefix(rt.path, "/v1/me/") {
				token = tok
			}
			res := f.send(t, rt.method, rt.path, token)
			if res.status < 400 || res.status >= 500 {
				t.Errorf("%s %.80s: status %d, want a 4xx (body %.200s)", rt.method, rt.path, res.status, res.body)
			}
		}
	}
	// A path that climbs: ServeMux would 307 it (method kept) to
	// DELETE /admin/v1/users/ALICE, which a client following redirects
	// sends; refused before routing instead.
	for _, p := range []string{"/admin/v1/users/" + alice + "/passkeys/..", "/admin/v1/users/" + alice + "/identities/up/../..",
		"/admin/v1/users/" + alice + "/mfa/.", "//admin/v1/users/" + alice, "/v1/me/passkeys/../../me"} {
		token := f.token
		if strings.HasPrefix(p, "/v1/me/") {
			token = tok
		}
		f.send(t, http.MethodDelete, p, token).wantError(t, http.StatusBadRequest, codeInvalidRequest)
	}
	// Alice and her passkey are still there: none of the above removed them.
	var list passkeysResponse
	ok(t, f.send(t, http.MethodGet, "/v1/me/passkeys", tok), http.StatusOK, &list)
	if len(list.Passkeys) != 1 || list.Passkeys[0].Name != "Laptop" {
		t.Errorf("after the malformed requests: %+v", list)
	}
}

// TestAttackMFAStepJSON: the half-signed-in state of the MFA step is
// worth nothing on its own. The MFA token is not a bearer token nor a
// refresh token; Alice's MFA token does not take Bob's right code (or
// the other way round); the same token with a right code sent twice at
// once signs in once.
func TestAttackMFAStepJSON(t *testing.T) {
	f := newFixture(t)
	f.register(t, "alice", testPassword)
	f.register(t, "bob", testPassword)
	aliceSecret, _ := f.enrolOverHTTP(t, f.login(t, "alice", testPassword).AccessToken)
	bobSecret, _ := f.enrolOverHTTP(t, f.login(t, "bob", testPassword).AccessToken)
	f.clock.Advance(30 * time.Second) // past the steps the enrolments used

	step := f.mfaStep(t, "alice", codeMFARequired)
	// Skipping the second step: the token as an access token, as a
	// refresh token, and as the subject of a token exchange.
	if res := f.send(t, http.MethodGet, "/v1/me", step.MFAToken); res.status != http.StatusUnauthorized {
		t.Errorf("MFA token as a bearer token: %d %s", res.status, res.body)
	}
	if res := f.refresh(t, url.QueryEscape(step.MFAToken)); res.status != http.StatusBadRequest && res.status != http.StatusUnauthorized {
		t.Errorf("MFA token as a refresh token: %d %s", res.status, res.body)
	}
	// Swapping: Alice's token with Bob's code is a wrong code.
	next := wantRetry(t, f.postJSON(t, "/v1/login/mfa", "", mfaJSON(step.MFAToken, authtest.TOTPCode(t, bobSecret, f.clock.Now()))), "alice's token, bob's code")
	// Bob's code is still good for Bob (it was not spent on Alice's sign-in).
	bobStep := f.mfaStep(t, "bob", codeMFARequired)
	res := f.postJSON(t, "/v1/login/mfa", "", mfaJSON(bobStep.MFAToken, authtest.TOTPCode(t, bobSecret, f.clock.Now())))
	var tok mfaTokensResponse
	res.decode(t, &tok)
	if res.status != http.StatusOK {
		t.Fatalf("bob's own code: %d %s", res.status, res.body)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", tok.AccessToken); !strings.Contains(string(res.body), `"bob"`) {
		t.Errorf("bob's sign-in is not bob's: %s", res.body)
	}

	// The same token and right code, twice at once: one 200.
	code := authtest.TOTPCode(t, aliceSecret, f.clock.Now())
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Go(func() { statuses[i] = f.postJSON(t, "/v1/login/mfa", "", mfaJSON(next, code)).status })
	}
	wg.Wait()
	if n := countOf(statuses, http.StatusOK); n != 1 {
		t.Errorf("one MFA token and code sent 8 times at once: statuses %v, want exactly one 200", statuses)
	}
	for _, s := range statuses {
		if s != http.StatusOK && s != http.StatusUnauthorized {
			t.Errorf("statuses %v: want 200 once and 401 otherwise", statuses)
			break
		}
	}
}

func countOf(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}
