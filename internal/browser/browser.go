// Package browser is what the auth server's two browser-facing surfaces —
// the JSON API's cookie mode (internal/httpapi) and the web pages
// (internal/web) — share about a browser's session: the names and
// attributes of the cookies, the CSRF token bound to a session, the one
// origin check for requests that a cookie authenticates, the description
// of the user agent a request came from, and the HTTP status of a service
// error. Keeping them in one place keeps the two surfaces' rules the same:
// a session signed in on the pages is accepted by cookie mode, and the
// other way round.
package browser

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// The cookies of a browser session. All are Secure, SameSite=Strict and
// host-only (no Domain); only CSRFCookie is readable by scripts.
const (
	// AccessCookie holds the access token, for the pages, cookie mode and
	// a gateway on the same host (verifier.Sources.Cookie). The __Host-
	// prefix requires Path=/ and no Domain.
	AccessCookie = "__Host-keycard_access"
	// APIRefreshCookie holds cookie mode's refresh token. __Host- would
	// force Path=/ and send it with every request; __Secure- allows
	// APIRefreshPath, so it only ever travels to the token endpoint.
	APIRefreshCookie = "__Secure-keycard_refresh"
	APIRefreshPath   = "/oauth/token"
	// PageRefreshCookie holds the pages' refresh token, sent only to
	// PageRefreshPath: not to the other pages, and not to applications
	// behind a gateway on this host.
	PageRefreshCookie = "__Secure-keycard_page_refresh"
	PageRefreshPath   = "/session/refresh"
	// CSRFCookie holds the session's CSRF token (CSRFToken) for scripts
	// to echo in CSRFHeader (cookie mode) or forms to carry.
	CSRFCookie = "__Host-keycard_csrf"
	CSRFHeader = "X-CSRF-Token"
	// FormCookie holds the pre-session CSRF token of the sign-in and
	// registration forms (double submit), before any session exists.
	FormCookie = "__Host-keycard_form"
	// SSOCookie names the browser's single sign-on session for the
	// authorization and logout endpoints (SSOValue). Unlike the others it
	// is SameSite=Lax: an application on another site sends the browser
	// there with a top-level GET navigation, which Strict cookies do not
	// follow.
	SSOCookie = "__Host-keycard_sso"
)

// MaxTokenLen bounds the access token read from AccessCookie or an
// Authorization header: 8 KiB.
const MaxTokenLen = 8 << 10

// Cookie returns a Secure, SameSite=Strict, host-only cookie; a negative
// maxAge deletes it (Max-Age=0), and any other is at least a second.
func Cookie(name, path, value string, maxAge time.Duration, httpOnly bool) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, Secure: true, HttpOnly: httpOnly, SameSite: http.SameSiteStrictMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = max(int(maxAge/time.Second), 1)
	}
	return c
}

// SSOValue returns the value of SSOCookie for a session under key: the
// session id and an HMAC-SHA256 of it, so that only this server could
// have set it; ParseSSOValue reads it back.
func SSOValue(key []byte, sessionID string) string {
	return sessionID + "." + mac(key, "keycard sso v1", sessionID)
}

// ParseSSOValue returns the session id of an SSOCookie value made under
// key; ok is false for anything else. The session may have ended since:
// the caller asks the service.
func ParseSSOValue(key []byte, value string) (sessionID string, ok bool) {
	sid, tag, found := strings.Cut(value, ".")
	if !found || sid == "" || len(sid) > 64 {
		return "", false
	}
	return sid, hmac.Equal([]byte(tag), []byte(mac(key, "keycard sso v1", sid)))
}

// SSOCookieOf returns the single sign-on cookie for a session: HttpOnly,
// Secure, SameSite=Lax, host-only, for maxAge (negative: deleted).
func SSOCookieOf(key []byte, sessionID string, maxAge time.Duration) *http.Cookie {
	value := ""
	if maxAge >= 0 {
		value = SSOValue(key, sessionID)
	}
	c := Cookie(SSOCookie, "/", value, maxAge, true)
	c.SameSite = http.SameSiteLaxMode
	return c
}

