package auth

import (
	"context"
	"encoding/json"

	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/username"
)

// AMRFederated is the "amr" value of a sign-in at an upstream identity
// provider (RFC 8176 section 2: "fed", federated authentication).
const AMRFederated = "fed"

// Audit events of federated sign-in (docs/federation.md).
const (
	AuditIdentityLinked   = "identity.linked"
	AuditIdentityUnlinked = "identity.unlinked"
	AuditUpstreamLogout   = "upstream.logout"
)

// UpstreamIdentity is what an upstream identity provider said about the
// user it signed in, after the relying party checked it (the ID token's
// signature, issuer, audience, nonce; docs/federation.md) and mapped its
// claims: the input of FederatedSignIn and LinkIdentity.
type UpstreamIdentity struct {
	// Provider is the provider's name in Keycard's configuration.
	Provider string
	// Subject is the user's stable identifier at the provider.
	Subject string
	// Email is the address the provider gave, and EmailVerified whether
	// the provider says it verified it. An address the provider did not
	// verify is never used to find, or to fill in, an account.
	Email         string
	EmailVerified bool
	// Username is the name to give a user created at the first sign-in
	// (the provider's preferred_username, login or email); when empty or
	// taken, one is made from the provider and subject.
	Username string
	// Roles are the Keycard roles the provider's groups map to.
	Roles []string
	// SessionID is the provider's session id (the ID token's sid), which
	// its back-channel logout names; empty if it sent none.
	SessionID string
}

// FederationPolicy is what a provider's configuration allows.
type FederationPolicy struct {
	// CreateUsers allows the first sign-in of an identity that is linked
	// to no account to create one (just-in-time); false admits only
	// identities already linked.
	CreateUsers bool
	// ManagedRoles are the roles the provider's group mapping can give.
	// At each sign-in the user's roles among them are set to
	// UpstreamIdentity.Roles; the user's other roles are left alone.
	ManagedRoles []string
}

// LinkRequiredError is FederatedSignIn's answer when the provider's
// verified address is that of an existing account the identity is not
// linked to. The identity is never linked silently: whoever controls
// the address at the provider is not thereby the account's owner (the
// provider may be careless about addresses, or the address reassigned),
// so the user must sign in to that account first and link the provider
// from the account page.
type LinkRequiredError struct {
	Provider string
}

func (e *LinkRequiredError) Error() string {
	return fmt.Sprintf("auth: the address given by %s belongs to an existing account: sign in to it and link the provider first", e.Provider)
}

// Unwrap makes the error an EFORBIDDEN keycard error.
func (e *LinkRequiredError) Unwrap() error {
	return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "An account with this email address exists. Sign in to it, then link the provider from your account page."}
}

// errNoAccount is the answer to an identity linked to no account at a
// provider that does not create accounts.
func errNoAccount() error {
	return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "No account is linked to this identity."}
}

