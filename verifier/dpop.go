package verifier

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"

	"github.com/keycard-auth/keycard/dpop"
)

// DPoP (RFC 9449) at a resource server: a token bound to a key (its
// cnf.jkt) is accepted only as Authorization: DPoP <token> with a DPoP
// header holding a fresh proof, signed by that key, for this request's
// method and URL, with the token's hash (ath). Such a token presented as
// a bearer token is refused, whatever else is right with it.

type publicURLKey struct{}

// WithPublicURL returns a copy of ctx that tells Authenticate the URL a
// request was sent to by its client — scheme, host and path, the query is
// ignored — which the request's DPoP proof must name (htu). A proxy that
// knows it (from its own configuration, or the X-Forwarded-* headers of
// a trusted proxy in front) sets it on the request it authenticates; it
// wins over Config.PublicURL.
func WithPublicURL(ctx context.Context, url string) context.Context {
	return context.WithValue(ctx, publicURLKey{}, url)
}

// requestURL returns the URL the client used for r (see WithPublicURL
// and Config.PublicURL).
func (v *Verifier) requestURL(r *http.Request) string {
	if u, ok := r.Context().Value(publicURLKey{}).(string); ok {
		return u
	}
	if v.cfg.PublicURL != "" {
		return v.cfg.PublicURL + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// checkBinding checks that a token is used as its binding says: a token
// bound to a DPoP key only under the DPoP scheme with a valid proof of
// that key; a token under the DPoP scheme only if it is bound.
func (v *Verifier) checkBinding(r *http.Request, token string, scheme int, c *Claims) error {
	jkt := c.Confirmation.JKT
	if scheme != schemeDPoP {
		if jkt == "" {
			return nil
		}
		return v.dpopError(CodeInvalidToken, "This access token is bound to a DPoP key: send it as Authorization: DPoP with a DPoP proof.", ErrDPoP)
	}
	if jkt == "" {
		return v.dpopError(CodeInvalidToken, "This access token is not bound to a DPoP key: send it as Authorization: Bearer.", ErrDPoP)
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return v.dpopError(CodeInvalidDPoPProof, "Send one DPoP proof in the DPoP header.", ErrDPoP)
	}
	p, err := v.cfg.DPoP.Check(proofs[0], dpop.Request{Method: r.Method, URL: v.requestURL(r), AccessToken: token})
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		e := v.dpopError(CodeUseDPoPNonce, "Send the DPoP proof again with the server's nonce.", fmt.Errorf("%w: %w", ErrDPoP, err))
		e.Nonce = v.cfg.DPoP.Nonces.Issue()
		return e
	case err != nil:
		return v.dpopError(CodeInvalidDPoPProof, "The DPoP proof is not valid for this request.", fmt.Errorf("%w: %w", ErrDPoP, err))
	}
	if subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(jkt)) != 1 {
		return v.dpopError(CodeInvalidDPoPProof, "The DPoP proof is not signed by the key the access token is bound to.", ErrDPoP)
	}
	return nil
}

// challengeFor returns err, a refusal of a token sent under scheme, with
// a DPoP challenge when the token came as Authorization: DPoP (RFC 9449
// section 7.1): the client is told in the scheme it used.
func (v *Verifier) challengeFor(scheme int, err error) error {
	e, ok := errors.AsType[*Error](err)
	if !ok || scheme != schemeDPoP || e.Status != http.StatusUnauthorized {
		return err
	}
	c := *e
	c.DPoPAlgs = v.dpopAlgs
	return &c
}

// dpopError is a 401 refusal with a DPoP challenge (RFC 9449 section
// 7.1).
func (v *Verifier) dpopError(code, desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Description: desc, DPoPAlgs: v.dpopAlgs, Err: err}
}
