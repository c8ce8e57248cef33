package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// UserStore implements keycard.UserStore.
type UserStore struct{ db *DB }

var _ keycard.UserStore = (*UserStore)(nil)

const userColumns = `id, username, username_normalized, password_hash, roles, disabled, created_at, updated_at, password_changed_at, email, email_verified`

func scanUser(row pgx.Row) (*keycard.User, error) {
	var x userScan
	if err := row.Scan(x.dest()...); err != nil {
		return nil, err
	}
	return x.user(), nil
}

// userScan is what a row's userColumns are scanned into (dest), for
// statements that return more than a user.
type userScan struct {
	u     keycard.User
	email *string
}

func (x *userScan) dest() []any {
	u := &x.u
	return []any{&u.ID, &u.Username, &u.NormalizedUsername, &u.PasswordHash, &u.Roles, &u.Disabled,
		&u.CreatedAt, &u.UpdatedAt, &u.PasswordChangedAt, &x.email, &u.EmailVerified}
}

// user returns the user scanned.
func (x *userScan) user() *keycard.User {
	u := &x.u
	u.Email = orZero(x.email)
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC(), u.PasswordChangedAt.UTC()
	return u
}

func userNotFound() error { return &keycard.Error{Code: keycard.ENOTFOUND, Message: "User not found."} }

// CreateUser implements keycard.UserStore.
func (s *UserStore) CreateUser(ctx context.Context, u *keycard.User) error {
	if u.ID == "" || u.NormalizedUsername == "" || u.PasswordHash == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "User id, username and password hash are required."}
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error { return insertUser(ctx, tx, u) })
	return wrap("create user", err)
}

// insertUser inserts u in tx.
func insertUser(ctx context.Context, tx pgx.Tx, u *keycard.User) error {
	_, err := tx.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		u.ID, u.Username, u.NormalizedUsername, u.PasswordHash, orEmpty(u.Roles), u.Disabled,
		u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt, nullString(u.Email), u.Email != "" && u.EmailVerified)
	switch {
	case pgCode(err) == uniqueViolation && constraint(err) == "users_username_normalized_key":
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Username is already taken."}
	case pgCode(err) == uniqueViolation && constraint(err) == "users_email_key":
		return emailTaken()
	case pgCode(err) == uniqueViolation:
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "User already exists."}
	}
	return err
}

func getUser(ctx context.Context, q querier, column, value string, lock bool) (*keycard.User, error) {
	if !validText(value) {
		return nil, userNotFound()
	}
	query := `SELECT ` + userColumns + ` FROM users WHERE ` + column + ` = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	u, err := scanUser(q.QueryRow(ctx, query, value))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, userNotFound()
	}
	return u, err
}

// UserByID implements keycard.UserStore.
func (s *UserStore) UserByID(ctx context.Context, id string) (*keycard.User, error) {
	u, err := getUser(ctx, s.db.reads(), "id", id, false)
	return u, wrap("user by id", err)
}

// UserByUsername implements keycard.UserStore.
func (s *UserStore) UserByUsername(ctx context.Context, normalized string) (*keycard.User, error) {
	u, err := getUser(ctx, s.db.reads(), "username_normalized", normalized, false)
	return u, wrap("user by username", err)
}

// SignInUser implements keycard.UserStore.
func (s *UserStore) SignInUser(ctx context.Context, normalized string) (*keycard.User, keycard.MFAFactors, error) {
	var f keycard.MFAFactors
	if !validText(normalized) {
		return nil, f, userNotFound()
	}
	var x userScan
	err := s.db.reads().QueryRow(ctx, `SELECT `+userColumns+`, `+factorColumns("users.id")+` FROM users WHERE username_normalized = $1`, normalized).
		Scan(append(x.dest(), factorDest(&f)...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, f, userNotFound()
	} else if err != nil {
		return nil, f, wrap("sign-in user", err)
	}
	return x.user(), f, nil
}

// ListUsers implements keycard.UserStore.
func (s *UserStore) ListUsers(ctx context.Context, f keycard.UserFilter) ([]*keycard.User, error) {
	if !validText(f.After, f.Prefix) {
		return nil, invalidText()
	}
	query := `SELECT ` + userColumns + ` FROM users WHERE username_normalized > $1`
	args := []any{f.After}
	if f.Prefix != "" {
		// The range lets the index find the start; starts_with, under the
		// column's "C" collation, checks the prefix byte for byte (LIKE
		// would need escaping).
		query += ` AND username_normalized >= $2 AND starts_with(username_normalized, $2)`
		args = append(args, f.Prefix)
	}
	query += ` ORDER BY username_normalized LIMIT ` + placeholder(len(args)+1)
	args = append(args, keycard.PageSize(f.Limit))
	rows, err := s.db.pool.Query(ctx, query, args...)
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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		var err error
		if u, err = getUser(ctx, tx, "id", id, true); err != nil {
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
		if _, err := tx.Exec(ctx, `UPDATE users SET roles = $1, disabled = $2, updated_at = $3 WHERE id = $4`,
			orEmpty(u.Roles), u.Disabled, at, id); err != nil {
			return err
		}
		if !disabling {
			return nil
		}
		revs, err := revokeUserSessions(ctx, tx, id, "", at, keycard.RevokeUserDisabled)
		if err != nil {
			return err
		}
		revs = append(revs, &keycard.Revocation{Kind: keycard.RevokeUser, Value: id, At: at})
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
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
	if !validText(id) {
		return nil, userNotFound()
	}
	var revoked []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3`,
			hash, at, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return userNotFound()
		}
		revs, err := revokeUserSessions(ctx, tx, id, keepSessionID, at, keycard.RevokePasswordChanged)
		if err != nil {
			return err
		}
		revoked = revokedIDs(revs)
		revs = append(revs, &keycard.Revocation{Kind: keycard.RevokeUser, Value: id, At: at})
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
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
	if !validText(id, oldHash) {
		return false, nil
	}
	var changed bool
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4`,
			newHash, at, id, oldHash)
		changed = tag.RowsAffected() == 1
		return err
	})
	return changed, wrap("rehash password", err)
}

// DeleteUser implements keycard.UserStore.
func (s *UserStore) DeleteUser(ctx context.Context, id string, at time.Time) ([]string, error) {
	var revoked []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		if _, err := getUser(ctx, tx, "id", id, true); err != nil {
			return err
		}
		revs, err := revokeUserSessions(ctx, tx, id, "", at, keycard.RevokeUserDeleted)
		if err != nil {
			return err
		}
		revoked = revokedIDs(revs)
		// Sessions and their refresh tokens go with the user (ON DELETE
		// CASCADE); the feed entries appended last stay.
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			return err
		}
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	if err != nil {
		return nil, wrap("delete user", err)
	}
	return revoked, nil
}
