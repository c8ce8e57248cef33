package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keycard-auth/keycard"
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

// config turns the API's input into a checked configuration, and its JSON
// without the secret.
func (f fedAdmin) config(in *httpapi.ProviderInput) (federation.Config, []byte, error) {
	c := federation.Config{Name: in.Name, DisplayName: in.DisplayName, Kind: in.Kind, Issuer: in.Issuer,
		AuthorizationEndpoint: in.AuthorizationEndpoint, TokenEndpoint: in.TokenEndpoint, UserinfoEndpoint: in.UserinfoEndpoint,
		UseUserinfo: in.UseUserinfo, ClientID: in.ClientID, AuthMethod: in.AuthMethod, Scopes: in.Scopes,
		Claims: federation.ClaimMap(in.Claims), Roles: in.Roles, Domains: in.Domains, CreateUsers: in.CreateUsers, Hidden: in.Hidden}
	if f.a.fed.Static(c.Name) {
		return c, nil, keycard.Errorf(keycard.ECONFLICT, "Provider %s is in the configuration file: change it there.", c.Name)
	}
	if err := f.a.fed.CheckAdded(&c); err != nil {
		return c, nil, keycard.Errorf(keycard.EINVALID, "%s", strings.TrimPrefix(err.Error(), "federation: "))
	}
	b, err := json.Marshal(c) // ClientSecret is empty: omitted
	if err != nil {
		return c, nil, err
	}
	if len(b) > keycard.MaxProviderConfigLen {
		return c, nil, keycard.Errorf(keycard.EINVALID, "The provider's configuration is larger than %d bytes.", keycard.MaxProviderConfigLen)
	}
	return c, b, nil
}

func (f fedAdmin) Create(ctx context.Context, by auth.Actor, in *httpapi.ProviderInput) (httpapi.Provider, error) {
	if err := f.a.fed.Refresh(ctx); err != nil {
		return httpapi.Provider{}, err
	}
	c, b, err := f.config(in)
	if err != nil {
		return httpapi.Provider{}, err
	}
	secret := ""
	if in.ClientSecret != nil {
		secret = *in.ClientSecret
	}
	if err := f.a.svc.CreateUpstreamProvider(ctx, by, c.Name, b, secret); err != nil {
		return httpapi.Provider{}, err
	}
	return f.after(ctx, c.Name)
}

func (f fedAdmin) Update(ctx context.Context, by auth.Actor, name string, in *httpapi.ProviderInput) (httpapi.Provider, error) {
	if err := f.a.fed.Refresh(ctx); err != nil {
		return httpapi.Provider{}, err
	}
	if f.a.fed.Static(name) {
		return httpapi.Provider{}, keycard.Errorf(keycard.ECONFLICT, "Provider %s is in the configuration file: change it there.", name)
	}
	c, b, err := f.config(in)
	if err != nil {
		return httpapi.Provider{}, err
	}
	if err := f.a.svc.UpdateUpstreamProvider(ctx, by, c.Name, b, in.ClientSecret); err != nil {
		return httpapi.Provider{}, err
	}
	return f.after(ctx, c.Name)
}

func (f fedAdmin) Delete(ctx context.Context, by auth.Actor, name string) error {
	if f.a.fed.Static(name) {
		return keycard.Errorf(keycard.ECONFLICT, "Provider %s is in the configuration file: remove it there.", name)
	}
	if err := f.a.svc.DeleteUpstreamProvider(ctx, by, name); err != nil {
		return err
	}
	return f.a.fed.Refresh(ctx)
}

// after refreshes the set and describes the provider name.
func (f fedAdmin) after(ctx context.Context, name string) (httpapi.Provider, error) {
	if err := f.a.fed.Refresh(ctx); err != nil {
		return httpapi.Provider{}, err
	}
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
