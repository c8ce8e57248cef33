package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// clients runs "keycard clients …": OAuth clients on the server's data,
// safe while the server runs on it, through the auth.Service with the
// command line as the audit log's actor.
func (e *cmdEnv) clients(args []string) int {
	return e.subcommands("clients", args, map[string]func([]string) int{
		"add": e.clientsAdd, "update": e.clientsUpdate, "show": e.clientsShow, "list": e.clientsList,
		"rotate-secret": e.clientsRotateSecret, "delete": e.clientsDelete,
	})
}

// printSecret prints a client's id and secret as one JSON object on stdout:
// the only time the secret is shown.
func (e *cmdEnv) printSecret(id, secret string) {
	e.printJSON(map[string]string{"client_id": id, "client_secret": secret})
	fmt.Fprintln(e.stderr, "keycard: the client secret is shown only this once; only its hash is stored")
}

// maxJWKSFile bounds the --jwks file, as the server bounds a fetched one.
const maxJWKSFile = 64 << 10

// uriList is a repeatable flag whose values are taken whole: a URI may
// hold a comma.
type uriList []string

func (l *uriList) String() string     { return fmt.Sprint([]string(*l)) }
func (l *uriList) Set(v string) error { *l = append(*l, v); return nil }

// clientFlags are the registration flags of "clients add" and "clients
// update" (auth.ClientSpec). They come from the command line alone: the
// KEYCARD_… variables and the config file hold the server's settings
// (KEYCARD_AUDIENCE is the server's audience, not a client's).
type clientFlags struct {
	name                                  string
	scopes, audiences, grants             stringList
	redirectURIs, postLogoutURIs          uriList
	exchangeAudiences                     uriList
	public, firstParty                    bool
	backchannelURI, authMethod            string
	jwksFile, jwksURI                     string
	accessTTL, refreshLifetime, refreshIn time.Duration
	dpop                                  string
}

// register adds the registration flags to fs.
func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.name, "name", "", "a label for the client, shown on the consent page (required)")
	fs.Var(&c.scopes, "scope", "an API scope the client may ask for (repeatable, or comma-separated)")
	fs.Var(&c.audiences, "audience", "an audience the client's tokens are for (repeatable; the first is their aud; default: the server's audience at the time of issue)")
	fs.Var(&c.grants, "grant", "a grant the client may use: client_credentials, authorization_code, refresh_token, "+keycard.GrantDeviceCode+
		" or "+keycard.GrantTokenExchange+" (repeatable; default: authorization_code and refresh_token with --redirect-uri or --public, "+
		"client_credentials and token exchange with --exchange-audience, else client_credentials)")
	fs.Var(&c.exchangeAudiences, "exchange-audience", "token exchange (RFC 8693): an audience or resource URI the client may exchange users' tokens for (repeatable, matched exactly)")
	fs.Var(&c.redirectURIs, "redirect-uri", "a redirect URI of the authorization_code grant, matched exactly (repeatable): https, http on loopback (any port if registered without one), or a private-use scheme")
	fs.Var(&c.postLogoutURIs, "post-logout-redirect-uri", "where RP-initiated logout may send the browser back (repeatable)")
	fs.BoolVar(&c.public, "public", false, "a public client (single-page or native app): no secret, PKCE only; fixed at creation")
	fs.BoolVar(&c.firstParty, "first-party", false, "one of your own apps: no consent page, refresh tokens without offline_access")
	fs.StringVar(&c.backchannelURI, "backchannel-logout-uri", "", "where logout tokens are posted when a user's session ends (https)")
	fs.StringVar(&c.authMethod, "auth-method", "", "token endpoint authentication: client_secret_basic, client_secret_post, private_key_jwt or none "+
		"(default: private_key_jwt with --jwks or --jwks-uri, none for --public, else a secret by either method)")
	fs.StringVar(&c.jwksFile, "jwks", "", "private_key_jwt: a `file` holding the client's public keys as a JWK Set")
	fs.StringVar(&c.jwksURI, "jwks-uri", "", "private_key_jwt: where the server fetches the client's JWK Set (https)")
	fs.DurationVar(&c.accessTTL, "access-token-lifetime", 0, "shorter access tokens for the client's users (0: the server's)")
	fs.DurationVar(&c.refreshLifetime, "refresh-token-lifetime", 0, "a shorter absolute lifetime of the client's sessions (0: the server's)")
	fs.DurationVar(&c.refreshIn, "refresh-token-idle", 0, "a shorter idle timeout of the client's sessions (0: the server's)")
	fs.StringVar(&c.dpop, "dpop", "", "DPoP policy (RFC 9449): optional (default: tokens are bound to a key when the client sends a proof) or required (no token without a proof)")
}

