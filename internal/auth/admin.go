package auth

import (
	"context"
	"slices"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/username"
)

// RoleAdmin is the role that may use the admin operations.
const RoleAdmin = "admin"

// Limits on the roles an admin gives a user; roles follow the syntax of
// OAuth scope-tokens (RFC 6749 section 3.3) and travel in access tokens.
const (
	MaxUserRoles = 50
	MaxRoleLen   = 64 // bytes
)

// Audit event types of admin actions. Their Actor is the admin.
const (
	AuditUserDisabled     = "user.disabled"
	AuditUserEnabled      = "user.enabled"
	AuditUserRolesChanged = "user.roles_changed"
	AuditUserDeleted      = "user.deleted"
	// AuditUserCreatedByAdmin follows the user.created event of a user an
	// admin created, naming the admin.
	AuditUserCreatedByAdmin = "user.created_by_admin"
	AuditClientDeleted      = "client.deleted"
)

// The admin operations below are the service side of the admin API, the
// admin console and the command line. Each takes the Actor who asks — an
// admin (AdminActor; the caller has checked RoleAdmin) or the operator of
// the command line (Operator) — and writes an audit event with it as
// actor for every change. Reads are not audited.

func errUserNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User not found."}
}

func errSessionNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Session not found."}
}

// User returns a user by id, or ENOTFOUND.
func (s *Service) User(ctx context.Context, id string) (*keycard.User, error) {
	u, err := s.stores.Users.UserByID(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errUserNotFound()
	}
	return u, err
}

// UserByName returns the user with this username, as typed (it is
// normalized first), or ENOTFOUND.
func (s *Service) UserByName(ctx context.Context, name string) (*keycard.User, error) {
	_, normalized, err := username.Normalize(name)
	if err != nil {
		return nil, err
	}
	u, err := s.stores.Users.UserByUsername(ctx, normalized)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errUserNotFound()
	}
	return u, err
}

// ListUsers returns a page of users ordered by normalized username. A
// non-empty prefix selects users whose normalized username starts with
// the normalized prefix (so the search ignores case, as logins do); a
// prefix that no username could start with is EINVALID.
func (s *Service) ListUsers(ctx context.Context, prefix, after string, limit int) ([]*keycard.User, error) {
	f := keycard.UserFilter{After: after, Limit: limit}
	if prefix != "" {
		_, normalized, err := username.Normalize(prefix)
		if err != nil {
			return nil, keycard.Errorf(keycard.EINVALID, "Search prefix is not the start of a valid username: %s", keycard.ErrorMessage(err))
		}
		f.Prefix = normalized
	}
	return s.stores.Users.ListUsers(ctx, f)
}

// SetUserDisabled disables or enables a user. Disabling revokes every live
// session of the user in the same transaction, so their refresh tokens
// stop working at once and the revocation feed tells verifiers to refuse
// their access tokens. An admin cannot disable themselves (ECONFLICT).
// Setting the state the user already has changes nothing but is audited.
func (s *Service) SetUserDisabled(ctx context.Context, by Actor, id string, disabled bool) (*keycard.User, error) {
	if disabled && by.is(id) {
		return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "An admin cannot disable their own account."}
	}
	before, err := s.User(ctx, id)
	if err != nil {
		return nil, err
	}
	u, err := s.stores.Users.UpdateUser(ctx, id, keycard.UserUpdate{Disabled: &disabled}, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errUserNotFound()
	} else if err != nil {
		return nil, err
	}
	typ := AuditUserEnabled
	if disabled {
		typ = AuditUserDisabled
	}
	s.audit(ctx, typ, by, id, map[string]bool{"was_disabled": before.Disabled})
	return u, nil
}

// SetUserRoles replaces a user's roles. Roles must be 1 to MaxRoleLen
// printable ASCII characters without spaces, quotes or backslashes, at
// most MaxUserRoles of them; repeats are dropped. The new roles appear in
// the user's next access token (at the next login or refresh); tokens
// already issued keep theirs until they expire. An admin cannot take
// RoleAdmin away from themselves (ECONFLICT), so that the last admin
// cannot lock everyone out by accident.
func (s *Service) SetUserRoles(ctx context.Context, by Actor, id string, roles []string) (*keycard.User, error) {
	roles, err := cleanList("role", roles, MaxUserRoles, MaxRoleLen, isScopeToken)
	if err != nil {
		return nil, err
	}
	if by.is(id) && !slices.Contains(roles, RoleAdmin) {
		return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "An admin cannot remove the admin role from their own account."}
	}
	before, err := s.User(ctx, id)
	if err != nil {
		return nil, err
	}
	u, err := s.stores.Users.UpdateUser(ctx, id, keycard.UserUpdate{Roles: &roles}, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errUserNotFound()
	} else if err != nil {
		return nil, err
	}
	old := before.Roles
	if old == nil {
		old = []string{}
	}
	s.audit(ctx, AuditUserRolesChanged, by, id, map[string][]string{"old_roles": old, "roles": roles})
	return u, nil
}

// CreateUser creates a user with a password and roles on behalf of an
// admin, whether or not self-service registration is on (POST
// /admin/v1/users). Roles are checked like SetUserRoles'; the rest like
// Register's.
func (s *Service) CreateUser(ctx context.Context, by Actor, name, pass string, roles []string) (*keycard.User, error) {
	return s.CreateUserWithEmail(ctx, by, name, pass, "", roles)
}

