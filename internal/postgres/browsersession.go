package postgres

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/keycard-auth/keycard"
)

// sessionWithUserQuery reads a session and its user in one statement:
// sessionColumns of s, then userColumns of u.
var sessionWithUserQuery = `SELECT s.` + strings.ReplaceAll(sessionColumns, ", ", ", s.") +
	`, u.` + strings.ReplaceAll(userColumns, ", ", ", u.") +
	` FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`

// SessionWithUser implements keycard.SessionStore: the session and its
// user in one round trip, where the authorization endpoint made two.
func (s *SessionStore) SessionWithUser(ctx context.Context, id string) (*keycard.Session, *keycard.User, error) {
	if !validText(id) {
		return nil, nil, sessionNotFound()
	}
	var xs sessionScan
	var xu userScan
	err := s.db.reads().QueryRow(ctx, sessionWithUserQuery, id).Scan(append(xs.dest(), xu.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, sessionNotFound()
	} else if err != nil {
		return nil, nil, wrap("session with user", err)
	}
	return xs.session(), xu.user(), nil
}
