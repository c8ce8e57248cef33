package jwt

import (
	"errors"

	"github.com/keycard-auth/keycard/jose"
)

// Errors from package jose, repeated here so that callers of this package
// need not import jose to match them with errors.Is.
var (
	ErrMalformed            = jose.ErrMalformed
	ErrTooLarge             = jose.ErrTooLarge
	ErrSignatureInvalid     = jose.ErrSignatureInvalid
	ErrKeyNotFound          = jose.ErrKeyNotFound
	ErrAlgorithmMismatch    = jose.ErrAlgorithmMismatch
	ErrUnsupportedAlgorithm = jose.ErrUnsupportedAlgorithm
)

// ErrInvalidClaims is the parent of every claim validation error below:
// errors.Is(err, ErrInvalidClaims) reports that the token was authentic but
// its claims were not acceptable.
var ErrInvalidClaims = errors.New("jwt: invalid claims")

// Claim validation errors. Each also matches [ErrInvalidClaims].
var (
	ErrTokenExpired          = claimError("jwt: token is expired")
	ErrTokenNotValidYet      = claimError("jwt: token is not valid yet")
	ErrTokenUsedBeforeIssued = claimError("jwt: token used before issued")
	ErrInvalidIssuer         = claimError("jwt: invalid issuer")
	ErrInvalidAudience       = claimError("jwt: invalid audience")
	ErrInvalidType           = claimError("jwt: invalid token type")
	ErrMissingClaim          = claimError("jwt: required claim missing")
	ErrLifetimeTooLong       = claimError("jwt: token lifetime exceeds the maximum")
	// ErrInvalidClaim reports a registered claim with the wrong JSON type
	// or out of range, or a claims set that is not a strict JSON object.
	// It also matches ErrMalformed.
	ErrInvalidClaim = &wrapped{msg: "jwt: malformed claim", parents: []error{ErrInvalidClaims, ErrMalformed}}
)

type wrapped struct {
	msg     string
	parents []error
}

func (e *wrapped) Error() string   { return e.msg }
func (e *wrapped) Unwrap() []error { return e.parents }

func claimError(msg string) error { return &wrapped{msg: msg, parents: []error{ErrInvalidClaims}} }