// mac returns the base64url HMAC-SHA256 under key of label and value.
func mac(key []byte, label, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CSRFToken returns the CSRF token of a session under key: HMAC-SHA256 of
// the session id, stable for the session's whole life, so tabs and
// refreshes never disagree on it, and unguessable without the key. Cookie
// mode and the pages use it with one key, so their tokens agree.
func CSRFToken(key []byte, sessionID string) string { return mac(key, "keycard csrf v1", sessionID) }

// StateChanging reports whether a request's method may change state
// (anything but GET, HEAD, OPTIONS and TRACE, RFC 9110 section 9.2.1).
func StateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// Origin returns the origin (RFC 6454 section 6.1) of an http or https
// URL, without a default port; "" for anything else, which no request's
// Origin header matches.
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.User != nil {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if scheme != "http" && scheme != "https" {
		return ""
	}
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// Origins are the origins whose pages may send requests that a cookie
// authenticates: the issuer's, and others the pages are served under (a
// gateway in front). The zero value allows none.
type Origins struct{ list []string }

// IsZero reports whether o allows no origin.
func (o Origins) IsZero() bool { return len(o.list) == 0 }

// NewOrigins returns the issuer's origin and others. Each of others must
// be an origin, such as https://app.example.
func NewOrigins(issuer string, others ...string) (Origins, error) {
	var o Origins
	if v := Origin(issuer); v != "" {
		o.list = append(o.list, v)
	}
	for _, v := range others {
		if Origin(v) != v {
			return Origins{}, errors.New("browser: " + v + " is not an origin such as https://app.example")
		}
		o.list = append(o.list, v)
	}
	return o, nil
}

// The refusals of Origins.Check: EFORBIDDEN errors whose message may be
// shown to the client.
var (
	errNoFetchMetadata = &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Requests with cookies must carry Sec-Fetch-Site or Origin."}
	errCrossOrigin     = &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Requests with cookies must come from the server's own pages."}
)

// Check is the one origin check of a state-changing request that a cookie
// authenticates (a form of the pages, a cookie-mode API call); it refuses
// with an EFORBIDDEN *keycard.Error. The browser's own headers decide,
// which no script can set:
//
//   - a request with neither Sec-Fetch-Site nor Origin is refused:
//     browsers send at least one with every POST;
//   - Sec-Fetch-Site, when sent, must be "same-origin";
//   - Origin, when sent, must be one of o, or "null" — what browsers send
//     from a page with Referrer-Policy: no-referrer, as every page here
//     has — together with Sec-Fetch-Site: same-origin;
//   - either header repeated is refused.
//
// CSRF tokens are the main defence; this check refuses a cross-site
// request before its token is looked at.
func (o Origins) Check(r *http.Request) error {
	site, origin := r.Header.Values("Sec-Fetch-Site"), r.Header.Values("Origin")
	if len(site) == 0 && len(origin) == 0 {
		return errNoFetchMetadata
	}
	if len(site) > 1 || len(origin) > 1 || len(o.list) == 0 {
		return errCrossOrigin
	}
	sameOrigin := len(site) == 1 && site[0] == "same-origin"
	if len(site) == 1 && !sameOrigin {
		return errCrossOrigin
	}
	if len(origin) == 1 && !slices.Contains(o.list, origin[0]) && !(origin[0] == "null" && sameOrigin) {
		return errCrossOrigin
	}
	return nil
}

// maxClientAddr bounds the client address recorded for a session.
const maxClientAddr = 64

// AgentOf describes where r came from: its User-Agent and the host part
// of its RemoteAddr. Forwarding headers (X-Forwarded-For, Forwarded) are
// not trusted: any client can set them.
func AgentOf(r *http.Request) auth.Agent {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if len(addr) > maxClientAddr {
		addr = addr[:maxClientAddr]
	}
	return auth.Agent{UserAgent: r.UserAgent(), Addr: addr}
}

// StatusOf returns the HTTP status that answers an error of the
// auth.Service: the one mapping of keycard error codes to statuses, which
// the JSON API (with RFC 6749 error codes of its own) and the pages both
// answer with. Errors of any other type are internal: 500.
func StatusOf(err error) int {
	if _, ok := errors.AsType[*auth.ReauthRequiredError](err); ok {
		return http.StatusUnauthorized
	}
	switch keycard.ErrorCode(err) {
	case keycard.EINVALID:
		return http.StatusBadRequest
	case keycard.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case keycard.EFORBIDDEN:
		return http.StatusForbidden
	case keycard.ENOTFOUND:
		return http.StatusNotFound
	case keycard.ECONFLICT:
		return http.StatusConflict
	case keycard.ETHROTTLED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}
