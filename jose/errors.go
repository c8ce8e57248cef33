package jose

import (
	"errors"

	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// Errors returned by this package. They are wrapped with more detail, so
// match them with [errors.Is].
var (
	// ErrMalformed reports input that is not a well-formed compact JWS, JWK
	// or JSON object as this package accepts it.
	ErrMalformed = jsonscan.ErrMalformed
	// ErrDuplicateMember reports a JSON object with the same member name
	// twice (compared after unescaping). It wraps ErrMalformed.
	ErrDuplicateMember = jsonscan.ErrDuplicateMember
	// ErrTooLarge reports a token over the size limit. It wraps ErrMalformed.
	ErrTooLarge = subError("jose: token too large", ErrMalformed)
	// ErrUnsupportedAlgorithm reports an algorithm this package does not
	// implement, including "none".
	ErrUnsupportedAlgorithm = errors.New("jose: unsupported algorithm")
	// ErrAlgorithmMismatch reports a token whose "alg" header differs from
	// the algorithm its key is bound to, or that the caller did not allow.
	ErrAlgorithmMismatch = errors.New("jose: algorithm not allowed for key")
	// ErrKeyNotFound reports that no key matches the token's "kid" (or, for
	// a token without "kid", that no single key can be chosen).
	ErrKeyNotFound = errors.New("jose: key not found")
	// ErrSignatureInvalid reports a signature that does not verify.
	ErrSignatureInvalid = errors.New("jose: signature invalid")
	// ErrInvalidKey reports a key that fails the checks made on import and
	// generation: too short, wrong curve, bad exponent, not usable for the
	// requested operation.
	ErrInvalidKey = errors.New("jose: invalid key")
	// ErrUnsupportedKey reports a JWK of a type or curve this package does
	// not support (for example "kty":"oct" with an encryption algorithm).
	ErrUnsupportedKey = errors.New("jose: unsupported key type")
	// ErrCritical reports a header with "crit" or "b64": no extension
	// header is understood, so such tokens are always rejected (RFC 7515
	// section 4.1.11, RFC 7797).
	ErrCritical = subError("jose: critical header extension not supported", ErrMalformed)
	// ErrEncrypted reports a five-segment compact JWE, which this package
	// does not decrypt. It wraps ErrMalformed.
	ErrEncrypted = subError("jose: JWE (encrypted) tokens are not supported", ErrMalformed)
	// ErrJSONSerialization reports a JWS in the JSON serialization; only
	// the compact serialization is accepted. It wraps ErrMalformed.
	ErrJSONSerialization = subError("jose: JSON-serialized JWS is not supported, use the compact form", ErrMalformed)
	// ErrDuplicateKeyID reports a JWK Set with two keys sharing a "kid".
	ErrDuplicateKeyID = errors.New("jose: duplicate kid in key set")
)

// wrapped is an error with its own message that also matches a parent
// sentinel under errors.Is.
type wrapped struct {
	msg    string
	parent error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.parent }

func subError(msg string, parent error) error { return &wrapped{msg, parent} }
