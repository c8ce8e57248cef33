package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// The console's client pages: the list, and one page per client that
// registers a new one or edits one, with every setting of
// auth.ClientSpec.

// clientKind names what a client is, for the lists: a "service" (the
// client_credentials grant alone), a "web app" (a confidential client
// that signs users in), a "public app" (a single-page or native app), or
// a "web app and service".
func clientKind(c *keycard.Client) string {
	app := c.AllowsGrant(keycard.GrantAuthorizationCode) || c.AllowsGrant(keycard.GrantDeviceCode)
	switch {
	case c.Public():
		return "public app"
	case app && c.AllowsGrant(keycard.GrantClientCredentials):
		return "web app and service"
	case app:
		return "web app"
	}
	return "service"
}

// hasSecret reports whether a client authenticates with a secret, and so
// may be given a new one.
func hasSecret(c *keycard.Client) bool {
	return !c.Public() && c.OAuth.TokenAuthMethod != keycard.AuthPrivateKeyJWT
}

// clientRow is one client of the list.
type clientRow struct {
	*keycard.Client
	Kind      string
	HasSecret bool
}

// clientsData is the clients page's data.
type clientsData struct {
	Clients []clientRow
	Next    string
}

// handleClients is GET /admin/clients?after=: the clients, a page at a
// time.
func (h *Handler) handleClients(w http.ResponseWriter, r *http.Request) {
	list, err := h.svc.ListClients(r.Context(), r.URL.Query().Get("after"), clientsPerPage+1)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	d := &clientsData{}
	if len(list) > clientsPerPage {
		list = list[:clientsPerPage]
		d.Next = "/admin/clients?after=" + url.QueryEscape(list[len(list)-1].ID)
	}
	for _, c := range list {
		d.Clients = append(d.Clients, clientRow{Client: c, Kind: clientKind(c), HasSecret: hasSecret(c)})
	}
	h.render(w, r, http.StatusOK, "clients", h.adminPage(r, "Clients", "clients", d))
}

// clientForm is the registration form's values, as typed.
type clientForm struct {
	Name, Scopes, Audiences                 string
	Public, FirstParty                      bool
	ClientCredentials, AuthorizationCode    bool
	RefreshToken, DeviceCode, TokenExchange bool
	ExchangeAudiences                       string // separated by spaces
	RedirectURIs, PostLogoutRedirectURIs    string // one a line
	BackchannelLogoutURI                    string
	AuthMethod                              string
	JWKS, JWKSURI                           string
	AccessTTL, RefreshLifetime, RefreshIdle string // durations, "" for the server's
	DPoP                                    string // "" (optional) or "required"
}

// formOf returns the form of a registered client.
func formOf(c *keycard.Client) clientForm {
	o := c.OAuth
	d := func(v time.Duration) string {
		if v == 0 {
			return ""
		}
		return v.String()
	}
	method := o.TokenAuthMethod
	if method == keycard.AuthNone {
		method = ""
	}
	return clientForm{
		Name: c.Name, Scopes: strings.Join(c.Scopes, " "), Audiences: strings.Join(c.Audiences, " "),
		Public: o.Public, FirstParty: o.FirstParty,
		ClientCredentials: c.AllowsGrant(keycard.GrantClientCredentials), AuthorizationCode: c.AllowsGrant(keycard.GrantAuthorizationCode),
		RefreshToken: c.AllowsGrant(keycard.GrantRefreshToken), DeviceCode: c.AllowsGrant(keycard.GrantDeviceCode),
		TokenExchange: c.AllowsGrant(keycard.GrantTokenExchange), ExchangeAudiences: strings.Join(o.TokenExchangeAudiences, " "),
		RedirectURIs: strings.Join(o.RedirectURIs, "\n"), PostLogoutRedirectURIs: strings.Join(o.PostLogoutRedirectURIs, "\n"),
		BackchannelLogoutURI: o.BackchannelLogoutURI, AuthMethod: method, JWKS: string(o.JWKS), JWKSURI: o.JWKSURI,
		AccessTTL: d(o.AccessTTL), RefreshLifetime: d(o.RefreshLifetime), RefreshIdle: d(o.RefreshIdle),
		DPoP: o.DPoP,
	}
}

