package verifier

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// TestStepUp sends tokens of each kind of sign-in to resources that
// demand a class (RequireACR) or a recent sign-in (RequireMaxAge): those
// that fall short get 401 insufficient_user_authentication naming what
// is missing (RFC 9470 section 3), the others pass.
func TestStepUp(t *testing.T) {
	f := newFixture(t, jose.ES256, Config{})
	token := func(acr string, amr []string, authAge time.Duration) string {
		c := f.claims()
		c.ACR, c.AMR = acr, amr
		if authAge >= 0 {
			c.AuthTime = jwt.NewNumericDate(testNow.Add(-authAge))
		}
		return f.sign(t, c)
	}
	pwd := token("pwd", []string{"pwd"}, time.Minute)
	mfa := token("mfa", []string{"pwd", "otp", "mfa"}, time.Minute)
	oldMFA := token("mfa", []string{"hwk", "mfa"}, time.Hour)
	none := token("", nil, -1) // a service client's: no acr, no auth_time
	upper := token("MFA", []string{"mfa"}, time.Minute)
	for _, tc := range []struct {
		name      string
		mw        func(http.Handler) http.Handler
		token     string
		status    int
		challenge []string // parts the WWW-Authenticate header must hold
	}{
		{"mfa demanded, mfa token", RequireACR("mfa"), mfa, 200, nil},
		{"mfa demanded, pwd token", RequireACR("mfa"), pwd, 401, []string{`acr_values="mfa"`}},
		{"mfa demanded, no acr", RequireACR("mfa"), none, 401, []string{`acr_values="mfa"`}},
		{"mfa demanded, MFA in upper case", RequireACR("mfa"), upper, 401, []string{`acr_values="mfa"`}},
		{"either demanded, pwd token", RequireACR("pwd", "mfa"), pwd, 200, nil},
		{"either demanded, no acr", RequireACR("pwd", "mfa"), none, 401, []string{`acr_values="pwd mfa"`}},
		{"nothing demanded", RequireACR(), none, 200, nil},
		{"recent sign-in demanded, recent", f.v.RequireMaxAge(5 * time.Minute), pwd, 200, nil},
		{"recent sign-in demanded, old", f.v.RequireMaxAge(5 * time.Minute), oldMFA, 401, []string{`max_age="300"`}},
		{"recent sign-in demanded, no auth_time", f.v.RequireMaxAge(5 * time.Minute), none, 401, []string{`max_age="300"`}},
		{"max_age rounds up", f.v.RequireMaxAge(1500 * time.Millisecond), pwd, 401, []string{`max_age="2"`}},
		{"both demanded, both met", f.v.RequireStepUp(StepUp{ACR: []string{"mfa"}, MaxAge: 5 * time.Minute}), mfa, 200, nil},
		{"both demanded, class short", f.v.RequireStepUp(StepUp{ACR: []string{"mfa"}, MaxAge: 5 * time.Minute}), pwd, 401, []string{`acr_values="mfa"`}},
		{"both demanded, too old", f.v.RequireStepUp(StepUp{ACR: []string{"mfa"}, MaxAge: 5 * time.Minute}), oldMFA, 401, []string{`max_age="300"`}},
		{"both demanded, both short", f.v.RequireStepUp(StepUp{ACR: []string{"mfa"}, MaxAge: 5 * time.Minute}), none, 401, []string{`acr_values="mfa"`, `max_age="300"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			w := serve(f.v.Middleware()(tc.mw(echoClaims)), r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if tc.status == 200 {
				return
			}
			if code := errorBody(t, w); code != CodeInsufficientUserAuthentication {
				t.Errorf("error %q, want %s", code, CodeInsufficientUserAuthentication)
			}
			ch := w.Header().Get("WWW-Authenticate")
			want := append([]string{`Bearer realm="keycard"`, `error="insufficient_user_authentication"`, `error_description="This resource needs `}, tc.challenge...)
			for _, part := range want {
				if !strings.Contains(ch, part) {
					t.Errorf("challenge %q lacks %s", ch, part)
				}
			}
			// and names nothing that was met.
			for _, param := range []string{"acr_values=", "max_age="} {
				if strings.Contains(ch, param) && !strings.Contains(strings.Join(tc.challenge, " "), param) {
					t.Errorf("challenge %q names %s, which the token meets", ch, param)
				}
			}
		})
	}
	t.Run("without the middleware", func(t *testing.T) {
		w := serve(RequireACR("mfa")(echoClaims), httptest.NewRequest("GET", "/", nil))
		if w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "error=") {
			t.Errorf("status %d, challenge %q; want 401 without an error code (no token)", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	})
}

// TestStepUpCheckBoth names both what is missing when a token fails both
// demands, and matches its sentinel.
func TestStepUpCheckBoth(t *testing.T) {
	c := &Claims{AccessClaims: jwt.AccessClaims{ACR: "pwd", AuthTime: jwt.NewNumericDate(testNow.Add(-time.Hour))}}
	err := StepUp{ACR: []string{"mfa"}, MaxAge: 10 * time.Minute}.Check(c, testNow)
	if !errors.Is(err, ErrInsufficientAuthentication) {
		t.Fatalf("got %v, want ErrInsufficientAuthentication", err)
	}
	w := httptest.NewRecorder()
	WriteError(w, err)
	ch := w.Header().Get("WWW-Authenticate")
	if w.Code != 401 || !strings.Contains(ch, `acr_values="mfa"`) || !strings.Contains(ch, `max_age="600"`) {
		t.Errorf("status %d, challenge %q; want 401 with acr_values and max_age", w.Code, ch)
	}
	if err := (StepUp{ACR: []string{"mfa"}, MaxAge: 2 * time.Hour}).Check(&Claims{AccessClaims: jwt.AccessClaims{ACR: "mfa", AuthTime: c.AuthTime}}, testNow); err != nil {
		t.Errorf("a recent enough mfa sign-in: %v", err)
	}
	if err := (StepUp{}).Check(nil, testNow); err != nil {
		t.Errorf("the zero StepUp refused: %v", err)
	}
}

// ExampleRequireACR demands a second factor for one route: a token of a
// password sign-in gets 401 insufficient_user_authentication with
// acr_values="mfa", and the client signs the user in again with
// acr_values=mfa (docs/accounts.md, "Step-up in services").
func ExampleRequireACR() {
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/transfers", nil)
	c := &Claims{AccessClaims: jwt.AccessClaims{ACR: "pwd"}}
	// In a service: mux.Handle("POST /transfers", v.Middleware()(verifier.RequireACR("mfa")(transfers)))
	h := RequireACR("mfa")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
	fmt.Println(w.Code)
	fmt.Println(w.Header().Get("WWW-Authenticate"))
	// Output:
	// 401
	// Bearer realm="keycard", error="insufficient_user_authentication", error_description="This resource needs a sign-in with a second factor (acr mfa).", acr_values="mfa"
}
