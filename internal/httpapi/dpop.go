package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/auth"
)

// tokenDPoP checks the DPoP proof of a token request (RFC 9449 section
// 5) or of a pushed authorization request (section 10.1), if it has one,
// against the endpoint's public URL (the issuer's, so that a proxy in
// front changes nothing) and returns r with
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
	s.issueNonce(w)
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return r, errorf(http.StatusBadRequest, codeUseDPoPNonce, "Send the DPoP proof again with the server's nonce (the DPoP-Nonce header).")
	case err != nil:
		s.log.InfoContext(r.Context(), "DPoP proof refused", "err", err)
		return r, errorf(http.StatusBadRequest, codeInvalidDPoPProof, "The DPoP proof is not valid for this request.")
	}
	return r.WithContext(auth.WithDPoPKey(r.Context(), p.Thumbprint)), nil
}

// issueNonce sets the current server nonce (RFC 9449 section 8) on an
// answer to a request with a DPoP proof, when nonces are on, and lets a
// script on another origin read it.
func (s *Server) issueNonce(w http.ResponseWriter) {
	if s.dpop.Nonces == nil {
		return
	}
	w.Header().Set("DPoP-Nonce", s.dpop.Nonces.Issue())
	w.Header().Set("Access-Control-Expose-Headers", "DPoP-Nonce")
}

// dpopToken returns the token of an Authorization: DPoP header, or "".
func dpopToken(r *http.Request) string {
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return ""
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "DPoP") {
		return ""
	}
	return strings.TrimLeft(token, " ")
}

// resourceDPoP checks a request to one of the server's resources (the
// userinfo endpoint) that sends its access token as Authorization: DPoP
// (RFC 9449 section 7): the DPoP proof must be valid for the request's
// method, the resource's URL under the issuer, and the token (ath). It
// returns r with the proven key in its context (the service then checks
// that the token is bound to it), r unchanged for any other scheme, or
// false once it has answered a refusal: 401 with a DPoP challenge.
func (s *Server) resourceDPoP(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	token := dpopToken(r)
	if token == "" {
		return r, true
	}
	refuse := func(code, desc string) (*http.Request, bool) {
		w.Header().Set("WWW-Authenticate", `DPoP error="`+code+`", algs="`+strings.Join(s.dpop.AlgorithmNames(), " ")+`"`)
		s.writeError(w, r, errorf(http.StatusUnauthorized, code, desc))
		return r, false
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 || len(token) > maxAccessTokenLen {
		return refuse(codeInvalidDPoPProof, "Send one DPoP proof in the DPoP header.")
	}
	url := strings.TrimRight(s.svc.Config().Issuer, "/") + r.URL.EscapedPath()
	p, err := s.dpop.Check(proofs[0], dpop.Request{Method: r.Method, URL: url, AccessToken: token})
	s.issueNonce(w)
	switch {
	case errors.Is(err, dpop.ErrUseNonce):
		return refuse(codeUseDPoPNonce, "Send the DPoP proof again with the server's nonce (the DPoP-Nonce header).")
	case err != nil:
		s.log.InfoContext(r.Context(), "DPoP proof refused", "err", err)
		return refuse(codeInvalidDPoPProof, "The DPoP proof is not valid for this request.")
	}
	return r.WithContext(auth.WithDPoPKey(r.Context(), p.Thumbprint)), true
}
