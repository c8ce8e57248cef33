package verifier

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/textproto"
	"strings"
)

// AccessCookie is the name of the auth server's access-token cookie in
// cookie mode (HttpOnly, Secure, SameSite=Strict).
const AccessCookie = "__Host-keycard_access"

// WebSocketProtocolPrefix marks the entry of Sec-WebSocket-Protocol that
// carries an access token: a browser cannot set Authorization on a
// WebSocket upgrade, so it offers the subprotocol
// "keycard.bearer.<token>" next to its real ones:
//
//	new WebSocket(url, ["keycard.bearer." + token, "chat"])
//
// The entry is removed before the request reaches the handler, so the
// server never selects it (and never echoes the token back).
const WebSocketProtocolPrefix = "keycard.bearer."

// Sources says where, besides the Authorization: Bearer header, a
// request's access token may be. The query string never is: a token in a
// URL ends up in logs, histories and Referer headers (RFC 6750 section
// 5.3), so a request with access_token in its query, in any spelling a
// server could read as that name (see CheckQuery), is refused.
type Sources struct {
	// Cookie, if set, is the name of a cookie holding the token, usually
	// AccessCookie.
	Cookie string
	// WebSocket accepts the token in Sec-WebSocket-Protocol on WebSocket
	// upgrades (see WebSocketProtocolPrefix).
	WebSocket bool
}

// Authenticate finds the access token in the Authorization: Bearer header
// of r and verifies it (see Verify). The error is an *Error: 401 without
// a token, 400 for a malformed request, 401 invalid_token, or 503 when
// the verifier fails closed.
func (v *Verifier) Authenticate(r *http.Request) (*Claims, error) {
	return v.AuthenticateFrom(r, Sources{})
}

// AuthenticateFrom is Authenticate with more places to look for the
// token. A request that carries a token in more than one place is
// refused (400): which one counts would be a guess.
func (v *Verifier) AuthenticateFrom(r *http.Request, src Sources) (*Claims, error) {
	token, scheme, err := credential(r, src)
	if err != nil {
		return nil, err
	}
	c, err := v.Verify(token)
	if err != nil {
		return nil, v.challengeFor(scheme, err) // dpop.go
	}
	if err := v.checkBinding(r, token, scheme, c); err != nil {
		return nil, err
	}
	return c, nil
}

// TokenFrom returns the access token of r (see Sources) without verifying
// it, or an *Error: ErrNoToken when there is none, ErrMalformedRequest
// for two credentials, a token in the URL or a malformed Authorization
// header.
//
// A token sent as Authorization: DPoP <token> (RFC 9449 section 7.1) is
// returned like a bearer token; Authenticate checks its DPoP proof.
func TokenFrom(r *http.Request, src Sources) (string, error) {
	token, _, err := credential(r, src)
	return token, err
}

// The schemes a token is presented under.
const (
	schemeBearer = iota // Authorization: Bearer, a cookie or a WebSocket protocol
	schemeDPoP          // Authorization: DPoP, with a DPoP proof header
)

// credential is TokenFrom, which also says under which scheme the token
// came.
func credential(r *http.Request, src Sources) (string, int, error) {
	if err := CheckQuery(r); err != nil {
		return "", 0, err
	}
	var token string
	found, kind := 0, schemeBearer
	switch auth := r.Header.Values("Authorization"); len(auth) {
	case 0:
	case 1:
		scheme, rest, _ := strings.Cut(auth[0], " ")
		bearer := strings.EqualFold(scheme, "Bearer")
		if bearer || strings.EqualFold(scheme, "DPoP") {
			token = strings.TrimLeft(rest, " ")
			// IndexByte is vectorised; ContainsAny on a long token is not.
			if token == "" || strings.IndexByte(token, ',') >= 0 || strings.IndexByte(token, ' ') >= 0 || strings.IndexByte(token, '\t') >= 0 {
				return "", 0, badRequest("The Authorization header must be \"Bearer <token>\" or \"DPoP <token>\".")
			}
			if !bearer {
				kind = schemeDPoP
			}
			found++
		}
		// Another scheme (Basic, say) is not ours: no bearer token.
	default:
		return "", 0, badRequest("Send one Authorization header.")
	}
	if src.Cookie != "" {
		n := 0
		for _, c := range r.CookiesNamed(src.Cookie) {
			if n++; n > 1 {
				return "", 0, badRequest("Send one " + src.Cookie + " cookie.")
			}
			if c.Value != "" {
				token = c.Value
				found++
			}
		}
	}
	if src.WebSocket && isWebSocketUpgrade(r) {
		if t, ok, err := webSocketToken(r); err != nil {
			return "", 0, err
		} else if ok {
			token = t
			found++
		}
	}
	switch found {
	case 0:
		return "", 0, noToken()
	case 1:
		return token, kind, nil
	}
	return "", 0, badRequest("Send the access token in one place only.")
}

