package postgres

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/keycard-auth/keycard"
)

// SessionStore implements keycard.SessionStore.
//
// Lock order, which every transaction that touches sessions follows so
// that two instances cannot deadlock: the user row (when the user
// changes), then session rows in id order, then their refresh tokens, then
// the revocation feed's counter (appendFeed, always last). Revoking
// sessions then revokes their grant sessions, in id order, in a statement
// of its own; creating a grant session takes a share lock on its parent
// first (see GrantStore for the codes).
type SessionStore struct{ db *DB }

var _ keycard.SessionStore = (*SessionStore)(nil)

const sessionColumns = `id, user_id, parent_id, client_id, scope, created_at, auth_time, amr, last_used_at, user_agent, client_addr, idle_timeout, expires_at, revoked_at, revoke_reason, dpop_jkt, idp, idp_subject, idp_sid`

// idleEnd is the SQL for the end of a session's idle timeout.
const idleEnd = `(last_used_at + idle_timeout * interval '1 microsecond')`

func scanSession(row pgx.Row) (*keycard.Session, error) {
	var x sessionScan
	if err := row.Scan(x.dest()...); err != nil {
		return nil, err
	}
	return x.session(), nil
}

// sessionScan is what a row's sessionColumns are scanned into (dest),
// for statements that return more than a session.
type sessionScan struct {
	s        keycard.Session
	parent   pgtype.Text
	idle     int64
	authTime pgtype.Timestamptz
	revoked  *time.Time
}

func (x *sessionScan) dest() []any {
	s := &x.s
	return []any{&s.ID, &s.UserID, &x.parent, &s.ClientID, &s.Scope, &s.CreatedAt, &x.authTime, &s.AMR,
		&s.LastUsedAt, &s.UserAgent, &s.ClientAddr, &x.idle, &s.ExpiresAt, &x.revoked, &s.RevokeReason, &s.DPoPJKT, &s.IdP, &s.IdPSubject, &s.IdPSessionID}
}

// session returns the session scanned.
func (x *sessionScan) session() *keycard.Session {
	s := &x.s
	s.ParentID = x.parent.String
	if len(s.AMR) == 0 {
		s.AMR = nil
	}
	if x.authTime.Valid {
		s.AuthTime = x.authTime.Time.UTC()
	}
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
	s.RevokedAt = fromNull(x.revoked)
	s.IdleTimeout = time.Duration(x.idle) * time.Microsecond
	return s
}

const tokenColumns = `id, session_id, secret_hash, created_at, rotated_at, successor_id, successor_sealed`

func scanToken(row pgx.Row) (*keycard.RefreshToken, error) {
	var (
		t         keycard.RefreshToken
		rotated   *time.Time
		successor *string
	)
	if err := row.Scan(&t.ID, &t.SessionID, &t.SecretHash, &t.CreatedAt, &rotated, &successor, &t.SuccessorSealed); err != nil {
		return nil, err
	}
	t.CreatedAt, t.RotatedAt = t.CreatedAt.UTC(), fromNull(rotated)
	if successor != nil {
		t.SuccessorID = *successor
	}
	return &t, nil
}

func sessionNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Session not found."}
}

func tokenNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Refresh token not found."}
}

