package server

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/federation"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/web"
)

// loadProviders returns the providers added at run time, for
// federation.Options.Load: each stored configuration with its secret
// opened. A stored configuration that does not decode is left out and
// logged (the set's checks log the rest).
func (a *App) loadProviders(ctx context.Context) ([]federation.Config, error) {
	stored, err := a.svc.UpstreamProviders(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]federation.Config, 0, len(stored))
	for _, sp := range stored {
		var c federation.Config
		if err := json.Unmarshal(sp.Config, &c); err != nil || c.Name != sp.Name {
			a.cfg.logger().WarnContext(ctx, "federation: a stored provider does not decode; left out", "provider", sp.Name)
			continue
		}
		c.ClientSecret = sp.Secret
		out = append(out, c)
	}
	return out, nil
}

// fedAdmin is the admin API's httpapi.FederationAdmin: the checks of the
// configuration file (federation.Set.CheckAdded), the store and the
// audit through auth.Service, and the set refreshed after each change so
// this instance's next sign-in sees it (the others refresh at theirs).
type fedAdmin struct{ a *App }

var _ httpapi.FederationAdmin = fedAdmin{}

func (f fedAdmin) List(ctx context.Context) ([]httpapi.Provider, error) {
	if err := f.a.fed.Refresh(ctx); err != nil {
		return nil, err
	}
	return f.a.providers(), nil
}

// config is the API's input as a configuration.
func config(in *httpapi.ProviderInput) federation.Config {
	c := federation.Config{Name: in.Name, DisplayName: in.DisplayName, Kind: in.Kind, Issuer: in.Issuer,
		AuthorizationEndpoint: in.AuthorizationEndpoint, TokenEndpoint: in.TokenEndpoint, UserinfoEndpoint: in.UserinfoEndpoint,
		UseUserinfo: in.UseUserinfo, ClientID: in.ClientID, AuthMethod: in.AuthMethod, Scopes: in.Scopes,
		Claims: federation.ClaimMap(in.Claims), Roles: in.Roles, Domains: in.Domains, CreateUsers: in.CreateUsers, Hidden: in.Hidden}
	if in.ClientSecret != nil {
		c.ClientSecret = *in.ClientSecret
	}
	return c
}

func (f fedAdmin) Create(ctx context.Context, by auth.Actor, in *httpapi.ProviderInput) (httpapi.Provider, error) {
	if err := web.AddProvider(ctx, f.a.svc, f.a.fed, by, config(in)); err != nil {
		return httpapi.Provider{}, err
	}
	return f.after(in.Name)
}

func (f fedAdmin) Update(ctx context.Context, by auth.Actor, name string, in *httpapi.ProviderInput) (httpapi.Provider, error) {
	if err := web.ReplaceProvider(ctx, f.a.svc, f.a.fed, by, config(in), in.ClientSecret); err != nil {
		return httpapi.Provider{}, err
	}
	return f.after(name)
}

func (f fedAdmin) Delete(ctx context.Context, by auth.Actor, name string) error {
	return web.RemoveProvider(ctx, f.a.svc, f.a.fed, by, name)
}

// after describes the provider name, just changed.
func (f fedAdmin) after(name string) (httpapi.Provider, error) {
	p := f.a.fed.Provider(name)
	if p == nil {
		return httpapi.Provider{}, fmt.Errorf("federation: provider %s stored but not loaded", name)
	}
	return f.a.describe(p.Config()), nil
}

// describe is a provider for the admin API, without its secret.
func (a *App) describe(c federation.Config) httpapi.Provider {
	roles := c.Roles
	if roles == nil {
		roles = map[string][]string{}
	}
	domains := c.Domains
	if domains == nil {
		domains = []string{}
	}
	scopes := c.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	source := "api"
	if a.fed.Static(c.Name) {
		source = "config"
	}
	return httpapi.Provider{Name: c.Name, DisplayName: c.DisplayName, Kind: c.Kind, Issuer: c.Issuer, ClientID: c.ClientID,
		CallbackURL: web.CallbackURL(a.cfg.Issuer, c.Name), Domains: domains, Roles: roles, CreateUsers: c.CreateUsers, Hidden: c.Hidden,
		Source: source, AuthorizationEndpoint: c.AuthorizationEndpoint, TokenEndpoint: c.TokenEndpoint, UserinfoEndpoint: c.UserinfoEndpoint,
		UseUserinfo: c.UseUserinfo, AuthMethod: c.AuthMethod, Scopes: scopes, Claims: httpapi.ProviderClaims(c.Claims),
		HasClientSecret: c.ClientSecret != ""}
}
