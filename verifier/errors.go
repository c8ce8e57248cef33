package verifier

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes of RFC 6750 section 3.1, plus temporarily_unavailable
// (RFC 6749 section 4.1.2.1) for a verifier that fails closed.
const (
	CodeInvalidRequest         = "invalid_request"
	CodeInvalidToken           = "invalid_token"
	CodeInsufficientScope      = "insufficient_scope"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
	// RFC 9449 sections 7.1 and 8: a DPoP proof that fails a check, and
	// one that lacks the server's nonce.
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	CodeUseDPoPNonce     = "use_dpop_nonce"
	// RFC 9470 section 3: the token is valid, but the user's sign-in is
	// not of a class the resource accepts (acr), or too old (max_age).
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
)

// Sentinel errors, matched with errors.Is. Every *Error returned by
// Verify and Authenticate wraps one of them.
var (
	// ErrNoToken: the request carries no access token.
	ErrNoToken = errors.New("verifier: no access token")
	// ErrMalformedRequest: the request carries its token in a way this
	// package refuses (two credentials, a token in the URL, a broken
	// Authorization header).
	ErrMalformedRequest = errors.New("verifier: malformed request")
	// ErrInvalidToken: the token is not valid (signature, claims, expiry).
	ErrInvalidToken = errors.New("verifier: invalid token")
	// ErrRevoked: the token is valid but was revoked (its session, its
	// id, its user or every user was cut off, or its key was revoked).
	ErrRevoked = errors.New("verifier: token revoked")
	// ErrInsufficientScope: the token lacks a required scope or role.
	ErrInsufficientScope = errors.New("verifier: insufficient scope")
	// ErrUnavailable: the revocation feed has been unreachable for longer
	// than Config.MaxFeedOutage and the verifier fails closed.
	ErrUnavailable = errors.New("verifier: revocation feed unavailable")
	// ErrDPoP: the token is bound to a DPoP key (cnf.jkt) and came
	// without a valid proof of it — as a bearer token, with a proof that
	// fails a check (which also matches dpop.ErrInvalidProof), or signed
	// by another key; or it came as Authorization: DPoP without being
	// bound to a key.
	ErrDPoP = errors.New("verifier: DPoP proof required")
	// ErrInsufficientAuthentication: the token is valid, but the user
	// signed in in a way the resource does not accept, or too long ago
	// (StepUp, RFC 9470).
	ErrInsufficientAuthentication = errors.New("verifier: insufficient user authentication")
)

// Error is a refusal, with the HTTP answer that goes with it (RFC 6750
// section 3). Description is safe to show to the client; Err, the
// underlying cause, is for the log only.
type Error struct {
	Status      int    // 400, 401, 403 or 503
	Code        string // "" (no credentials), or one of the Code constants
	Description string
	// Scope, for insufficient_scope, lists the scopes the resource needs
	// (RFC 6750 section 3).
	Scope string
	// DPoPAlgs, when not empty, makes the challenge a DPoP one (RFC 9449
	// section 7.1) listing these algorithms (space-separated): the
	// refusal of a token bound to a key.
	DPoPAlgs string
	// Nonce, for use_dpop_nonce, is the nonce to send back in the
	// DPoP-Nonce header (RFC 9449 section 8).
	Nonce string
	// ACRValues, for insufficient_user_authentication, lists the
	// acceptable acr values (space-separated); MaxAge, when positive, is
	// the longest time since the user's sign-in the resource accepts
	// (RFC 9470 section 3).
	ACRValues string
	MaxAge    time.Duration
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "verifier: " + e.Description
}

func (e *Error) Unwrap() error { return e.Err }

func noToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Description: "An access token is required.", Err: ErrNoToken}
}

func badRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc, Err: ErrMalformedRequest}
}

func invalidToken(desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, Err: err}
}

func insufficient(desc, scope string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: desc, Scope: scope, Err: ErrInsufficientScope}
}

func unavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeTemporarilyUnavailable,
		Description: "Tokens cannot be checked for revocation right now; try again later.", Err: ErrUnavailable}
}

// Realm is the realm named in WWW-Authenticate challenges.
const Realm = "keycard"

// WriteError writes err as the answer to a request: the status, a
// WWW-Authenticate: Bearer challenge for 401 and 403 (RFC 6750 section
// 3), and the JSON body {"error","error_description"} of the auth
// server's contract. An err that is not an *Error is answered as an
// invalid token (401). The cause (Error.Err) is never written.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = invalidToken("The access token is invalid.", err)
	}
	h := w.Header()
	if e.Nonce != "" {
		h.Set("DPoP-Nonce", e.Nonce)
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		h.Set("WWW-Authenticate", challenge(e))
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	code := e.Code
	if code == "" {
		code = CodeInvalidToken // the body needs one; the challenge has none (section 3.1)
	}
	body, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, e.Description})
	w.Write(append(body, '\n'))
}

// challenge is the WWW-Authenticate value for e.
func challenge(e *Error) string {
	var b strings.Builder
	if e.DPoPAlgs != "" {
		b.WriteString(`DPoP realm="` + Realm + `"`)
	} else {
		b.WriteString(`Bearer realm="` + Realm + `"`)
	}
	if e.Code != "" {
		b.WriteString(`, error="` + e.Code + `"`)
		b.WriteString(`, error_description=` + strconv.Quote(quoteSafe(e.Description)))
	}
	if e.Scope != "" {
		b.WriteString(`, scope=` + strconv.Quote(quoteSafe(e.Scope)))
	}
	if e.DPoPAlgs != "" {
		b.WriteString(`, algs=` + strconv.Quote(quoteSafe(e.DPoPAlgs)))
	}
	if e.ACRValues != "" {
		b.WriteString(`, acr_values=` + strconv.Quote(quoteSafe(e.ACRValues)))
	}
	if e.MaxAge > 0 {
		b.WriteString(`, max_age="` + strconv.FormatInt(maxAgeSeconds(e.MaxAge), 10) + `"`)
	}
	return b.String()
}

// quoteSafe keeps the characters RFC 6750 allows in error_description
// and scope (%x20-21 / %x23-5B / %x5D-7E), dropping the others.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}
