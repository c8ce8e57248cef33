package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// UserStore implements keycard.UserStore.
type UserStore struct{ db *DB }

var _ keycard.UserStore = (*UserStore)(nil)

// NewUserStore returns the user store on db.
func NewUserStore(db *DB) *UserStore { return &UserStore{db: db} }

const userColumns = `id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at, password_changed_at, email, email_verified`

// userScan is sessionScan for userColumns.
func userScan() (*keycard.User, []any, func() error) {
	r := new(struct {
		u                                 keycard.User
		roles                             string
		created, updated, passwordChanged sql.NullInt64
		email                             sql.NullString
	})
	u := &r.u
	return u, []any{&u.ID, &u.Username, &u.NormalizedUsername, &u.PasswordHash, &r.roles, &u.Disabled, &r.created, &r.updated, &r.passwordChanged, &r.email, &u.EmailVerified},
		func() error {
			u.Email = r.email.String
			if err := json.Unmarshal([]byte(r.roles), &u.Roles); err != nil {
				return err
			}
			u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = fromMicros(r.created), fromMicros(r.updated), fromMicros(r.passwordChanged)
			return nil
		}
}

func scanUser(row scanner) (*keycard.User, error) {
	u, dest, finish := userScan()
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return u, nil
}

func encodeRoles(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	return string(b), err
}

func userNotFound() error { return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User not found."} }

// CreateUser implements keycard.UserStore.
func (s *UserStore) CreateUser(ctx context.Context, u *keycard.User) error {
	if u.ID == "" || u.NormalizedUsername == "" || u.PasswordHash == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "User id, username and password hash are required."}
	}
	err := s.db.update(ctx, func(tx txn) error { return insertUser(ctx, tx, u) })
	return wrap("create user", err)
}

// insertUser inserts u in tx, after checking that its username and email
// are free.
func insertUser(ctx context.Context, tx txn, u *keycard.User) error {
	roles, err := encodeRoles(u.Roles)
	if err != nil {
		return err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE username_normalized = ?`, u.NormalizedUsername).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Username is already taken."}
	}
	if err := emailFree(ctx, tx, u.Email, ""); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.NormalizedUsername, u.PasswordHash, roles, u.Disabled,
		micros(u.CreatedAt), micros(u.UpdatedAt), micros(u.PasswordChangedAt), nullString(u.Email), u.Email != "" && u.EmailVerified)
	if isConstraint(err) {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "User already exists."}
	}
	return err
}

func getUser(ctx context.Context, q queryer, id string) (*keycard.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userNotFound()
	}
	return u, err
}

// UserByID implements keycard.UserStore.
func (s *UserStore) UserByID(ctx context.Context, id string) (*keycard.User, error) {
	u, err := getUser(ctx, s.db.reader(), id)
	return u, wrap("user by id", err)
}

// UserByUsername implements keycard.UserStore.
func (s *UserStore) UserByUsername(ctx context.Context, normalized string) (*keycard.User, error) {
	u, err := scanUser(s.db.reader().QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username_normalized = ?`, normalized))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, userNotFound()
	}
	return u, wrap("user by username", err)
}

// SignInUser implements keycard.UserStore.
func (s *UserStore) SignInUser(ctx context.Context, normalized string) (*keycard.User, keycard.MFAFactors, error) {
	var f keycard.MFAFactors
	u, dest, finish := userScan()
	err := s.db.reader().QueryRowContext(ctx, `SELECT `+userColumns+`, `+factorColumns("users.id")+` FROM users WHERE username_normalized = ?`, normalized).
		Scan(append(dest, factorDest(&f)...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, f, userNotFound()
	}
	if err == nil {
		err = finish()
	}
	if err != nil {
		return nil, f, wrap("sign-in user", err)
	}
	return u, f, nil
}

// ListUsers implements keycard.UserStore.
func (s *UserStore) ListUsers(ctx context.Context, f keycard.UserFilter) ([]*keycard.User, error) {
	query := `SELECT ` + userColumns + ` FROM users WHERE username_normalized > ?`
	args := []any{f.After}
	if f.Prefix != "" {
		// The range lets the index on username_normalized find the
		// start; substr, on bytes of a BLOB, checks the prefix exactly
		// (LIKE would need escaping and folds ASCII case).
		query += ` AND username_normalized >= ? AND substr(CAST(username_normalized AS BLOB), 1, ?) = CAST(? AS BLOB)`
		args = append(args, f.Prefix, len(f.Prefix), f.Prefix)
	}
	query += ` ORDER BY username_normalized LIMIT ?`
	args = append(args, keycard.PageSize(f.Limit))
	rows, err := s.db.reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("list users", err)
	}
	defer rows.Close()
	users := []*keycard.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("list users", err)
		}
		users = append(users, u)
	}
	return users, wrap("list users", rows.Err())
}

// UpdateUser implements keycard.UserStore.
func (s *UserStore) UpdateUser(ctx context.Context, id string, upd keycard.UserUpdate, at time.Time) (*keycard.User, error) {
	var u *keycard.User
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return userNotFound()
		} else if err != nil {
			return err
		}
		if upd.Roles != nil {
			u.Roles = append([]string{}, (*upd.Roles)...)
		}
		disabling := upd.Disabled != nil && *upd.Disabled && !u.Disabled
		if upd.Disabled != nil {
			u.Disabled = *upd.Disabled
		}
		u.UpdatedAt = at
		roles, err := encodeRoles(u.Roles)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET roles = ?, disabled = ?, updated_at = ? WHERE id = ?`,
			roles, u.Disabled, micros(at), id); err != nil {
			return err
		}
		if disabling {
			if _, err = revokeUserSessions(ctx, tx, id, "", at, keycard.RevokeUserDisabled); err != nil {
				return err
			}
			err = addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeUser, Value: id, At: at})
		}
		return err
	})
	if err != nil {
		return nil, wrap("update user", err)
	}
	return u, nil
}

// ChangePassword implements keycard.UserStore.
func (s *UserStore) ChangePassword(ctx context.Context, id, hash, keepSessionID string, at time.Time) ([]string, error) {
	if hash == "" {
		return nil, &keycard.Error{Code: keycard.EINVALID, Message: "Password hash is required."}
	}
	var revoked []string
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?`,
			hash, micros(at), micros(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return userNotFound()
		}
		if revoked, err = revokeUserSessions(ctx, tx, id, keepSessionID, at, keycard.RevokePasswordChanged); err != nil {
			return err
		}
		return addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeUser, Value: id, At: at})
	})
	if err != nil {
		return nil, wrap("change password", err)
	}
	return revoked, nil
}

// RehashPassword implements keycard.UserStore.
func (s *UserStore) RehashPassword(ctx context.Context, id, oldHash, newHash string, at time.Time) (bool, error) {
	if newHash == "" {
		return false, &keycard.Error{Code: keycard.EINVALID, Message: "Password hash is required."}
	}
	var changed bool
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`,
			newHash, micros(at), id, oldHash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		changed = n == 1
		return err
	})
	return changed, wrap("rehash password", err)
}

// DeleteUser implements keycard.UserStore.
func (s *UserStore) DeleteUser(ctx context.Context, id string, at time.Time) ([]string, error) {
	var revoked []string
	err := s.db.update(ctx, func(tx txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return userNotFound()
		}
		var err error
		if revoked, err = revokeUserSessions(ctx, tx, id, "", at, keycard.RevokeUserDeleted); err != nil {
			return err
		}
		// Sessions and their refresh tokens go with the user (ON DELETE
		// CASCADE); the feed entries just appended stay.
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return nil, wrap("delete user", err)
	}
	return revoked, nil
}
