package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
)

// LogoutStore implements keycard.LogoutStore. The deliveries themselves
// are made by a trigger on sessions (migration 0006).
type LogoutStore struct{ db *DB }

var _ keycard.LogoutStore = (*LogoutStore)(nil)

// NewLogoutStore returns the back-channel logout store on db.
func NewLogoutStore(db *DB) *LogoutStore { return &LogoutStore{db: db} }

// logoutSelect selects a delivery's columns and its client's back-channel
// logout URI (empty when the client is gone).
const logoutSelect = `SELECT d.session_id, d.client_id, d.user_id, d.sid, d.reason, d.ended_at, d.state, d.attempts,
	d.next_attempt_at, d.last_error, d.updated_at, COALESCE(json_extract(c.oauth, '$.backchannel_logout_uri'), '')
	FROM logout_deliveries d LEFT JOIN clients c ON c.id = d.client_id`

func scanLogout(row scanner) (*keycard.LogoutDelivery, error) {
	var (
		d                    keycard.LogoutDelivery
		ended, next, updated sql.NullInt64
	)
	if err := row.Scan(&d.SessionID, &d.ClientID, &d.UserID, &d.BrowserSessionID, &d.Reason, &ended, &d.State, &d.Attempts,
		&next, &d.LastError, &updated, &d.URI); err != nil {
		return nil, err
	}
	d.EndedAt, d.NextAttemptAt, d.UpdatedAt = fromMicros(ended), fromMicros(next), fromMicros(updated)
	return &d, nil
}

func scanLogouts(rows *sql.Rows) ([]*keycard.LogoutDelivery, error) {
	defer rows.Close()
	out := []*keycard.LogoutDelivery{}
	for rows.Next() {
		d, err := scanLogout(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimLogouts implements keycard.LogoutStore. SQLite has one writer at a
// time, so the claim's transaction alone keeps two claimers (the server
// and another process) from taking one delivery.
func (s *LogoutStore) ClaimLogouts(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*keycard.LogoutDelivery, error) {
	var out []*keycard.LogoutDelivery
	err := s.db.update(ctx, func(tx txn) error {
		rows, err := tx.QueryContext(ctx, `UPDATE logout_deliveries SET attempts = attempts + 1, next_attempt_at = ?
			WHERE session_id IN (SELECT session_id FROM logout_deliveries WHERE state = 'pending' AND next_attempt_at <= ?
				ORDER BY next_attempt_at, session_id LIMIT ?)
			RETURNING session_id`, micros(at.Add(lease)), micros(at), keycard.PageSize(limit))
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			out = []*keycard.LogoutDelivery{}
			return nil
		}
		rows, err = tx.QueryContext(ctx, logoutSelect+` WHERE d.session_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)
			ORDER BY d.ended_at, d.session_id`, ids...)
		if err != nil {
			return err
		}
		out, err = scanLogouts(rows)
		return err
	})
	if err != nil {
		return nil, wrap("claim logouts", err)
	}
	return out, nil
}

// settleLogout records the outcome of attempt number attempt of the
// pending delivery for the session.
func (s *LogoutStore) settleLogout(ctx context.Context, op, sessionID string, attempt int, state keycard.LogoutState, next, at time.Time, reason string) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE logout_deliveries SET state = ?, next_attempt_at = ?, last_error = ?, updated_at = ?
			WHERE session_id = ? AND state = 'pending' AND attempts = ?`,
			string(state), micros(next), reason, micros(at), sessionID, attempt)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM logout_deliveries WHERE session_id = ?)`, sessionID).Scan(&found); err != nil {
			return err
		}
		return logoutNotSettled(found)
	})
	return wrap(op, err)
}

// logoutNotSettled is the error for an outcome that changed nothing:
// ENOTFOUND for an unknown delivery, ECONFLICT for one claimed again or no
// longer pending.
func logoutNotSettled(found bool) error {
	if !found {
		return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Logout delivery not found."}
	}
	return &keycard.Error{Code: keycard.ECONFLICT, Message: "The logout delivery's attempt is no longer the current one."}
}

// LogoutDelivered implements keycard.LogoutStore.
func (s *LogoutStore) LogoutDelivered(ctx context.Context, sessionID string, attempt int, at time.Time) error {
	return s.settleLogout(ctx, "logout delivered", sessionID, attempt, keycard.LogoutDelivered, at, at, "")
}

// RetryLogout implements keycard.LogoutStore.
func (s *LogoutStore) RetryLogout(ctx context.Context, sessionID string, attempt int, at, next time.Time, reason string) error {
	return s.settleLogout(ctx, "retry logout", sessionID, attempt, keycard.LogoutPending, next, at, reason)
}

// GiveUpLogout implements keycard.LogoutStore.
func (s *LogoutStore) GiveUpLogout(ctx context.Context, sessionID string, attempt int, at time.Time, reason string) error {
	return s.settleLogout(ctx, "give up logout", sessionID, attempt, keycard.LogoutFailed, at, at, reason)
}

// ListLogouts implements keycard.LogoutStore.
func (s *LogoutStore) ListLogouts(ctx context.Context, f keycard.LogoutFilter) ([]*keycard.LogoutDelivery, error) {
	query, args := logoutSelect+` WHERE 1 = 1`, []any{}
	if f.State != "" {
		if !f.State.Valid() {
			return nil, keycard.Errorf(keycard.EINVALID, "Unknown logout delivery state %q.", f.State)
		}
		query += ` AND d.state = ?`
		args = append(args, string(f.State))
	}
	if f.ClientID != "" {
		query += ` AND d.client_id = ?`
		args = append(args, f.ClientID)
	}
	query += ` ORDER BY d.ended_at DESC, d.session_id DESC LIMIT ?`
	rows, err := s.db.reader().QueryContext(ctx, query, append(args, keycard.PageSize(f.Limit))...)
	if err != nil {
		return nil, wrap("list logouts", err)
	}
	out, err := scanLogouts(rows)
	return out, wrap("list logouts", err)
}

// PruneLogouts implements keycard.LogoutStore.
func (s *LogoutStore) PruneLogouts(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM logout_deliveries WHERE state <> 'pending' AND updated_at < ?`, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune logouts", err)
}
