package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/dpop"
)

// maxBody is the most of an answer's body a request reads.
const maxBody = 1 << 20

// Target is a Keycard deployment under test.
type Target struct {
	// URL is the auth server's base URL, such as http://127.0.0.1:4000.
	URL string
	// Gateway is the gateway's base URL, for the gateway and
	// revocation-latency workloads.
	Gateway string
	// Path is the path requested through the gateway; it must lead to a
	// route that requires a token and accepts a plain user's.
	Path string
	// Client sends every request; see NewClient.
	Client *http.Client
	// AdminUser and AdminPassword are the credentials of a user with the
	// admin role, with which the fixture creates and deletes what the
	// workloads need.
	AdminUser, AdminPassword string
}

// NewClient returns an HTTP client for a run with concurrency workers:
// HTTP/1.1 only (each worker has a connection of its own, as separate
// clients would, rather than a stream of one shared HTTP/2 connection),
// keep-alive connections, at most concurrency idle ones kept per host (so
// that every worker keeps its connection), no compression (its cost would
// be the generator's), no redirects followed, and timeout on every
// request.
func NewClient(concurrency int, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = concurrency
	tr.DisableCompression = true
	tr.ForceAttemptHTTP2 = false
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer to report, not to follow
		},
	}
}

// User is a user the fixture registered.
type User struct {
	ID, Username, Password string
}

// ServiceClient is a service client the fixture created.
type ServiceClient struct {
	ID, Secret string
}

// Tokens is a token response.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
	ExpiresIn    int    `json:"expires_in"`
}

// Fixture creates the users and service clients of a run on a Target,
// under a name prefix of its own, and deletes them in Teardown. Its
// methods are safe for concurrent use.
type Fixture struct {
	t      Target
	prefix string

	mu         sync.Mutex
	adminToken string
	users      []User
	clients    []ServiceClient
}

// NewFixture returns a Fixture for t whose users and clients are named
// "kcbench-" and 8 random hex digits.
func NewFixture(t Target) *Fixture {
	return &Fixture{t: t, prefix: "kcbench-" + randomHex(4)}
}

// Prefix returns the prefix of every name the fixture creates.
func (f *Fixture) Prefix() string { return f.prefix }

// Created returns the numbers of users and clients created and not yet
// deleted.
func (f *Fixture) Created() (users, clients int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.users), len(f.clients)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Check confirms that the auth server answers GET /healthz.
func (f *Fixture) Check(ctx context.Context) error {
	status, _, err := f.do(ctx, "GET", f.t.URL+"/healthz", nil, nil)
	if err != nil {
		return fmt.Errorf("the auth server at %s is unreachable: %w", f.t.URL, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("the auth server at %s answers GET /healthz with %d: is it a Keycard server?", f.t.URL, status)
	}
	return nil
}

// CheckGateway confirms that the gateway answers GET /healthz.
func (f *Fixture) CheckGateway(ctx context.Context) error {
	status, _, err := f.do(ctx, "GET", f.t.Gateway+"/healthz", nil, nil)
	if err != nil {
		return fmt.Errorf("the gateway at %s is unreachable: %w", f.t.Gateway, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("the gateway at %s answers GET /healthz with %d: is it a keycard gateway, and ready?", f.t.Gateway, status)
	}
	return nil
}

// AdminLogin logs the admin user in (POST /v1/login) and checks that it
// may use the admin API.
func (f *Fixture) AdminLogin(ctx context.Context) error {
	tok, err := f.Login(ctx, User{Username: f.t.AdminUser, Password: f.t.AdminPassword})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			return errors.New("admin login refused: wrong admin user or password")
		}
		return fmt.Errorf("admin login: %w", err)
	}
	f.mu.Lock()
	f.adminToken = tok.AccessToken
	f.mu.Unlock()
	status, body, err := f.admin(ctx, "GET", "/admin/v1/clients?limit=1", nil)
	if err != nil {
		return err
	}
	if status == http.StatusForbidden {
		return fmt.Errorf("user %q does not have the admin role", f.t.AdminUser)
	}
	if status != http.StatusOK {
		return statusError(status, body)
	}
	return nil
}

// admin sends an admin API request with the admin's token, logging in
// again once if the token has expired.
func (f *Fixture) admin(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	for attempt := 0; ; attempt++ {
		f.mu.Lock()
		tok := f.adminToken
		f.mu.Unlock()
		h := http.Header{"Authorization": {"Bearer " + tok}}
		if raw != nil {
			h.Set("Content-Type", "application/json")
		}
		status, resp, err := f.do(ctx, method, f.t.URL+path, h, raw)
		if err != nil || status != http.StatusUnauthorized || attempt > 0 {
			return status, resp, err
		}
		if err := f.AdminLogin(ctx); err != nil {
			return 0, nil, err
		}
	}
}

