package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// FederationStore implements keycard.FederationStore.
type FederationStore struct{ db *DB }

var _ keycard.FederationStore = (*FederationStore)(nil)

const identityColumns = `provider, subject, user_id, email, created_at, last_used_at`

func scanIdentity(row pgx.Row) (*keycard.FederatedIdentity, error) {
	var id keycard.FederatedIdentity
	if err := row.Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &id.CreatedAt, &id.LastUsedAt); err != nil {
		return nil, err
	}
	id.CreatedAt, id.LastUsedAt = id.CreatedAt.UTC(), id.LastUsedAt.UTC()
	return &id, nil
}

func identityNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Linked identity not found."}
}

func identityTaken() error {
	return &keycard.Error{Code: keycard.ECONFLICT, Message: "This identity is already linked to an account."}
}

func checkIdentity(id *keycard.FederatedIdentity) error {
	if id.Provider == "" || id.Subject == "" || id.UserID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Provider, subject and user are required."}
	}
	if !validText(id.Provider, id.Subject, id.UserID, id.Email) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Provider, subject, user and email must be valid UTF-8 without NUL."}
	}
	return nil
}

func insertIdentity(ctx context.Context, tx pgx.Tx, id *keycard.FederatedIdentity) error {
	_, err := tx.Exec(ctx, `INSERT INTO federated_identities (`+identityColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		id.Provider, id.Subject, id.UserID, id.Email, id.CreatedAt, id.LastUsedAt)
	switch pgCode(err) {
	case uniqueViolation:
		return identityTaken()
	case foreignKeyViolation:
		return userNotFound()
	}
	return err
}

// CreateFederatedUser implements keycard.FederationStore.
func (s *FederationStore) CreateFederatedUser(ctx context.Context, u *keycard.User, id *keycard.FederatedIdentity) error {
	if u.ID == "" || u.NormalizedUsername == "" || u.PasswordHash == "" || id.UserID != u.ID {
		return &keycard.Error{Code: keycard.EINVALID, Message: "User id, username, password hash and the identity's user are required."}
	}
	if err := checkIdentity(id); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		// The identity first: taken, it is the conflict to report, not
		// the username it would have made.
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM federated_identities WHERE provider = $1 AND subject = $2`, id.Provider, id.Subject).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return identityTaken()
		}
		if err := insertUser(ctx, tx, u); err != nil {
			return err
		}
		return insertIdentity(ctx, tx, id)
	})
	return wrap("create federated user", err)
}

// LinkIdentity implements keycard.FederationStore.
func (s *FederationStore) LinkIdentity(ctx context.Context, id *keycard.FederatedIdentity) error {
	if err := checkIdentity(id); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error { return insertIdentity(ctx, tx, id) })
	return wrap("link identity", err)
}

// Identity implements keycard.FederationStore.
func (s *FederationStore) Identity(ctx context.Context, provider, subject string) (*keycard.FederatedIdentity, error) {
	if !validText(provider, subject) {
		return nil, identityNotFound()
	}
	id, err := scanIdentity(s.db.reads().QueryRow(ctx,
		`SELECT `+identityColumns+` FROM federated_identities WHERE provider = $1 AND subject = $2`, provider, subject))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, identityNotFound()
	}
	return id, wrap("identity", err)
}

// UserIdentities implements keycard.FederationStore.
func (s *FederationStore) UserIdentities(ctx context.Context, userID string) ([]*keycard.FederatedIdentity, error) {
	if !validText(userID) {
		return nil, nil
	}
	rows, err := s.db.reads().Query(ctx,
		`SELECT `+identityColumns+` FROM federated_identities WHERE user_id = $1 ORDER BY provider, subject`, userID)
	if err != nil {
		return nil, wrap("user identities", err)
	}
	defer rows.Close()
	var out []*keycard.FederatedIdentity
	for rows.Next() {
		id, err := scanIdentity(rows)
		if err != nil {
			return nil, wrap("user identities", err)
		}
		out = append(out, id)
	}
	return out, wrap("user identities", rows.Err())
}

// IdentityUsed implements keycard.FederationStore.
func (s *FederationStore) IdentityUsed(ctx context.Context, provider, subject, email string, at time.Time) error {
	if !validText(provider, subject, email) {
		return identityNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE federated_identities SET last_used_at = $1, email = $2 WHERE provider = $3 AND subject = $4`,
			at, email, provider, subject)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return identityNotFound()
		}
		return nil
	})
	return wrap("identity used", err)
}

// UnlinkIdentity implements keycard.FederationStore.
func (s *FederationStore) UnlinkIdentity(ctx context.Context, userID, provider, subject string) error {
	if !validText(userID, provider, subject) {
		return identityNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		// The user's row is locked, so two unlinks of a user's last
		// two identities cannot both pass the check.
		u, err := getUser(ctx, tx, "id", userID, true)
		if err != nil {
			return err
		}
		var total, mine int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE provider = $2 AND subject = $3) FROM federated_identities WHERE user_id = $1`,
			userID, provider, subject).Scan(&total, &mine); err != nil {
			return err
		}
		if mine == 0 {
			return identityNotFound()
		}
		if total == 1 && !u.HasPassword() {
			return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "This is the account's only way to sign in: set a password or link another provider first."}
		}
		_, err = tx.Exec(ctx, `DELETE FROM federated_identities WHERE user_id = $1 AND provider = $2 AND subject = $3`, userID, provider, subject)
		return err
	})
	return wrap("unlink identity", err)
}

// UpstreamSessions implements keycard.FederationStore.
func (s *FederationStore) UpstreamSessions(ctx context.Context, provider, subject, sid string, at time.Time) ([]string, error) {
	if provider == "" || (subject == "" && sid == "") || !validText(provider, subject, sid) {
		return nil, nil
	}
	query := `SELECT id FROM sessions WHERE idp = $1 AND idp_subject = $2 AND parent_id IS NULL AND revoked_at IS NULL AND expires_at > $3`
	args := []any{provider, subject, at}
	if sid != "" {
		query = `SELECT id FROM sessions WHERE idp = $1 AND idp_sid = $2 AND parent_id IS NULL AND revoked_at IS NULL AND expires_at > $3`
		args = []any{provider, sid, at}
		if subject != "" {
			query += ` AND idp_subject = $4`
			args = append(args, subject)
		}
	}
	rows, err := s.db.reads().Query(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, wrap("upstream sessions", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, wrap("upstream sessions", err)
		}
		ids = append(ids, id)
	}
	return ids, wrap("upstream sessions", rows.Err())
}
