// Command hydraprep prepares an Ory Hydra (v2) server for the wrk scripts
// of bench/wrk, as bench/cmd/wrkbench -keycard does for Keycard: it
// creates, through Hydra's admin API, a confidential client for the
// client credentials grant (scope bench:read, client_secret_basic) and a
// public client for the authorization code and refresh grants, then runs
// the authorization code flow -n times, acting as the login and consent
// app (it accepts each login and consent request through the admin API),
// and writes what the scripts read into -dir:
//
//	refresh   one refresh token per line, each of its own session
//	access    the access tokens issued with them (for introspection)
//	env       WRK_* variables for the shell, one NAME='value' per line:
//	          WRK_AUTH (HTTP Basic of the confidential client), WRK_SCOPE,
//	          WRK_FORM (&client_id= of the public client, for refresh)
//
// Hydra must be configured with urls.login and urls.consent pointing
// anywhere (hydraprep reads the challenge from the redirect and never
// follows it there) and must allow http (--dev).
//
// Usage:
//
//	hydraprep -public http://127.0.0.1:4444 -admin http://127.0.0.1:4445 -dir DIR [-n 32]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// redirectURI is where the public client's flow ends; nothing listens
// there, hydraprep reads the code from the redirect.
const redirectURI = "http://127.0.0.1:9/callback"

