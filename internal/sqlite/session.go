package sqlite

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
)

// SessionStore implements keycard.SessionStore.
type SessionStore struct{ db *DB }

var _ keycard.SessionStore = (*SessionStore)(nil)

// NewSessionStore returns the session store on db.
func NewSessionStore(db *DB) *SessionStore { return &SessionStore{db: db} }

const sessionColumns = `id, user_id, parent_id, client_id, scope, created_at, auth_time, amr, last_used_at, user_agent, client_addr, idle_timeout, expires_at, revoked_at, revoke_reason, dpop_jkt, idp, idp_subject, idp_sid`

// scanner is a row: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// sessionScan returns a session, the Scan destinations of sessionColumns
// for it, and the function that completes it after the Scan. The
// destinations live in one allocation: a rotation reads a session.
func sessionScan() (*keycard.Session, []any, func() error) {
	r := new(struct {
		s                                             keycard.Session
		parent, amr                                   sql.NullString
		created, authTime, lastUsed, expires, revoked sql.NullInt64
		idle                                          int64
	})
	s := &r.s
	return s, []any{&s.ID, &s.UserID, &r.parent, &s.ClientID, &s.Scope, &r.created, &r.authTime, &r.amr, &r.lastUsed,
			&s.UserAgent, &s.ClientAddr, &r.idle, &r.expires, &r.revoked, &s.RevokeReason, &s.DPoPJKT, &s.IdP, &s.IdPSubject, &s.IdPSessionID},
		func() error {
			s.ParentID = r.parent.String
			s.CreatedAt, s.AuthTime, s.LastUsedAt = fromMicros(r.created), fromMicros(r.authTime), fromMicros(r.lastUsed)
			s.ExpiresAt, s.RevokedAt = fromMicros(r.expires), fromMicros(r.revoked)
			s.IdleTimeout = time.Duration(r.idle) * time.Microsecond
			return decodeList(r.amr, &s.AMR)
		}
}

func scanSession(row scanner) (*keycard.Session, error) {
	s, dest, finish := sessionScan()
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	return s, finish()
}

const tokenColumns = `id, session_id, secret_hash, created_at, rotated_at, successor_id, successor_sealed`

// tokenScan is sessionScan for tokenColumns.
func tokenScan() (*keycard.RefreshToken, []any, func() error) {
	r := new(struct {
		t                keycard.RefreshToken
		created, rotated sql.NullInt64
		successor        sql.NullString
	})
	t := &r.t
	return t, []any{&t.ID, &t.SessionID, &t.SecretHash, &r.created, &r.rotated, &r.successor, &t.SuccessorSealed},
		func() error {
			t.CreatedAt, t.RotatedAt, t.SuccessorID = fromMicros(r.created), fromMicros(r.rotated), r.successor.String
			return nil
		}
}

func scanToken(row scanner) (*keycard.RefreshToken, error) {
	t, dest, finish := tokenScan()
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	return t, finish()
}

func sessionNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Session not found."}
}

func getSession(ctx context.Context, q queryer, id string) (*keycard.Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessionNotFound()
	}
	return s, err
}

// session is getSession in the transaction t, on the write connection's
// driver (rawQueryRow) when t allows it.
func (t txn) session(ctx context.Context, id string) (*keycard.Session, error) {
	s, dest, finish := sessionScan()
	err := t.rawQueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = ?`, []any{id}, dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessionNotFound()
	} else if err != nil {
		return nil, err
	}
	return s, finish()
}

func getToken(ctx context.Context, q queryer, id string) (*keycard.RefreshToken, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Refresh token not found."}
	}
	return t, err
}

func insertToken(ctx context.Context, tx txn, t *keycard.RefreshToken) error {
	if t.ID == "" || len(t.SecretHash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Refresh token id and secret hash are required."}
	}
	_, err := tx.rawExec(ctx, `INSERT INTO refresh_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.SessionID, t.SecretHash, micros(t.CreatedAt), nullMicros(t.RotatedAt), nullString(t.SuccessorID), t.SuccessorSealed)
	if isConstraint(err) {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Refresh token already exists."}
	}
	return err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateSession implements keycard.SessionStore.
