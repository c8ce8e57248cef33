package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/keycard-auth/keycard/internal/cliauth"
)

// loginMinValid is how long the access token "keycard login token" prints
// must still be good for; a shorter one is refreshed first.
const loginMinValid = 30 * time.Second

// login runs "keycard login …": sign in to a Keycard server as a native
// app (internal/cliauth), and the subcommands that use the stored login.
func (e *cmdEnv) login(args []string) int {
	if len(args) > 0 {
		switch {
		case args[0] == "help":
			e.usage(e.stdout, "login")
			return exitOK
		case args[0] == "token":
			return e.loginToken(args[1:])
		case args[0] == "logout":
			return e.loginLogout(args[1:])
		}
	}
	fs := e.flagSet("login")
	issuer := fs.String("issuer", "", "the server's issuer `URL`, as its discovery document names it (required)")
	clientID := fs.String("client-id", "", "the `ID` of the public client registered for keycard login (required)")
	device := fs.Bool("device", false, "sign in with the device grant: show a code to type in a browser anywhere")
	scope := fs.String("scope", cliauth.DefaultScope, "the `scopes` to ask for, space-separated (openid is always asked for)")
	noBrowser := fs.Bool("no-browser", false, "print the sign-in URL instead of opening the browser")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the browser's sign-in (the device grant waits as long as its code lives)")
	credentials := credentialsFlag(fs)
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	if *issuer == "" || *clientID == "" {
		fmt.Fprintln(e.stderr, "keycard login: --issuer and --client-id are required")
		printFlags(e.stderr, fs)
		return exitUsage
	}
	store := &cliauth.Store{Path: *credentials}
	p, err := cliauth.Discover(e.ctx, nil, *issuer)
	if err != nil {
		return e.fail("%v", err)
	}
	c := &cliauth.Client{Provider: p, ClientID: *clientID}
	var tok *cliauth.Token
	var id *cliauth.Identity
	if *device {
		tok, id, err = e.loginDevice(c, *scope)
	} else {
		tok, id, err = e.loginBrowser(c, *scope, !*noBrowser, *timeout)
	}
	if err != nil {
		return e.fail("login: %v", err)
	}
	creds := &cliauth.Credentials{Issuer: p.Issuer, ClientID: *clientID, Token: *tok, UpdatedAt: time.Now().UTC()}
	if id != nil {
		creds.Subject, creds.Username = id.Subject, id.Username
	}
	if err := store.Put(creds); err != nil {
		return e.fail("login: storing the tokens: %v", err)
	}
	who := creds.Subject
	if creds.Username != "" {
		who = creds.Username
	}
	fmt.Fprintf(e.stdout, "Signed in to %s as %s.\n", p.Issuer, who)
	if tok.RefreshToken == "" {
		fmt.Fprintln(e.stderr, "keycard login: the server gave no refresh token (ask for offline_access): sign in again when the access token expires")
	}
	return exitOK
}

// credentialsFlag adds --credentials to fs and returns its value.
func credentialsFlag(fs *flag.FlagSet) *string {
	return fs.String("credentials", "", "the credentials `FILE` (default: keycard/credentials.json in the user's config directory)")
}

// loginBrowser signs in through the browser: a loopback redirect on
// 127.0.0.1.
func (e *cmdEnv) loginBrowser(c *cliauth.Client, scope string, open bool, timeout time.Duration) (*cliauth.Token, *cliauth.Identity, error) {
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	l, err := c.StartLogin(ctx, cliauth.LoginOptions{Scope: scope, Refused: func(reason string) {
		fmt.Fprintf(e.stderr, "keycard login: %s\n", reason)
	}})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	switch {
	case !open:
		fmt.Fprintf(e.stderr, "Open this URL in a browser on this machine to sign in:\n\n  %s\n\n", l.URL)
	case cliauth.OpenBrowser(l.URL) != nil:
		fmt.Fprintf(e.stderr, "Could not open a browser. Open this URL in a browser on this machine to sign in:\n\n  %s\n\n", l.URL)
	default:
		fmt.Fprintf(e.stderr, "Opening the browser to sign in. If it does not open, visit:\n\n  %s\n\n", l.URL)
	}
	fmt.Fprintln(e.stderr, "Waiting for the sign-in…")
	tok, id, err := l.Wait(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, nil, fmt.Errorf("no sign-in within %v", timeout)
	}
	return tok, id, err
}

