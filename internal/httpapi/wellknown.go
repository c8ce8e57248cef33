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

// wellKnownRoutes registers the routes that scripts on any origin may
// call (publicCORS), each answering the CORS preflight (preflight): the
// public documents — the JWKS and the two discovery paths — and the
// OAuth endpoints a single-page app on another origin calls from the
// browser — token, revocation and userinfo. None of these takes a
// cookie's word for who calls it (the token endpoint's cookie-mode
// refresh has its own CSRF defence, and browsers send no cookies to a
// response they may read under "*"), so any origin may read their
// answers: that is what Auth0, Okta and Keycloak do for public clients'
// "web origins". No other route answers CORS.
func (s *Server) wellKnownRoutes(mux *http.ServeMux) {
	for _, route := range []struct {
		path string
		h    http.HandlerFunc
	}{
		{"/.well-known/jwks.json", s.handleJWKS},
		{"/.well-known/openid-configuration", s.handleDiscovery},
		{"/.well-known/oauth-authorization-server", s.handleDiscovery},
	} {
		s.handle(mux, "GET "+route.path, publicCORS(route.h))
		s.handle(mux, "OPTIONS "+route.path, preflight("GET, HEAD, OPTIONS", "GET"))
	}
	s.handle(mux, "OPTIONS /oauth/token", preflight("POST, OPTIONS", "POST"))
	s.handle(mux, "OPTIONS /oauth/revoke", preflight("POST, OPTIONS", "POST"))
	s.handle(mux, "OPTIONS /oauth/userinfo", preflight("GET, HEAD, POST, OPTIONS", "GET, POST"))
}

// CORS limits of preflight.
const (
	// preflightMaxAge is how long a browser may cache a preflight's
	// answer (Access-Control-Max-Age, in seconds): a day. Browsers cap it
	// (Chromium at two hours); the answer never changes.
	preflightMaxAge = 24 * 60 * 60
	// maxPreflightHeaders bounds the request headers a preflight may ask
	// for, and maxPreflightHeaderLen the length of their list.
	maxPreflightHeaders   = 16
	maxPreflightHeaderLen = 512
)

// publicCORS lets scripts on any origin read the responses of h (the
// Fetch standard's CORS protocol): Access-Control-Allow-Origin "*" on
// every response, errors included, and never
// Access-Control-Allow-Credentials, so browsers send no cookies and
// expose nothing a cookie could unlock. It is only for public documents.
func publicCORS(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		h(w, r)
	}
}

// preflight answers OPTIONS on a CORS route with 204: the route's
// methods (allow) and, to a CORS preflight (one with
// Access-Control-Request-Method), what the browser may send: the methods
// granted, the request headers it asks for when they are a short list of
// valid field names (Access-Control-Request-Headers: Authorization and
// Content-Type for the OAuth endpoints; any others a script added are
// ignored by the route), no credentials, cached for preflightMaxAge. A
// method not granted stops the browser there.
func preflight(allow, methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allow)
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", methods)
			if names := preflightHeaders(r); names != "" {
				h.Set("Access-Control-Allow-Headers", names)
			}
			h.Set("Access-Control-Max-Age", strconv.Itoa(preflightMaxAge))
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// preflightHeaders returns the field names of the request's
// Access-Control-Request-Headers, lower case, joined by ", ", or "" when
// it has none, or is longer than maxPreflightHeaderLen, or lists more
// than maxPreflightHeaders names or something that is not a field name
// (an RFC 9110 token).
func preflightHeaders(r *http.Request) string {
	v := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
	if len(v) > maxPreflightHeaderLen {
		return ""
	}
	var names []string
	for name := range strings.SplitSeq(v, ",") {
		name = strings.ToLower(strings.Trim(name, " \t"))
		if name == "" {
			continue
		}
		if !isToken(name) || len(names) == maxPreflightHeaders {
			return ""
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// isToken reports whether s is an RFC 9110 §5.6.2 token: one or more
// tchar.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

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
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint"`
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
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	// The algorithms of private_key_jwt assertions at the introspection
	// endpoint (RFC 8414 §2).
	IntrospectionEndpointAuthSigningAlgValuesSupported []string `json:"introspection_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported             []string `json:"revocation_endpoint_auth_methods_supported"`
	// The algorithms of private_key_jwt assertions at the revocation
	// endpoint (RFC 8414 §2).
	RevocationEndpointAuthSigningAlgValuesSupported []string `json:"revocation_endpoint_auth_signing_alg_values_supported"`
	ClaimsSupported                                 []string `json:"claims_supported"`
	PromptValuesSupported                           []string `json:"prompt_values_supported"`
	ACRValuesSupported                              []string `json:"acr_values_supported"`
	BackchannelLogoutSupported                      bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported               bool     `json:"backchannel_logout_session_supported"`
	AuthorizationResponseIssParameterSupported      bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported                       bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported                    bool     `json:"request_uri_parameter_supported"`
	DPoPSigningAlgValuesSupported                   []string `json:"dpop_signing_alg_values_supported"`
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
		DeviceAuthorizationEndpoint:        base + "/oauth/device_authorization",
		IntrospectionEndpoint:              base + "/oauth/introspect",
		RevocationEndpoint:                 base + "/oauth/revoke",
		ScopesSupported:                    auth.OIDCScopes(),
		ResponseTypesSupported:             []string{"code"},
		ResponseModesSupported:             []string{"query", "form_post"},
		GrantTypesSupported:                []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken, keycard.GrantClientCredentials, keycard.GrantDeviceCode, keycard.GrantTokenExchange},
		CodeChallengeMethodsSupported:      []string{"S256"},
		SubjectTypesSupported:              []string{"public"},
		IDTokenSigningAlgValuesSupported:   algs,
		// "none": public clients, and the refresh_token grant of
		// Keycard's own sessions.
		TokenEndpointAuthMethodsSupported:                  append(slices.Clone(secretMethods), keycard.AuthPrivateKeyJWT, keycard.AuthNone),
		TokenEndpointAuthSigningAlgValuesSupported:         auth.AssertionAlgorithms(),
		IntrospectionEndpointAuthMethodsSupported:          append(slices.Clone(secretMethods), keycard.AuthPrivateKeyJWT),
		IntrospectionEndpointAuthSigningAlgValuesSupported: auth.AssertionAlgorithms(),
		RevocationEndpointAuthMethodsSupported:             append(slices.Clone(secretMethods), keycard.AuthPrivateKeyJWT, keycard.AuthNone),
		RevocationEndpointAuthSigningAlgValuesSupported:    auth.AssertionAlgorithms(),
		ClaimsSupported:                            []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash", "preferred_username", "roles", "email", "email_verified"},
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		ACRValuesSupported:                         auth.ACRValues,
		BackchannelLogoutSupported:                 true,
		BackchannelLogoutSessionSupported:          true,
		AuthorizationResponseIssParameterSupported: true,
		RequestParameterSupported:                  false,
		RequestURIParameterSupported:               true,
		DPoPSigningAlgValuesSupported:              s.dpop.AlgorithmNames(),
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
