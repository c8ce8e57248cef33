package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Cookie mode (Options.Cookies) lets a browser application keep its tokens
// where its scripts cannot read them. A login that asks for cookies gets
// the access token, the refresh token and a CSRF token in cookies instead
// of in the body; the bearer middleware then accepts the access cookie,
// and POST /oauth/token refreshes from the refresh cookie. Every
// state-changing request authenticated by a cookie must pass checkCSRF.
// docs/decisions/auth-server.md gives the reasons for each choice.
const (
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
	// origins may make cookie requests (Options.Origins).
	origins browser.Origins
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
	origins := opt.Origins
	if origins.IsZero() {
		origins, _ = browser.NewOrigins(cfg.Issuer) // the issuer's alone: no other to refuse
	}
	refresh := min(cfg.IdleTimeout, cfg.SessionLifetime)
	return &cookieMode{key: key, origins: origins, accessMaxAge: cfg.AccessTTL, refreshMaxAge: refresh}
}

// csrfToken returns the CSRF token of a session (browser.CSRFToken).
func (c *cookieMode) csrfToken(sessionID string) string { return browser.CSRFToken(c.key, sessionID) }

// csrfError is the 403 of a failed CSRF check.
func csrfError(description string) *httpError {
	return errorf(http.StatusForbidden, codeCSRFFailed, description)
}

// checkOrigin checks that r comes from a page of an allowed origin
// (browser.Origins.Check).
func (c *cookieMode) checkOrigin(r *http.Request) error {
	if err := c.origins.Check(r); err != nil {
		return csrfError(keycard.ErrorMessage(err))
	}
	return nil
}

// checkCSRF is the CSRF defence of a request authenticated by a cookie of
// the session sessionID. Requests with safe methods pass. Others must
// pass checkOrigin and carry the session's CSRF token both in the
// csrfCookie cookie and in one csrfHeader header (the double submit),
// compared in constant time.
func (c *cookieMode) checkCSRF(r *http.Request, sessionID string) error {
	if !browser.StateChanging(r) {
		return nil
	}
	if err := c.checkOrigin(r); err != nil {
		return err
	}
	header := r.Header.Values(browser.CSRFHeader)
	if len(header) != 1 || header[0] == "" {
		return csrfError("Send the CSRF token in one " + browser.CSRFHeader + " header.")
	}
	cookie, err := r.Cookie(browser.CSRFCookie)
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
	c, cerr := r.Cookie(browser.AccessCookie)
	if cerr != nil {
		return "", false, "", nil
	}
	if len(r.Header.Values("Authorization")) > 0 {
		return "", false, "", badRequest("Send either an Authorization header or the access cookie, not both.")
	}
	if c.Value == "" || len(c.Value) > browser.MaxTokenLen {
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
	c, err := r.Cookie(browser.APIRefreshCookie)
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
	t, err := s.svc.Refresh(r.Context(), token, browser.AgentOf(r))
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
	http.SetCookie(w, browser.Cookie(browser.AccessCookie, "/", t.AccessToken, access, true))
	http.SetCookie(w, browser.Cookie(browser.APIRefreshCookie, browser.APIRefreshPath, t.RefreshToken, s.cookies.refreshMaxAge, true))
	http.SetCookie(w, browser.Cookie(browser.CSRFCookie, "/", csrf, s.cookies.refreshMaxAge, false))
	writeJSON(w, http.StatusOK, cookieTokensResponse{ExpiresIn: t.ExpiresIn, SessionID: t.SessionID, CSRFToken: csrf})
}

// clearCookies expires the cookies of cookie mode, with the attributes
// they were set with; nothing when cookie mode is off.
func (s *Server) clearCookies(w http.ResponseWriter) {
	if s.cookies == nil {
		return
	}
	http.SetCookie(w, browser.Cookie(browser.AccessCookie, "/", "", -1, true))
	http.SetCookie(w, browser.Cookie(browser.APIRefreshCookie, browser.APIRefreshPath, "", -1, true))
	http.SetCookie(w, browser.Cookie(browser.CSRFCookie, "/", "", -1, false))
}
