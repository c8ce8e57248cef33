package keycard

import (
	"errors"
	"fmt"
)

// Error codes of the auth server. They are transport independent; the HTTP
// layer maps each to a status and an RFC 6749 error in one place.
const (
	ECONFLICT     = "conflict"     // the action conflicts with existing state (a duplicate username)
	EFORBIDDEN    = "forbidden"    // the caller is known but not allowed
	EINTERNAL     = "internal"     // a bug or an unavailable dependency; details go to the log only
	EINVALID      = "invalid"      // the input is malformed or breaks a documented limit
	ENOTFOUND     = "not_found"    // the entity does not exist
	ETHROTTLED    = "throttled"    // too many attempts; the client must wait before trying again
	EUNAUTHORIZED = "unauthorized" // the credentials are missing, wrong, expired or revoked
)

// Error is the auth server's error type: a machine-readable Code, one of the
// E… constants, and a Message safe to show to the client. Errors of any
// other type are internal: their text is for the log, never for the client.
type Error struct {
	Code    string
	Message string
}

// Error implements the error interface. It is meant for logs.
func (e *Error) Error() string {
	return fmt.Sprintf("keycard error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a
// nil err, and EINTERNAL for any other error.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, ""
// for a nil err, and "Internal error." for any other error, whose text may
// hold details that must not reach a client.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