func (s *SessionStore) CreateSession(ctx context.Context, sess *keycard.Session, first *keycard.RefreshToken, opt *keycard.CreateSessionOptions) error {
	if err := validSession(sess, first); err != nil {
		return err
	}
	err := s.db.update(ctx, func(tx txn) error {
		// A sign-in's user is checked by the insert's foreign key.
		if sess.ParentID != "" {
			// The parent's user exists: sessions go with their user.
			parent, err := tx.session(ctx, sess.ParentID)
			if err != nil {
				return err
			}
			if err := checkParent(parent, sess); err != nil {
				return err
			}
			if parent.Revoked() {
				return sessionEnded()
			}
		}
		if err := insertSession(ctx, tx, sess, first); err != nil {
			return err
		}
		if opt == nil {
			return nil
		}
		if opt.Audit != nil {
			if err := insertAudit(ctx, tx, opt.Audit); err != nil {
				return err
			}
		}
		if opt.WithKeyGeneration {
			return tx.QueryRowContext(ctx, keyGenerationQuery).Scan(&opt.KeyGeneration)
		}
		return nil
	})
	return wrap("create session", err)
}

// validSession checks what CreateSession needs of its arguments.
func validSession(sess *keycard.Session, first *keycard.RefreshToken) error {
	if sess == nil || sess.ID == "" || sess.UserID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Session id and user id are required."}
	}
	if first == nil && sess.ParentID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A sign-in needs its first refresh token."}
	}
	return nil
}

// checkParent checks that parent can be the parent of the grant session
// sess: a sign-in of the same user.
func checkParent(parent, sess *keycard.Session) error {
	if parent.ParentID != "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A grant session's parent must be a sign-in."}
	}
	if parent.UserID != sess.UserID {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A grant session's parent must be a session of the same user."}
	}
	return nil
}

// insertSession inserts sess and, if not nil, its first token, whose
// SessionID it sets.
func insertSession(ctx context.Context, tx txn, sess *keycard.Session, first *keycard.RefreshToken) error {
	amr, err := nullList(sess.AMR)
	if err != nil {
		return err
	}
	_, err = tx.rawExec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.UserID, nullString(sess.ParentID), sess.ClientID, sess.Scope, micros(sess.CreatedAt), nullMicros(sess.AuthTime), amr,
		micros(sess.LastUsedAt), sess.UserAgent, sess.ClientAddr,
		sess.IdleTimeout.Microseconds(), micros(sess.ExpiresAt), nullMicros(sess.RevokedAt), sess.RevokeReason, sess.DPoPJKT, sess.IdP, sess.IdPSubject, sess.IdPSessionID)
	if isForeignKey(err) {
		return userNotFound()
	} else if isConstraint(err) {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Session already exists."}
	} else if err != nil {
		return err
	}
	if first == nil {
		return nil
	}
	first.SessionID = sess.ID
	return insertToken(ctx, tx, first)
}

// Session implements keycard.SessionStore.
func (s *SessionStore) Session(ctx context.Context, id string) (*keycard.Session, error) {
	sess, err := getSession(ctx, s.db.reader(), id)
	return sess, wrap("session", err)
}