// checkUpstream checks the fields of id that go into the store.
func checkUpstream(id *UpstreamIdentity) error {
	switch {
	case id.Provider == "" || len(id.Provider) > keycard.MaxProviderNameLen:
		return &keycard.Error{Code: keycard.EINVALID, Message: "The provider name is missing or too long."}
	case id.Subject == "" || len(id.Subject) > keycard.MaxSubjectLen || !printable(id.Subject):
		return &keycard.Error{Code: keycard.EINVALID, Message: "The provider's subject is missing, too long or not printable."}
	case len(id.SessionID) > keycard.MaxSubjectLen || !printable(id.SessionID):
		return &keycard.Error{Code: keycard.EINVALID, Message: "The provider's session id is too long or not printable."}
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// verifiedEmail returns the normalized address of id when the provider
// verified it, and "" otherwise (or when it is not a valid address).
func verifiedEmail(id *UpstreamIdentity) string {
	if !id.EmailVerified || id.Email == "" {
		return ""
	}
	e, err := NormalizeEmail(id.Email)
	if err != nil {
		return ""
	}
	return e
}

// FederatedSignIn signs in the user an upstream identity provider
// vouched for, with a session whose amr is ["fed"] and which remembers
// the provider (Session.IdP), the subject and the provider's session id.
//
//   - An identity linked to an account signs in to it (a disabled one is
//     refused, EUNAUTHORIZED); its roles managed by the provider's mapping
//     are brought up to date.
//   - Otherwise, if the provider's verified address is an existing
//     account's, the answer is a *LinkRequiredError: nothing is linked.
//   - Otherwise, with policy.CreateUsers, a user is created with the
//     identity linked (just-in-time), without a password, with the
//     provider's address when the provider verified it, and the mapped
//     roles; without it the answer is EFORBIDDEN.
//
// A user who has a second factor, or whose roles require one, gets an
// *MFARequiredError as after a password (mfaGate): the provider's word
// stands for the first step only. CompleteMFA then starts the session,
// with the amr ["fed", the factor's methods, "mfa"].
func (s *Service) FederatedSignIn(ctx context.Context, id UpstreamIdentity, policy FederationPolicy, c Agent) (*Tokens, *keycard.User, error) {
	c = c.clean()
	if err := checkUpstream(&id); err != nil {
		return nil, nil, err
	}
	now := s.now()
	linked, err := s.stores.Federation.Identity(ctx, id.Provider, id.Subject)
	var u *keycard.User
	switch keycard.ErrorCode(err) {
	case "":
		if u, err = s.stores.Users.UserByID(ctx, linked.UserID); err != nil {
			return nil, nil, err
		}
		if u.Disabled {
			s.audit(ctx, keycard.AuditLoginFailed, UserActor(u.ID, c), u.ID, map[string]string{"reason": "disabled", "idp": id.Provider})
			return nil, nil, errLogin()
		}
		if err := s.stores.Federation.IdentityUsed(ctx, id.Provider, id.Subject, verifiedEmail(&id), now); err != nil {
			return nil, nil, err
		}
		if u, err = s.syncRoles(ctx, u, id, policy); err != nil {
			return nil, nil, err
		}
	case keycard.ENOTFOUND:
		email := verifiedEmail(&id)
		if email != "" {
			switch _, err := s.stores.Emails.UserByEmail(ctx, email); keycard.ErrorCode(err) {
			case "":
				s.audit(ctx, keycard.AuditLoginFailed, anonymous(c), "", map[string]string{"reason": "link_required", "idp": id.Provider})
				return nil, nil, &LinkRequiredError{Provider: id.Provider}
			case keycard.ENOTFOUND:
			default:
				return nil, nil, err
			}
		}
		if !policy.CreateUsers {
			s.audit(ctx, keycard.AuditLoginFailed, anonymous(c), "", map[string]string{"reason": "not_linked", "idp": id.Provider})
			return nil, nil, errNoAccount()
		}
		if u, err = s.createFederatedUser(ctx, id, email, policy); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, err
	}
	if err := s.mfaGateFrom(ctx, u, nil, "", &id, c); err != nil {
		return nil, nil, err
	}
	t, err := s.startSessionFrom(ctx, u, c, nil, &id, map[string]any{"idp": id.Provider})
	if err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// createFederatedUser creates the user of a first sign-in with id linked.
// A username taken (or none usable) is replaced by one made of the
// provider's name and a random suffix.
func (s *Service) createFederatedUser(ctx context.Context, id UpstreamIdentity, email string, policy FederationPolicy) (*keycard.User, error) {
	roles := managed(id.Roles, policy.ManagedRoles)
	names := []string{id.Username}
	if email != "" {
		names = append(names, strings.SplitN(email, "@", 2)[0])
	}
	for range 3 {
		suffix, err := keycard.NewID(s.rand)
		if err != nil {
			return nil, err
		}
		names = append(names, id.Provider+"-"+strings.ToLower(suffix[:8]))
	}
	uid, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for _, name := range names {
		display, normalized, err := username.Normalize(name)
		if name == "" || err != nil {
			continue
		}
		u := &keycard.User{
			ID: uid, Username: display, NormalizedUsername: normalized, PasswordHash: keycard.NoPassword,
			Roles: roles, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now,
			Email: email, EmailVerified: email != "",
		}
		link := &keycard.FederatedIdentity{Provider: id.Provider, Subject: id.Subject, UserID: uid, Email: email, CreatedAt: now, LastUsedAt: now}
		err = s.stores.Federation.CreateFederatedUser(ctx, u, link)
		if keycard.ErrorCode(err) == keycard.ECONFLICT {
			// The identity linked meanwhile by a concurrent first
			// sign-in, or the address taken: both are refused rather
			// than guessed at; a taken username tries the next name.
			if _, ierr := s.stores.Federation.Identity(ctx, id.Provider, id.Subject); ierr == nil {
				return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "This identity was just linked to an account. Sign in again."}
			}
			if email != "" {
				if _, uerr := s.stores.Emails.UserByEmail(ctx, email); uerr == nil {
					return nil, &LinkRequiredError{Provider: id.Provider}
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		s.audit(ctx, keycard.AuditUserCreated, UserActor(uid, Agent{}), uid, map[string]string{"username": display, "idp": id.Provider})
		return u, nil
	}
	return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "No username could be found for this account."}
}

// managed returns the roles of have that are among allowed, sorted.
func managed(have, allowed []string) []string {
	out := []string{}
	for _, r := range have {
		if slices.Contains(allowed, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// syncRoles sets the user's roles among policy.ManagedRoles to those the
// provider's groups map to, and leaves the others alone.
func (s *Service) syncRoles(ctx context.Context, u *keycard.User, id UpstreamIdentity, policy FederationPolicy) (*keycard.User, error) {
	if len(policy.ManagedRoles) == 0 {
		return u, nil
	}
	var roles []string
	for _, r := range u.Roles {
		if !slices.Contains(policy.ManagedRoles, r) {
			roles = append(roles, r)
		}
	}
	roles = append(roles, managed(id.Roles, policy.ManagedRoles)...)
	slices.Sort(roles)
	old := slices.Sorted(slices.Values(u.Roles))
	if slices.Equal(roles, old) {
		return u, nil
	}
	nu, err := s.stores.Users.UpdateUser(ctx, u.ID, keycard.UserUpdate{Roles: &roles}, s.now())
	if err != nil {
		return nil, err
	}
	if old == nil {
		old = []string{}
	}
	s.audit(ctx, AuditUserRolesChanged, System(), u.ID, map[string]any{"old_roles": old, "roles": roles, "idp": id.Provider})
	return nu, nil
}

// LinkIdentity links an upstream identity to the signed-in user p, who
// just signed in at the provider from their account page. An identity
// already linked to another account is refused (ECONFLICT); linked to
// this one, it is left as it is.
func (s *Service) LinkIdentity(ctx context.Context, p *Principal, id UpstreamIdentity, c Agent) error {
	if err := checkUpstream(&id); err != nil {
		return err
	}
	now := s.now()
	err := s.stores.Federation.LinkIdentity(ctx, &keycard.FederatedIdentity{
		Provider: id.Provider, Subject: id.Subject, UserID: p.User.ID, Email: verifiedEmail(&id), CreatedAt: now, LastUsedAt: now})
	if keycard.ErrorCode(err) == keycard.ECONFLICT {
		if have, ierr := s.stores.Federation.Identity(ctx, id.Provider, id.Subject); ierr == nil && have.UserID == p.User.ID {
			return nil
		}
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "This identity is linked to another account."}
	}
	if err != nil {
		return err
	}
	s.audit(ctx, AuditIdentityLinked, UserActor(p.User.ID, c), p.User.ID, map[string]string{"idp": id.Provider})
	return nil
}

// Identities returns the upstream identities linked to a user.
func (s *Service) Identities(ctx context.Context, userID string) ([]*keycard.FederatedIdentity, error) {
	return s.stores.Federation.UserIdentities(ctx, userID)
}

// UnlinkIdentity removes one of the user's linked identities, unless it
// is their last way to sign in (EFORBIDDEN). The sessions it started are
// left: the user signed in legitimately.
func (s *Service) UnlinkIdentity(ctx context.Context, by Actor, userID, provider, subject string) error {
	if err := s.stores.Federation.UnlinkIdentity(ctx, userID, provider, subject); err != nil {
		return err
	}
	s.audit(ctx, AuditIdentityUnlinked, by, userID, map[string]string{"idp": provider})
	return nil
}

// UpstreamLogout ends the sessions a back-channel logout from provider
// names (OpenID Connect Back-Channel Logout 1.0 section 2.7, the logout
// token already verified by the caller): those whose upstream session is
// sid, or, when sid is empty, every session of the upstream subject. Each
// revocation reaches the feed in its transaction, with the grant sessions
// under it. It returns how many sessions it ended.
func (s *Service) UpstreamLogout(ctx context.Context, provider, subject, sid string) (int, error) {
	if len(subject) > keycard.MaxSubjectLen || len(sid) > keycard.MaxSubjectLen || !printable(subject) || !printable(sid) {
		return 0, &keycard.Error{Code: keycard.EINVALID, Message: "The logout token's sub or sid is too long or not printable."}
	}
	now := s.now()
	ids, err := s.stores.Federation.UpstreamSessions(ctx, provider, subject, sid, now)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		sess, err := s.stores.Sessions.RevokeSession(ctx, id, now, keycard.RevokeUpstreamLogout)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			continue
		} else if err != nil {
			return n, err
		}
		n++
		s.stats.SessionsRevoked(keycard.RevokeUpstreamLogout, 1)
		s.audit(ctx, AuditUpstreamLogout, System(), sess.UserID, map[string]string{"session": id, "idp": provider})
	}
	return n, nil
}

// idpClaim returns extra with the "idp" claim added for a session that
// signed in at an upstream provider.
func idpClaim(extra map[string]json.RawMessage, sess *keycard.Session) map[string]json.RawMessage {
	if sess.IdP == "" {
		return extra
	}
	b, err := json.Marshal(sess.IdP)
	if err != nil {
		return extra
	}
	out := make(map[string]json.RawMessage, len(extra)+1)
	for k, v := range extra {
		out[k] = v
	}
	out["idp"] = b
	return out
}

// UseFlowState records the single use of a federated sign-in's state
// until expiresAt and reports whether this was its first use: a response
// from the provider is accepted once, on any instance.
func (s *Service) UseFlowState(ctx context.Context, state string, expiresAt time.Time) (bool, error) {
	if state == "" || len(state) > 128 {
		return false, nil
	}
	return s.stores.Grants.UseOnce(ctx, "federation-state:"+state, s.now(), expiresAt)
}
