package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/keycard-auth/keycard"
)

// sessionWithUserQuery reads a session and its user in one statement:
// sessionColumns of s, then userColumns of u.
var sessionWithUserQuery = `SELECT s.` + strings.ReplaceAll(sessionColumns, ", ", ", s.") +
	`, u.` + strings.ReplaceAll(userColumns, ", ", ", u.") +
	` FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`

// SessionWithUser implements keycard.SessionStore: the session and its
// user in one query on the read pool, where the authorization endpoint
// read the session and then the user.
func (s *SessionStore) SessionWithUser(ctx context.Context, id string) (*keycard.Session, *keycard.User, error) {
	sess, dest, finishSession := sessionScan()
	u, udest, finishUser := userScan()
	err := s.db.reader().QueryRowContext(ctx, sessionWithUserQuery, id).Scan(append(dest, udest...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, sessionNotFound()
	}
	if err == nil {
		err = finishSession()
	}
	if err == nil {
		err = finishUser()
	}
	if err != nil {
		return nil, nil, wrap("session with user", err)
	}
	return sess, u, nil
}
