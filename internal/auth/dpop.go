package auth

import (
	"context"
	"crypto/subtle"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jwt"
)

// DPoP (RFC 9449) at the token endpoint. The HTTP layer checks the proof
// of a token request and hands the service the thumbprint of its key in
// the request's context (WithDPoPKey): every grant then binds what it
// mints to that key — cnf.jkt in the access token, the key in a public
// client's grant session — without each grant taking another argument.

// dpopKeyContext is the context key of the proven DPoP key.
type dpopKeyContext struct{}

// WithDPoPKey returns ctx carrying jkt, the RFC 7638 thumbprint of the
// key whose DPoP proof came with a token request, checked by the caller.
// Tokens minted under ctx are bound to that key.
func WithDPoPKey(ctx context.Context, jkt string) context.Context {
	if jkt == "" {
		return ctx
	}
	return context.WithValue(ctx, dpopKeyContext{}, jkt)
}

// DPoPKey returns the thumbprint WithDPoPKey put in ctx, or "".
func DPoPKey(ctx context.Context) string {
	jkt, _ := ctx.Value(dpopKeyContext{}).(string)
	return jkt
}

// Token types of a token response (RFC 6749 section 7.1, RFC 9449
// section 5).
const (
	TokenTypeBearer = "Bearer"
	TokenTypeDPoP   = "DPoP"
)

func tokenType(ctx context.Context) string {
	if DPoPKey(ctx) != "" {
		return TokenTypeDPoP
	}
	return TokenTypeBearer
}

// DPoPError is a token request refused for want of a DPoP proof: a
// client whose policy requires one sent none, or a refresh token bound
// to a key came without a proof. The token endpoint answers it with 400
// invalid_dpop_proof (RFC 9449 section 5).
type DPoPError struct{ Description string }

func (e *DPoPError) Error() string { return "auth: " + e.Description }

// requireDPoP refuses a token request of a client whose policy requires
// DPoP (keycard.DPoPRequired) when it came without a proof.
func requireDPoP(ctx context.Context, client *keycard.Client) error {
	if client != nil && client.OAuth.DPoP == keycard.DPoPRequired && DPoPKey(ctx) == "" {
		return &DPoPError{Description: "This client must send a DPoP proof with its token requests."}
	}
	return nil
}

// checkTokenKey refuses an access token bound to a DPoP key (cnf.jkt)
// unless the request proved that key (WithDPoPKey), and an unbound token
// that came with a proof (as Authorization: DPoP): the server's own
// resources take a bound token only with its proof, so that a stolen one
// is useless there too (RFC 9449 section 7).
func (s *Service) checkTokenKey(ctx context.Context, c *jwt.AccessClaims) error {
	if subtle.ConstantTimeCompare([]byte(c.Confirmation.JKT), []byte(DPoPKey(ctx))) != 1 {
		s.log.InfoContext(ctx, "access token refused: its DPoP binding does not match the proof of the request", "jti", c.ID)
		return errToken()
	}
	return nil
}

// presenterRefused is the answer to a refresh token presented by someone
// its session is not bound to (keycard.PresenterError): a session's DPoP
// key not proven because no proof came is a DPoPError (400
// invalid_dpop_proof), another key or another client the same answer as
// any refused refresh token (invalid_grant).
func (s *Service) presenterRefused(ctx context.Context, perr *keycard.PresenterError) error {
	if !perr.Key {
		s.log.InfoContext(ctx, "refresh token of a grant session presented by another client: refused, not rotated", "session", perr.SessionID)
		return errRefresh()
	}
	s.log.InfoContext(ctx, "refresh token bound to a DPoP key refused, not rotated: no proof of that key", "session", perr.SessionID)
	if DPoPKey(ctx) == "" {
		return &DPoPError{Description: "This refresh token is bound to a DPoP key: send a DPoP proof signed with it."}
	}
	return errRefresh()
}
