package httpapi

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
)

// Cookie mode (Options.Cookies) lets a browser application keep its tokens
// where its scripts cannot read them. A login that asks for cookies gets
// the access token, the refresh token and a CSRF token in cookies instead
// of in the body; the bearer middleware then accepts the access cookie,
// and POST /oauth/token refreshes from the refresh cookie. Every
// state-changing request authenticated by a cookie must pass checkCSRF.
// docs/decisions/auth-server.md gives the reasons for each choice.
const (
	// accessCookie holds the access token: HttpOnly, Secure,
	// SameSite=Strict, Path=/ (the __Host- prefix requires Path=/ and no
	// Domain, so it is sent to this host only).
	accessCookie = "__Host-keycard_access"
	// refreshCookie holds the refresh token. __Host- would force Path=/
	// and send it with every request; __Secure- allows refreshCookiePath,
	// so it only ever travels to the token endpoint.
	refreshCookie     = "__Secure-keycard_refresh"
	refreshCookiePath = "/oauth/token"
	// csrfCookie holds the double-submit CSRF token. It is not HttpOnly:
	// the application's scripts read it and echo it in csrfHeader.
	csrfCookie = "__Host-keycard_csrf"
	csrfHeader = "X-CSRF-Token"

	// codeCSRFFailed answers (403) a cookie-authenticated request that
	// fails the CSRF defence.
	codeCSRFFailed = "csrf_failed"

	// csrfKeyLen is the length of a generated CSRF key.
	csrfKeyLen = 32
)

// cookieMode is the configuration of cookie mode; a Server without cookie
// mode has a nil *cookieMode.
type cookieMode struct {
	// key binds CSRF tokens to sessions: a session's token is
	// HMAC-SHA256(key, label || session id).
	key []byte
	// origin is the only origin allowed to make cookie requests: the
	// issuer's, as in an Origin header (RFC 6454 section 6.1).
	origin string
	// accessMaxAge and refreshMaxAge are the cookies' Max-Age.
	accessMaxAge, refreshMaxAge time.Duration
}

// newCookieMode returns the cookie mode of opt, nil when it is off. A nil
// opt.CSRFKey gets a random key of this Server's own.
func newCookieMode(svc *auth.Service, opt Options) *cookieMode {
	if !opt.Cookies {
		return nil
	}
	cfg := svc.Config()
	key := opt.CSRFKey
	if len(key) == 0 {
		key = make([]byte, csrfKeyLen)
		rand.Read(key) // never fails (crypto/rand)
	}
	refresh := min(cfg.IdleTimeout, cfg.SessionLifetime)
	return &cookieMode{key: key, origin: Origin(cfg.Issuer), accessMaxAge: cfg.AccessTTL, refreshMaxAge: refresh}
}

// Origin returns the origin (RFC 6454 section 6.1) of an http or https
// URL, without a default port; "" for anything else, which no request's
// Origin header matches. The web pages (package web) check their forms'
// Origin with it too.
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

// csrfToken returns the CSRF token of a session (see CSRFToken).
func (c *cookieMode) csrfToken(sessionID string) string { return CSRFToken(c.key, sessionID) }