// CreateUsers creates n users through the admin API (POST
// /admin/v1/users, whatever the server's registration setting) with random
// passwords, at most 4 at a time since each costs the server a password
// hash.
func (f *Fixture) CreateUsers(ctx context.Context, n int) ([]User, error) {
	users := make([]User, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			users[i], errs[i] = f.createUser(ctx, fmt.Sprintf("%s-u%d", f.prefix, i))
		})
	}
	wg.Wait()
	return users, errors.Join(errs...)
}

func (f *Fixture) createUser(ctx context.Context, name string) (User, error) {
	u := User{Username: name, Password: randomHex(12)}
	status, body, err := f.admin(ctx, "POST", "/admin/v1/users", map[string]string{"username": u.Username, "password": u.Password})
	if err != nil {
		return User{}, err
	}
	if status != http.StatusCreated {
		return User{}, fmt.Errorf("creating a user: %w", statusError(status, body))
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" {
		return User{}, errors.New("creating a user: the answer has no id")
	}
	u.ID = created.ID
	f.mu.Lock()
	f.users = append(f.users, u)
	f.mu.Unlock()
	return u, nil
}

// CreateClient creates a service client allowed scopes (POST
// /admin/v1/clients).
func (f *Fixture) CreateClient(ctx context.Context, scopes []string) (ServiceClient, error) {
	return f.createClient(ctx, "a service client", map[string]any{"name": f.prefix + "-client", "scopes": scopes})
}

// CreateWebClient creates a confidential, first-party web application
// (POST /admin/v1/clients) of the authorization_code and refresh_token
// grants, with redirectURI as its one redirect URI: first party, so that
// it needs no consent and gets a refresh token with every code.
func (f *Fixture) CreateWebClient(ctx context.Context, redirectURI string) (ServiceClient, error) {
	return f.createClient(ctx, "a web application client", map[string]any{
		"name":          f.prefix + "-webapp",
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"first_party":   true,
		"redirect_uris": []string{redirectURI},
	})
}