// readClientForm reads the registration form of a POST.
func readClientForm(r *http.Request) clientForm {
	on := func(name string) bool { return formValue(r, name) == "on" }
	return clientForm{
		Name: formValue(r, "name"), Scopes: formValue(r, "scopes"), Audiences: formValue(r, "audiences"),
		Public: on("public"), FirstParty: on("first_party"),
		ClientCredentials: on("grant_client_credentials"), AuthorizationCode: on("grant_authorization_code"),
		RefreshToken: on("grant_refresh_token"), DeviceCode: on("grant_device_code"),
		TokenExchange: on("grant_token_exchange"), ExchangeAudiences: formValue(r, "exchange_audiences"),
		RedirectURIs: formValue(r, "redirect_uris"), PostLogoutRedirectURIs: formValue(r, "post_logout_redirect_uris"),
		BackchannelLogoutURI: strings.TrimSpace(formValue(r, "backchannel_logout_uri")), AuthMethod: formValue(r, "auth_method"),
		JWKS: strings.TrimSpace(formValue(r, "jwks")), JWKSURI: strings.TrimSpace(formValue(r, "jwks_uri")),
		AccessTTL: strings.TrimSpace(formValue(r, "access_token_lifetime")), RefreshLifetime: strings.TrimSpace(formValue(r, "refresh_token_lifetime")),
		RefreshIdle: strings.TrimSpace(formValue(r, "refresh_token_idle")), DPoP: formValue(r, "dpop"),
	}
}

// lines splits a text area into its non-empty lines, each trimmed.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// spec returns the registration the form describes, or a message for the
// user. No grant checked is a service client; a public client
// authenticates with none.
func (f clientForm) spec() (auth.ClientSpec, string) {
	if strings.TrimSpace(f.Name) == "" {
		return auth.ClientSpec{}, "Name the client."
	}
	o := keycard.OAuthSettings{
		Public: f.Public, FirstParty: f.FirstParty, RedirectURIs: lines(f.RedirectURIs), PostLogoutRedirectURIs: lines(f.PostLogoutRedirectURIs),
		BackchannelLogoutURI: f.BackchannelLogoutURI, TokenAuthMethod: f.AuthMethod, JWKSURI: f.JWKSURI,
		TokenExchangeAudiences: strings.Fields(f.ExchangeAudiences), DPoP: f.DPoP,
	}
	for _, g := range []struct {
		on    bool
		grant string
	}{{f.ClientCredentials, keycard.GrantClientCredentials}, {f.AuthorizationCode, keycard.GrantAuthorizationCode},
		{f.RefreshToken, keycard.GrantRefreshToken}, {f.DeviceCode, keycard.GrantDeviceCode}, {f.TokenExchange, keycard.GrantTokenExchange}} {
		if g.on {
			o.GrantTypes = append(o.GrantTypes, g.grant)
		}
	}
	if f.JWKS != "" {
		if !json.Valid([]byte(f.JWKS)) {
			return auth.ClientSpec{}, "The JWK Set is not JSON: paste the client's {\"keys\":[…]} document."
		}
		o.JWKS = json.RawMessage(f.JWKS)
	}
	for _, d := range []struct {
		text string
		dst  *time.Duration
		what string
	}{{f.AccessTTL, &o.AccessTTL, "access token lifetime"}, {f.RefreshLifetime, &o.RefreshLifetime, "session lifetime"}, {f.RefreshIdle, &o.RefreshIdle, "session idle timeout"}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return auth.ClientSpec{}, "The " + d.what + " must be a duration such as 10m or 12h, or empty for the server's."
		}
		*d.dst = v
	}
	if o.Public && o.TokenAuthMethod == "" {
		o.TokenAuthMethod = keycard.AuthNone
	}
	return auth.ClientSpec{Name: f.Name, Scopes: strings.Fields(f.Scopes), Audiences: strings.Fields(f.Audiences), OAuth: o}, ""
}