// CheckQuery returns an *Error, 400 invalid_request wrapping
// ErrMalformedRequest, when the query string of r carries an access
// token: a parameter that a server could read as access_token (see
// queryHasToken), whatever its value. TokenFrom, and so Authenticate and
// Middleware, make this check first; a proxy that forwards requests
// without authenticating them calls it too, so that no upstream is
// handed a token in a URL (the gateway does, on every route).
func CheckQuery(r *http.Request) error {
	if queryHasToken(r.URL.RawQuery) {
		return badRequest("Access tokens are not accepted in the URL; send an Authorization: Bearer header.")
	}
	return nil
}

// queryHasToken reports whether a raw query string has a parameter that a
// server could read as access_token. Parameters are split at & and at ;
// (which older Rack versions also split at). A name is read as the
// lenient servers read it:
//
//   - percent-decoded, with + as a space; an invalid escape stays as it
//     is, as PHP leaves it;
//   - without surrounding white space, and ignoring case;
//   - up to a [ that a ] follows: access_token[] and access_token[x] are
//     an array and a map named access_token to PHP and Rails;
//   - with a space, a dot, or a [ that no ] follows, read as an
//     underscore, as PHP mangles names: access.token, access+token,
//     access%20token and access[token are all $_GET['access_token'].
func queryHasToken(raw string) bool {
	if strings.IndexByte(raw, '%') < 0 && !containsFold(raw, "access") {
		return false // the common case, without splitting anything
	}
	var buf [64]byte // room for the usual names, so that none allocates
	for len(raw) > 0 {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		key, _, _ := strings.Cut(pair, "=")
		if isAccessToken(unescapeName(buf[:0], key)) {
			return true
		}
	}
	return false
}

// unescapeName appends the query parameter name key to dst, decoded as
// PHP's urldecode does: + is a space, %XX the byte it names, and any
// other % stays.
func unescapeName(dst []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '+':
			dst = append(dst, ' ')
		case c == '%' && i+2 < len(key) && isHex(key[i+1]) && isHex(key[i+2]):
			dst = append(dst, unhex(key[i+1])<<4|unhex(key[i+2]))
			i += 2
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// isAccessToken reports whether a decoded parameter name is access_token
// as PHP or Rails would read it (see queryHasToken).
func isAccessToken(name []byte) bool {
	name = bytes.TrimSpace(name)
	if i := bytes.IndexByte(name, '['); i >= 0 && bytes.IndexByte(name[i+1:], ']') >= 0 {
		name = name[:i]
	}
	const want = "access_token"
	if len(name) != len(want) {
		return false
	}
	for i, c := range name {
		switch c {
		case ' ', '.', '[':
			c = '_'
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// containsFold reports whether s contains the lower-case ASCII word,
// ignoring ASCII case, without allocating.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for ; j < len(word); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != word[j] {
				break
			}
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// webSocketToken finds the token in Sec-WebSocket-Protocol.
func webSocketToken(r *http.Request) (string, bool, error) {
	var token string
	n := 0
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			if t, ok := strings.CutPrefix(textproto.TrimString(p), WebSocketProtocolPrefix); ok {
				if n++; n > 1 {
					return "", false, badRequest("Offer one " + WebSocketProtocolPrefix + " protocol.")
				}
				token = t
			}
		}
	}
	if n == 0 {
		return "", false, nil
	}
	if token == "" {
		return "", false, badRequest("The " + WebSocketProtocolPrefix + " protocol carries no token.")
	}
	return token, true, nil
}

// StripWebSocketToken removes the token-carrying entry (see
// WebSocketProtocolPrefix) from Sec-WebSocket-Protocol in h, keeping the
// others, so that the token is not passed on and no server selects it.
// h is edited in place: pass a header the caller owns (the middleware
// passes a copy; a reverse proxy its outgoing request's).
func StripWebSocketToken(h http.Header) {
	values := h.Values("Sec-WebSocket-Protocol")
	if len(values) == 0 {
		return
	}
	var rest []string
	for _, v := range values {
		for p := range strings.SplitSeq(v, ",") {
			p = textproto.TrimString(p)
			if p != "" && !strings.HasPrefix(p, WebSocketProtocolPrefix) {
				rest = append(rest, p)
			}
		}
	}
	h.Del("Sec-WebSocket-Protocol")
	if len(rest) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(rest, ", "))
	}
}

