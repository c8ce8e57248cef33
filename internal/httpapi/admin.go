package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// codeInsufficientRole is the error of a 403 answered to an authenticated
// caller without the role a route needs.
const codeInsufficientRole = "insufficient_role"

// Page sizes of the admin API's lists (the limit query parameter).
const (
	DefaultAdminPageSize = 50
	MaxAdminPageSize     = 500
)

// adminRoutes adds the admin API (docs/http-api.md, "Admin API") to mux.
// POST /admin/v1/revoke-all and POST /admin/v1/keys/{kid}/revoke are
// registered with the revocation routes.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /admin/v1/users", s.admin(s.handleAdminUsers))
	s.handle(mux, "POST /admin/v1/users", s.admin(s.handleAdminCreateUser))
	s.handle(mux, "GET /admin/v1/users/{id}", s.admin(s.handleAdminUser))
	s.handle(mux, "DELETE /admin/v1/users/{id}", s.admin(s.handleAdminDeleteUser))
	s.handle(mux, "POST /admin/v1/users/{id}/disable", s.admin(s.handleAdminSetDisabled(true)))
	s.handle(mux, "POST /admin/v1/users/{id}/enable", s.admin(s.handleAdminSetDisabled(false)))
	s.handle(mux, "PUT /admin/v1/users/{id}/roles", s.admin(s.handleAdminSetRoles))
	s.handle(mux, "PUT /admin/v1/users/{id}/email", s.admin(s.handleAdminSetEmail))
	s.handle(mux, "POST /admin/v1/users/{id}/password-reset", s.admin(s.handleAdminSendReset))
	s.handle(mux, "GET /admin/v1/users/{id}/sessions", s.admin(s.handleAdminSessions))
	s.handle(mux, "DELETE /admin/v1/users/{id}/sessions", s.admin(s.handleAdminRevokeSessions))
	s.handle(mux, "DELETE /admin/v1/users/{id}/sessions/{sid}", s.admin(s.handleAdminRevokeSession))
	s.handle(mux, "GET /admin/v1/users/{id}/consents", s.admin(s.handleAdminConsents))
	s.handle(mux, "DELETE /admin/v1/users/{id}/consents/{client}", s.admin(s.handleAdminRevokeConsent))
	s.handle(mux, "GET /admin/v1/users/{id}/identities", s.admin(s.handleAdminIdentities))
	s.handle(mux, "DELETE /admin/v1/users/{id}/identities/{provider}/{subject}", s.admin(s.handleAdminUnlink))
	s.handle(mux, "GET /admin/v1/federation/providers", s.admin(s.handleAdminProviders))
	s.handle(mux, "POST /admin/v1/federation/providers", s.admin(s.handleAdminCreateProvider))
	s.handle(mux, "PUT /admin/v1/federation/providers/{name}", s.admin(s.handleAdminUpdateProvider))
	s.handle(mux, "DELETE /admin/v1/federation/providers/{name}", s.admin(s.handleAdminDeleteProvider))
	s.handle(mux, "GET /admin/v1/keys", s.admin(s.handleAdminKeys))
	s.handle(mux, "POST /admin/v1/keys/rotate", s.admin(s.handleAdminRotateKey))
	s.handle(mux, "GET /admin/v1/clients", s.admin(s.handleAdminClients))
	s.handle(mux, "POST /admin/v1/clients", s.admin(s.handleAdminCreateClient))
	s.handle(mux, "GET /admin/v1/clients/{id}", s.admin(s.handleAdminClient))
	s.handle(mux, "PUT /admin/v1/clients/{id}", s.admin(s.handleAdminUpdateClient))
	s.handle(mux, "DELETE /admin/v1/clients/{id}", s.admin(s.handleAdminDeleteClient))
	s.handle(mux, "POST /admin/v1/clients/{id}/rotate-secret", s.admin(s.handleAdminRotateClientSecret))
	s.handle(mux, "GET /admin/v1/audit", s.admin(s.handleAdminAudit))
	s.handle(mux, "GET /admin/v1/backchannel-logouts", s.admin(s.handleAdminLogouts))
}

