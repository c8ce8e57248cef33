package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Error codes of the "error" member of error bodies. The first ones are
// RFC 6749 section 5.2 and RFC 6750 section 3.1 codes, used where the RFC
// applies; the others are Keycard's, for situations no RFC names.
const (
	codeInvalidRequest       = "invalid_request"        // RFC 6749 §5.2: malformed request
	codeInvalidGrant         = "invalid_grant"          // RFC 6749 §5.2: bad credentials or refresh token
	codeUnsupportedGrantType = "unsupported_grant_type" // RFC 6749 §5.2
	codeInvalidScope         = "invalid_scope"          // RFC 6749 §5.2
	codeInvalidToken         = "invalid_token"          // RFC 6750 §3.1: bad access token
	codeAccessDenied         = "access_denied"          // RFC 6749 §4.1.2.1: known caller, refused
	codeServerError          = "server_error"           // RFC 6749 §4.1.2.1: internal failure

	codeUnauthorized         = "unauthorized" // no credentials were presented
	codeNotFound             = "not_found"
	codeConflict             = "conflict"
	codeMethodNotAllowed     = "method_not_allowed"
	codeRegistrationDisabled = "registration_disabled"
	codeUnavailable          = "unavailable"
	codeTooManyRequests      = "too_many_requests" // 429: throttled, see Retry-After
	// RFC 9470 section 3: the token's authentication is too old for the
	// action (step-up); WWW-Authenticate carries max_age.
	codeInsufficientUserAuthentication = "insufficient_user_authentication"
	// RFC 9449 section 5: a DPoP proof that is missing where required,
	// or invalid; and section 8: the proof must carry the server's nonce.
	codeInvalidDPoPProof = "invalid_dpop_proof"
	codeUseDPoPNonce     = "use_dpop_nonce"
)

// httpError is an error answered with a given status and code: a protocol
// error of this layer (wrong content type, unsupported grant type…) or a
// service error that a protocol answers in its own way (a refused refresh
// token is 400 invalid_grant at the token endpoint, RFC 6749 §5.2).
type httpError struct {
	status      int
	code        string
	description string
}

func (e *httpError) Error() string {
	return "httpapi: " + http.StatusText(e.status) + ": " + e.code + ": " + e.description
}

// errorf returns an *httpError.
func errorf(status int, code, description string) *httpError {
	return &httpError{status: status, code: code, description: description}
}

// badRequest returns a 400 invalid_request error.
func badRequest(description string) *httpError {
	return errorf(http.StatusBadRequest, codeInvalidRequest, description)
}

// asGrantError turns the service's refusal of a credential (EUNAUTHORIZED)
// into RFC 6749's invalid_grant with the given status, keeping its
// message; other errors pass through.
func asGrantError(err error, status int) error {
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		return errorf(status, codeInvalidGrant, keycard.ErrorMessage(err))
	}
	return err
}

// errorResponse returns the status, error code and description to answer
// err with: the status of browser.StatusOf, the one mapping of keycard
// error codes to HTTP statuses, and an RFC 6749-style code. Errors that are neither *httpError nor *keycard.Error are
// internal: 500 with a generic description, the error itself only logged.
func errorResponse(err error) (status int, code, description string) {
	if he, ok := errors.AsType[*httpError](err); ok {
		return he.status, he.code, he.description
	}
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		return http.StatusUnauthorized, codeInsufficientUserAuthentication, keycard.ErrorMessage(err)
	}
	if de, ok := errors.AsType[*auth.DPoPError](err); ok {
		return http.StatusBadRequest, codeInvalidDPoPProof, de.Description
	}
	status = browser.StatusOf(err)
	code, ok := apiErrorCodes[keycard.ErrorCode(err)]
	if !ok {
		return http.StatusInternalServerError, codeServerError, "Internal error."
	}
	return status, code, keycard.ErrorMessage(err)
}

// apiErrorCodes are the API's error codes of the service's error codes
// (their statuses are browser.StatusOf's).
var apiErrorCodes = map[string]string{
	keycard.EINVALID:      codeInvalidRequest,
	keycard.EUNAUTHORIZED: codeUnauthorized,
	keycard.EFORBIDDEN:    codeAccessDenied,
	keycard.ENOTFOUND:     codeNotFound,
	keycard.ECONFLICT:     codeConflict,
	keycard.ETHROTTLED:    codeTooManyRequests,
}

// errorBody is the shape of every error response (RFC 6749 §5.2).
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// writeError answers r with err. A login refused by the throttle
// (*auth.ThrottledError) gets a Retry-After header in seconds (RFC 9110
// §10.2.3). A 401 without a WWW-Authenticate header
// gets a bare "Bearer" challenge (RFC 9110 §15.5.2 requires one, RFC 6750
// §3 names the scheme). Internal errors are logged with the request id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, desc := errorResponse(err)
	if status >= 500 {
		ctx := r.Context()
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			// The client went away; there is nobody to answer and
			// nothing is wrong with the server.
			s.log.InfoContext(ctx, "request canceled by client", "path", logPath(r))
		} else {
			s.log.ErrorContext(ctx, "internal error", "method", r.Method, "path", logPath(r), "err", err)
		}
	}
	if re, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		// RFC 9470 section 3: the client must get a token with a recent
		// auth_time; max_age says how recent.
		// acr_values, when the sign-in must also be of an acr (an admin
		// with a second factor steps up with it).
		challenge := fmt.Sprintf(`Bearer error="%s", error_description="%s", max_age="%d"`,
			codeInsufficientUserAuthentication, desc, int64(re.MaxAge/time.Second))
		if re.ACR != "" {
			challenge += fmt.Sprintf(`, acr_values="%s"`, re.ACR)
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	if te, ok := errors.AsType[*auth.ThrottledError](err); ok {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(te.RetryAfter/time.Second), 10))
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	writeJSON(w, status, errorBody{Error: code, Description: desc})
}