// CSRFToken returns the CSRF token of a session under key: HMAC-SHA256 of
// the session id, stable for the session's whole life, so tabs and
// refreshes never disagree on it, and unguessable without the key. Cookie
// mode and the web pages (package web) both use it, so that with one key
// (Options.CSRFKey) their tokens agree.
func CSRFToken(key []byte, sessionID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keycard csrf v1\x00"))
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfError is the 403 of a failed CSRF check.
func csrfError(description string) *httpError {
	return errorf(http.StatusForbidden, codeCSRFFailed, description)
}

// stateChanging reports whether a request's method may change state
// (anything but GET, HEAD, OPTIONS and TRACE, RFC 9110 section 9.2.1).
func stateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// checkOrigin checks that r comes from a page of the issuer's own origin:
// Sec-Fetch-Site, when sent, must be "same-origin", and Origin, when sent,
// the issuer's origin; a request with neither is refused, since a browser
// sends at least one of them with every POST.
func (c *cookieMode) checkOrigin(r *http.Request) error {
	site, origin := r.Header.Values("Sec-Fetch-Site"), r.Header.Values("Origin")
	if len(site) == 0 && len(origin) == 0 {
		return csrfError("Cookie requests must carry Sec-Fetch-Site or Origin.")
	}
	if len(site) > 1 || len(site) == 1 && site[0] != "same-origin" {
		return csrfError("Cookie requests must come from the server's own origin (Sec-Fetch-Site).")
	}
	if len(origin) > 1 || len(origin) == 1 && (c.origin == "" || origin[0] != c.origin) {
		return csrfError("Cookie requests must come from the server's own origin (Origin).")
	}
	return nil
}

// checkCSRF is the CSRF defence of a request authenticated by a cookie of
// the session sessionID. Requests with safe methods pass. Others must
// pass checkOrigin and carry the session's CSRF token both in the
// csrfCookie cookie and in one csrfHeader header (the double submit),
// compared in constant time.
func (c *cookieMode) checkCSRF(r *http.Request, sessionID string) error {
	if !stateChanging(r) {
		return nil
	}
	if err := c.checkOrigin(r); err != nil {
		return err
	}
	header := r.Header.Values(csrfHeader)
	if len(header) != 1 || header[0] == "" {
		return csrfError("Send the CSRF token in one " + csrfHeader + " header.")
	}
	cookie, err := r.Cookie(csrfCookie)
	if err != nil {
		return csrfError("The CSRF cookie is missing.")
	}
	want := c.csrfToken(sessionID)
	sameAsCookie := subtle.ConstantTimeCompare([]byte(header[0]), []byte(cookie.Value))
	valid := subtle.ConstantTimeCompare([]byte(header[0]), []byte(want))
	if sameAsCookie&valid != 1 {
		return csrfError("The CSRF token is not valid for this session.")
	}
	return nil
}

// cookieAccessToken returns the access token of the access cookie, when
// cookie mode is on and the request has one. A request that also has an
// Authorization header presents two credentials: 400. problem is set for
// a cookie too long to be a Keycard token.
func (s *Server) cookieAccessToken(r *http.Request) (token string, ok bool, problem string, err error) {
	if s.cookies == nil {
		return "", false, "", nil
	}
	c, cerr := r.Cookie(accessCookie)
	if cerr != nil {
		return "", false, "", nil
	}
	if len(r.Header.Values("Authorization")) > 0 {
		return "", false, "", badRequest("Send either an Authorization header or the access cookie, not both.")
	}
	if c.Value == "" || len(c.Value) > maxAccessTokenLen {
		return "", true, "Invalid access token.", nil
	}
	return c.Value, true, "", nil
}

// cookieRefreshToken returns the refresh token of the refresh cookie, when
// cookie mode is on and the request has one. A request that also has a
// refresh_token parameter presents two credentials: 400.
func (s *Server) cookieRefreshToken(r *http.Request, param bool) (string, error) {
	if s.cookies == nil {
		return "", nil
	}
	c, err := r.Cookie(refreshCookie)
	if err != nil || c.Value == "" {
		return "", nil
	}
	if param {
		return "", badRequest(`Send either the "refresh_token" parameter or the refresh cookie, not both.`)
	}
	return c.Value, nil
}

// cookieRefresh is the refresh_token grant with the token of the refresh
// cookie: the request must pass the CSRF defence for the token's session
// before the token is rotated; the new tokens are set as cookies. A
// refused refresh token clears the cookies, since they can no longer
// serve.
func (s *Server) cookieRefresh(w http.ResponseWriter, r *http.Request, token string) {
	if err := s.cookies.checkOrigin(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	sid, err := s.svc.RefreshTokenSession(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if sid == "" {
		s.clearCookies(w)
		s.writeError(w, r, errorf(http.StatusBadRequest, codeInvalidGrant, "Invalid refresh token."))
		return
	}
	if err := s.cookies.checkCSRF(r, sid); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.svc.Refresh(r.Context(), token, ClientOf(r))
	if err != nil {
		err = asGrantError(err, http.StatusBadRequest)
		if he, ok := err.(*httpError); ok && he.code == codeInvalidGrant {
			s.clearCookies(w)
		}
		s.writeError(w, r, err)
		return
	}
	s.writeCookieTokens(w, t)
}

// loginRequest is the body of POST /v1/login. Cookies asks for the tokens
// in cookies (cookie mode only).
type loginRequest struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
	Cookies  bool    `json:"cookies"`
}

func (l *loginRequest) check() error {
	c := credentials{Username: l.Username, Password: l.Password}
	return c.check()
}

// checkCookieLogin checks a login that asks for cookies, before the
// password is: cookie mode must be on (400 otherwise), and the request
// must come from the issuer's origin (403 otherwise), which stops another
// site from logging the browser in to an account of its choosing.
func (s *Server) checkCookieLogin(r *http.Request) error {
	if s.cookies == nil {
		return badRequest(`Cookie mode is off on this server; leave out "cookies".`)
	}
	return s.cookies.checkOrigin(r)
}

// cookieTokensResponse is the body of a login or refresh in cookie mode:
// no token, only what the application needs to know.
type cookieTokensResponse struct {
	ExpiresIn int64  `json:"expires_in"`
	SessionID string `json:"session_id"`
	CSRFToken string `json:"csrf_token"`
}

// writeCookieTokens answers with tokens set as cookies. Cache-Control:
// no-store is set on every response by logRequests.
func (s *Server) writeCookieTokens(w http.ResponseWriter, t *auth.Tokens) {
	csrf := s.cookies.csrfToken(t.SessionID)
	access := time.Duration(t.ExpiresIn) * time.Second
	http.SetCookie(w, s.cookie(accessCookie, "/", t.AccessToken, access, true))
	http.SetCookie(w, s.cookie(refreshCookie, refreshCookiePath, t.RefreshToken, s.cookies.refreshMaxAge, true))
	http.SetCookie(w, s.cookie(csrfCookie, "/", csrf, s.cookies.refreshMaxAge, false))
	writeJSON(w, http.StatusOK, cookieTokensResponse{ExpiresIn: t.ExpiresIn, SessionID: t.SessionID, CSRFToken: csrf})
}

// clearCookies expires the cookies of cookie mode, with the attributes
// they were set with; nothing when cookie mode is off.
func (s *Server) clearCookies(w http.ResponseWriter) {
	if s.cookies == nil {
		return
	}
	http.SetCookie(w, s.cookie(accessCookie, "/", "", -1, true))
	http.SetCookie(w, s.cookie(refreshCookie, refreshCookiePath, "", -1, true))
	http.SetCookie(w, s.cookie(csrfCookie, "/", "", -1, false))
}

// cookie returns a Secure, SameSite=Strict, host-only cookie; a negative
// maxAge deletes it (Max-Age=0).
func (s *Server) cookie(name, path, value string, maxAge time.Duration, httpOnly bool) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: path, Secure: true, HttpOnly: httpOnly, SameSite: http.SameSiteStrictMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = max(int(maxAge/time.Second), 1)
	}
	return c
}