// getSession reads a session, locking it FOR UPDATE when lock is set.
func getSession(ctx context.Context, q querier, id string, lock bool) (*keycard.Session, error) {
	if !validText(id) {
		return nil, sessionNotFound()
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	s, err := scanSession(q.QueryRow(ctx, query, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessionNotFound()
	}
	return s, err
}

func getToken(ctx context.Context, q querier, id string) (*keycard.RefreshToken, error) {
	if !validText(id) {
		return nil, tokenNotFound()
	}
	t, err := scanToken(q.QueryRow(ctx, `SELECT `+tokenColumns+` FROM refresh_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tokenNotFound()
	}
	return t, err
}

func validToken(t *keycard.RefreshToken) error {
	if t.ID == "" || len(t.SecretHash) == 0 {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Refresh token id and secret hash are required."}
	}
	if !validText(t.ID) {
		return invalidText()
	}
	return nil
}

const insertToken = `INSERT INTO refresh_tokens (` + tokenColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`

func tokenArgs(t *keycard.RefreshToken) []any {
	return []any{t.ID, t.SessionID, t.SecretHash, t.CreatedAt, nullTime(t.RotatedAt), nullString(t.SuccessorID), t.SuccessorSealed}
}

func tokenConflict(err error) error {
	if pgCode(err) == uniqueViolation {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Refresh token already exists."}
	}
	return err
}

// validSession checks what CreateSession needs of its arguments.
func validSession(sess *keycard.Session, first *keycard.RefreshToken) error {
	if sess == nil || sess.ID == "" || sess.UserID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Session id and user id are required."}
	}
	if first == nil && sess.ParentID == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A sign-in needs its first refresh token."}
	}
	if first != nil {
		if err := validToken(first); err != nil {
			return err
		}
	}
	if !validText(sess.ID, sess.ClientID) {
		return invalidText()
	}
	if !validText(sess.UserID) {
		return userNotFound()
	}
	if !validText(sess.ParentID) {
		return sessionNotFound()
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

const insertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`

func sessionArgs(sess *keycard.Session) []any {
	return []any{sess.ID, sess.UserID, nullString(sess.ParentID), sess.ClientID, sess.Scope, sess.CreatedAt, nullTime(sess.AuthTime), orEmpty(sess.AMR),
		sess.LastUsedAt, cleanText(sess.UserAgent), cleanText(sess.ClientAddr),
		sess.IdleTimeout.Microseconds(), sess.ExpiresAt, nullTime(sess.RevokedAt), cleanText(sess.RevokeReason), sess.DPoPJKT, sess.IdP, sess.IdPSubject, sess.IdPSessionID}
}

// queueSession queues the inserts of sess and, if not nil, of its first
// token (with SessionID set).
func queueSession(b *pgx.Batch, sess *keycard.Session, first *keycard.RefreshToken) {
	b.Queue(insertSession, sessionArgs(sess)...)
	if first != nil {
		tok := *first
		tok.SessionID = sess.ID
		b.Queue(insertToken, tokenArgs(&tok)...)
	}
}

// sessionConflict maps the unique violation of a session's or a token's
// insert to ECONFLICT.
func sessionConflict(err error) error {
	if pgCode(err) != uniqueViolation {
		return err
	}
	if constraint(err) == "sessions_pkey" {
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "Session already exists."}
	}
	return tokenConflict(err)
}

// CreateSession implements keycard.SessionStore.
func (s *SessionStore) CreateSession(ctx context.Context, sess *keycard.Session, first *keycard.RefreshToken, opt *keycard.CreateSessionOptions) error {
	if err := validSession(sess, first); err != nil {
		return err
	}
	// The statements after the session's rows are read by the batch's
	// Close.
	queue := func(b *pgx.Batch) error {
		queueSession(b, sess, first)
		if opt == nil {
			return nil
		}
		if opt.Audit != nil {
			if err := queueAudit(b, opt.Audit); err != nil {
				return err
			}
		}
		if opt.WithKeyGeneration {
			b.Queue(keyGenerationQuery).QueryRow(func(row pgx.Row) error { return row.Scan(&opt.KeyGeneration) })
		}
		return nil
	}
	var err error
	if sess.ParentID == "" {
		b := &pgx.Batch{}
		if err := queue(b); err != nil {
			return err
		}
		// A login's hot path: one round trip, both rows or neither.
		err = s.db.pipeline(ctx, b, func(br pgx.BatchResults) error {
			_, err := br.Exec()
			switch pgCode(err) {
			case foreignKeyViolation:
				return userNotFound()
			case "":
				_, err = br.Exec()
			}
			return sessionConflict(err)
		})
	} else {
		err = s.db.update(ctx, func(tx pgx.Tx) error {
			// The share lock keeps the parent from being revoked until
			// this commits, and a revocation waiting for it then finds
			// the grant session (see revokeWhere).
			parent, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 FOR SHARE`, sess.ParentID))
			if errors.Is(err, pgx.ErrNoRows) {
				return sessionNotFound()
			} else if err != nil {
				return err
			}
			if err := checkParent(parent, sess); err != nil {
				return err
			}
			if parent.Revoked() {
				return sessionEnded()
			}
			b := &pgx.Batch{}
			if err := queue(b); err != nil {
				return err
			}
			return sessionConflict(tx.SendBatch(ctx, b).Close())
		})
	}
	if err != nil {
		return wrap("create session", err)
	}
	if first != nil {
		first.SessionID = sess.ID
	}
	return nil
}

// Session implements keycard.SessionStore.
func (s *SessionStore) Session(ctx context.Context, id string) (*keycard.Session, error) {
	sess, err := getSession(ctx, s.db.reads(), id, false)
	return sess, wrap("session", err)
}

