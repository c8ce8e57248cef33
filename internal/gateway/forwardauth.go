package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Forward-auth: a proxy in front (nginx auth_request, Caddy forward_auth,
// Traefik ForwardAuth, Envoy ext_authz) asks the gateway, with a
// subrequest at ForwardAuthConfig.Path, whether to let a request through.
// The subrequest carries the original request's headers (Authorization
// among them) and says what the request was in headers of one of two
// conventions:
//
//   - X-Forwarded-Method, X-Forwarded-Uri, X-Forwarded-Host (Traefik,
//     Caddy; nginx when configured so);
//   - X-Original-Method, X-Original-URI (nginx's common configuration);
//   - neither: the subrequest's own method, and its path after Path
//     (Envoy ext_authz's path_prefix: GET /auth/orders/7?x=1 is about
//     GET /orders/7?x=1).
//
// They are believed only from ForwardAuthConfig.TrustedProxies. The
// request is decided by the same routes, rules and revocation feed as
// proxied ones: 200 with the X-Keycard-* identity headers for the proxy
// to copy upstream, 401 with WWW-Authenticate, 403 otherwise, including
// a request no route serves (the proxy cannot tell 404 from an error).

// Headers that name the original request of a subrequest.
const (
	headerForwardedMethod = "X-Forwarded-Method"
	headerForwardedURI    = "X-Forwarded-Uri"
	headerForwardedHost   = "X-Forwarded-Host"
	headerForwardedProto  = "X-Forwarded-Proto"
	headerOriginalMethod  = "X-Original-Method"
	headerOriginalURI     = "X-Original-URI"
)

// maxOriginalURI bounds the original request's URI.
const maxOriginalURI = 8 << 10

// serveForwardAuth answers a subrequest, and returns the route's name and
// the subject for the access log.
func (g *Gateway) serveForwardAuth(w http.ResponseWriter, r *http.Request, t *table) (name, subject string) {
	name = routeForwardAuth
	fa := t.cfg.ForwardAuth
	w.Header().Set("Cache-Control", "no-store")
	if !fa.proxies.Trusts(r.RemoteAddr) {
		writeJSON(w, http.StatusForbidden, "access_denied", "Forward-auth subrequests must come from a trusted proxy (forward_auth.trusted_proxies).")
		return name, ""
	}
	orig, problem := originalRequest(r, fa.Path)
	if problem != "" {
		writeJSON(w, http.StatusBadRequest, "invalid_request", problem)
		return name, ""
	}
	rt, claims, refused := g.admit(orig, t)
	if rt != nil {
		name = routeForwardAuth + " " + rt.name
	}
	switch refused.status {
	case 0:
	case http.StatusUnauthorized, http.StatusForbidden:
		refused.write(w)
		return name, ""
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		// A proxy answers anything but 2xx, 401 and 403 as its own
		// failure (nginx: 500); what no route serves is forbidden.
		writeJSON(w, http.StatusForbidden, "access_denied", refused.desc)
		return name, ""
	default:
		refused.write(w)
		return name, ""
	}
	if claims != nil {
		setIdentity(w.Header(), claims)
		subject = claims.Subject
	}
	// Every identity header is in the answer, empty when there is
	// nothing to say: a proxy that copies the answer's headers over the
	// request's (Envoy's allowed_upstream_headers) then overwrites a
	// client's forged copy instead of letting it through.
	for _, h := range []string{HeaderSubject, HeaderSession, HeaderScopes, HeaderRoles, HeaderActor, HeaderKeyThumbprint} {
		if _, ok := w.Header()[h]; !ok {
			w.Header()[h] = []string{""}
		}
	}
	w.WriteHeader(http.StatusOK)
	return name, subject
}

// routeForwardAuth names forward-auth subrequests in logs and metrics.
const routeForwardAuth = "forward-auth"

// originalRequest returns the request a subrequest is about: r with the
// original method, URI and host, and r's headers (which carry the
// original request's credentials). prefix is where subrequests arrive.
func originalRequest(r *http.Request, prefix string) (*http.Request, string) {
	method := firstHeader(r, headerForwardedMethod, headerOriginalMethod)
	if method == "" {
		method = r.Method
	}
	if !isToken(method) || strings.ContainsAny(method, "()<>@,;:\\/[]?={}") {
		return nil, "The original method is not a method."
	}
	raw := firstHeader(r, headerForwardedURI, headerOriginalURI)
	if ep := r.URL.EscapedPath(); raw == "" && strings.HasPrefix(ep, prefix+"/") {
		raw = ep[len(prefix):]
		if r.URL.RawQuery != "" || r.URL.ForceQuery {
			raw += "?" + r.URL.RawQuery
		}
	}
	if raw == "" {
		return nil, "Send the original request's URI in " + headerForwardedURI + " or " + headerOriginalURI + ", or after " + prefix + " in the path."
	}
	if len(raw) > maxOriginalURI || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
		return nil, "The original URI must be a path (and query) of at most 8 KiB."
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil || u.Fragment != "" {
		return nil, "The original URI does not parse."
	}
	orig := r.Clone(r.Context())
	orig.Method, orig.URL, orig.RequestURI = method, u, raw
	if host := r.Header.Get(headerForwardedHost); host != "" {
		orig.Host = host
	}
	// The URL the client used, which a DPoP proof names: the proxy's
	// scheme (X-Forwarded-Proto), the original host and path.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(firstHeader(r, headerForwardedProto)); p == "http" || p == "https" {
		scheme = p
	}
	orig = orig.WithContext(context.WithValue(orig.Context(), originalURLKey{}, scheme+"://"+orig.Host+u.EscapedPath()))
	return orig, ""
}

// firstHeader returns the value of the first of the headers r has; a
// header sent more than once is taken as absent (ambiguous).
func firstHeader(r *http.Request, names ...string) string {
	for _, n := range names {
		if v := r.Header.Values(n); len(v) == 1 {
			return v[0]
		}
	}
	return ""
}