// spec returns the registration the flags describe, with the defaults
// that follow from them (see register).
func (c *clientFlags) spec() (auth.ClientSpec, error) {
	o := keycard.OAuthSettings{
		Public: c.public, FirstParty: c.firstParty, GrantTypes: c.grants,
		RedirectURIs: c.redirectURIs, PostLogoutRedirectURIs: c.postLogoutURIs,
		BackchannelLogoutURI: c.backchannelURI, TokenAuthMethod: c.authMethod, JWKSURI: c.jwksURI,
		AccessTTL: c.accessTTL, RefreshLifetime: c.refreshLifetime, RefreshIdle: c.refreshIn,
		TokenExchangeAudiences: c.exchangeAudiences, DPoP: c.dpop,
	}
	switch {
	case len(o.GrantTypes) > 0:
	case len(o.RedirectURIs) > 0 || o.Public:
		o.GrantTypes = []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken}
	case len(o.TokenExchangeAudiences) > 0:
		o.GrantTypes = []string{keycard.GrantClientCredentials, keycard.GrantTokenExchange}
	}
	if c.jwksFile != "" {
		jwks, err := readJWKS(c.jwksFile)
		if err != nil {
			return auth.ClientSpec{}, err
		}
		o.JWKS = jwks
	}
	if o.TokenAuthMethod == "" && (len(o.JWKS) > 0 || o.JWKSURI != "") {
		o.TokenAuthMethod = keycard.AuthPrivateKeyJWT
	}
	return auth.ClientSpec{Name: c.name, Scopes: c.scopes, Audiences: c.audiences, OAuth: o}, nil
}

// readJWKS reads a JWK Set file, compacted; the service checks its keys.
func readJWKS(path string) (json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJWKSFile+1))
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	if len(b) > maxJWKSFile {
		return nil, fmt.Errorf("--jwks: %s is larger than %d bytes", path, maxJWKSFile)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("--jwks: %s is not JSON: %v", path, err)
	}
	return out.Bytes(), nil
}

// parseClientFlags parses the arguments of "clients add" or "clients
// update", layers the server's flags from the environment and the config
// file, and keeps the registration flags as the command line gave them.
func (e *cmdEnv) parseClientFlags(fs *flagSetWithConfig, c *clientFlags, args []string) (code int, ok bool) {
	if _, code, ok := e.parseFlags(fs.FlagSet, args, 0); !ok {
		return code, false
	}
	fromCommandLine := *c
	if code, ok := e.layer(fs); !ok {
		return code, false
	}
	*c = fromCommandLine
	if c.name == "" {
		fmt.Fprintf(e.stderr, "keycard %s: --name is required\n", fs.Name())
		return exitUsage, false
	}
	return exitOK, true
}

func (e *cmdEnv) clientsAdd(args []string) int {
	var (
		f serverFlags
		c clientFlags
	)
	fs := e.serverFlagSet("clients add", &f)
	c.register(fs.FlagSet)
	if code, ok := e.parseClientFlags(fs, &c, args); !ok {
		return code
	}
	spec, err := c.spec()
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard clients add: %v\n", err)
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		cl, secret, err := svc.CreateClient(e.ctx, auth.Operator(), spec)
		if err != nil {
			return e.failErr(err)
		}
		if secret == "" {
			e.printJSON(map[string]string{"client_id": cl.ID})
			fmt.Fprintf(e.stderr, "keycard: the client has no secret (%s)\n", cl.OAuth.TokenAuthMethod)
			return exitOK
		}
		e.printSecret(cl.ID, secret)
		return exitOK
	})
}

func (e *cmdEnv) clientsUpdate(args []string) int {
	var (
		f serverFlags
		c clientFlags
	)
	fs, id := e.clientIDFlags("clients update", &f, "the client_id (required); its registration is replaced by the flags, its secret stays")
	c.register(fs.FlagSet)
	if code, ok := e.parseClientFlags(fs, &c, args); !ok {
		return code
	}
	if *id == "" {
		fmt.Fprintln(e.stderr, "keycard clients update: --id is required")
		return exitUsage
	}
	spec, err := c.spec()
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard clients update: %v\n", err)
		return exitUsage
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		cl, err := svc.UpdateClient(e.ctx, auth.Operator(), *id, spec)
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(clientJSON(cl))
		return exitOK
	})
}

