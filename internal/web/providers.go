package web

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/federation"
)

// The changes of the providers added at run time, shared by the console
// (below) and the admin API (internal/server): the configuration file's
// checks (federation.Set.CheckAdded), the store, the seal and the audit
// through auth.Service, then set refreshed so this instance sees the
// change at once (the others at their next sign-in page).

func readOnly(name string) error {
	return keycard.Errorf(keycard.ECONFLICT, "Provider %s is in the configuration file: change it there.", name)
}

// storedConfig checks c as a provider to add or replace and returns its
// JSON without the secret.
func storedConfig(set *federation.Set, c *federation.Config) ([]byte, error) {
	if set.Static(c.Name) {
		return nil, readOnly(c.Name)
	}
	if err := set.CheckAdded(c); err != nil {
		return nil, keycard.Errorf(keycard.EINVALID, "%s", strings.TrimPrefix(err.Error(), "federation: "))
	}
	secret := c.ClientSecret
	c.ClientSecret = ""
	b, err := json.Marshal(c)
	c.ClientSecret = secret
	if err != nil {
		return nil, err
	}
	if len(b) > keycard.MaxProviderConfigLen {
		return nil, keycard.Errorf(keycard.EINVALID, "The provider's configuration is larger than %d bytes.", keycard.MaxProviderConfigLen)
	}
	return b, nil
}

// AddProvider adds the provider c (its secret c.ClientSecret) at run
// time. Errors: EINVALID with the check that failed, ECONFLICT for a
// name taken or the configuration file's.
func AddProvider(ctx context.Context, svc *auth.Service, set *federation.Set, by auth.Actor, c federation.Config) error {
	if err := set.Refresh(ctx); err != nil {
		return err
	}
	b, err := storedConfig(set, &c)
	if err != nil {
		return err
	}
	if err := svc.CreateUpstreamProvider(ctx, by, c.Name, b, c.ClientSecret); err != nil {
		return err
	}
	return set.Refresh(ctx)
}

// ReplaceProvider replaces the provider c.Name added at run time; secret
// nil keeps its client secret, otherwise replaces it (c.ClientSecret is
// ignored). ENOTFOUND if there is none.
func ReplaceProvider(ctx context.Context, svc *auth.Service, set *federation.Set, by auth.Actor, c federation.Config, secret *string) error {
	if err := set.Refresh(ctx); err != nil {
		return err
	}
	b, err := storedConfig(set, &c)
	if err != nil {
		return err
	}
	if err := svc.UpdateUpstreamProvider(ctx, by, c.Name, b, secret); err != nil {
		return err
	}
	return set.Refresh(ctx)
}

// RemoveProvider removes the provider name added at run time.
func RemoveProvider(ctx context.Context, svc *auth.Service, set *federation.Set, by auth.Actor, name string) error {
	if set.Static(name) {
		return readOnly(name)
	}
	if err := svc.DeleteUpstreamProvider(ctx, by, name); err != nil {
		return err
	}
	return set.Refresh(ctx)
}

// providersData is the console's providers page.
type providersData struct {
	Providers []providerRow
	Issuer    string
	New       newProviderForm
	NewError  string
}

type providerRow struct {
	Name, DisplayName, Kind, Issuer, ClientID, CallbackURL string
	Domains                                                []string
	Static, HasSecret, CreateUsers, Hidden                 bool
}

// newProviderForm is the add form's values after a refused addition
// (never the secret).
type newProviderForm struct {
	Name, DisplayName, Issuer, ClientID, Domains string
	CreateUsers                                  bool
}

// handleProviders is GET /admin/providers: the providers, and a form to
// add an OpenID Connect one.
func (h *Handler) handleProviders(w http.ResponseWriter, r *http.Request) {
	h.renderProviders(w, r, http.StatusOK, &providersData{})
}

func (h *Handler) renderProviders(w http.ResponseWriter, r *http.Request, status int, d *providersData) {
	if err := h.fed.Refresh(r.Context()); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	for _, p := range h.fed.Providers() {
		c := p.Config()
		d.Providers = append(d.Providers, providerRow{Name: c.Name, DisplayName: c.DisplayName, Kind: c.Kind, Issuer: c.Issuer, ClientID: c.ClientID,
			CallbackURL: CallbackURL(h.svc.Config().Issuer, c.Name), Domains: c.Domains, Static: h.fed.Static(c.Name), HasSecret: c.ClientSecret != "",
			CreateUsers: c.CreateUsers, Hidden: c.Hidden})
	}
	d.Issuer = h.svc.Config().Issuer
	h.render(w, r, status, "providers", h.adminPage(r, "Identity providers", "providers", d))
}

// handleAddProvider is POST /admin/providers: add an OpenID Connect
// provider by its issuer.
func (h *Handler) handleAddProvider(w http.ResponseWriter, r *http.Request) {
	f := newProviderForm{Name: strings.TrimSpace(formValue(r, "name")), DisplayName: strings.TrimSpace(formValue(r, "display_name")),
		Issuer: strings.TrimSpace(formValue(r, "issuer")), ClientID: strings.TrimSpace(formValue(r, "client_id")),
		Domains: formValue(r, "domains"), CreateUsers: formValue(r, "create_users") == "on"}
	c := federation.Config{Name: f.Name, DisplayName: f.DisplayName, Kind: federation.KindOIDC, Issuer: f.Issuer, ClientID: f.ClientID,
		ClientSecret: formValue(r, "client_secret"), Domains: strings.Fields(strings.ReplaceAll(f.Domains, ",", " ")), CreateUsers: f.CreateUsers}
	err := AddProvider(r.Context(), h.svc, h.fed, auth.AdminActor(current(r), browser.AgentOf(r)), c)
	if code := keycard.ErrorCode(err); code == keycard.EINVALID || code == keycard.ECONFLICT {
		h.renderProviders(w, r, browser.StatusOf(err), &providersData{New: f, NewError: keycard.ErrorMessage(err)})
		return
	}
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, "/admin/providers?done=provideradded", http.StatusSeeOther)
}

// handleRemoveProvider is POST /admin/providers/{name}/delete.
func (h *Handler) handleRemoveProvider(w http.ResponseWriter, r *http.Request) {
	if err := RemoveProvider(r.Context(), h.svc, h.fed, auth.AdminActor(current(r), browser.AgentOf(r)), r.PathValue("name")); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, "/admin/providers?done=providerremoved", http.StatusSeeOther)
}
