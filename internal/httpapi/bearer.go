package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// maxAccessTokenLen bounds the access token accepted in an Authorization
// header; Keycard's own tokens are well under 2 KiB.
const maxAccessTokenLen = 8 << 10

// principal returns the caller that the bearer middleware authenticated.
// It panics outside a bearer-protected route: that is a routing bug.
func principal(ctx context.Context) *auth.Principal {
	return ctx.Value(principalKey).(*auth.Principal)
}

// bearerToken returns the access token of an "Authorization: Bearer"
// header (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110
// §11.1). present is false when the request carries no Authorization
// header or one with another scheme: it did not try bearer
// authentication. The query string and the body are never looked at
// (RFC 6750 §2.2 and §2.3 are not supported, so tokens stay out of URLs
// and access logs).
func bearerToken(r *http.Request) (token string, present bool, problem string) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return "", false, ""
	case len(values) > 1:
		return "", true, "Send one Authorization header."
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false, ""
	}
	token = strings.TrimLeft(token, " ")
	switch {
	case token == "":
		return "", true, "The Bearer credentials are empty."
	case len(token) > maxAccessTokenLen:
		return "", true, "Invalid access token."
	}
	return token, true, ""
}

// bearer wraps a handler of the user API: it authenticates the request's
// access token with auth.Service.Authenticate and makes the principal
// available to next through principal. A request without bearer
// credentials is answered 401 with a bare "WWW-Authenticate: Bearer"
// challenge (RFC 6750 §3.1: no error code when no authentication was
// attempted); a rejected token with 401 and error="invalid_token" in both
// the challenge and the body (RFC 6750 §3). In cookie mode a request
// without an Authorization header may present the access cookie instead
// (both at once is 400), and must then pass the CSRF defence (403).
func (s *Server) bearer(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, present, problem := bearerToken(r)
		cookieToken, viaCookie, cookieProblem, err := s.cookieAccessToken(r) // cookies.go
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if viaCookie {
			token, present, problem = cookieToken, true, cookieProblem
		}
		if !present {
			w.Header().Set("WWW-Authenticate", "Bearer")
			s.writeError(w, r, errorf(http.StatusUnauthorized, codeUnauthorized,
				"This endpoint needs an access token: send Authorization: Bearer <token>."))
			return
		}
		var p *auth.Principal
		if problem == "" {
			p, err = s.svc.Authenticate(r.Context(), token)
			if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
				problem = keycard.ErrorMessage(err)
			}
		}
		if problem != "" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+challengeText(problem)+`"`)
			s.writeError(w, r, errorf(http.StatusUnauthorized, codeInvalidToken, problem))
			return
		}
		if err == nil && viaCookie {
			err = s.cookies.checkCSRF(r, p.Claims.SessionID)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// challengeText returns s with every character that RFC 6750 §3 does not
// allow in error_description (anything but printable ASCII other than '"'
// and '\') removed.
func challengeText(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return -1
		}
		return c
	}, s)
}