type contextKey struct{}

// NewContext returns a copy of ctx carrying c, as the middleware does.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, contextKey{}, c)
}

// FromContext returns the verified claims the middleware put in ctx.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(contextKey{}).(*Claims)
	return c, ok && c != nil
}

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

type middleware struct {
	src      Sources
	optional bool
	onError  func(http.ResponseWriter, *http.Request, error)
}

// FromCookie also reads the token from the named cookie (usually
// AccessCookie), for pages in the auth server's cookie mode.
func FromCookie(name string) MiddlewareOption { return func(m *middleware) { m.src.Cookie = name } }

// FromWebSocketProtocol also reads the token from Sec-WebSocket-Protocol
// on WebSocket upgrades (see WebSocketProtocolPrefix).
func FromWebSocketProtocol() MiddlewareOption { return func(m *middleware) { m.src.WebSocket = true } }

// Optional lets requests without any token through, with no claims in
// their context; a token that is present must still be valid.
func Optional() MiddlewareOption { return func(m *middleware) { m.optional = true } }

// WithErrorHandler replaces WriteError as the answer to a refused
// request. err is an *Error.
func WithErrorHandler(fn func(http.ResponseWriter, *http.Request, error)) MiddlewareOption {
	return func(m *middleware) { m.onError = fn }
}

// Middleware returns net/http middleware that lets a request through only
// with a valid, unrevoked access token and puts its claims in the
// request's context (FromContext). Refusals are answered per RFC 6750: 401
// with WWW-Authenticate: Bearer (error="invalid_token" for a bad token),
// 400 invalid_request for a malformed request, 503 when the verifier
// fails closed.
func (v *Verifier) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	m := middleware{onError: func(w http.ResponseWriter, _ *http.Request, err error) { WriteError(w, err) }}
	for _, o := range opts {
		o(&m)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := v.AuthenticateFrom(r, m.src)
			if err != nil {
				if m.optional && errors.Is(err, ErrNoToken) {
					next.ServeHTTP(w, r)
					return
				}
				m.onError(w, r, err)
				return
			}
			r = r.WithContext(NewContext(r.Context(), c))
			if m.src.WebSocket && isWebSocketUpgrade(r) {
				r.Header = r.Header.Clone() // r shares the caller's header map
				StripWebSocketToken(r.Header)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireScope returns middleware, to be placed after Middleware, that
// lets a request through only if its token has every one of scopes;
// otherwise 403 insufficient_scope (401 without a verified token).
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return require(scopes, true, (*Claims).HasScope, "scope")
}

// RequireAnyScope is RequireScope satisfied by any one of scopes.
func RequireAnyScope(scopes ...string) func(http.Handler) http.Handler {
	return require(scopes, false, (*Claims).HasScope, "scope")
}

// RequireRole lets a request through only if its token has every one of
// roles; otherwise 403 insufficient_scope (RFC 6750 has no code of its
// own for roles).
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	return require(roles, true, (*Claims).HasRole, "role")
}

// RequireAnyRole is RequireRole satisfied by any one of roles.
func RequireAnyRole(roles ...string) func(http.Handler) http.Handler {
	return require(roles, false, (*Claims).HasRole, "role")
}

// check reports whether c satisfies a requirement of RequireScope (all)
// or RequireAnyScope (!all) style, returning the *Error to answer
// otherwise. It is what the Require functions use; the gateway checks
// its routes' scopes and roles itself (it names every missing one, and
// counts missing roles apart from missing scopes in its metrics).
func check(c *Claims, want []string, all bool, has func(*Claims, string) bool, what string) error {
	if len(want) == 0 {
		return nil
	}
	if c == nil {
		return noToken()
	}
	for _, w := range want {
		ok := has(c, w)
		if ok && !all {
			return nil
		}
		if !ok && all {
			return insufficient("The access token lacks the "+what+" "+w+".", scopeParam(want, what))
		}
	}
	if all {
		return nil
	}
	return insufficient("The access token needs one of the "+what+"s "+strings.Join(want, ", ")+".", scopeParam(want, what))
}

// scopeParam is the scope parameter of the challenge: the scopes needed;
// roles are not scopes, so none for them.
func scopeParam(want []string, what string) string {
	if what != "scope" {
		return ""
	}
	return strings.Join(want, " ")
}

func require(want []string, all bool, has func(*Claims, string) bool, what string) func(http.Handler) http.Handler {
	want = append([]string(nil), want...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := FromContext(r.Context())
			if err := check(c, want, all, has, what); err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