// clientData is the page of one client, or of a new one (Client nil).
type clientData struct {
	Client *keycard.Client
	Kind   string
	// HasSecret says the client authenticates with a secret.
	HasSecret bool
	Form      clientForm
	// Secret is shown once, after the client is registered or its
	// secret rotated.
	Secret string
}

// handleNewClient is GET /admin/clients/new: the registration form.
func (h *Handler) handleNewClient(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "client", h.adminPage(r, "Register a client", "clients", &clientData{}))
}

// handleClient is GET /admin/clients/{id}: a client, its settings to edit,
// and its secret and deletion.
func (h *Handler) handleClient(w http.ResponseWriter, r *http.Request) {
	c, err := h.svc.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.renderClient(w, r, http.StatusOK, c, formOf(c), "", "")
}

// renderClient shows the page of client c (nil: a new one) with form,
// the secret shown once, or a form error.
func (h *Handler) renderClient(w http.ResponseWriter, r *http.Request, status int, c *keycard.Client, form clientForm, secret, formError string) {
	d := &clientData{Client: c, Form: form, Secret: secret}
	title := "Register a client"
	if c != nil {
		d.Kind, d.HasSecret, title = clientKind(c), hasSecret(c), c.Name
	}
	p := h.adminPage(r, title, "clients", d)
	p.Error = formError
	h.render(w, r, status, "client", p)
}

// handleCreateClient is POST /admin/clients: register a client. The
// answer is the client's page, with its secret once (not in a URL, and the
// page is not cached); a refused form comes back with its values.
func (h *Handler) handleCreateClient(w http.ResponseWriter, r *http.Request) {
	form := readClientForm(r)
	spec, problem := form.spec()
	if problem != "" {
		h.renderClient(w, r, http.StatusBadRequest, nil, form, "", problem)
		return
	}
	c, secret, err := h.svc.CreateClient(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), spec)
	switch code := keycard.ErrorCode(err); code {
	case "":
		h.renderClient(w, r, http.StatusOK, c, formOf(c), secret, "")
	case keycard.EINVALID, keycard.ECONFLICT:
		h.renderClient(w, r, browser.StatusOf(err), nil, form, "", keycard.ErrorMessage(err))
	default:
		h.serviceError(w, r, err, current(r).User)
	}
}

// handleUpdateClient is POST /admin/clients/{id}: the form replaces the
// client's registration (auth.Service.UpdateClient); its secret stays.
func (h *Handler) handleUpdateClient(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	old, err := h.svc.Client(ctx, id)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	form := readClientForm(r)
	spec, problem := form.spec()
	if problem != "" {
		h.renderClient(w, r, http.StatusBadRequest, old, form, "", problem)
		return
	}
	_, err = h.svc.UpdateClient(ctx, auth.AdminActor(current(r), browser.AgentOf(r)), id, spec)
	switch keycard.ErrorCode(err) {
	case "":
		http.Redirect(w, r, "/admin/clients/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
	case keycard.EINVALID, keycard.ECONFLICT:
		h.renderClient(w, r, browser.StatusOf(err), old, form, "", keycard.ErrorMessage(err))
	default:
		h.serviceError(w, r, err, current(r).User)
	}
}

// handleRotateClientSecret is POST /admin/clients/{id}/rotate-secret: the
// client's page with its new secret, once.
func (h *Handler) handleRotateClientSecret(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	secret, err := h.svc.RotateClientSecret(ctx, auth.AdminActor(current(r), browser.AgentOf(r)), id)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	c, err := h.svc.Client(ctx, id)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	h.renderClient(w, r, http.StatusOK, c, formOf(c), secret, "")
}

// handleDeleteClient is POST /admin/clients/{id}/delete.
func (h *Handler) handleDeleteClient(w http.ResponseWriter, r *http.Request) {
	if err := h.svc.DeleteClient(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	http.Redirect(w, r, "/admin/clients?done=deleted", http.StatusSeeOther)
}