// ListSessions implements keycard.SessionStore.
func (s *SessionStore) ListSessions(ctx context.Context, f keycard.SessionFilter) ([]*keycard.Session, error) {
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = ?`
	args := []any{f.UserID}
	if f.SignInsOnly {
		query += ` AND parent_id IS NULL`
	}
	if !f.ActiveAt.IsZero() {
		at := micros(f.ActiveAt)
		query += ` AND revoked_at IS NULL AND expires_at > ? AND last_used_at + idle_timeout > ?`
		args = append(args, at, at)
	}
	if f.Before != "" {
		query += ` AND (created_at, id) < (SELECT created_at, id FROM sessions WHERE id = ?)`
		args = append(args, f.Before)
	}
	query += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, keycard.PageSize(f.Limit))
	rows, err := s.db.reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	defer rows.Close()
	sessions := []*keycard.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, wrap("list sessions", err)
		}
		sessions = append(sessions, sess)
	}
	return sessions, wrap("list sessions", rows.Err())
}

// revokeSession revokes one session unless it is already revoked, and
// its live grant sessions (RevokeParentEnded), appending each to the
// revocation feed.
func revokeSession(ctx context.Context, tx txn, sess *keycard.Session, at time.Time, reason string) error {
	if sess.Revoked() {
		return nil
	}
	if err := revokeOne(ctx, tx, sess, at, reason); err != nil {
		return err
	}
	if sess.ParentID != "" {
		return nil // a grant session has none
	}
	_, err := revokeWhere(ctx, tx, `parent_id = ?`, []any{sess.ID}, at, keycard.RevokeParentEnded)
	return err
}

// revokeOne revokes the live session sess alone and appends it to the
// revocation feed.
func revokeOne(ctx context.Context, tx txn, sess *keycard.Session, at time.Time, reason string) error {
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ?`,
		micros(at), reason, sess.ID); err != nil {
		return err
	}
	// Revoked sessions keep no successor to hand out.
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL WHERE session_id = ? AND successor_sealed IS NOT NULL`, sess.ID); err != nil {
		return err
	}
	sess.RevokedAt, sess.RevokeReason = at, reason
	return addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeSession, Value: sess.ID, At: at})
}

// revokeWhere revokes, each alone, the live sessions that the SQL
// condition cond (with args) selects, in creation order, and returns their
// ids. The caller sees to their grant sessions: every caller's condition
// either selects those too, or only selects grant sessions.
func revokeWhere(ctx context.Context, tx txn, cond string, args []any, at time.Time, reason string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE `+cond+` AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at, id`,
		append(args, micros(at))...)
	if err != nil {
		return nil, err
	}
	var sessions []*keycard.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		sessions = append(sessions, sess)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ids := []string{}
	for _, sess := range sessions {
		if err := revokeOne(ctx, tx, sess, at, reason); err != nil {
			return nil, err
		}
		ids = append(ids, sess.ID)
	}
	return ids, nil
}

// revokeUserSessions revokes the user's live sessions, grant sessions
// included, except exceptID and its grant sessions, and returns their ids.
// A grant session is of its parent's user, so none is left live under a
// session revoked here.
func revokeUserSessions(ctx context.Context, tx txn, userID, exceptID string, at time.Time, reason string) ([]string, error) {
	return revokeWhere(ctx, tx, `user_id = ? AND id != ? AND (parent_id IS NULL OR parent_id != ?)`,
		[]any{userID, exceptID, exceptID}, at, reason)
}

// revokeClientSessions revokes the user's live grant sessions for the
// client and returns their ids.
func revokeClientSessions(ctx context.Context, tx txn, userID, clientID string, at time.Time, reason string) ([]string, error) {
	if clientID == "" {
		return []string{}, nil // sign-ins have no client
	}
	return revokeWhere(ctx, tx, `user_id = ? AND client_id = ?`, []any{userID, clientID}, at, reason)
}

// RevokeSession implements keycard.SessionStore.
func (s *SessionStore) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (*keycard.Session, error) {
	var sess *keycard.Session
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		if sess, err = tx.session(ctx, id); err != nil {
			return err
		}
		return revokeSession(ctx, tx, sess, at, reason)
	})
	if err != nil {
		return nil, wrap("revoke session", err)
	}
	return sess, nil
}