// admin wraps a handler of the admin API: the caller must present an
// access token (see bearer) of a user who has the admin role now — roles
// are read from the stored user, not from the token, so taking the role
// away takes effect at once. Others get 403 insufficient_role. With
// auth.Config.ReauthWithin set, an admin whose login is older gets 401
// insufficient_user_authentication (RFC 9470) and signs in again.
func (s *Server) admin(next http.HandlerFunc) http.Handler {
	return s.bearer(func(w http.ResponseWriter, r *http.Request) {
		p := principal(r.Context())
		if !p.User.HasRole(auth.RoleAdmin) {
			s.writeError(w, r, errorf(http.StatusForbidden, codeInsufficientRole, "This endpoint needs the admin role."))
			return
		}
		if err := s.svc.CheckRecentAuth(p); err != nil {
			s.writeError(w, r, err)
			return
		}
		next(w, r)
	})
}

// query is a request's query string, parsed strictly.
type query url.Values

// parseQuery parses the query string: it must be well-formed, name only
// the allowed parameters, and give each at most once.
func parseQuery(r *http.Request, allowed ...string) (query, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("The query string is malformed.")
	}
	for name, vs := range v {
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return nil, badRequest(fmt.Sprintf("Unknown query parameter %q.", truncate(name, 64)))
		}
		if len(vs) > 1 {
			return nil, badRequest(fmt.Sprintf("Query parameter %q appears more than once.", name))
		}
	}
	return query(v), nil
}

func (q query) get(name string) string { return url.Values(q).Get(name) }

// limit returns the limit parameter: DefaultAdminPageSize when absent,
// otherwise an integer from 1 to MaxAdminPageSize.
func (q query) limit() (int, error) {
	s := q.get("limit")
	if s == "" {
		return DefaultAdminPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxAdminPageSize {
		return 0, badRequest(fmt.Sprintf("Query parameter \"limit\" must be an integer from 1 to %d.", MaxAdminPageSize))
	}
	return n, nil
}

// Cursors are opaque to clients: the unpadded base64url of
// "<list>:<position>", where the position is the sort key of the last item
// of the previous page. The list name keeps a cursor of one list from
// being used on another.

func encodeCursor(list, position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + ":" + position))
}

// paging reads the limit and the cursor of the named list.
func (q query) paging(list string) (limit int, cursor string, err error) {
	if limit, err = q.limit(); err != nil {
		return 0, "", err
	}
	cursor, err = q.cursor(list)
	return limit, cursor, err
}

// cursor returns the position in the cursor parameter of the given list,
// "" when absent.
func (q query) cursor(list string) (string, error) {
	c := q.get("cursor")
	if c == "" {
		return "", nil
	}
	invalid := badRequest(`Query parameter "cursor" is not a cursor of this list; pass the "next" value of the previous page unchanged.`)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", invalid
	}
	name, position, ok := strings.Cut(string(b), ":")
	if !ok || name != list || position == "" {
		return "", invalid
	}
	return position, nil
}

// page trims items, fetched with one more than limit, to limit, and
// returns the next cursor, "" on the last page.
func page[T any](items []T, limit int, list string, position func(T) string) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	items = items[:limit]
	return items, encodeCursor(list, position(items[limit-1]))
}

// nonNil returns s, or an empty slice for nil, so that it is [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// utcOrNil returns t in UTC, or nil for the zero time.
func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

type adminUserJSON struct {
	ID                string    `json:"id"`
	Username          string    `json:"username"`
	Roles             []string  `json:"roles"`
	Disabled          bool      `json:"disabled"`
	Email             string    `json:"email,omitempty"`
	EmailVerified     bool      `json:"email_verified"`
	CreatedAt         time.Time `json:"created_at"`
	UpdatedAt         time.Time `json:"updated_at"`
	PasswordChangedAt time.Time `json:"password_changed_at"`
}

func adminUser(u *keycard.User) adminUserJSON {
	return adminUserJSON{
		ID: u.ID, Username: u.Username, Roles: nonNil(u.Roles), Disabled: u.Disabled, Email: u.Email, EmailVerified: u.EmailVerified,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(), PasswordChangedAt: u.PasswordChangedAt.UTC(),
	}
}

type adminUsersResponse struct {
	Users []adminUserJSON `json:"users"`
	Next  string          `json:"next,omitempty"`
}

// handleAdminUsers is GET /admin/v1/users?q=&limit=&cursor=: users ordered
// by normalized username, optionally only those whose username starts
// with q (ignoring case, as login does).
func (s *Server) handleAdminUsers(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "q", "limit", "cursor")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, after, err := q.paging("users")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	users, err := s.svc.ListUsers(r.Context(), q.get("q"), after, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	users, next := page(users, limit, "users", func(u *keycard.User) string { return u.NormalizedUsername })
	out := adminUsersResponse{Users: make([]adminUserJSON, 0, len(users)), Next: next}
	for _, u := range users {
		out.Users = append(out.Users, adminUser(u))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminUser is GET /admin/v1/users/{id}.
func (s *Server) handleAdminUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminUser(u))
}

