package demo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
	"github.com/keycard-auth/keycard/verifier"
)

// Paths of the travel app, relative to its base URL.
const (
	TravelCallback          = "/callback"           // the redirect URI
	TravelSignedOut         = "/signed-out"         // the post-logout redirect URI
	TravelBackchannelLogout = "/backchannel-logout" // the back-channel logout URI
)

// Limits of the travel app's in-memory state.
const (
	// travelMaxSessions and travelMaxPending bound the signed-in
	// browsers and the sign-ins under way; beyond them the oldest go.
	travelMaxSessions = 10000
	travelMaxPending  = 10000
	// travelPendingLifetime is how long a sign-in may take, from the
	// app's redirect to the authorization endpoint to its callback.
	travelPendingLifetime = 10 * time.Minute
	// travelMaxForm bounds a POST body.
	travelMaxForm = 64 << 10
	// travelExchangeTimeout bounds a request to the token endpoint.
	travelExchangeTimeout = 10 * time.Second
	// Cookies: the session, and the state of a sign-in under way.
	travelSessionCookie = "keycard_demo_travel"
	travelStateCookie   = "keycard_demo_travel_state"
)

// backchannelLogoutEvent is the event member of a logout token (OpenID
// Connect Back-Channel Logout 1.0, section 2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// AccessVerifier verifies an access token, revocation included;
// *verifier.Verifier implements it.
type AccessVerifier interface {
	Verify(token string) (*verifier.Claims, error)
}