// loginDevice signs in with the device grant.
func (e *cmdEnv) loginDevice(c *cliauth.Client, scope string) (*cliauth.Token, *cliauth.Identity, error) {
	d, err := c.StartDevice(e.ctx, scope)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(e.stderr, "To sign in, visit %s and enter the code:\n\n  %s\n\n", d.VerificationURI, d.UserCode)
	if d.VerificationURIComplete != "" {
		fmt.Fprintf(e.stderr, "(or open %s)\n", d.VerificationURIComplete)
	}
	fmt.Fprintf(e.stderr, "Waiting for the approval (the code lives %d minutes)…\n", d.ExpiresIn/60)
	return c.PollDevice(e.ctx, d)
}

// loginFlags parses the flags that pick a stored login: --issuer and
// --client-id (both, or neither for the latest login) and --credentials.
func (e *cmdEnv) loginFlags(name string, args []string) (issuer, clientID string, store *cliauth.Store, code int, ok bool) {
	fs := e.flagSet(name)
	is := fs.String("issuer", "", "the issuer `URL` of the login (default: the latest login)")
	id := fs.String("client-id", "", "the client `ID` of the login (default: the latest login)")
	credentials := credentialsFlag(fs)
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return "", "", nil, code, false
	}
	if (*is == "") != (*id == "") {
		fmt.Fprintf(e.stderr, "keycard %s: give both --issuer and --client-id, or neither for the latest login\n", name)
		return "", "", nil, exitUsage, false
	}
	return *is, *id, &cliauth.Store{Path: *credentials}, exitOK, true
}

// loginToken prints an access token of the stored login that is good for
// at least loginMinValid, refreshing it first when it is not: for scripts,
// curl -H "Authorization: Bearer $(keycard login token)". The refresh
// rotates the stored refresh token; the credentials file is replaced
// whole, under a lock that makes a second command wait and use the first
// one's tokens.
func (e *cmdEnv) loginToken(args []string) int {
	issuer, clientID, store, code, ok := e.loginFlags("login token", args)
	if !ok {
		return code
	}
	var access string
	err := store.Update(issuer, clientID, func(c *cliauth.Credentials) (*cliauth.Credentials, error) {
		if c.ValidFor(time.Now(), loginMinValid) {
			access = c.AccessToken
			return c, nil
		}
		if c.RefreshToken == "" {
			return nil, errors.New("the access token has expired and there is no refresh token: run keycard login again")
		}
		p, err := cliauth.Discover(e.ctx, nil, c.Issuer)
		if err != nil {
			return nil, err
		}
		cl := &cliauth.Client{Provider: p, ClientID: c.ClientID}
		tok, id, err := cl.Refresh(e.ctx, c.RefreshToken)
		var oe *cliauth.OAuthError
		if errors.As(err, &oe) && oe.Code == "invalid_grant" {
			return nil, fmt.Errorf("the session has ended (%s): run keycard login again", oe.Description)
		} else if err != nil {
			return nil, err
		}
		c.Token, c.UpdatedAt = *tok, time.Now().UTC()
		if id != nil {
			c.Subject, c.Username = id.Subject, id.Username
		}
		access = c.AccessToken
		return c, nil
	})
	if err != nil {
		return e.fail("login token: %v", err)
	}
	fmt.Fprintln(e.stdout, access)
	return exitOK
}

// loginLogout revokes the stored login's refresh token at the server
// (which ends its session: its access tokens are refused within a
// second), or its access token when it has no refresh token, and deletes
// the login. When the server cannot be reached the login is deleted all
// the same, and the exit code says the tokens may still work until they
// expire.
func (e *cmdEnv) loginLogout(args []string) int {
	issuer, clientID, store, code, ok := e.loginFlags("login logout", args)
	if !ok {
		return code
	}
	var revokeErr error
	var from string
	err := store.Update(issuer, clientID, func(c *cliauth.Credentials) (*cliauth.Credentials, error) {
		from = c.Issuer
		p, err := cliauth.Discover(e.ctx, nil, c.Issuer)
		if err != nil {
			revokeErr = err
			return nil, nil
		}
		cl := &cliauth.Client{Provider: p, ClientID: c.ClientID}
		if c.RefreshToken != "" {
			revokeErr = cl.Revoke(e.ctx, c.RefreshToken, "refresh_token")
		} else {
			revokeErr = cl.Revoke(e.ctx, c.AccessToken, "access_token")
		}
		return nil, nil
	})
	if err != nil {
		return e.fail("login logout: %v", err)
	}
	if revokeErr != nil {
		return e.fail("login logout: the tokens were deleted here, but not revoked at %s (%v): they work until they expire", from, revokeErr)
	}
	fmt.Fprintf(e.stdout, "Signed out of %s.\n", from)
	return exitOK
}