func (e *cmdEnv) clientsShow(args []string) int {
	return e.onClient("clients show", "the client_id (required)", args, func(svc *auth.Service, id string) int {
		cl, err := svc.Client(e.ctx, id)
		if err != nil {
			return e.failErr(err)
		}
		e.printJSON(clientJSON(cl))
		return exitOK
	})
}

// clientJSON is what show, list and update print of a client: its
// registration, never its secret. Lifetimes are durations as the flags
// take them, absent when the server's apply.
func clientJSON(c *keycard.Client) map[string]any {
	o := c.OAuth
	grants, method := o.GrantTypes, o.TokenAuthMethod
	if len(grants) == 0 {
		grants = []string{keycard.GrantClientCredentials}
	}
	if method == "" {
		method = keycard.AuthClientSecretBasic // or client_secret_post: either works
	}
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	dpopPolicy := o.DPoP
	if dpopPolicy == "" {
		dpopPolicy = keycard.DPoPOptional
	}
	m := map[string]any{
		"client_id": c.ID, "name": c.Name, "scopes": nonNil(c.Scopes), "audiences": nonNil(c.Audiences),
		"grant_types": grants, "public": o.Public, "first_party": o.FirstParty,
		"redirect_uris": nonNil(o.RedirectURIs), "post_logout_redirect_uris": nonNil(o.PostLogoutRedirectURIs),
		"token_endpoint_auth_method": method, "token_exchange_audiences": nonNil(o.TokenExchangeAudiences), "dpop": dpopPolicy,
		"created_at": c.CreatedAt.UTC().Format(time.RFC3339), "updated_at": c.UpdatedAt.UTC().Format(time.RFC3339),
	}
	for k, v := range map[string]string{"backchannel_logout_uri": o.BackchannelLogoutURI, "jwks_uri": o.JWKSURI} {
		if v != "" {
			m[k] = v
		}
	}
	if len(o.JWKS) > 0 {
		m["jwks"] = o.JWKS
	}
	for k, d := range map[string]time.Duration{"access_token_lifetime": o.AccessTTL, "refresh_token_lifetime": o.RefreshLifetime, "refresh_token_idle": o.RefreshIdle} {
		if d != 0 {
			m[k] = d.String()
		}
	}
	return m
}

func (e *cmdEnv) clientsList(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("clients list", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int {
		return printPages(e,
			func(ctx context.Context, after string) ([]*keycard.Client, error) {
				return svc.ListClients(ctx, after, keycard.MaxPageSize)
			},
			func(c *keycard.Client) string { return c.ID },
			func(c *keycard.Client) any { return clientJSON(c) })
	})
}

// clientIDFlags returns the flag set of a command on one client, with its
// required --id.
func (e *cmdEnv) clientIDFlags(name string, f *serverFlags, usage string) (*flagSetWithConfig, *string) {
	fs := e.serverFlagSet(name, f)
	return fs, fs.String("id", "", usage)
}

// onClient runs a command on one client: it parses args, with the
// required --id, and runs fn on the server's data.
func (e *cmdEnv) onClient(name, usage string, args []string, fn func(svc *auth.Service, id string) int) int {
	var f serverFlags
	fs, id := e.clientIDFlags(name, &f, usage)
	if code, ok := e.parseLayered(fs, args, 0, "id"); !ok {
		return code
	}
	return e.onData(fs, &f, false, func(svc *auth.Service) int { return fn(svc, *id) })
}

func (e *cmdEnv) clientsRotateSecret(args []string) int {
	return e.onClient("clients rotate-secret", "the client_id (required); its old secret stops working at once", args, func(svc *auth.Service, id string) int {
		secret, err := svc.RotateClientSecret(e.ctx, auth.Operator(), id)
		if err != nil {
			return e.failErr(err)
		}
		e.printSecret(id, secret)
		return exitOK
	})
}

func (e *cmdEnv) clientsDelete(args []string) int {
	return e.onClient("clients delete", "the client_id (required)", args, func(svc *auth.Service, id string) int {
		if err := svc.DeleteClient(e.ctx, auth.Operator(), id); err != nil {
			return e.failErr(err)
		}
		fmt.Fprintf(e.stdout, "deleted client %s; introspection reports its tokens inactive, local verifiers accept them until they expire\n", id)
		return exitOK
	})
}