// ListSessions implements keycard.SessionStore.
func (s *SessionStore) ListSessions(ctx context.Context, f keycard.SessionFilter) ([]*keycard.Session, error) {
	if !validText(f.UserID, f.Before) {
		return []*keycard.Session{}, nil
	}
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE user_id = $1`
	args := []any{f.UserID}
	if f.SignInsOnly {
		query += ` AND parent_id IS NULL`
	}
	if !f.ActiveAt.IsZero() {
		args = append(args, f.ActiveAt)
		p := placeholder(len(args))
		query += ` AND revoked_at IS NULL AND expires_at > ` + p + ` AND ` + idleEnd + ` > ` + p
	}
	if f.Before != "" {
		args = append(args, f.Before)
		query += ` AND (created_at, id) < (SELECT created_at, id FROM sessions WHERE id = ` + placeholder(len(args)) + `)`
	}
	args = append(args, keycard.PageSize(f.Limit))
	query += ` ORDER BY created_at DESC, id DESC LIMIT ` + placeholder(len(args))
	rows, err := s.db.pool.Query(ctx, query, args...)
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

// revokeSession revokes one session, which the transaction has locked,
// unless it is already revoked, and its live grant sessions
// (RevokeParentEnded), and returns the feed entries to append (none if
// nothing changed).
func revokeSession(ctx context.Context, tx pgx.Tx, sess *keycard.Session, at time.Time, reason string) ([]*keycard.Revocation, error) {
	if sess.Revoked() {
		return nil, nil
	}
	reason = cleanText(reason)
	b := &pgx.Batch{}
	b.Queue(`UPDATE sessions SET revoked_at = $1, revoke_reason = $2 WHERE id = $3`, at, reason, sess.ID)
	// Revoked sessions keep no successor to hand out.
	b.Queue(`UPDATE refresh_tokens SET successor_sealed = NULL WHERE session_id = $1 AND successor_sealed IS NOT NULL`, sess.ID)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	sess.RevokedAt, sess.RevokeReason = at, reason
	revs := []*keycard.Revocation{{Kind: keycard.RevokeSession, Value: sess.ID, At: at}}
	if sess.ParentID != "" {
		return revs, nil // a grant session has none
	}
	children, err := revokeWhere(ctx, tx, `parent_id = $1`, []any{sess.ID}, at, keycard.RevokeParentEnded)
	return append(revs, children...), err
}

// revokeWhere revokes the live sessions that the SQL condition cond (on
// parameters $1… from args) selects, locking them in id order, and returns
// the feed entries to append, one per session, in creation order. It
// revokes no grant session of theirs that cond does not select.
//
// At READ COMMITTED a statement sees the rows committed before it began:
// a grant session created under a parent while this statement waited for
// the parent's lock is not among them. Callers that revoke parents revoke
// their grant sessions in a later statement, which sees it: creating one
// holds a share lock on its parent until it commits.
func revokeWhere(ctx context.Context, tx pgx.Tx, cond string, args []any, at time.Time, reason string) ([]*keycard.Revocation, error) {
	n := len(args)
	rows, err := tx.Query(ctx, `WITH locked AS (
			SELECT id FROM sessions
			WHERE `+cond+` AND revoked_at IS NULL AND expires_at > `+placeholder(n+1)+`
			ORDER BY id FOR UPDATE)
		UPDATE sessions s SET revoked_at = `+placeholder(n+1)+`, revoke_reason = `+placeholder(n+2)+` FROM locked WHERE s.id = locked.id
		RETURNING s.id, s.created_at`, append(args, at, cleanText(reason))...)
	if err != nil {
		return nil, err
	}
	type revoked struct {
		id      string
		created time.Time
	}
	var rs []revoked
	for rows.Next() {
		var r revoked
		if err := rows.Scan(&r.id, &r.created); err != nil {
			rows.Close()
			return nil, err
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(rs, func(a, b revoked) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	ids := make([]string, len(rs))
	revs := make([]*keycard.Revocation, len(rs))
	for i, r := range rs {
		ids[i] = r.id
		revs[i] = &keycard.Revocation{Kind: keycard.RevokeSession, Value: r.id, At: at}
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE session_id = ANY($1) AND successor_sealed IS NOT NULL`, ids); err != nil {
			return nil, err
		}
	}
	return revs, nil
}