// TravelOptions configure a Travel app.
type TravelOptions struct {
	// BaseURL is the app's own origin, such as http://127.0.0.1:8090:
	// its redirect URI is BaseURL + TravelCallback.
	BaseURL string
	// Issuer is the auth server's issuer; its endpoints are the issuer's
	// /oauth/authorize, /oauth/token and /oauth/logout.
	Issuer string
	// ClientID and ClientSecret are the app's registration, a
	// confidential first-party client of the authorization_code and
	// refresh_token grants.
	ClientID, ClientSecret string
	// Keys verify the ID tokens and the logout tokens: the issuer's JWKS.
	Keys jose.KeyResolver
	// Access verifies the access tokens the app holds on every page load,
	// so that a revoked one (the revocation feed) ends the app's session
	// even before the back-channel logout arrives.
	Access AccessVerifier
	// HTTPClient calls the token endpoint; nil means a client with a
	// travelExchangeTimeout timeout.
	HTTPClient *http.Client
	// Logger receives what happens to sessions, and internal errors; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

//go:embed travel.html
var travelTemplate string

// Travel is the demo's second web application, a relying party of the
// auth server on its own origin (OpenID Connect Core section 3.1, the
// authorization code flow with PKCE, server-side code exchange). A
// browser that opens it is sent to the authorization endpoint with
// prompt=none: a browser signed in at the auth server's pages (at the
// weather page, say) comes back with a code and is in without a password;
// any other sees a signed-out page with a button to sign in. Its sign-out
// ends the app's session and sends the browser to the end-session
// endpoint with the ID token as hint (RP-initiated logout), which ends the
// single sign-on session, and so every other application's. It keeps its
// sessions in memory and ends them on a valid logout token at its
// back-channel logout URI (OpenID Connect Back-Channel Logout 1.0), or as
// soon as the access token of one is refused and cannot be refreshed.
//
// It is safe for concurrent use.
type Travel struct {
	opt    TravelOptions
	log    *slog.Logger
	client *http.Client
	page   *template.Template
	idp    *jwt.Parser // ID tokens
	lp     *jwt.Parser // logout tokens
	secure bool        // BaseURL is https: cookies are Secure

	mu       sync.Mutex
	sessions map[string]*travelSession // by the session cookie's value
	pending  map[string]*travelPending // by state
	seenJTI  map[string]time.Time      // logout tokens' jti until their exp
}

// travelSession is a signed-in browser.
type travelSession struct {
	created              time.Time
	csrf                 string // the sign-out form's token
	subject, sid, name   string
	idToken              string
	accessToken, refresh string
}

// travelPending is a sign-in under way.
type travelPending struct {
	created         time.Time
	verifier, nonce string
	silent          bool // prompt=none
}

// NewTravel returns the app.
func NewTravel(opt TravelOptions) (*Travel, error) {
	base, err := url.Parse(opt.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.Path != "" {
		return nil, fmt.Errorf("demo: travel app base URL %q must be an http or https origin", opt.BaseURL)
	}
	if opt.Issuer == "" || opt.ClientID == "" || opt.ClientSecret == "" || opt.Keys == nil || opt.Access == nil {
		return nil, errors.New("demo: the travel app needs an issuer, client credentials, keys and an access verifier")
	}
	t := &Travel{opt: opt, log: opt.Logger, client: opt.HTTPClient, secure: base.Scheme == "https",
		sessions: map[string]*travelSession{}, pending: map[string]*travelPending{}, seenJTI: map[string]time.Time{}}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.client == nil {
		t.client = &http.Client{Timeout: travelExchangeTimeout}
	}
	if t.opt.Now == nil {
		t.opt.Now = time.Now
	}
	if t.page, err = template.New("travel").Parse(travelTemplate); err != nil {
		return nil, err
	}
	t.idp = jwt.NewParser(opt.Keys, jwt.WithIssuer(opt.Issuer), jwt.WithAudience(opt.ClientID), jwt.WithType("JWT"),
		jwt.WithRequired("sub", "iat", "nonce", "sid"), jwt.WithNow(t.opt.Now))
	// Section 2.6: signature, iss, aud, iat, exp, typ; events, sid and
	// nonce are checked after.
	t.lp = jwt.NewParser(opt.Keys, jwt.WithIssuer(opt.Issuer), jwt.WithAudience(opt.ClientID), jwt.WithType("logout+jwt"),
		jwt.WithRequired("iat", "jti", "events"), jwt.WithMaxLifetime(10*time.Minute), jwt.WithNow(t.opt.Now))
	return t, nil
}

// ServeHTTP routes the app's requests.
func (t *Travel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; form-action 'self' "+originOf(t.opt.Issuer)+"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		t.handleHome(w, r)
	case r.URL.Path == "/login" && r.Method == http.MethodGet:
		t.handleLogin(w, r)
	case r.URL.Path == TravelCallback && r.Method == http.MethodGet:
		t.handleCallback(w, r)
	case r.URL.Path == "/signout" && r.Method == http.MethodPost:
		t.handleSignOut(w, r)
	case r.URL.Path == TravelSignedOut && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		t.render(w, http.StatusOK, travelData{Notice: "You are signed out."})
	case r.URL.Path == TravelBackchannelLogout && r.Method == http.MethodPost:
		t.handleBackchannelLogout(w, r)
	case r.URL.Path == "/" || r.URL.Path == "/login" || r.URL.Path == TravelCallback || r.URL.Path == "/signout" ||
		r.URL.Path == TravelSignedOut || r.URL.Path == TravelBackchannelLogout:
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

// originOf returns the scheme and host of a URL.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// travelData is the page's data: a signed-in user, or a notice.
type travelData struct {
	User, CSRF string
	Notice     string
	Error      string
}

func (t *Travel) render(w http.ResponseWriter, status int, d travelData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.page.Execute(w, d); err != nil {
		t.log.Error("demo: travel: rendering the page", "err", err)
	}
}

// session returns the id of the browser's session and a copy of it (a
// refresh may change the original meanwhile); ok is false when it has
// none.
func (t *Travel) session(r *http.Request) (id string, s travelSession, ok bool) {
	c, err := r.Cookie(travelSessionCookie)
	if err != nil || c.Value == "" {
		return "", s, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.sessions[c.Value]
	if p == nil {
		return "", s, false
	}
	return c.Value, *p, true
}

// handleHome is GET /: the signed-in user, after checking that the
// access token is still accepted (renewing it when it is not); without
// a session, a silent sign-in.
func (t *Travel) handleHome(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.session(r)
	if !ok {
		http.Redirect(w, r, "/login?silent=1", http.StatusSeeOther)
		return
	}
	if _, err := t.opt.Access.Verify(s.accessToken); err != nil {
		var verr *verifier.Error
		if errors.As(err, &verr) && verr.Status >= 500 {
			t.log.ErrorContext(r.Context(), "demo: travel: verifying the access token", "err", err)
			t.render(w, http.StatusServiceUnavailable, travelData{Error: "The sign-in cannot be checked right now; try again soon."})
			return
		}
		// Expired or revoked: a refresh says which.
		if err := t.refresh(r.Context(), id, s.refresh); err != nil {
			t.log.InfoContext(r.Context(), "demo: travel: session ended", "reason", "access token refused, refresh refused", "sid", s.sid)
			t.drop(id)
			t.clearCookie(w, travelSessionCookie, "/")
			t.render(w, http.StatusOK, travelData{Notice: "Your session has ended."})
			return
		}
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	t.render(w, http.StatusOK, travelData{User: s.name, CSRF: s.csrf})
}

// tokenResponse is the part of a token endpoint's answer the app reads.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
}

// token posts form to the token endpoint with the app's credentials
// (client_secret_basic) and returns the tokens of a 200 answer.
func (t *Travel) token(ctx context.Context, form url.Values) (*tokenResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, travelExchangeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.opt.Issuer+"/oauth/token", strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(t.opt.ClientID), url.QueryEscape(t.opt.ClientSecret))
	res, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token endpoint: HTTP %d", res.StatusCode)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		return nil, errors.New("token endpoint: an answer without an access token")
	}
	return &tr, nil
}

// refresh renews the tokens of the session id with its refresh token.
func (t *Travel) refresh(ctx context.Context, id, refresh string) error {
	tr, err := t.token(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sessions[id]
	if s == nil {
		return errors.New("the session ended meanwhile")
	}
	s.accessToken = tr.AccessToken
	if tr.RefreshToken != "" {
		s.refresh = tr.RefreshToken
	}
	return nil
}

// handleLogin is GET /login: a new sign-in, sent to the authorization
// endpoint with a fresh state, nonce and PKCE verifier; with silent=1,
// prompt=none.
func (t *Travel) handleLogin(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifierStr := randomToken(), randomToken(), randomToken()
	silent := r.URL.Query().Get("silent") == "1"
	now := t.opt.Now()
	t.mu.Lock()
	for k, p := range t.pending {
		if now.Sub(p.created) > travelPendingLifetime {
			delete(t.pending, k)
		}
	}
	evictOldest(t.pending, travelMaxPending, func(p *travelPending) time.Time { return p.created })
	t.pending[state] = &travelPending{created: now, verifier: verifierStr, nonce: nonce, silent: silent}
	t.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: travelStateCookie, Value: state, Path: TravelCallback, MaxAge: int(travelPendingLifetime / time.Second),
		HttpOnly: true, Secure: t.secure, SameSite: http.SameSiteLaxMode})
	sum := sha256.Sum256([]byte(verifierStr))
	q := url.Values{"client_id": {t.opt.ClientID}, "response_type": {"code"}, "redirect_uri": {t.opt.BaseURL + TravelCallback},
		"scope": {"openid profile"}, "state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if silent {
		q.Set("prompt", "none")
	}
	http.Redirect(w, r, t.opt.Issuer+"/oauth/authorize?"+q.Encode(), http.StatusSeeOther)
}

// evictOldest deletes the oldest entries of m until it has room for one
// more within limit.
func evictOldest[V any](m map[string]V, limit int, created func(V) time.Time) {
	for len(m) >= limit {
		var oldest string
		var at time.Time
		for k, v := range m {
			if oldest == "" || created(v).Before(at) {
				oldest, at = k, created(v)
			}
		}
		delete(m, oldest)
	}
}

// idClaims are the ID token's claims the app reads.
type idClaims struct {
	jwt.RegisteredClaims
	Nonce             string `json:"nonce"`
	SID               string `json:"sid"`
	PreferredUsername string `json:"preferred_username"`
}

// handleCallback is GET /callback, the redirect URI: it checks that the
// answer is to a sign-in this browser started (the state, against its
// cookie) from this issuer (RFC 9207), exchanges the code with the
// verifier, checks the ID token and its nonce, and starts a session.
func (t *Travel) handleCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(travelStateCookie)
	t.clearCookie(w, travelStateCookie, TravelCallback)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		t.render(w, http.StatusBadRequest, travelData{Error: "This sign-in was not started in this browser. Start again."})
		return
	}
	t.mu.Lock()
	p := t.pending[state]
	delete(t.pending, state)
	t.mu.Unlock()
	if p == nil || t.opt.Now().Sub(p.created) > travelPendingLifetime {
		t.render(w, http.StatusBadRequest, travelData{Error: "This sign-in has expired. Start again."})
		return
	}
	if q.Get("iss") != t.opt.Issuer {
		t.render(w, http.StatusBadRequest, travelData{Error: "This answer does not come from the auth server. Start again."})
		return
	}
	if e := q.Get("error"); e != "" {
		if p.silent && (e == "login_required" || e == "consent_required" || e == "interaction_required") {
			t.render(w, http.StatusOK, travelData{Notice: "You are not signed in."})
			return
		}
		t.render(w, http.StatusBadRequest, travelData{Error: "The sign-in did not succeed (" + truncate(e, 64) + ")."})
		return
	}
	tr, err := t.token(r.Context(), url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {t.opt.BaseURL + TravelCallback}, "code_verifier": {p.verifier}})
	if err != nil {
		t.log.WarnContext(r.Context(), "demo: travel: code exchange", "err", err)
		t.render(w, http.StatusBadGateway, travelData{Error: "The sign-in could not be completed. Start again."})
		return
	}
	var idc idClaims
	if err := t.idp.Parse(tr.IDToken, &idc); err != nil || subtle.ConstantTimeCompare([]byte(idc.Nonce), []byte(p.nonce)) != 1 {
		t.log.WarnContext(r.Context(), "demo: travel: ID token refused", "err", err)
		t.render(w, http.StatusBadGateway, travelData{Error: "The sign-in could not be completed. Start again."})
		return
	}
	name := idc.PreferredUsername
	if name == "" {
		name = idc.Subject
	}
	id := randomToken()
	s := &travelSession{created: t.opt.Now(), csrf: randomToken(), subject: idc.Subject, sid: idc.SID, name: name,
		idToken: tr.IDToken, accessToken: tr.AccessToken, refresh: tr.RefreshToken}
	t.mu.Lock()
	evictOldest(t.sessions, travelMaxSessions, func(s *travelSession) time.Time { return s.created })
	t.sessions[id] = s
	t.mu.Unlock()
	t.log.InfoContext(r.Context(), "demo: travel: signed in", "sub", s.subject, "sid", s.sid)
	http.SetCookie(w, &http.Cookie{Name: travelSessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: t.secure, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// handleSignOut is POST /signout, from the page's form (its token checked
// against the session): the app's session ends, and the browser goes to
// the end-session endpoint with the ID token as hint, which ends the
// single sign-on session at once and comes back to TravelSignedOut.
func (t *Travel) handleSignOut(w http.ResponseWriter, r *http.Request) {
	id, s, ok := t.session(r)
	r.Body = http.MaxBytesReader(w, r.Body, travelMaxForm)
	if !ok {
		http.Redirect(w, r, TravelSignedOut, http.StatusSeeOther)
		return
	}
	if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf_token")), []byte(s.csrf)) != 1 {
		t.render(w, http.StatusForbidden, travelData{Error: "This form could not be accepted. Reload the page and try again."})
		return
	}
	t.drop(id)
	t.clearCookie(w, travelSessionCookie, "/")
	t.log.InfoContext(r.Context(), "demo: travel: signed out", "sid", s.sid)
	q := url.Values{"id_token_hint": {s.idToken}, "post_logout_redirect_uri": {t.opt.BaseURL + TravelSignedOut}}
	http.Redirect(w, r, t.opt.Issuer+"/oauth/logout?"+q.Encode(), http.StatusSeeOther)
}

// logoutClaims are a logout token's claims.
type logoutClaims struct {
	jwt.RegisteredClaims
	SID    string                     `json:"sid"`
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *json.RawMessage           `json:"nonce"`
}

// handleBackchannelLogout is POST TravelBackchannelLogout: the auth server
// says that a session ended (OpenID Connect Back-Channel Logout 1.0). The
// logout token is checked as section 2.6 says — signature with the
// issuer's keys, iss, aud, iat and exp, typ logout+jwt, the
// back-channel logout event, a sid or sub, no nonce, and a jti not seen
// before — and every session of that sid (or, without one, of that sub)
// ends. 200 also for a sid the app does not know; 400 for a token that
// does not check out.
func (t *Travel) handleBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	refuse := func(why string) {
		t.log.WarnContext(r.Context(), "demo: travel: logout token refused", "reason", why)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_request"}`)
	}
	if mt, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(strings.ToLower(mt)) != "application/x-www-form-urlencoded" {
		refuse("not a form")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, travelMaxForm)
	if err := r.ParseForm(); err != nil {
		refuse("unreadable form")
		return
	}
	tokens := r.PostForm["logout_token"]
	if len(tokens) != 1 {
		refuse("want one logout_token")
		return
	}
	var lc logoutClaims
	if err := t.lp.Parse(tokens[0], &lc); err != nil {
		refuse(err.Error())
		return
	}
	event, ok := lc.Events[backchannelLogoutEvent]
	var obj map[string]json.RawMessage
	switch {
	case !ok || json.Unmarshal(event, &obj) != nil || obj == nil:
		refuse("no back-channel logout event")
		return
	case lc.Nonce != nil:
		refuse("a nonce")
		return
	case lc.SID == "" && lc.Subject == "":
		refuse("neither sid nor sub")
		return
	}
	now := t.opt.Now()
	t.mu.Lock()
	for jti, exp := range t.seenJTI {
		if now.After(exp) {
			delete(t.seenJTI, jti)
		}
	}
	if _, seen := t.seenJTI[lc.ID]; seen {
		t.mu.Unlock()
		refuse("jti seen before")
		return
	}
	t.seenJTI[lc.ID] = lc.ExpiresAt.Time.Add(jwt.DefaultLeeway)
	ended := 0
	for id, s := range t.sessions {
		if lc.SID != "" && s.sid == lc.SID && (lc.Subject == "" || s.subject == lc.Subject) ||
			lc.SID == "" && s.subject == lc.Subject {
			delete(t.sessions, id)
			ended++
		}
	}
	t.mu.Unlock()
	t.log.InfoContext(r.Context(), "demo: travel: back-channel logout", "sid", lc.SID, "sessions_ended", ended)
	w.WriteHeader(http.StatusOK)
}

// drop ends a session.
func (t *Travel) drop(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.sessions, id)
}

func (t *Travel) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: path, MaxAge: -1, HttpOnly: true, Secure: t.secure, SameSite: http.SameSiteLaxMode})
}

// randomToken returns 32 random bytes, base64url: a state, nonce, PKCE
// verifier (RFC 7636 section 4.1: 43 characters), session id or CSRF
// token.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