// handleAdminSetDisabled returns the handler of POST
// /admin/v1/users/{id}/disable (disabled) or …/enable: it answers with the
// updated user. Disabling revokes all the user's sessions.
func (s *Server) handleAdminSetDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.svc.SetUserDisabled(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), disabled)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, adminUser(u))
	}
}

type createUserRequest struct {
	Username *string   `json:"username"`
	Password *string   `json:"password"`
	Roles    *[]string `json:"roles"`
	Email    *string   `json:"email"`
}

// handleAdminCreateUser is POST /admin/v1/users
// {"username","password","roles"?}: create a user, whether or not
// self-service registration is on. → 201 with the user.
func (s *Server) handleAdminCreateUser(w http.ResponseWriter, r *http.Request) {
	var req createUserRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.Username == nil:
		s.writeError(w, r, badRequest(`Field "username" is required.`))
		return
	case req.Password == nil:
		s.writeError(w, r, badRequest(`Field "password" is required.`))
		return
	}
	var roles []string
	if req.Roles != nil {
		roles = *req.Roles
	}
	u, err := s.svc.CreateUserWithEmail(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), *req.Username, *req.Password, deref(req.Email), roles)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, adminUser(u))
}

type rolesRequest struct {
	Roles *[]string `json:"roles"`
}

// handleAdminSetRoles is PUT /admin/v1/users/{id}/roles {"roles":[…]}: it
// replaces the user's roles and answers with the updated user.
func (s *Server) handleAdminSetRoles(w http.ResponseWriter, r *http.Request) {
	var req rolesRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Roles == nil {
		s.writeError(w, r, badRequest(`Field "roles" is required (an array of strings, possibly empty).`))
		return
	}
	u, err := s.svc.SetUserRoles(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), *req.Roles)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminUser(u))
}