// createClient registers the client reg describes; what names it in
// errors.
func (f *Fixture) createClient(ctx context.Context, what string, reg map[string]any) (ServiceClient, error) {
	status, body, err := f.admin(ctx, "POST", "/admin/v1/clients", reg)
	if err != nil {
		return ServiceClient{}, err
	}
	if status != http.StatusCreated {
		return ServiceClient{}, fmt.Errorf("creating %s: %w", what, statusError(status, body))
	}
	var created struct {
		ID     string `json:"id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.ID == "" || created.Secret == "" {
		return ServiceClient{}, fmt.Errorf("creating %s: the answer has no id or secret", what)
	}
	c := ServiceClient{ID: created.ID, Secret: created.Secret}
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c, nil
}

// Login logs u in (POST /v1/login).
func (f *Fixture) Login(ctx context.Context, u User) (Tokens, error) {
	raw, _ := json.Marshal(map[string]string{"username": u.Username, "password": u.Password})
	status, body, err := f.do(ctx, "POST", f.t.URL+"/v1/login", http.Header{"Content-Type": {"application/json"}}, raw)
	if err != nil {
		return Tokens{}, err
	}
	if status != http.StatusOK {
		return Tokens{}, statusError(status, body)
	}
	var tok Tokens
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		return Tokens{}, &KindError{Kind: KindBadResponse, Msg: "login answer without tokens"}
	}
	return tok, nil
}

// Refresh rotates a refresh token (POST /oauth/token
// grant_type=refresh_token).
func (f *Fixture) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	return f.RefreshDPoP(ctx, refreshToken, nil)
}

// RefreshDPoP is Refresh with a DPoP proof made by p (RFC 9449): the new
// access token is bound to p's key. p nil is Refresh.
func (f *Fixture) RefreshDPoP(ctx context.Context, refreshToken string, p *dpop.Prover) (Tokens, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if p != nil {
		proof, err := p.Proof("POST", f.t.URL+"/oauth/token", "", "")
		if err != nil {
			return Tokens{}, err
		}
		h.Set("DPoP", proof)
	}
	status, body, err := f.do(ctx, "POST", f.t.URL+"/oauth/token", h, []byte(form.Encode()))
	if err != nil {
		return Tokens{}, err
	}
	if status != http.StatusOK {
		return Tokens{}, statusError(status, body)
	}
	var tok Tokens
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		return Tokens{}, &KindError{Kind: KindBadResponse, Msg: "refresh answer without tokens"}
	}
	return tok, nil
}

// SignIn signs u in at the sign-in page (GET, then POST /signin), as a
// browser does, and returns the value of the single sign-on cookie the
// server sets: the browser session that /oauth/authorize recognises.
// The POST says Sec-Fetch-Site: same-origin, as a browser posting the
// page's own form does.
func (f *Fixture) SignIn(ctx context.Context, u User) (string, error) {
	status, h, body, err := f.doHeader(ctx, "GET", f.t.URL+"/signin", nil, nil)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("GET /signin: %w", statusError(status, body))
	}
	form := cookieOf(h, formCookie)
	if form == "" {
		return "", errors.New("GET /signin set no form cookie: are the pages on?")
	}
	post := url.Values{"username": {u.Username}, "password": {u.Password}, "csrf_token": {form}, "next": {"/"}}
	status, h, body, err = f.doHeader(ctx, "POST", f.t.URL+"/signin", http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Cookie":         {formCookie + "=" + form},
		"Sec-Fetch-Site": {"same-origin"},
	}, []byte(post.Encode()))
	if err != nil {
		return "", err
	}
	sso := cookieOf(h, ssoCookie)
	if status != http.StatusSeeOther || sso == "" {
		return "", fmt.Errorf("POST /signin: no single sign-on cookie: %w", statusError(status, body))
	}
	return sso, nil
}

// cookieOf returns the value of the cookie name that the answer's header
// h sets, "" when it sets none.
func cookieOf(h http.Header, name string) string {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// LoginAll logs each of users in, at most 4 at a time, count times in
// all, round robin.
func (f *Fixture) LoginAll(ctx context.Context, users []User, count int) ([]Tokens, error) {
	toks := make([]Tokens, count)
	errs := make([]error, count)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range toks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			toks[i], errs[i] = f.Login(ctx, users[i%len(users)])
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("logging bench users in: %w", err)
	}
	return toks, nil
}

// Teardown deletes every user and client the fixture created (a user's
// deletion revokes and deletes their sessions) and logs the admin out. It
// goes on after a failure and returns every failure, naming what was left
// behind.
func (f *Fixture) Teardown(ctx context.Context) error {
	f.mu.Lock()
	users, clients := f.users, f.clients
	f.mu.Unlock()
	if f.adminTokenEmpty() {
		if len(users) == 0 && len(clients) == 0 {
			return nil
		}
		if err := f.AdminLogin(ctx); err != nil {
			return fmt.Errorf("cannot delete the %d users and %d clients named %s-…: %w", len(users), len(clients), f.prefix, err)
		}
	}
	var errs []error
	var keptUsers []User
	for _, u := range users {
		if err := f.deleteAdmin(ctx, "/admin/v1/users/"+url.PathEscape(u.ID)); err != nil {
			errs = append(errs, fmt.Errorf("deleting user %s: %w", u.Username, err))
			keptUsers = append(keptUsers, u)
		}
	}
	var keptClients []ServiceClient
	for _, c := range clients {
		if err := f.deleteAdmin(ctx, "/admin/v1/clients/"+url.PathEscape(c.ID)); err != nil {
			errs = append(errs, fmt.Errorf("deleting client %s: %w", c.ID, err))
			keptClients = append(keptClients, c)
		}
	}
	f.mu.Lock()
	f.users, f.clients = keptUsers, keptClients
	tok := f.adminToken
	f.adminToken = ""
	f.mu.Unlock()
	if tok != "" {
		// End the admin's session; failing to is not worth a report.
		f.do(ctx, "POST", f.t.URL+"/v1/logout", http.Header{"Authorization": {"Bearer " + tok}}, nil)
	}
	return errors.Join(errs...)
}

func (f *Fixture) adminTokenEmpty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adminToken == ""
}

func (f *Fixture) deleteAdmin(ctx context.Context, path string) error {
	status, body, err := f.admin(ctx, "DELETE", path, nil)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusNotFound {
		return statusError(status, body)
	}
	return nil
}

// do sends one request and reads the answer's body (so that the
// connection is reused).
func (f *Fixture) do(ctx context.Context, method, u string, h http.Header, body []byte) (int, []byte, error) {
	status, _, b, err := f.doHeader(ctx, method, u, h, body)
	return status, b, err
}

// doHeader is do that also returns the answer's header.
func (f *Fixture) doHeader(ctx context.Context, method, u string, h http.Header, body []byte) (int, http.Header, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "keycard-bench")
	resp, err := f.t.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// postForm sends an application/x-www-form-urlencoded POST, with HTTP
// Basic authentication as c when c is not nil.
func (f *Fixture) postForm(ctx context.Context, path string, form url.Values, c *ServiceClient) (int, []byte, error) {
	h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if c != nil {
		h.Set("Authorization", basicAuth(*c))
	}
	return f.do(ctx, "POST", f.t.URL+path, h, []byte(form.Encode()))
}

// statusError makes a StatusError of an unexpected answer.
func statusError(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &e)
	if len(e.Error) > 64 || strings.ContainsFunc(e.Error, func(r rune) bool { return r < ' ' || r > '~' }) {
		e.Error = ""
	}
	return &StatusError{Code: status, OAuthError: e.Error}
}
