package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// LogoutStore implements keycard.LogoutStore. The deliveries themselves
// are made by a trigger on sessions (migration 0004).
type LogoutStore struct{ db *DB }

var _ keycard.LogoutStore = (*LogoutStore)(nil)

// logoutColumns are a delivery's columns, of the table aliased d, and its
// client's back-channel logout URI (empty when the client is gone), of
// clients aliased c.
const logoutColumns = `d.session_id, d.client_id, d.user_id, d.sid, d.reason, d.ended_at, d.state, d.attempts,
	d.next_attempt_at, d.last_error, d.updated_at, COALESCE(c.oauth->>'backchannel_logout_uri', '')`

func scanLogouts(rows pgx.Rows) ([]*keycard.LogoutDelivery, error) {
	defer rows.Close()
	out := []*keycard.LogoutDelivery{}
	for rows.Next() {
		var d keycard.LogoutDelivery
		if err := rows.Scan(&d.SessionID, &d.ClientID, &d.UserID, &d.BrowserSessionID, &d.Reason, &d.EndedAt, &d.State, &d.Attempts,
			&d.NextAttemptAt, &d.LastError, &d.UpdatedAt, &d.URI); err != nil {
			return nil, err
		}
		d.EndedAt, d.NextAttemptAt, d.UpdatedAt = d.EndedAt.UTC(), d.NextAttemptAt.UTC(), d.UpdatedAt.UTC()
		out = append(out, &d)
	}
	return out, rows.Err()
}

// ClaimLogouts implements keycard.LogoutStore. Concurrent claimers (the
// instances of a cluster) skip the rows another has locked, so each due
// delivery goes to one of them and none waits for another.
func (s *LogoutStore) ClaimLogouts(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*keycard.LogoutDelivery, error) {
	var out []*keycard.LogoutDelivery
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH due AS (
				SELECT session_id FROM logout_deliveries WHERE state = 'pending' AND next_attempt_at <= $1
				ORDER BY next_attempt_at, session_id LIMIT $3 FOR UPDATE SKIP LOCKED
			), claimed AS (
				UPDATE logout_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2
				FROM due WHERE d.session_id = due.session_id
				RETURNING d.*
			)
			SELECT `+logoutColumns+` FROM claimed d LEFT JOIN clients c ON c.id = d.client_id
			ORDER BY d.ended_at, d.session_id`,
			at, at.Add(lease), keycard.PageSize(limit))
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
	if !validText(sessionID) {
		return wrap(op, logoutNotSettled(false))
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE logout_deliveries SET state = $1, next_attempt_at = $2, last_error = $3, updated_at = $4
			WHERE session_id = $5 AND state = 'pending' AND attempts = $6`,
			string(state), next, cleanText(reason), at, sessionID, attempt)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM logout_deliveries WHERE session_id = $1)`, sessionID).Scan(&found); err != nil {
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
	if f.State != "" && !f.State.Valid() {
		return nil, keycard.Errorf(keycard.EINVALID, "Unknown logout delivery state %q.", f.State)
	}
	if !validText(f.ClientID) {
		return []*keycard.LogoutDelivery{}, nil
	}
	rows, err := s.db.reads().Query(ctx, `SELECT `+logoutColumns+` FROM logout_deliveries d LEFT JOIN clients c ON c.id = d.client_id
		WHERE ($1 = '' OR d.state = $1) AND ($2 = '' OR d.client_id = $2)
		ORDER BY d.ended_at DESC, d.session_id DESC LIMIT $3`, string(f.State), f.ClientID, keycard.PageSize(f.Limit))
	if err != nil {
		return nil, wrap("list logouts", err)
	}
	out, err := scanLogouts(rows)
	return out, wrap("list logouts", err)
}

// PruneLogouts implements keycard.LogoutStore.
func (s *LogoutStore) PruneLogouts(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM logout_deliveries WHERE state <> 'pending' AND updated_at < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return n, wrap("prune logouts", err)
}