// revokeUserSessions revokes the user's live sessions, grant sessions
// included, except exceptID and its grant sessions, and returns the feed
// entries to append.
func revokeUserSessions(ctx context.Context, tx pgx.Tx, userID, exceptID string, at time.Time, reason string) ([]*keycard.Revocation, error) {
	if !validText(userID) {
		return nil, nil // no such user
	}
	if !validText(exceptID) {
		exceptID = "" // no such session: nothing to except
	}
	revs, err := revokeWhere(ctx, tx, `user_id = $1 AND id <> $2 AND (parent_id IS NULL OR parent_id <> $2)`,
		[]any{userID, exceptID}, at, reason)
	if err != nil || len(revs) == 0 {
		return revs, err
	}
	// Grant sessions created under those while the statement above
	// waited for their locks (see revokeWhere).
	late, err := revokeWhere(ctx, tx, `parent_id = ANY($1)`, []any{revokedIDs(revs)}, at, keycard.RevokeParentEnded)
	return append(revs, late...), err
}

// revokeClientSessions revokes the user's live grant sessions for the
// client and returns the feed entries to append.
func revokeClientSessions(ctx context.Context, tx pgx.Tx, userID, clientID string, at time.Time, reason string) ([]*keycard.Revocation, error) {
	if clientID == "" || !validText(userID, clientID) {
		return nil, nil // sign-ins have no client; no such user or client
	}
	return revokeWhere(ctx, tx, `user_id = $1 AND client_id = $2`, []any{userID, clientID}, at, reason)
}

// revokedIDs returns the session ids of feed entries.
func revokedIDs(revs []*keycard.Revocation) []string {
	ids := []string{}
	for _, r := range revs {
		if r.Kind == keycard.RevokeSession {
			ids = append(ids, r.Value)
		}
	}
	return ids
}

// RevokeSession implements keycard.SessionStore.
func (s *SessionStore) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (*keycard.Session, error) {
	var sess *keycard.Session
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		var err error
		if sess, err = getSession(ctx, tx, id, true); err != nil {
			return err
		}
		revs, err := revokeSession(ctx, tx, sess, at, reason)
		if err != nil {
			return err
		}
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	if err != nil {
		return nil, wrap("revoke session", err)
	}
	return sess, nil
}

// Reauthenticated implements keycard.SessionStore.
func (s *SessionStore) Reauthenticated(ctx context.Context, id string, at time.Time, amr []string) error {
	return wrap("reauthenticated", s.db.update(ctx, func(tx pgx.Tx) error {
		sess, err := getSession(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !sess.Active(at) {
			return sessionEnded()
		}
		_, err = tx.Exec(ctx, `UPDATE sessions SET auth_time = $1, amr = $2, last_used_at = $1 WHERE id = $3`, at, orEmpty(amr), id)
		return err
	}))
}

// RevokeUserSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) ([]string, error) {
	var ids []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		revs, err := revokeUserSessions(ctx, tx, userID, exceptID, at, reason)
		if err != nil {
			return err
		}
		ids = revokedIDs(revs)
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	if err != nil {
		return nil, wrap("revoke user sessions", err)
	}
	return ids, nil
}

// RevokeClientSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeClientSessions(ctx context.Context, userID, clientID string, at time.Time, reason string) ([]string, error) {
	var ids []string
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		revs, err := revokeClientSessions(ctx, tx, userID, clientID, at, reason)
		if err != nil {
			return err
		}
		ids = revokedIDs(revs)
		return appendFeed(ctx, tx, s.db.revocationTTL, revs...)
	})
	if err != nil {
		return nil, wrap("revoke client sessions", err)
	}
	return ids, nil
}

