package auth

import (
	"context"

	"github.com/keycard-auth/keycard/jwt"
)

// Trace starts timing a named piece of work as a child of the work in
// ctx, and returns the context to do it in and the function that ends
// the timing with the work's error (nil for success). It is how the
// auth logic shows, in a request's trace, the work that costs: password
// hashing and signing (the Trace… names). internal/tracing makes one
// from an OpenTelemetry tracer provider; this package knows nothing of
// tracing. A Trace must not record anything of ctx but its span.
type Trace func(ctx context.Context, name string) (context.Context, func(error))

// The names of the work a Trace times.
const (
	// TracePasswordVerify is an argon2id verification: of a login's
	// password, of the current password before a change, or of a
	// dummy hash for an unknown user (which looks the same on purpose).
	TracePasswordVerify = "password.verify"
	// TracePasswordHash is an argon2id hash of a new password (or a
	// rehash with new parameters).
	TracePasswordHash = "password.hash"
	// TraceSign is the signing of a token: an access token or an ID
	// token.
	TraceSign = "token.sign"
)

// trace starts timing name with Deps.Trace, if any.
func (s *Service) trace(ctx context.Context, name string) func(error) {
	if s.tracer == nil {
		return noEnd
	}
	_, end := s.tracer(ctx, name)
	return end
}

func noEnd(error) {}

// hashPassword hashes a new password.
func (s *Service) hashPassword(ctx context.Context, pass string) (string, error) {
	end := s.trace(ctx, TracePasswordHash)
	hash, err := s.hasher.Hash(pass)
	end(err)
	return hash, err
}

// verifyPassword checks pass against a stored hash.
func (s *Service) verifyPassword(ctx context.Context, pass, hash string) (ok, rehash bool, err error) {
	end := s.trace(ctx, TracePasswordVerify)
	ok, rehash, err = s.hasher.Verify(pass, hash)
	end(err)
	return ok, rehash, err
}

// verifyDummy does the work of a verification against a dummy hash, so
// that an unknown user takes as long as a wrong password.
func (s *Service) verifyDummy(ctx context.Context, pass string) {
	end := s.trace(ctx, TracePasswordVerify)
	s.hasher.VerifyDummy(pass)
	end(nil)
}

// sign signs a token's claims.
func (s *Service) sign(ctx context.Context, signer *jwt.Signer, claims any) (string, error) {
	end := s.trace(ctx, TraceSign)
	tok, err := signer.Sign(claims)
	end(err)
	return tok, err
}
