package dpop

import "errors"

// Errors returned by this package. They are wrapped with detail; match
// them with [errors.Is]. A client is told only the error code
// (invalid_dpop_proof or use_dpop_nonce, RFC 9449 sections 5, 7.1 and
// 8); the detail is for the log.
var (
	// ErrInvalidProof reports a DPoP proof that fails a check of RFC 9449
	// section 4.3: the error code invalid_dpop_proof.
	ErrInvalidProof = errors.New("dpop: invalid proof")
	// ErrReplayed reports a proof whose jti was already seen within the
	// proof window. It wraps ErrInvalidProof.
	ErrReplayed = &wrapped{"dpop: proof replayed", ErrInvalidProof}
	// ErrUseNonce reports a proof without the server nonce, or with a
	// stale or unknown one: the error code use_dpop_nonce, answered with
	// a fresh DPoP-Nonce header (RFC 9449 section 8). It does not wrap
	// ErrInvalidProof.
	ErrUseNonce = errors.New("dpop: server nonce required")
)

type wrapped struct {
	msg    string
	parent error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.parent }