// RevokeAllSessions implements keycard.SessionStore.
func (s *SessionStore) RevokeAllSessions(ctx context.Context, at time.Time, reason string) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `WITH locked AS (SELECT id FROM sessions WHERE revoked_at IS NULL ORDER BY id FOR UPDATE)
			UPDATE sessions s SET revoked_at = $1, revoke_reason = $2 FROM locked WHERE s.id = locked.id`, at, cleanText(reason))
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL`); err != nil {
			return err
		}
		return appendFeed(ctx, tx, s.db.revocationTTL, &keycard.Revocation{Kind: keycard.RevokeAllUsers, At: at})
	})
	return n, wrap("revoke all sessions", err)
}

// RefreshToken implements keycard.SessionStore.
func (s *SessionStore) RefreshToken(ctx context.Context, id string) (*keycard.RefreshToken, error) {
	t, err := getToken(ctx, s.db.reads(), id)
	return t, wrap("refresh token", err)
}

func sessionEnded() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The session has ended; log in again."}
}

// RotateRefreshToken implements keycard.SessionStore.
//
// The transaction first locks the token's session (SELECT … FOR UPDATE),
// then reads the token in a second statement: at READ COMMITTED that
// statement sees every rotation committed while it waited for the lock, so
// of concurrent rotations, on any number of instances, the first rotates
// and the others find the token rotated and replay its successor. (Reading
// the token in the locking statement would not do: PostgreSQL re-checks
// only the locked row after the wait, and would return the token as it was
// before.)
//
// A rotation or a replay takes two round trips (see
// DB.updatePipelined): BEGIN, the lock and the reads of the token, its
// successor and the user in one; the writes and COMMIT in the other. A
// token presented after its grace window is rolled back there and
// handled by a transaction of its own (rotateTx), which revokes the
// session: theft detection is rare, and its statements depend on each
// other.
func (s *SessionStore) RotateRefreshToken(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	if !validText(req.TokenID) {
		return nil, keycard.ErrInvalidRefreshToken()
	}
	res, err := s.rotateFast(ctx, req)
	if res == nil && err == nil {
		res, err = s.rotatePipelined(ctx, req)
	}
	if errors.Is(err, errTheft) {
		res, err = s.rotateTheft(ctx, req)
	}
	if err != nil {
		return nil, wrap("rotate refresh token", err)
	}
	return res, nil
}

// rotateFast is the common case of RotateRefreshToken in one statement,
// one round trip, outside an explicit transaction: a live token, its
// secret, an active session that is not locked, the presenter the
// session is bound to, and (with WithUser) its user. The statement locks
// the session (FOR UPDATE SKIP LOCKED), marks the token rotated,
// inserts the successor, moves the session's last use and appends the
// audit row, each write depending on the one before through its
// RETURNING rows, so that either all of them happen or none.
//
// It returns nil, nil, having changed nothing, for every other case:
// the token unknown, rotated (a replay, a theft, or a concurrent
// rotation that committed first) or its secret wrong; the session ended,
// bound to another presenter, or locked by another transaction (a
// concurrent rotation, a revocation); the user gone. RotateRefreshToken
// then takes the general path, rotatePipelined, which waits for the
// session's lock, reads the token again and decides as before. Of two
// concurrent rotations of one token, then, one rotates here or there and
// the other finds the token rotated under the lock and replays its
// successor, as before.
//
// Why one statement sees what it must: the session is locked with SKIP
// LOCKED, so the statement never waits for its lock (and needs no
// longer statement timeout, see rotationTimeout), and FOR UPDATE reads
// the session's newest version. The token's UPDATE, under that lock,
// re-checks a row that a concurrent rotation changed after the
// statement's snapshot against its newest version (rotated_at IS NULL
// no longer holds: nothing is written). The user and the key generation
// are read as of the statement's snapshot, taken before the lock: the
// user's sessions are revoked, under their locks, whenever the user is
// disabled or deleted, so a session found active and locked belongs to a
// user as the snapshot saw it, changed since at most in ways (roles, a
// new key generation) that a rotation just before that change would have
// seen too.
//
// The token's secret hash is compared by the database (bytea equality,
// not constant-time): it is the SHA-256 of 256 random bits, whose timing
// would tell an attacker at most the prefix of a hash they cannot invert.
// The general path compares in constant time, as before.
func (s *SessionStore) rotateFast(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	succ := req.Successor
	if err := validToken(&succ); err != nil {
		return nil, nil // the general path reports it, as before
	}
	var audit *keycard.AuditEvent
	if req.Audit != nil {
		audit = req.Audit
		if audit.Type == "" || !keycard.ValidAuditDetail(audit.Detail) {
			return nil, nil // same
		}
	}
	var jkt, clientID *string
	if p := req.Presenter; p != nil {
		jkt, clientID = &p.DPoPKey, &p.ClientID
	}
	args := []any{req.TokenID, req.SecretHash, req.Now, succ.ID, req.SuccessorSealed, succ.SecretHash, jkt, clientID}
	if audit != nil {
		detail := "{}"
		if len(audit.Detail) > 0 {
			detail = string(audit.Detail) // see queueAudit
		}
		args = append(args, audit.Time, cleanText(audit.Type), cleanText(audit.Actor), cleanText(audit.Subject),
			cleanText(audit.ClientAddr), cleanText(audit.UserAgent), detail)
	}
	rows, err := s.db.pool.Query(ctx, rotateFastQueries[rotateFastVariant(req.WithUser, audit != nil, req.WithKeyGeneration)], args...)
	if err != nil {
		return nil, fastError(err)
	}
	defer rows.Close()
	if !rows.Next() {
		// No row: nothing was written (every write depends on t).
		if err := rows.Err(); err != nil {
			return nil, fastError(err)
		}
		return nil, nil
	}
	var (
		ss        sessionScan
		presented keycard.RefreshToken
		us        userScan
		keyGen    int64
	)
	dest := ss.dest()
	if req.WithUser {
		dest = append(dest, us.dest()...)
	}
	dest = append(dest, &presented.ID, &presented.SessionID, &presented.SecretHash, &presented.CreatedAt)
	if req.WithKeyGeneration {
		dest = append(dest, &keyGen)
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, tokenConflict(err)
	}
	sess := ss.session()
	res := &keycard.RotateResult{Outcome: keycard.Rotated, Session: sess, Presented: &presented, Successor: &succ, KeyGeneration: keyGen}
	if req.WithUser {
		res.User = us.user()
	}
	succ.SessionID, succ.CreatedAt = sess.ID, req.Now
	succ.RotatedAt, succ.SuccessorID, succ.SuccessorSealed = time.Time{}, "", nil
	presented.CreatedAt = presented.CreatedAt.UTC()
	presented.RotatedAt, presented.SuccessorID, presented.SuccessorSealed = req.Now, succ.ID, req.SuccessorSealed
	sess.LastUsedAt = req.Now
	return res, nil
}

// rotateFastQueries holds rotateFast's statement for each combination of
// its options, indexed by rotateFastVariant: built once, not per call.
var rotateFastQueries = func() (qs [8]string) {
	for _, withUser := range []bool{false, true} {
		for _, withAudit := range []bool{false, true} {
			for _, withKeyGen := range []bool{false, true} {
				qs[rotateFastVariant(withUser, withAudit, withKeyGen)] = rotateFastQuery(withUser, withAudit, withKeyGen)
			}
		}
	}
	return qs
}()

func rotateFastVariant(withUser, withAudit, withKeyGen bool) int {
	v := 0
	if withUser {
		v |= 1
	}
	if withAudit {
		v |= 2
	}
	if withKeyGen {
		v |= 4
	}
	return v
}

// rotateFastQuery is rotateFast's statement: parameters $1–$8 always
// (token id, secret hash, now, successor id, sealed successor, successor
// hash, presenter's key, presenter's client), $9–$15 the audit row's
// (time, type, actor, subject, address, user agent, detail) with
// withAudit. Its row is the session's columns, the user's (withUser), the
// presented token's id, session, hash and creation, and the key
// generation (withKeyGen).
func rotateFastQuery(withUser, withAudit, withKeyGen bool) string {
	var q strings.Builder
	q.WriteString(`WITH s AS MATERIALIZED (
		SELECT s.` + strings.ReplaceAll(sessionColumns, ", ", ", s."))
	if withUser {
		// Named apart from the session's columns (both have an id).
		for _, c := range strings.Split(userColumns, ", ") {
			q.WriteString(`, u.` + c + ` AS u_` + c)
		}
	}
	q.WriteString(` FROM sessions s`)
	if withUser {
		q.WriteString(` JOIN users u ON u.id = s.user_id`)
	}
	q.WriteString(`
		WHERE s.id = (SELECT session_id FROM refresh_tokens WHERE id = $1)
			AND s.revoked_at IS NULL AND s.expires_at > $3 AND (s.last_used_at + s.idle_timeout * interval '1 microsecond') > $3
			AND ($7::text IS NULL OR s.dpop_jkt = '' OR s.dpop_jkt = $7)
			AND ($8::text IS NULL OR s.client_id = '' OR s.client_id = $8)
		FOR UPDATE OF s SKIP LOCKED),
	t AS (UPDATE refresh_tokens SET rotated_at = $3, successor_id = $4, successor_sealed = $5
		WHERE id = $1 AND secret_hash = $2 AND rotated_at IS NULL AND session_id = (SELECT id FROM s)
		RETURNING id, session_id, secret_hash, created_at),
	n AS (INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) SELECT $4, session_id, $6, $3 FROM t),
	l AS (UPDATE sessions SET last_used_at = $3 WHERE id = (SELECT session_id FROM t))`)
	if withAudit {
		q.WriteString(`,
	a AS (INSERT INTO audit_events (time, type, actor, subject, client_addr, user_agent, detail)
		SELECT $9::timestamptz, $10::text, COALESCE(NULLIF($11::text, ''), s.user_id), COALESCE(NULLIF($12::text, ''), s.user_id),
			$13::text, $14::text, $15::text::json FROM t, s)`)
	}
	q.WriteString(`
	SELECT s.*, t.id, t.session_id, t.secret_hash, t.created_at`)
	if withKeyGen {
		q.WriteString(`, COALESCE((` + keyGenerationQuery + `), 0)`)
	}
	q.WriteString(` FROM t, s`)
	return q.String()
}

// fastError is rotateFast's error for err: nil, to take the general path,
// when the server ended the connection under the statement (whether it
// committed is then unknown, and the general path finds out: a token
// this statement rotated is replayed with the successor it stored),
// ECONFLICT for a successor id already taken, err otherwise.
func fastError(err error) error {
	if connectionLost(err) {
		return nil
	}
	return tokenConflict(err)
}

// rotationTimeout is the statement timeout of a rotation's transaction
// (see rotatePipelined).
const rotationTimeout = "30s"

// errTheft ends a pipelined rotation of a token presented after its grace
// window.
var errTheft = errors.New("postgres: refresh token reused after its grace window")

// rotatePipelined is RotateRefreshToken in two round trips, for every
// outcome but TheftDetected, for which it returns errTheft having changed
// nothing.
func (s *SessionStore) rotatePipelined(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	first := func(b *pgx.Batch) {
		// Concurrent refreshes of one session (tabs racing) queue on its
		// lock, each holding it for two round trips; on a loaded host the
		// last of a long queue may wait longer than the connection's
		// statement timeout. The wait is legitimate: give this
		// transaction more time rather than fail a refresh.
		b.Queue(`SET LOCAL statement_timeout = '` + rotationTimeout + `'`)
		b.Queue(`SELECT `+sessionColumns+` FROM sessions
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE id = $1) FOR UPDATE`, req.TokenID)
		// After the lock: the token, its successor and the user as they
		// are now.
		b.Queue(`SELECT `+tokenColumns+` FROM refresh_tokens WHERE id = $1`, req.TokenID)
		b.Queue(`SELECT `+tokenColumns+` FROM refresh_tokens
			WHERE id = (SELECT successor_id FROM refresh_tokens WHERE id = $1)`, req.TokenID)
		if req.WithUser {
			b.Queue(`SELECT `+userColumns+` FROM users WHERE id = (SELECT user_id FROM sessions
				WHERE id = (SELECT session_id FROM refresh_tokens WHERE id = $1))`, req.TokenID)
		}
		if req.WithKeyGeneration {
			b.Queue(keyGenerationQuery)
		}
	}
	var res *keycard.RotateResult
	err := s.db.updatePipelined(ctx, first, func(br pgx.BatchResults) (*pgx.Batch, error) {
		res = nil
		if _, err := br.Exec(); err != nil { // SET LOCAL
			return nil, err
		}
		sess, serr := scanSession(br.QueryRow())
		presented, terr := scanToken(br.QueryRow())
		current, cerr := scanToken(br.QueryRow())
		var (
			user   *keycard.User
			uerr   error
			keyGen int64
			kerr   error
		)
		if req.WithUser {
			user, uerr = scanUser(br.QueryRow())
		}
		if req.WithKeyGeneration {
			kerr = br.QueryRow().Scan(&keyGen)
		}
		if err := errors.Join(ignoreNoRows(serr), ignoreNoRows(terr), ignoreNoRows(cerr), ignoreNoRows(uerr), kerr); err != nil {
			return nil, err
		}
		if sess == nil || presented == nil || subtle.ConstantTimeCompare(presented.SecretHash, req.SecretHash) != 1 {
			return nil, keycard.ErrInvalidRefreshToken()
		}
		if req.WithUser && user == nil {
			return nil, userNotFound() // a session's user is deleted with it: not reached
		}
		// Before any write: a presenter the session is not bound to
		// changes nothing (the transaction is rolled back).
		if err := keycard.CheckPresenter(sess, req.Presenter); err != nil {
			return nil, err
		}
		switch {
		case presented.Live():
			if !sess.Active(req.Now) {
				return nil, sessionEnded()
			}
			succ := req.Successor
			if err := validToken(&succ); err != nil {
				return nil, err
			}
			succ.SessionID, succ.CreatedAt = sess.ID, req.Now
			succ.RotatedAt, succ.SuccessorID, succ.SuccessorSealed = time.Time{}, "", nil
			b := &pgx.Batch{}
			b.Queue(`UPDATE refresh_tokens SET rotated_at = $1, successor_id = $2, successor_sealed = $3 WHERE id = $4`,
				req.Now, succ.ID, req.SuccessorSealed, presented.ID)
			b.Queue(insertToken, tokenArgs(&succ)...)
			b.Queue(`UPDATE sessions SET last_used_at = $1 WHERE id = $2`, req.Now, sess.ID)
			if req.Audit != nil {
				e := *req.Audit
				if e.Actor == "" {
					e.Actor = sess.UserID
				}
				if e.Subject == "" {
					e.Subject = sess.UserID
				}
				if err := queueAudit(b, &e); err != nil {
					return nil, err
				}
			}
			presented.RotatedAt, presented.SuccessorID, presented.SuccessorSealed = req.Now, succ.ID, req.SuccessorSealed
			sess.LastUsedAt = req.Now
			res = &keycard.RotateResult{Outcome: keycard.Rotated, Session: sess, Presented: presented, Successor: &succ, User: user, KeyGeneration: keyGen}
			return b, nil

		case req.Now.Before(presented.RotatedAt.Add(max(req.Grace, 0))):
			if !sess.Active(req.Now) {
				return nil, sessionEnded()
			}
			if current == nil {
				return nil, tokenNotFound()
			}
			res = &keycard.RotateResult{Outcome: keycard.Replayed, Session: sess, Presented: presented, Successor: current, User: user, KeyGeneration: keyGen}
			return &pgx.Batch{}, nil

		default:
			return nil, errTheft
		}
	})
	if err != nil {
		return nil, tokenConflict(err)
	}
	return res, nil
}

// rotateTheft is the rest of RotateRefreshToken for a token that
// rotatePipelined found reused after its grace window: in one transaction,
// it revokes the session (and appends it to the revocation feed), since
// both depend on what the other statements find.
func (s *SessionStore) rotateTheft(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	var res *keycard.RotateResult
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT `+sessionColumns+` FROM sessions
			WHERE id = (SELECT session_id FROM refresh_tokens WHERE id = $1) FOR UPDATE`, req.TokenID)
		b.Queue(`SELECT `+tokenColumns+` FROM refresh_tokens WHERE id = $1`, req.TokenID)
		br := tx.SendBatch(ctx, b)
		sess, serr := scanSession(br.QueryRow())
		presented, terr := scanToken(br.QueryRow())
		if err := errors.Join(br.Close(), ignoreNoRows(serr), ignoreNoRows(terr)); err != nil {
			return err
		}
		if sess == nil || presented == nil || subtle.ConstantTimeCompare(presented.SecretHash, req.SecretHash) != 1 {
			return keycard.ErrInvalidRefreshToken()
		}
		// Checked by rotatePipelined under the same lock; the session's
		// binding never changes.
		if err := keycard.CheckPresenter(sess, req.Presenter); err != nil {
			return err
		}
		// rotatePipelined saw this token rotated and past its grace
		// window, under the same lock; neither can be undone since.
		if presented.Live() || req.Now.Before(presented.RotatedAt.Add(max(req.Grace, 0))) {
			return errors.New("postgres: a reused refresh token is live or in its grace window again")
		}
		revs, err := revokeSession(ctx, tx, sess, req.Now, keycard.RevokeTokenReuse)
		if err != nil {
			return err
		}
		if err := appendFeed(ctx, tx, s.db.revocationTTL, revs...); err != nil {
			return err
		}
		presented.SuccessorSealed = nil
		res = &keycard.RotateResult{Outcome: keycard.TheftDetected, Session: sess, Presented: presented}
		return nil
	})
	return res, err
}

// ignoreNoRows returns nil for pgx.ErrNoRows and err otherwise.
func ignoreNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

// PruneSessions implements keycard.SessionStore.
func (s *SessionStore) PruneSessions(ctx context.Context, before, sealedBefore time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		// Locked in id order, like every statement that locks several
		// sessions.
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions
			WHERE revoked_at < $1 OR expires_at < $1 OR `+idleEnd+` < $1
			ORDER BY id FOR UPDATE)`, before)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET successor_sealed = NULL
			WHERE successor_sealed IS NOT NULL AND rotated_at < $1`, sealedBefore)
		return err
	})
	return n, wrap("prune sessions", err)
}
