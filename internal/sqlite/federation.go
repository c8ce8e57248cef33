package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// FederationStore implements keycard.FederationStore.
type FederationStore struct{ db *DB }

var _ keycard.FederationStore = (*FederationStore)(nil)

const identityColumns = `provider, subject, user_id, email, created_at, last_used_at`

func scanIdentity(row scanner) (*keycard.FederatedIdentity, error) {
	var (
		id            keycard.FederatedIdentity
		created, used sql.NullInt64
	)
	if err := row.Scan(&id.Provider, &id.Subject, &id.UserID, &id.Email, &created, &used); err != nil {
		return nil, err
	}
	id.CreatedAt, id.LastUsedAt = fromMicros(created), fromMicros(used)
	return &id, nil
}

func identityNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Linked identity not found."}
}

func checkIdentity(id *keycard.FederatedIdentity) error {
	if id.Provider == "" || id.Subject == "" || id.UserID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Provider, subject and user are required."}
	}
	return nil
}

func insertIdentity(ctx context.Context, tx txn, id *keycard.FederatedIdentity) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO federated_identities (`+identityColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		id.Provider, id.Subject, id.UserID, id.Email, micros(id.CreatedAt), micros(id.LastUsedAt))
	if isConstraint(err) {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "This identity is already linked to an account."}
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
	err := s.db.update(ctx, func(tx txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM federated_identities WHERE provider = ? AND subject = ?`, id.Provider, id.Subject).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "This identity is already linked to an account."}
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
	err := s.db.update(ctx, func(tx txn) error {
		if _, err := getUser(ctx, tx, id.UserID); err != nil {
			return err
		}
		return insertIdentity(ctx, tx, id)
	})
	return wrap("link identity", err)
}

// Identity implements keycard.FederationStore.
func (s *FederationStore) Identity(ctx context.Context, provider, subject string) (*keycard.FederatedIdentity, error) {
	id, err := scanIdentity(s.db.reader().QueryRowContext(ctx,
		`SELECT `+identityColumns+` FROM federated_identities WHERE provider = ? AND subject = ?`, provider, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, identityNotFound()
	}
	return id, wrap("identity", err)
}

// UserIdentities implements keycard.FederationStore.
func (s *FederationStore) UserIdentities(ctx context.Context, userID string) ([]*keycard.FederatedIdentity, error) {
	rows, err := s.db.reader().QueryContext(ctx,
		`SELECT `+identityColumns+` FROM federated_identities WHERE user_id = ? ORDER BY provider, subject`, userID)
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
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE federated_identities SET last_used_at = ?, email = ? WHERE provider = ? AND subject = ?`,
			micros(at), email, provider, subject)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return identityNotFound()
		}
		return nil
	})
	return wrap("identity used", err)
}

// UnlinkIdentity implements keycard.FederationStore.
func (s *FederationStore) UnlinkIdentity(ctx context.Context, userID, provider, subject string) error {
	err := s.db.update(ctx, func(tx txn) error {
		u, err := getUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		var mine, total int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(provider = ? AND subject = ?), 0) FROM federated_identities WHERE user_id = ?`,
			provider, subject, userID).Scan(&total, &mine); err != nil {
			return err
		}
		if mine == 0 {
			return identityNotFound()
		}
		if total == 1 && !u.HasPassword() {
			return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "This is the account's only way to sign in: set a password or link another provider first."}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM federated_identities WHERE user_id = ? AND provider = ? AND subject = ?`, userID, provider, subject)
		return err
	})
	return wrap("unlink identity", err)
}

// UpstreamSessions implements keycard.FederationStore.
func (s *FederationStore) UpstreamSessions(ctx context.Context, provider, subject, sid string, at time.Time) ([]string, error) {
	if provider == "" || (subject == "" && sid == "") {
		return nil, nil
	}
	query := `SELECT id FROM sessions WHERE idp = ? AND idp_subject = ? AND parent_id IS NULL AND revoked_at IS NULL AND expires_at > ?`
	args := []any{provider, subject, micros(at)}
	if sid != "" {
		query = `SELECT id FROM sessions WHERE idp = ? AND idp_sid = ? AND parent_id IS NULL AND revoked_at IS NULL AND expires_at > ?`
		args = []any{provider, sid, micros(at)}
		if subject != "" {
			query += ` AND idp_subject = ?`
			args = append(args, subject)
		}
	}
	rows, err := s.db.reader().QueryContext(ctx, query+` ORDER BY id`, args...)
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
