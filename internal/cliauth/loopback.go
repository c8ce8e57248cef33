package cliauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CallbackPath is the path of the loopback redirect URI: a client of
// "keycard login" registers http://127.0.0.1/callback, and each login
// listens on a port the system picks (RFC 8252 section 7.3).
const CallbackPath = "/callback"

// LoginOptions configure a browser login.
type LoginOptions struct {
	// Scope is what to ask for, space-separated; openid is added when it
	// is missing. Empty means DefaultScope.
	Scope string
	// Refused, when not nil, is told of each request to the loopback
	// listener that is refused without ending the login: one whose state
	// is not this login's (forged, or left over from another login).
	Refused func(reason string)
}

// Login is a browser login in progress: a loopback listener on
// 127.0.0.1 waits for the authorization response. Close it when done.
type Login struct {
	// URL is the authorization request to open in the browser.
	URL string
	// RedirectURI is the loopback redirect URI, with its port.
	RedirectURI string

	c       *Client
	scope   string
	state   string
	nonce   string
	verify  string // the PKCE verifier
	refused func(string)
	srv     *http.Server
	results chan callback
	done    chan struct{}
	closed  sync.Once
	taken   sync.Once
	served  chan struct{} // closed when the server stops
}

// callback is an authorization response with this login's state, handed
// from the listener to Wait, and Wait's outcome handed back for the
// browser's page.
type callback struct {
	code  string
	err   error
	reply chan error
}

// randomString returns n random bytes, base64url.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// StartLogin starts a browser login: it opens the loopback listener and
// makes the authorization request (code flow, PKCE S256 with a fresh
// verifier, a fresh state and nonce). Open Login.URL in the browser, then
// Wait.
func (c *Client) StartLogin(ctx context.Context, opt LoginOptions) (*Login, error) {
	scope := opt.Scope
	if strings.TrimSpace(scope) == "" {
		scope = DefaultScope
	}
	l := &Login{c: c, scope: withOpenID(scope), refused: opt.Refused, results: make(chan callback), done: make(chan struct{}), served: make(chan struct{})}
	if l.refused == nil {
		l.refused = func(string) {}
	}
	var err error
	for _, p := range []*string{&l.state, &l.nonce} {
		if *p, err = randomString(16); err != nil {
			return nil, err
		}
	}
	if l.verify, err = randomString(32); err != nil { // 43 characters (RFC 7636 section 4.1)
		return nil, err
	}
	// A loopback IP literal, not "localhost", which a resolver or a
	// firewall may send elsewhere (RFC 8252 section 8.3).
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cliauth: opening the loopback listener: %w", err)
	}
	l.RedirectURI = "http://" + ln.Addr().String() + CallbackPath
	sum := sha256.Sum256([]byte(l.verify))
	q := url.Values{
		"response_type": {"code"}, "client_id": {c.ClientID}, "redirect_uri": {l.RedirectURI}, "scope": {l.scope},
		"state": {l.state}, "nonce": {l.nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(c.Provider.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	l.URL = c.Provider.AuthorizationEndpoint + sep + q.Encode()
	l.srv = &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(l.served)
		l.srv.Serve(ln)
	}()
	return l, nil
}

// Close stops the listener, letting a page being answered finish.
func (l *Login) Close() error {
	var err error
	l.closed.Do(func() {
		close(l.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = l.srv.Shutdown(ctx)
		<-l.served
	})
	return err
}

// Wait waits for the authorization response, exchanges its code for
// tokens (with the PKCE verifier) and verifies the ID token (its nonce
// must be this login's). It fails with ErrIssuerMismatch for a response
// from another issuer (RFC 9207), an *OAuthError for an error response
// or a refused exchange, ErrInvalidIDToken, or ctx's error. Responses
// whose state is not this login's are refused by the listener and do not
// end the wait.
func (l *Login) Wait(ctx context.Context) (*Token, *Identity, error) {
	var cb callback
	select {
	case cb = <-l.results:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	if cb.err != nil {
		cb.reply <- cb.err
		return nil, nil, cb.err
	}
	t, err := l.c.token(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {cb.code},
		"redirect_uri": {l.RedirectURI}, "code_verifier": {l.verify}})
	var id *Identity
	if err == nil {
		t, id, err = l.c.finish(ctx, t, l.scope, l.nonce)
	}
	cb.reply <- err
	if err != nil {
		return nil, nil, err
	}
	return t, id, nil
}

// callbackPage is the small page the browser shows after the redirect.
var callbackPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · keycard login</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// page answers the browser with a small page, served with headers that
// keep it out of frames, caches and referrers (the URL holds the code).
func page(w http.ResponseWriter, status int, title, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	callbackPage.Execute(w, struct{ Title, Text string }{title, text})
}

// ServeHTTP is the loopback listener: GET /callback with the
// authorization response (RFC 6749 section 4.1.2). A response whose state
// is not this login's is refused (a forged request, or one meant for
// another login: taking its code would sign the user in as someone else)
// and the login goes on waiting. The first one with this login's state
// ends it: its iss must be the issuer's (RFC 9207), checked before
// anything else; then an error, or the code, which Wait exchanges before
// the page says how it went.
func (l *Login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != CallbackPath {
		page(w, http.StatusNotFound, "Not found", "This is keycard login's sign-in listener.")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		page(w, http.StatusMethodNotAllowed, "Not allowed", "The sign-in response comes as a GET.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.state)) != 1 {
		l.refused("a sign-in response with a wrong state was refused (not from the browser this login opened)")
		page(w, http.StatusBadRequest, "Not this sign-in", "This sign-in response is not for the login waiting in your terminal. Start again there if you need to.")
		return
	}
	first := false
	l.taken.Do(func() { first = true })
	if !first {
		page(w, http.StatusConflict, "Already answered", "This login has had its answer. Go back to your terminal.")
		return
	}
	cb := callback{reply: make(chan error, 1)}
	iss := q.Get("iss")
	switch {
	case iss != "" && iss != l.c.Provider.Issuer:
		cb.err = fmt.Errorf("%w: it names %q, not %q", ErrIssuerMismatch, iss, l.c.Provider.Issuer)
	case iss == "" && l.c.Provider.IssParameterSupported:
		cb.err = fmt.Errorf("%w: it has no iss, which %s always sends", ErrIssuerMismatch, l.c.Provider.Issuer)
	case q.Get("error") != "":
		cb.err = &OAuthError{Code: q.Get("error"), Description: q.Get("error_description")}
		if cb.err.(*OAuthError).Code == "access_denied" {
			cb.err = fmt.Errorf("%w: %w", ErrAccessDenied, cb.err)
		}
	case q.Get("code") == "":
		cb.err = &OAuthError{Code: "invalid_request", Description: "The sign-in response has no code."}
	default:
		cb.code = q.Get("code")
	}
	select {
	case l.results <- cb:
	case <-l.done:
		page(w, http.StatusServiceUnavailable, "Login over", "The login in your terminal has ended. Start again there.")
		return
	case <-r.Context().Done():
		return
	}
	var err error
	select {
	case err = <-cb.reply:
	case <-r.Context().Done():
		return
	}
	switch {
	case err == nil:
		page(w, http.StatusOK, "Signed in", "You are signed in. Go back to your terminal; you can close this page.")
	case errors.Is(err, ErrAccessDenied):
		page(w, http.StatusForbidden, "Not signed in", "The sign-in was denied. Go back to your terminal.")
	default:
		page(w, http.StatusBadRequest, "Sign-in failed", "The sign-in failed: "+err.Error()+". Go back to your terminal.")
	}
}