// scope is what the bench clients ask for, as keycard bench's client.
const scope = "bench:read"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hydraprep:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("hydraprep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	public := fs.String("public", "", "Hydra's public `URL`")
	admin := fs.String("admin", "", "Hydra's admin `URL`")
	dir := fs.String("dir", "", "`directory` to write the token files and env to")
	n := fs.Int("n", 32, "sessions to start: refresh and access tokens to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *public == "" || *admin == "" || *dir == "" || *n < 1 || fs.NArg() > 0 {
		return errors.New("usage: hydraprep -public URL -admin URL -dir DIR [-n N]")
	}
	h := &hydra{public: strings.TrimRight(*public, "/"), admin: strings.TrimRight(*admin, "/"),
		client: &http.Client{Timeout: 30 * time.Second}}
	conf, err := h.createClient(ctx, map[string]any{
		"client_name": "bench-client-credentials", "grant_types": []string{"client_credentials"},
		"scope": scope, "token_endpoint_auth_method": "client_secret_basic",
	})
	if err != nil {
		return err
	}
	pub, err := h.createClient(ctx, map[string]any{
		"client_name": "bench-refresh", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "offline_access " + scope, "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		return err
	}
	var refresh, access []string
	for i := range *n {
		tok, err := h.authorizationCode(ctx, pub.ID, fmt.Sprintf("bench-user-%d", i))
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		refresh = append(refresh, tok.RefreshToken)
		access = append(access, tok.AccessToken)
	}
	cred := url.QueryEscape(conf.ID) + ":" + url.QueryEscape(conf.Secret)
	// Quoted for the shell (. DIR/env); no value holds a quote.
	env := []string{
		"WRK_AUTH='Basic " + base64.StdEncoding.EncodeToString([]byte(cred)) + "'",
		"WRK_SCOPE='" + scope + "'",
		"WRK_FORM='&client_id=" + url.QueryEscape(pub.ID) + "'",
	}
	for name, lines := range map[string][]string{"refresh": refresh, "access": access, "env": env} {
		if err := os.WriteFile(filepath.Join(*dir, name), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "hydraprep: clients %s (client credentials) and %s (public), %d sessions, in %s\n", conf.ID, pub.ID, *n, *dir)
	return nil
}

type hydra struct {
	public, admin string
	client        *http.Client
}

type oauthClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (h *hydra) createClient(ctx context.Context, spec map[string]any) (oauthClient, error) {
	var c oauthClient
	status, body, err := h.do(ctx, h.client, "POST", h.admin+"/admin/clients", "application/json", spec)
	if err != nil {
		return c, err
	}
	if status != http.StatusCreated {
		return c, fmt.Errorf("creating a client: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &c); err != nil || c.ID == "" {
		return c, fmt.Errorf("creating a client: no client_id in %s", body)
	}
	return c, nil
}

// authorizationCode runs one authorization code flow with PKCE for the
// public client, accepting the login as subject and the consent to
// offline_access and bench:read, and redeems the code.
func (h *hydra) authorizationCode(ctx context.Context, clientID, subject string) (tokens, error) {
	var tok tokens
	jar, _ := cookiejar.New(nil) // Hydra's CSRF cookies bind the steps of one flow
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	verifier := randomString()
	challenge := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {clientID}, "response_type": {"code"}, "scope": {"offline_access " + scope},
		"redirect_uri": {redirectURI}, "state": {randomString()},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"},
	}
	loc, err := h.redirect(ctx, browser, h.public+"/oauth2/auth?"+q.Encode())
	if err != nil {
		return tok, err
	}
	login := loc.Query().Get("login_challenge")
	if login == "" {
		return tok, fmt.Errorf("no login_challenge in the redirect to %s", loc.Redacted())
	}
	next, err := h.accept(ctx, "login", login, map[string]any{"subject": subject, "remember": false})
	if err != nil {
		return tok, err
	}
	if loc, err = h.redirect(ctx, browser, next); err != nil {
		return tok, err
	}
	consent := loc.Query().Get("consent_challenge")
	if consent == "" {
		return tok, fmt.Errorf("no consent_challenge in the redirect to %s", loc.Redacted())
	}
	next, err = h.accept(ctx, "consent", consent, map[string]any{"grant_scope": []string{"offline_access", scope}, "remember": false})
	if err != nil {
		return tok, err
	}
	if loc, err = h.redirect(ctx, browser, next); err != nil {
		return tok, err
	}
	code := loc.Query().Get("code")
	if code == "" {
		return tok, fmt.Errorf("no code in the redirect to the client (error %q)", loc.Query().Get("error_description"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {clientID}, "code_verifier": {verifier}}
	status, body, err := h.do(ctx, h.client, "POST", h.public+"/oauth2/token", "application/x-www-form-urlencoded", form.Encode())
	if err != nil {
		return tok, err
	}
	if status != http.StatusOK {
		return tok, fmt.Errorf("redeeming the code: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		return tok, errors.New("redeeming the code: no access or refresh token in the answer")
	}
	return tok, nil
}

// redirect GETs u in the browser and returns where the 302 or 303 points.
func (h *hydra) redirect(ctx context.Context, browser *http.Client, u string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := browser.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("GET %s: %d %s, want a redirect", req.URL.Path, resp.StatusCode, body)
	}
	return resp.Location()
}

// accept accepts a login or consent request and returns where Hydra
// sends the browser next.
func (h *hydra) accept(ctx context.Context, kind, challenge string, body map[string]any) (string, error) {
	u := fmt.Sprintf("%s/admin/oauth2/auth/requests/%s/accept?%s_challenge=%s", h.admin, kind, kind, url.QueryEscape(challenge))
	status, resp, err := h.do(ctx, h.client, "PUT", u, "application/json", body)
	if err != nil {
		return "", err
	}
	var ans struct {
		RedirectTo string `json:"redirect_to"`
	}
	if status != http.StatusOK || json.Unmarshal(resp, &ans) != nil || ans.RedirectTo == "" {
		return "", fmt.Errorf("accepting the %s request: %d %s", kind, status, resp)
	}
	return ans.RedirectTo, nil
}

// do sends a request with a JSON (any) or form (string) body and reads
// the answer.
func (h *hydra) do(ctx context.Context, c *http.Client, method, u, contentType string, body any) (int, []byte, error) {
	var raw []byte
	switch b := body.(type) {
	case string:
		raw = []byte(b)
	default:
		raw, _ = json.Marshal(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// randomString returns 32 random bytes, base64url: a PKCE verifier or a
// state.
func randomString() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
