package verifier

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// StepUp is what a resource demands of how, and how recently, the user
// signed in (OAuth 2.0 Step Up Authentication Challenge, RFC 9470). The
// zero value demands nothing.
type StepUp struct {
	// ACR lists the acceptable authentication context classes: the
	// token's acr claim must be one of them, compared exactly. Keycard
	// issues "pwd" (a password, or another single factor) and "mfa" (a
	// second factor); list both to accept either. Empty accepts any.
	ACR []string
	// MaxAge is the longest time since the user signed in: the token's
	// auth_time must be no older. A token without auth_time fails it.
	// Zero or less demands nothing.
	MaxAge time.Duration
}

// Check reports whether c meets s at now. It returns nil when it does,
// else an *Error with status 401 and code insufficient_user_authentication
// wrapping ErrInsufficientAuthentication, whose challenge names what is
// missing (RFC 9470 section 3): acr_values for the wrong class, max_age
// for a sign-in too old, both when both fail. A nil c is answered as a
// request without a token.
func (s StepUp) Check(c *Claims, now time.Time) error {
	if len(s.ACR) == 0 && s.MaxAge <= 0 {
		return nil
	}
	if c == nil {
		return noToken()
	}
	badACR := len(s.ACR) > 0 && (c.ACR == "" || !slices.Contains(s.ACR, c.ACR))
	tooOld := s.MaxAge > 0 && (c.AuthTime.IsZero() || now.Sub(c.AuthTime.Time) > s.MaxAge)
	if !badACR && !tooOld {
		return nil
	}
	e := &Error{Status: http.StatusUnauthorized, Code: CodeInsufficientUserAuthentication, Err: ErrInsufficientAuthentication}
	what := "a sign-in"
	if badACR {
		e.ACRValues = strings.Join(s.ACR, " ")
		what = "another kind of sign-in"
		// "second factor" only when a single factor would not do: with
		// pwd accepted too, the user needs just another sign-in.
		if slices.Contains(s.ACR, "mfa") && !slices.Contains(s.ACR, "pwd") {
			what = "a sign-in with a second factor"
		}
		what += " (acr " + strings.Join(s.ACR, " or ") + ")"
	}
	if tooOld {
		e.MaxAge = s.MaxAge
		what += " within the last " + strconv.FormatInt(maxAgeSeconds(s.MaxAge), 10) + " seconds"
	}
	e.Description = "This resource needs " + what + "."
	return e
}

// maxAgeSeconds is the max_age of a challenge: d in whole seconds,
// rounded up so that a client signing in again meets it.
func maxAgeSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// RequireACR returns middleware, to be placed after Middleware, that lets
// a request through only if its token's acr is one of values (compared
// exactly: list "pwd" and "mfa" to accept either); otherwise 401 with
// WWW-Authenticate: Bearer error="insufficient_user_authentication" and
// acr_values naming them (RFC 9470 section 3), on which the client signs
// the user in again with acr_values and retries. Without a verified
// token, 401.
func RequireACR(values ...string) func(http.Handler) http.Handler {
	s := StepUp{ACR: slices.Clone(values)}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := FromContext(r.Context())
			if err := s.Check(c, time.Time{}); err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireMaxAge returns middleware, to be placed after Middleware, that
// lets a request through only if the user signed in (the token's
// auth_time) no longer than maxAge ago by v's clock; otherwise 401
// insufficient_user_authentication with max_age (RFC 9470 section 3), on
// which the client signs the user in again (max_age on the authorization
// request) and retries. A token without auth_time — a service client's —
// is refused.
func (v *Verifier) RequireMaxAge(maxAge time.Duration) func(http.Handler) http.Handler {
	return v.RequireStepUp(StepUp{MaxAge: maxAge})
}

// RequireStepUp returns middleware, to be placed after Middleware, that
// lets a request through only if its token meets s by v's clock
// (StepUp.Check); otherwise 401 insufficient_user_authentication naming
// everything that falls short, acr_values and max_age both when both do.
// Use it rather than RequireACR and RequireMaxAge in a chain when a
// resource demands both: the first of a chain to refuse would name only
// its own requirement, and the client, stepping up for it, would meet the
// second refusal after signing in again.
func (v *Verifier) RequireStepUp(s StepUp) func(http.Handler) http.Handler {
	s.ACR = slices.Clone(s.ACR)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := FromContext(r.Context())
			if err := s.Check(c, v.now()); err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