// CreateUserWithEmail is CreateUser with an optional email address (see
// RegisterWithEmail: it is unverified, and a link is mailed).
func (s *Service) CreateUserWithEmail(ctx context.Context, by Actor, name, pass, email string, roles []string) (*keycard.User, error) {
	roles, err := cleanList("role", roles, MaxUserRoles, MaxRoleLen, isScopeToken)
	if err != nil {
		return nil, err
	}
	u, err := s.RegisterWithEmail(ctx, name, pass, email, roles)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditUserCreatedByAdmin, by, u.ID, map[string]any{"username": u.Username, "roles": nonNilRoles(roles)})
	return u, nil
}

func nonNilRoles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}

// DeleteUser revokes every live session of a user and deletes the user,
// in one transaction. An admin cannot delete themselves (ECONFLICT), and
// must have signed in within the step-up window (Config.StepUpWithin),
// with their second factor if they have one (a *ReauthRequiredError
// otherwise).
// A per-user cut-off enters the revocation feed first, so that every
// access token of the user is refused by verifiers, including one whose
// session had already reached its end (and so is not revoked again).
func (s *Service) DeleteUser(ctx context.Context, by Actor, id string) error {
	if by.is(id) {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "An admin cannot delete their own account."}
	}
	if err := s.checkStepUp(ctx, by); err != nil {
		return err
	}
	u, err := s.User(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	// Before the deletion: if it then fails, the user merely signs in
	// again; the other order could leave tokens of a deleted user valid.
	if err := s.stores.Revocations.AddRevocation(ctx, &keycard.Revocation{Kind: keycard.RevokeUser, Value: id, At: now}); err != nil {
		return err
	}
	revoked, err := s.stores.Users.DeleteUser(ctx, id, now)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return errUserNotFound()
	} else if err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeUserDeleted, len(revoked))
	s.audit(ctx, AuditUserDeleted, by, id, map[string]any{"username": u.Username, "sessions_revoked": len(revoked)})
	return nil
}

// UserSessions returns a page of a user's active sign-ins (not the grant
// sessions of applications under them), newest first,
// starting after the session with id before (when not empty). It fails
// with ENOTFOUND for an unknown user.
func (s *Service) UserSessions(ctx context.Context, userID, before string, limit int) ([]*keycard.Session, error) {
	if _, err := s.User(ctx, userID); err != nil {
		return nil, err
	}
	return s.stores.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: userID, SignInsOnly: true, ActiveAt: s.now(), Before: before, Limit: limit})
}

// RevokeUserSession revokes one session of a user, with reason
// keycard.RevokeAdmin. A session of another user is answered like an
// unknown one (ENOTFOUND). Revoking a revoked session is not an error.
func (s *Service) RevokeUserSession(ctx context.Context, by Actor, userID, sessionID string) error {
	sess, err := s.stores.Sessions.Session(ctx, sessionID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return errSessionNotFound()
	} else if err != nil {
		return err
	}
	if sess.UserID != userID {
		return errSessionNotFound()
	}
	if _, err := s.stores.Sessions.RevokeSession(ctx, sessionID, s.now(), keycard.RevokeAdmin); err != nil {
		return err
	}
	if !sess.Revoked() {
		s.stats.SessionsRevoked(keycard.RevokeAdmin, 1)
	}
	s.audit(ctx, keycard.AuditLogout, by, userID, map[string]string{"session": sessionID, "reason": keycard.RevokeAdmin})
	return nil
}

// RevokeUserSessions revokes every live session of a user, with reason
// keycard.RevokeAdmin, and returns how many were revoked. It fails with
// ENOTFOUND for an unknown user.
func (s *Service) RevokeUserSessions(ctx context.Context, by Actor, userID string) (int, error) {
	if _, err := s.User(ctx, userID); err != nil {
		return 0, err
	}
	ids, err := s.stores.Sessions.RevokeUserSessions(ctx, userID, "", s.now(), keycard.RevokeAdmin)
	if err != nil {
		return 0, err
	}
	s.stats.SessionsRevoked(keycard.RevokeAdmin, len(ids))
	s.audit(ctx, keycard.AuditLogout, by, userID, map[string]any{"sessions": ids, "reason": keycard.RevokeAdmin})
	return len(ids), nil
}

// RotateKey rotates the signing key (see KeyManager.Rotate) and records
// it in the audit log.
func (s *Service) RotateKey(ctx context.Context, by Actor, immediate bool) (*keycard.SigningKey, error) {
	k, err := s.keys.Rotate(ctx, immediate)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, keycard.AuditKeyRotated, by, k.KID, map[string]any{"alg": k.Alg, "immediate": immediate, "state": k.State})
	return k, nil
}

// SigningKeys returns the signing keys' records (public data and state;
// the private halves stay sealed), without needing the master key.
func (s *Service) SigningKeys(ctx context.Context) ([]*keycard.SigningKey, error) {
	return s.stores.Keys.ListKeys(ctx)
}

// ListClients returns a page of service clients ordered by id, starting
// after the client with id after (when not empty).
func (s *Service) ListClients(ctx context.Context, after string, limit int) ([]*keycard.Client, error) {
	return s.stores.Clients.ListClients(ctx, keycard.ClientFilter{After: after, Limit: limit})
}

// DeleteClient deletes a service client (see keycard.ClientStore
// DeleteClient for what happens to its tokens). It fails with ENOTFOUND
// for an unknown client.
func (s *Service) DeleteClient(ctx context.Context, by Actor, id string) error {
	if err := s.stores.Clients.DeleteClient(ctx, id, s.now()); err != nil {
		return err
	}
	s.audit(ctx, AuditClientDeleted, by, id, nil)
	return nil
}

// AuditEvents returns a page of the audit log, newest first.
func (s *Service) AuditEvents(ctx context.Context, f keycard.AuditFilter) ([]*keycard.AuditEvent, error) {
	return s.stores.Audit.ListAudit(ctx, f)
}
