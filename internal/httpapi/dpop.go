package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/auth"
)

// tokenDPoP checks the DPoP proof of a token request, if it has one
// (RFC 9449 section 5), against the token endpoint's public URL (the
// issuer's, so that a proxy in front changes nothing) and returns r with
// the proven key in its context (auth.WithDPoPKey): the grant then binds
// its tokens to the key. A request without a DPoP header is returned as
// it is; two DPoP headers, or a proof that fails a check, are 400
// invalid_dpop_proof, and a proof without the server's nonce, when one is
// required, 400 use_dpop_nonce with a fresh DPoP-Nonce (section 8).
func (s *Server) tokenDPoP(w http.ResponseWriter, r *http.Request) (*http.Request, error) {
	proofs := r.Header.Values("DPoP")
	switch len(proofs) {
	case 0:
		return r, nil
	case 1:
	default:
		return r, errorf(http.StatusBadRequest, codeInvalidDPoPProof, "Send one DPoP header.")
	}
	url := strings.TrimRight(s.svc.Config().Issuer, "/") + r.URL.EscapedPath()
	p, err := s.dpop.Check(proofs[0], dpop.Request{Method: r.Method, URL: url})
	if s.dpop.Nonces != nil {
		w.Header().Set("DPoP-Nonce", s.dpop.Nonces.Issue())
	}
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return r, errorf(http.StatusBadRequest, codeUseDPoPNonce, "Send the DPoP proof again with the server's nonce (the DPoP-Nonce header).")
	case err != nil:
		s.log.InfoContext(r.Context(), "DPoP proof refused", "err", err)
		return r, errorf(http.StatusBadRequest, codeInvalidDPoPProof, "The DPoP proof is not valid for this request.")
	}
	return r.WithContext(auth.WithDPoPKey(r.Context(), p.Thumbprint)), nil
}
