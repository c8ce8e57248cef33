package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// setPublicCache replaces the default no-store headers of a public
// document: the JWKS and the discovery metadata may be cached for
// auth.JWKSMaxAge, the cache lifetime the key rotation schedule allows for.
func setPublicCache(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(auth.JWKSMaxAge/time.Second)))
	w.Header().Del("Pragma")
}

// handleJWKS is GET /.well-known/jwks.json: the public keys that verify
// the server's tokens (RFC 7517 §5): next, active and retired keys, never
// private parts or HMAC secrets.
func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	jwks, err := s.svc.Keys().JWKS(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setPublicCache(w)
	w.Header().Set("Content-Type", "application/json")
	w.Write(jwks)
}

// metadata is the authorization server metadata (RFC 8414 §2) and OpenID
// Provider metadata (OpenID Connect Discovery 1.0 §3), served at both
// discovery paths. It lists what is built, and only that.
type metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	// Keycard's revocation feed (docs/http-api.md), for verifiers and
	// gateways that start from the issuer; RFC 8414 §2 allows metadata of
	// one's own.
	RevocationFeedEndpoint   string `json:"keycard_revocation_feed_endpoint"`
	RevocationStreamEndpoint string `json:"keycard_revocation_stream_endpoint"`
}

// handleDiscovery is GET /.well-known/oauth-authorization-server (RFC 8414
// §3) and GET /.well-known/openid-configuration (OpenID Connect Discovery
// §4). Endpoint URLs are built from the configured issuer, never from the
// request's Host header. The signing algorithm is the active key's, so
// that clients (go-oidc's default verifier among them) accept its ID
// tokens.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	issuer := s.svc.Config().Issuer
	base := strings.TrimRight(issuer, "/")
	algs, err := s.svc.SigningAlgorithms(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	secretMethods := []string{keycard.AuthClientSecretBasic, keycard.AuthClientSecretPost}
	setPublicCache(w)
	writeJSON(w, http.StatusOK, metadata{
		Issuer:                             issuer,
		AuthorizationEndpoint:              base + "/oauth/authorize",
		TokenEndpoint:                      base + "/oauth/token",
		UserinfoEndpoint:                   base + "/oauth/userinfo",
		JWKSURI:                            base + "/.well-known/jwks.json",
		EndSessionEndpoint:                 base + "/oauth/logout",
		PushedAuthorizationRequestEndpoint: base + "/oauth/par",
		IntrospectionEndpoint:              base + "/oauth/introspect",
		RevocationEndpoint:                 base + "/oauth/revoke",
		ScopesSupported:                    auth.OIDCScopes(),
		ResponseTypesSupported:             []string{"code"},
		ResponseModesSupported:             []string{"query", "form_post"},
		GrantTypesSupported:                []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken, keycard.GrantClientCredentials},
		CodeChallengeMethodsSupported:      []string{"S256"},
		SubjectTypesSupported:              []string{"public"},
		IDTokenSigningAlgValuesSupported:   algs,
		// "none": public clients, and the refresh_token grant of
		// Keycard's own sessions.
		TokenEndpointAuthMethodsSupported:          append(slices.Clone(secretMethods), keycard.AuthNone),
		IntrospectionEndpointAuthMethodsSupported:  secretMethods,
		RevocationEndpointAuthMethodsSupported:     append(slices.Clone(secretMethods), keycard.AuthNone),
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash", "preferred_username", "roles"},
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		AuthorizationResponseIssParameterSupported: true,
		RequestParameterSupported:                  false,
		RequestURIParameterSupported:               true,
		RevocationFeedEndpoint:                     base + "/v1/revocations",
		RevocationStreamEndpoint:                   base + "/v1/revocations/stream",
	})
}

type healthResponse struct {
	Status      string `json:"status"`
	Error       string `json:"error,omitempty"`
	Description string `json:"error_description,omitempty"`
	// Degraded lists what works in a reduced way (Options.Degraded).
	Degraded []string `json:"degraded,omitempty"`
}

// handleHealth is GET /healthz: the process is alive and serving.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}

// handleReady is GET /readyz: 200 when Options.Ready says the server can
// serve, 503 with its reason otherwise. A server that serves in a reduced
// way (Options.Degraded) is still ready, "status":"degraded" with the
// reasons: taking every instance out of the load balancer because a
// shared cache is down would turn a degradation into an outage.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, healthResponse{Status: "unavailable", Error: codeUnavailable, Description: err.Error()})
			return
		}
	}
	if s.degraded != nil {
		if d := s.degraded(); len(d) > 0 {
			writeJSON(w, http.StatusOK, healthResponse{Status: "degraded", Degraded: d})
			return
		}
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}