// handleAdminDeleteUser is DELETE /admin/v1/users/{id}: revoke the user's
// sessions and delete the user.
func (s *Server) handleAdminDeleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteUser(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type adminSessionJSON struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastUsedAt    time.Time `json:"last_used_at"`
	UserAgent     string    `json:"user_agent"`
	ClientAddr    string    `json:"client_addr"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
}

type adminSessionsResponse struct {
	Sessions []adminSessionJSON `json:"sessions"`
	Next     string             `json:"next,omitempty"`
}

// handleAdminSessions is GET /admin/v1/users/{id}/sessions?limit=&cursor=:
// the user's active sessions, newest first.
func (s *Server) handleAdminSessions(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "limit", "cursor")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, before, err := q.paging("sessions")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.svc.UserSessions(r.Context(), r.PathValue("id"), before, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, next := page(list, limit, "sessions", func(sess *keycard.Session) string { return sess.ID })
	out := adminSessionsResponse{Sessions: make([]adminSessionJSON, 0, len(list)), Next: next}
	for _, sess := range list {
		out.Sessions = append(out.Sessions, adminSessionJSON{
			ID: sess.ID, CreatedAt: sess.CreatedAt.UTC(), LastUsedAt: sess.LastUsedAt.UTC(),
			UserAgent: sess.UserAgent, ClientAddr: sess.ClientAddr,
			ExpiresAt: sess.ExpiresAt.UTC(), IdleExpiresAt: sess.IdleExpiresAt().UTC(),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminRevokeSession is DELETE /admin/v1/users/{id}/sessions/{sid}.
// A session of another user is 404, like an unknown one.
func (s *Server) handleAdminRevokeSession(w http.ResponseWriter, r *http.Request) {
	err := s.svc.RevokeUserSession(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), r.PathValue("sid"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type revokedResponse struct {
	Revoked int `json:"revoked"`
}

// handleAdminRevokeSessions is DELETE /admin/v1/users/{id}/sessions: revoke
// every session of the user; it answers with how many were live.
func (s *Server) handleAdminRevokeSessions(w http.ResponseWriter, r *http.Request) {
	n, err := s.svc.RevokeUserSessions(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, revokedResponse{Revoked: n})
}

type adminConsentJSON struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Scopes     []string  `json:"scopes"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

type adminConsentsResponse struct {
	Consents []adminConsentJSON `json:"consents"`
}

// handleAdminConsents is GET /admin/v1/users/{id}/consents: the
// third-party clients the user consented to, with the scopes, ordered by
// client id. A user has few, so the list is not paged. An unknown user is
// 404.
func (s *Server) handleAdminConsents(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	if _, err := s.svc.User(ctx, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.svc.Consents(ctx, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := adminConsentsResponse{Consents: make([]adminConsentJSON, 0, len(list))}
	for _, c := range list {
		cl, err := s.svc.Client(ctx, c.ClientID)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			continue // deleted meanwhile, and its consents with it
		} else if err != nil {
			s.writeError(w, r, err)
			return
		}
		out.Consents = append(out.Consents, adminConsentJSON{ClientID: c.ClientID, ClientName: cl.Name, Scopes: nonNil(c.Scopes),
			CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminRevokeConsent is DELETE /admin/v1/users/{id}/consents/{client}:
// the user's consent to the client is taken back, and the client's
// refresh tokens for the user end (its access tokens through the
// revocation feed). No such consent is 404.
func (s *Server) handleAdminRevokeConsent(w http.ResponseWriter, r *http.Request) {
	err := s.svc.RevokeConsent(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), r.PathValue("client"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminKeyJSON describes a signing key: never its private part.
type adminKeyJSON struct {
	KID         string     `json:"kid"`
	Alg         string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt *time.Time `json:"activates_at,omitempty"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	RemoveAfter *time.Time `json:"remove_after,omitempty"`
}

func adminKey(k *keycard.SigningKey) adminKeyJSON {
	return adminKeyJSON{
		KID: k.KID, Alg: k.Alg, State: string(k.State), CreatedAt: k.CreatedAt.UTC(),
		ActivatesAt: utcOrNil(k.ActivatesAt), RetiredAt: utcOrNil(k.RetiredAt), RemoveAfter: utcOrNil(k.RemoveAfter),
	}
}

type adminKeysResponse struct {
	Keys []adminKeyJSON `json:"keys"`
}

// handleAdminKeys is GET /admin/v1/keys: every stored signing key, oldest
// first. There are few, so the list is not paged.
func (s *Server) handleAdminKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := s.svc.Keys().Keys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := adminKeysResponse{Keys: make([]adminKeyJSON, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, adminKey(k))
	}
	writeJSON(w, http.StatusOK, out)
}

type rotateRequest struct {
	Immediate *bool `json:"immediate"`
}

// handleAdminRotateKey is POST /admin/v1/keys/rotate with an optional body
// {"immediate":bool}: make a new key, published now and signing after the
// publication lead, or at once with immediate. It answers 201 with the
// new key.
func (s *Server) handleAdminRotateKey(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	k, err := s.svc.RotateKey(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), req.Immediate != nil && *req.Immediate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, adminKey(k))
}

type adminClientJSON struct {
	ID                     string          `json:"id"`
	Name                   string          `json:"name"`
	Scopes                 []string        `json:"scopes"`
	Audiences              []string        `json:"audiences"`
	GrantTypes             []string        `json:"grant_types"`
	Public                 bool            `json:"public"`
	FirstParty             bool            `json:"first_party"`
	RedirectURIs           []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string          `json:"backchannel_logout_uri,omitempty"`
	TokenAuthMethod        string          `json:"token_endpoint_auth_method"`
	JWKS                   json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                string          `json:"jwks_uri,omitempty"`
	AccessTTL              int64           `json:"access_token_lifetime,omitempty"`  // seconds
	RefreshLifetime        int64           `json:"refresh_token_lifetime,omitempty"` // seconds
	RefreshIdle            int64           `json:"refresh_token_idle,omitempty"`     // seconds
	TokenExchangeAudiences []string        `json:"token_exchange_audiences"`
	DPoP                   string          `json:"dpop"` // optional | required (RFC 9449)
	CreatedAt              time.Time       `json:"created_at"`
	UpdatedAt              time.Time       `json:"updated_at"`
	// Secret is set only in the answer to the creation.
	Secret string `json:"client_secret,omitempty"`
}

func adminClient(c *keycard.Client) adminClientJSON {
	o := c.OAuth
	grants := o.GrantTypes
	if len(grants) == 0 {
		grants = []string{keycard.GrantClientCredentials}
	}
	method := o.TokenAuthMethod
	if method == "" {
		method = keycard.AuthClientSecretBasic
	}
	dpopPolicy := o.DPoP
	if dpopPolicy == "" {
		dpopPolicy = keycard.DPoPOptional
	}
	return adminClientJSON{
		ID: c.ID, Name: c.Name, Scopes: nonNil(c.Scopes), Audiences: nonNil(c.Audiences),
		GrantTypes: grants, Public: o.Public, FirstParty: o.FirstParty, RedirectURIs: nonNil(o.RedirectURIs),
		PostLogoutRedirectURIs: nonNil(o.PostLogoutRedirectURIs), BackchannelLogoutURI: o.BackchannelLogoutURI,
		TokenAuthMethod: method, JWKS: o.JWKS, JWKSURI: o.JWKSURI,
		AccessTTL: int64(o.AccessTTL / time.Second), RefreshLifetime: int64(o.RefreshLifetime / time.Second), RefreshIdle: int64(o.RefreshIdle / time.Second),
		TokenExchangeAudiences: nonNil(o.TokenExchangeAudiences), DPoP: dpopPolicy,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

type adminClientsResponse struct {
	Clients []adminClientJSON `json:"clients"`
	Next    string            `json:"next,omitempty"`
}

// handleAdminClients is GET /admin/v1/clients?limit=&cursor=: service
// clients ordered by id, without secrets.
func (s *Server) handleAdminClients(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "limit", "cursor")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, after, err := q.paging("clients")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.svc.ListClients(r.Context(), after, limit+1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, next := page(list, limit, "clients", func(c *keycard.Client) string { return c.ID })
	out := adminClientsResponse{Clients: make([]adminClientJSON, 0, len(list)), Next: next}
	for _, c := range list {
		out.Clients = append(out.Clients, adminClient(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// clientRequest is the body of POST /admin/v1/clients and PUT
// /admin/v1/clients/{id}: a client's registration (auth.ClientSpec). Only
// name is required; the rest default to a confidential service client.
// Lifetimes are in seconds.
type clientRequest struct {
	Name                   *string         `json:"name"`
	Scopes                 []string        `json:"scopes"`
	Audiences              []string        `json:"audiences"`
	GrantTypes             []string        `json:"grant_types"`
	Public                 bool            `json:"public"`
	FirstParty             bool            `json:"first_party"`
	RedirectURIs           []string        `json:"redirect_uris"`
	PostLogoutRedirectURIs []string        `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI   string          `json:"backchannel_logout_uri"`
	TokenAuthMethod        string          `json:"token_endpoint_auth_method"`
	JWKS                   json.RawMessage `json:"jwks"`
	JWKSURI                string          `json:"jwks_uri"`
	AccessTTL              int64           `json:"access_token_lifetime"`
	RefreshLifetime        int64           `json:"refresh_token_lifetime"`
	RefreshIdle            int64           `json:"refresh_token_idle"`
	TokenExchangeAudiences []string        `json:"token_exchange_audiences"`
	DPoP                   string          `json:"dpop"`
}

// maxLifetimeSeconds bounds the lifetimes a registration may give (a year).
const maxLifetimeSeconds = 366 * 24 * 3600

// spec returns the registration the request describes.
func (req *clientRequest) spec() (auth.ClientSpec, error) {
	if req.Name == nil {
		return auth.ClientSpec{}, badRequest(`Field "name" is required.`)
	}
	for _, v := range []int64{req.AccessTTL, req.RefreshLifetime, req.RefreshIdle} {
		if v < 0 || v > maxLifetimeSeconds {
			return auth.ClientSpec{}, badRequest("Lifetimes are seconds from 0 (the server's) to a year.")
		}
	}
	jwks := req.JWKS
	if string(jwks) == "null" {
		jwks = nil
	}
	return auth.ClientSpec{Name: *req.Name, Scopes: req.Scopes, Audiences: req.Audiences, OAuth: keycard.OAuthSettings{
		GrantTypes: req.GrantTypes, Public: req.Public, FirstParty: req.FirstParty, RedirectURIs: req.RedirectURIs,
		PostLogoutRedirectURIs: req.PostLogoutRedirectURIs, BackchannelLogoutURI: req.BackchannelLogoutURI,
		TokenAuthMethod: req.TokenAuthMethod, JWKS: jwks, JWKSURI: req.JWKSURI,
		AccessTTL: time.Duration(req.AccessTTL) * time.Second, RefreshLifetime: time.Duration(req.RefreshLifetime) * time.Second,
		RefreshIdle:            time.Duration(req.RefreshIdle) * time.Second,
		TokenExchangeAudiences: req.TokenExchangeAudiences, DPoP: req.DPoP,
	}}, nil
}

// handleAdminCreateClient is POST /admin/v1/clients (clientRequest): it
// answers 201 with the client and its client_secret, shown only this once
// (none for a public client or one that authenticates with
// private_key_jwt).
func (s *Server) handleAdminCreateClient(w http.ResponseWriter, r *http.Request) {
	var req clientRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	spec, err := req.spec()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, secret, err := s.svc.CreateClient(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := adminClient(c)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

// handleAdminClient is GET /admin/v1/clients/{id}.
func (s *Server) handleAdminClient(w http.ResponseWriter, r *http.Request) {
	c, err := s.svc.Client(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminClient(c))
}

// handleAdminUpdateClient is PUT /admin/v1/clients/{id} (clientRequest):
// the registration is replaced; the secret stays.
func (s *Server) handleAdminUpdateClient(w http.ResponseWriter, r *http.Request) {
	var req clientRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	spec, err := req.spec()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.svc.UpdateClient(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id"), spec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminClient(c))
}

// handleAdminDeleteClient is DELETE /admin/v1/clients/{id}.
func (s *Server) handleAdminDeleteClient(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteClient(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type clientSecretResponse struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// handleAdminRotateClientSecret is POST
// /admin/v1/clients/{id}/rotate-secret: the old secret stops working, the
// new one is in the answer, shown only this once.
func (s *Server) handleAdminRotateClientSecret(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	secret, err := s.svc.RotateClientSecret(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, clientSecretResponse{ClientID: id, ClientSecret: secret})
}

type auditEventJSON struct {
	ID         int64           `json:"id"`
	Time       time.Time       `json:"time"`
	Type       string          `json:"type"`
	Actor      string          `json:"actor"`
	Subject    string          `json:"subject"`
	ClientAddr string          `json:"client_addr"`
	UserAgent  string          `json:"user_agent"`
	Detail     json.RawMessage `json:"detail"`
}

type auditResponse struct {
	Events []auditEventJSON `json:"events"`
	Next   string           `json:"next,omitempty"`
}

// maxAuditFilterLen bounds the user and type parameters.
const maxAuditFilterLen = 256

// parseTime parses an RFC 3339 time parameter; zero when absent.
func (q query) time(name string) (time.Time, error) {
	s := q.get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, badRequest(fmt.Sprintf("Query parameter %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z.", name))
	}
	return t, nil
}

// handleAdminAudit is GET
// /admin/v1/audit?user=&type=&since=&until=&limit=&cursor=: audit events,
// newest first. user matches the actor or the subject; since is inclusive,
// until exclusive.
func (s *Server) handleAdminAudit(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "user", "type", "since", "until", "limit", "cursor")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := keycard.AuditFilter{User: q.get("user"), Type: q.get("type")}
	if len(f.User) > maxAuditFilterLen || len(f.Type) > maxAuditFilterLen {
		s.writeError(w, r, badRequest(fmt.Sprintf(`Query parameters "user" and "type" are at most %d bytes.`, maxAuditFilterLen)))
		return
	}
	if f.Limit, err = q.limit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if f.Since, err = q.time("since"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if f.Until, err = q.time("until"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		s.writeError(w, r, badRequest(`Query parameter "until" is before "since".`))
		return
	}
	before, err := q.cursor("audit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if before != "" {
		if f.Before, err = strconv.ParseInt(before, 10, 64); err != nil || f.Before <= 0 {
			s.writeError(w, r, badRequest(`Query parameter "cursor" is not a cursor of this list; pass the "next" value of the previous page unchanged.`))
			return
		}
	}
	limit := f.Limit
	f.Limit++
	events, err := s.svc.AuditEvents(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	events, next := page(events, limit, "audit", func(e *keycard.AuditEvent) string { return strconv.FormatInt(e.ID, 10) })
	out := auditResponse{Events: make([]auditEventJSON, 0, len(events)), Next: next}
	for _, e := range events {
		detail := e.Detail
		if len(detail) == 0 {
			detail = json.RawMessage(`{}`)
		}
		out.Events = append(out.Events, auditEventJSON{
			ID: e.ID, Time: e.Time.UTC(), Type: e.Type, Actor: e.Actor, Subject: e.Subject,
			ClientAddr: e.ClientAddr, UserAgent: e.UserAgent, Detail: detail,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
