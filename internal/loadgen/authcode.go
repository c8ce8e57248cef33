package loadgen

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// AuthCodeRedirectURI is the redirect URI of the web application client
// the authcode workload registers. Nothing listens there: the workload
// reads the code from the authorization response's Location header and
// never follows it.
const AuthCodeRedirectURI = "http://127.0.0.1/callback"

// The auth server's cookies that the authcode workload handles as a
// browser would: the sign-in form's token and the single sign-on session
// (internal/browser's FormCookie and SSOCookie; loadgen speaks to the
// server over HTTP only and imports none of it).
const (
	formCookie = "__Host-keycard_form"
	ssoCookie  = "__Host-keycard_sso"
)

// authCodeScope is the scope every authcode flow asks for: an ID token
// (openid) with the user's name (profile).
const authCodeScope = "openid profile"

// authcode: one whole authorization code flow of a signed-in browser
// (OpenID Connect Core section 3.1) per operation: GET /oauth/authorize
// with the browser's single sign-on cookie and a fresh PKCE verifier,
// the code read from the redirect (not followed), then POST /oauth/token
// grant_type=authorization_code as a confidential first-party client. A
// success is an answer with an access token, an ID token and a refresh
// token.
type authcodeWorkload struct {
	f      *Fixture
	client ServiceClient
	// sso is the single sign-on cookie of each worker's browser session.
	sso []string
	// authorize is the authorization request's URL up to its per-flow
	// parameters.
	authorize string
	issuer    string
}

func (w *authcodeWorkload) SelfTimed() bool { return false }

// Setup registers the web application, up to maxUsers users, and signs
// each worker in once at the sign-in page, as a browser would, for a
// browser session of its own.
func (w *authcodeWorkload) Setup(ctx context.Context, workers int) error {
	c, err := w.f.CreateWebClient(ctx, AuthCodeRedirectURI)
	if err != nil {
		return err
	}
	w.client = c
	users, err := w.f.CreateUsers(ctx, min(workers, maxUsers))
	if err != nil {
		return err
	}
	w.sso = make([]string, workers)
	errs := make([]error, workers)
	sem := make(chan struct{}, 4) // each sign-in costs the server a password hash
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			w.sso[i], errs[i] = w.f.SignIn(ctx, users[i%len(users)])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("signing bench users in at /signin: %w", err)
	}
	w.authorize = w.f.t.URL + "/oauth/authorize?" + url.Values{
		"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {AuthCodeRedirectURI},
		"scope": {authCodeScope}, "code_challenge_method": {"S256"},
	}.Encode()
	// The issuer the authorization responses name (RFC 9207): the
	// discovery document's, which may differ from --target behind a proxy.
	status, body, err := w.f.do(ctx, "GET", w.f.t.URL+"/.well-known/openid-configuration", nil, nil)
	if err != nil {
		return err
	}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &disc) != nil || disc.Issuer == "" {
		return errors.New("the server has no OpenID Connect discovery document with an issuer")
	}
	w.issuer = disc.Issuer
	// One flow before the run, so that a server that refuses it is a
	// setup error rather than a run of errors.
	if _, err := w.Op(ctx, 0); err != nil {
		return fmt.Errorf("an authorization code flow: %w", err)
	}
	return nil
}

// pkce returns a fresh PKCE verifier (RFC 7636 section 4.1: 32 random
// bytes, base64url, 43 characters) and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func (w *authcodeWorkload) Op(ctx context.Context, worker int) (time.Duration, error) {
	verifier, challenge := pkce()
	state := randomHex(8)
	q := url.Values{"code_challenge": {challenge}, "state": {state}, "nonce": {randomHex(8)}}
	status, h, body, err := w.f.doHeader(ctx, "GET", w.authorize+"&"+q.Encode(),
		http.Header{"Cookie": {ssoCookie + "=" + w.sso[worker]}}, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusSeeOther {
		return 0, statusError(status, body)
	}
	code, err := w.codeOf(h.Get("Location"), state)
	if err != nil {
		return 0, err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {AuthCodeRedirectURI}, "code_verifier": {verifier}}
	status, body, err = w.f.postForm(ctx, "/oauth/token", form, &w.client)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, statusError(status, body)
	}
	var tok struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.IDToken == "" || tok.RefreshToken == "" {
		return 0, &KindError{Kind: KindBadResponse, Msg: "code exchange answer without an access, ID and refresh token"}
	}
	return 0, nil
}

// codeOf returns the code of an authorization response's Location,
// which must lead to the redirect URI with the request's state and the
// server's issuer. A redirect elsewhere (the sign-in page: the browser
// session ended) is the error no_code.
func (w *authcodeWorkload) codeOf(location, state string) (string, error) {
	target, rawQuery, _ := strings.Cut(location, "?")
	if target != AuthCodeRedirectURI {
		return "", &KindError{Kind: KindNoCode, Msg: "the authorization endpoint redirected elsewhere than the redirect URI (to sign in?)"}
	}
	q, err := url.ParseQuery(rawQuery)
	switch {
	case err != nil:
		return "", &KindError{Kind: KindBadResponse, Msg: "unreadable authorization response"}
	case q.Get("error") != "":
		return "", &KindError{Kind: KindNoCode, Msg: "authorization error " + truncate(q.Get("error"), 64)}
	case q.Get("code") == "":
		return "", &KindError{Kind: KindNoCode, Msg: "authorization response without a code"}
	case q.Get("state") != state || q.Get("iss") != w.issuer:
		return "", &KindError{Kind: KindBadResponse, Msg: "authorization response with another state or issuer"}
	}
	return q.Get("code"), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// basicAuth returns the HTTP Basic Authorization header of c (RFC 6749
// section 2.3.1: id and secret form-encoded first; Keycard's are
// base64url, which that leaves unchanged).
func basicAuth(c ServiceClient) string {
	cred := url.QueryEscape(c.ID) + ":" + url.QueryEscape(c.Secret)
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred))
}