// Reauthenticated implements keycard.SessionStore.
func (s *SessionStore) Reauthenticated(ctx context.Context, id string, at time.Time, amr []string) error {
	return wrap("reauthenticated", s.db.update(ctx, func(tx txn) error {
		sess, err := tx.session(ctx, id)
		if err != nil {
			return err
		}
		if !sess.Active(at) {
			return sessionEnded()
		}
		list, err := nullList(amr)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET auth_time = ?, amr = ?, last_used_at = ? WHERE id = ?`, micros(at), list, micros(at), id)
		return err
	}))
}

// RevokeUserSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) ([]string, error) {
	var ids []string
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		ids, err = revokeUserSessions(ctx, tx, userID, exceptID, at, reason)
		return err
	})
	if err != nil {
		return nil, wrap("revoke user sessions", err)
	}
	return ids, nil
}

// RevokeClientSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeClientSessions(ctx context.Context, userID, clientID string, at time.Time, reason string) ([]string, error) {
	var ids []string
	err := s.db.update(ctx, func(tx txn) error {
		var err error
		ids, err = revokeClientSessions(ctx, tx, userID, clientID, at, reason)
		return err
	})
	if err != nil {
		return nil, wrap("revoke client sessions", err)
	}
	return ids, nil
}

// RevokeAllSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeAllSessions(ctx context.Context, at time.Time, reason string) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE revoked_at IS NULL`, micros(at), reason)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL`); err != nil {
			return err
		}
		return addRevocation(ctx, tx, &keycard.Revocation{Kind: keycard.RevokeAllUsers, At: at})
	})
	return n, wrap("revoke all sessions", err)
}

// RefreshToken implements keycard.SessionStore.
func (s *SessionStore) RefreshToken(ctx context.Context, id string) (*keycard.RefreshToken, error) {
	t, err := getToken(ctx, s.db.reader(), id)
	return t, wrap("refresh token", err)
}

func sessionEnded() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The session has ended; log in again."}
}

// RotateRefreshToken implements keycard.SessionStore. Concurrent
// rotations are committed together, each in its own savepoint (see
// batcher), so that the single writer pays for one commit per batch.
func (s *SessionStore) RotateRefreshToken(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	var res *keycard.RotateResult
	err := s.db.batches.write(ctx, func(ctx context.Context, tx txn) (err error) {
		res, err = rotate(ctx, tx, req)
		return err
	})
	if err != nil {
		return nil, wrap("rotate refresh token", err)
	}
	return res, nil
}

// rotate is RotateRefreshToken inside the write transaction tx. It returns
// an error for a refused rotation, after which the caller must roll back
// what it wrote.
func rotate(ctx context.Context, tx txn, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	var res *keycard.RotateResult
	err := func() error {
		presented, sess, user, keyGen, err := rotationState(ctx, tx, req)
		if errors.Is(err, sql.ErrNoRows) {
			return keycard.ErrInvalidRefreshToken()
		} else if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare(presented.SecretHash, req.SecretHash) != 1 {
			return keycard.ErrInvalidRefreshToken()
		}
		// Before any write: a presenter the session is not bound to
		// changes nothing.
		if err := keycard.CheckPresenter(sess, req.Presenter); err != nil {
			return err
		}
		switch {
		case presented.Live():
			if !sess.Active(req.Now) {
				return sessionEnded()
			}
			succ := req.Successor
			succ.SessionID, succ.CreatedAt = sess.ID, req.Now
			succ.RotatedAt, succ.SuccessorID, succ.SuccessorSealed = time.Time{}, "", nil
			if _, err := tx.rawExec(ctx, `UPDATE refresh_tokens SET rotated_at = ?, successor_id = ?, successor_sealed = ? WHERE id = ?`,
				micros(req.Now), succ.ID, req.SuccessorSealed, presented.ID); err != nil {
				return err
			}
			if err := insertToken(ctx, tx, &succ); err != nil {
				return err
			}
			if _, err := tx.rawExec(ctx, `UPDATE sessions SET last_used_at = ? WHERE id = ?`, micros(req.Now), sess.ID); err != nil {
				return err
			}
			if req.Audit != nil {
				e := *req.Audit
				if e.Actor == "" {
					e.Actor = sess.UserID
				}
				if e.Subject == "" {
					e.Subject = sess.UserID
				}
				if err := insertAudit(ctx, tx, &e); err != nil {
					return err
				}
			}
			presented.RotatedAt, presented.SuccessorID, presented.SuccessorSealed = req.Now, succ.ID, req.SuccessorSealed
			sess.LastUsedAt = req.Now
			res = &keycard.RotateResult{Outcome: keycard.Rotated, Session: sess, Presented: presented, Successor: &succ, User: user, KeyGeneration: keyGen}
			return nil

		case req.Now.Before(presented.RotatedAt.Add(max(req.Grace, 0))):
			if !sess.Active(req.Now) {
				return sessionEnded()
			}
			succ, err := getToken(ctx, tx, presented.SuccessorID)
			if err != nil {
				return err
			}
			res = &keycard.RotateResult{Outcome: keycard.Replayed, Session: sess, Presented: presented, Successor: succ, User: user, KeyGeneration: keyGen}
			return nil

		default:
			if err := revokeSession(ctx, tx, sess, req.Now, keycard.RevokeTokenReuse); err != nil {
				return err
			}
			presented.SuccessorSealed = nil
			res = &keycard.RotateResult{Outcome: keycard.TheftDetected, Session: sess, Presented: presented}
			return nil
		}
	}()
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Parts of rotationState's query: a token with its session, and with the
// session's user and the key generation when asked for.
const (
	rotationColumns = `t.id, t.session_id, t.secret_hash, t.created_at, t.rotated_at, t.successor_id, t.successor_sealed,
		s.id, s.user_id, s.parent_id, s.client_id, s.scope, s.created_at, s.auth_time, s.amr,
		s.last_used_at, s.user_agent, s.client_addr, s.idle_timeout, s.expires_at, s.revoked_at, s.revoke_reason, s.dpop_jkt, s.idp, s.idp_subject, s.idp_sid`
	rotationUserColumns = `,
		u.id, u.username, u.username_normalized, u.password_hash, u.roles, u.disabled, u.created_at, u.updated_at, u.password_changed_at, u.email, u.email_verified`
	rotationKeyGenColumn = `, (` + keyGenerationQuery + `)`
	rotationFrom         = `
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id`
	rotationUserJoin = ` JOIN users u ON u.id = s.user_id`
	rotationWhere    = ` WHERE t.id = ?`
)

// rotationQuery returns rotationState's query.
func rotationQuery(withUser, withKeyGen bool) string {
	switch {
	case withUser && withKeyGen:
		return `SELECT ` + rotationColumns + rotationUserColumns + rotationKeyGenColumn + rotationFrom + rotationUserJoin + rotationWhere
	case withUser:
		return `SELECT ` + rotationColumns + rotationUserColumns + rotationFrom + rotationUserJoin + rotationWhere
	case withKeyGen:
		return `SELECT ` + rotationColumns + rotationKeyGenColumn + rotationFrom + rotationWhere
	}
	return `SELECT ` + rotationColumns + rotationFrom + rotationWhere
}

// rotationState reads the presented token, its session and, as req asks,
// the session's user and the key generation, in one query on the driver
// (txn.rawQueryRow); sql.ErrNoRows for an unknown token.
func rotationState(ctx context.Context, tx txn, req keycard.RotateRequest) (*keycard.RefreshToken, *keycard.Session, *keycard.User, int64, error) {
	t, dest, finishToken := tokenScan()
	sess, sdest, finishSession := sessionScan()
	dest = append(dest, sdest...)
	var (
		u          *keycard.User
		finishUser = func() error { return nil }
		keyGen     int64
	)
	if req.WithUser {
		var udest []any
		u, udest, finishUser = userScan()
		dest = append(dest, udest...)
	}
	if req.WithKeyGeneration {
		dest = append(dest, &keyGen)
	}
	if err := tx.rawQueryRow(ctx, rotationQuery(req.WithUser, req.WithKeyGeneration), []any{req.TokenID}, dest...); err != nil {
		return nil, nil, nil, 0, err
	}
	if err := errors.Join(finishToken(), finishSession(), finishUser()); err != nil {
		return nil, nil, nil, 0, err
	}
	return t, sess, u, keyGen, nil
}

// PruneSessions implements keycard.SessionStore.
func (s *SessionStore) PruneSessions(ctx context.Context, before, sealedBefore time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		b := micros(before)
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions
			WHERE revoked_at < ? OR expires_at < ? OR last_used_at + idle_timeout < ?`, b, b, b)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE successor_sealed IS NOT NULL AND rotated_at < ?`, micros(sealedBefore))
		return err
	})
	return n, wrap("prune sessions", err)
}
