package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
)

// WebhookStore implements keycard.WebhookStore. The deliveries themselves
// are made by a trigger on audit_events (migration 0008).
type WebhookStore struct{ db *DB }

var _ keycard.WebhookStore = (*WebhookStore)(nil)

// NewWebhookStore returns the webhook store on db.
func NewWebhookStore(db *DB) *WebhookStore { return &WebhookStore{db: db} }

// validWebhook checks what the store requires of an endpoint.
func validWebhook(e *keycard.WebhookEndpoint) error {
	if e.ID == "" || e.URL == "" || e.Secret == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A webhook endpoint needs an id, a URL and a secret."}
	}
	for _, t := range e.Events {
		if !keycard.ValidWebhookEventType(t) {
			return keycard.Errorf(keycard.EINVALID, "Unknown webhook event type %q.", t)
		}
	}
	return nil
}

func errWebhookNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Webhook endpoint not found."}
}

func errDeliveryNotFound() error {
	return &keycard.Error{Code: keycard.ENOTFOUND, Message: "Webhook delivery not found."}
}

// CreateWebhook implements keycard.WebhookStore.
func (s *WebhookStore) CreateWebhook(ctx context.Context, e *keycard.WebhookEndpoint) error {
	if err := validWebhook(e); err != nil {
		return err
	}
	events, err := json.Marshal(append([]string{}, e.Events...))
	if err != nil {
		return wrap("create webhook", err)
	}
	err = s.db.update(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webhook_endpoints (id, url, secret, events, description, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			e.ID, e.URL, e.Secret, string(events), e.Description, micros(e.CreatedAt))
		if isConstraint(err) {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Webhook endpoint already exists."}
		}
		return err
	})
	return wrap("create webhook", err)
}

const webhookColumns = `id, url, secret, events, description, created_at`

func scanWebhook(row scanner) (*keycard.WebhookEndpoint, error) {
	var (
		e       keycard.WebhookEndpoint
		events  string
		created sql.NullInt64
	)
	if err := row.Scan(&e.ID, &e.URL, &e.Secret, &events, &e.Description, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &e.Events); err != nil {
		return nil, err
	}
	if len(e.Events) == 0 {
		e.Events = nil
	}
	e.CreatedAt = fromMicros(created)
	return &e, nil
}

// Webhook implements keycard.WebhookStore.
func (s *WebhookStore) Webhook(ctx context.Context, id string) (*keycard.WebhookEndpoint, error) {
	e, err := scanWebhook(s.db.reader().QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, errWebhookNotFound()
	}
	return e, wrap("webhook", err)
}

// ListWebhooks implements keycard.WebhookStore.
func (s *WebhookStore) ListWebhooks(ctx context.Context) ([]*keycard.WebhookEndpoint, error) {
	rows, err := s.db.reader().QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("list webhooks", err)
	}
	defer rows.Close()
	out := []*keycard.WebhookEndpoint{}
	for rows.Next() {
		e, err := scanWebhook(rows)
		if err != nil {
			return nil, wrap("list webhooks", err)
		}
		out = append(out, e)
	}
	return out, wrap("list webhooks", rows.Err())
}

// DeleteWebhook implements keycard.WebhookStore.
func (s *WebhookStore) DeleteWebhook(ctx context.Context, id string) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_endpoints WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return errWebhookNotFound()
	})
	return wrap("delete webhook", err)
}

// deliverySelect selects a delivery's columns, its endpoint's URL and
// secret.
const deliverySelect = `SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.audit_type, d.subject, d.detail, d.event_time,
	d.state, d.attempts, d.replayed_attempts, d.next_attempt_at, d.last_error, d.updated_at, e.url, e.secret
	FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id`

// scanDeliveries reads deliveries, keeping their secret only if
// withSecret.
func scanDeliveries(rows *sql.Rows, withSecret bool) ([]*keycard.WebhookDelivery, error) {
	defer rows.Close()
	out := []*keycard.WebhookDelivery{}
	for rows.Next() {
		var (
			d                          keycard.WebhookDelivery
			detail                     string
			eventTime, next, updatedAt sql.NullInt64
		)
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.AuditType, &d.Subject, &detail, &eventTime,
			&d.State, &d.Attempts, &d.ReplayedAttempts, &next, &d.LastError, &updatedAt, &d.URL, &d.Secret); err != nil {
			return nil, err
		}
		d.Detail = json.RawMessage(detail)
		d.EventTime, d.NextAttemptAt, d.UpdatedAt = fromMicros(eventTime), fromMicros(next), fromMicros(updatedAt)
		if !withSecret {
			d.Secret = ""
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}

// deliveriesByID reads the deliveries with the ids inside tx, oldest
// first.
func deliveriesByID(ctx context.Context, tx txn, ids []any, withSecret bool) ([]*keycard.WebhookDelivery, error) {
	if len(ids) == 0 {
		return []*keycard.WebhookDelivery{}, nil
	}
	rows, err := tx.QueryContext(ctx, deliverySelect+` WHERE d.id IN (?`+strings.Repeat(", ?", len(ids)-1)+`) ORDER BY d.id`, ids...)
	if err != nil {
		return nil, err
	}
	return scanDeliveries(rows, withSecret)
}

// WebhookDelivery implements keycard.WebhookStore.
func (s *WebhookStore) WebhookDelivery(ctx context.Context, id int64) (*keycard.WebhookDelivery, error) {
	rows, err := s.db.reader().QueryContext(ctx, deliverySelect+` WHERE d.id = ?`, id)
	if err != nil {
		return nil, wrap("webhook delivery", err)
	}
	ds, err := scanDeliveries(rows, false)
	if err != nil {
		return nil, wrap("webhook delivery", err)
	}
	if len(ds) == 0 {
		return nil, errDeliveryNotFound()
	}
	return ds[0], nil
}

// ClaimWebhookDeliveries implements keycard.WebhookStore. SQLite has one
// writer at a time, so the claim's transaction alone keeps two claimers
// from taking one delivery.
func (s *WebhookStore) ClaimWebhookDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*keycard.WebhookDelivery, error) {
	var out []*keycard.WebhookDelivery
	err := s.db.update(ctx, func(tx txn) error {
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ?)
			RETURNING id`, micros(at.Add(lease)), micros(at), keycard.PageSize(limit))
		if err != nil {
			return err
		}
		var ids []any
		for rows.Next() {
			var id int64
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
		out, err = deliveriesByID(ctx, tx, ids, true)
		return err
	})
	if err != nil {
		return nil, wrap("claim webhook deliveries", err)
	}
	return out, nil
}

// settleWebhook records the outcome of attempt number attempt of the
// pending delivery.
func (s *WebhookStore) settleWebhook(ctx context.Context, op string, id int64, attempt int, state keycard.WebhookState, next, at time.Time, reason string) error {
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, last_error = ?, updated_at = ?
			WHERE id = ? AND state = 'pending' AND attempts = ?`,
			string(state), micros(next), reason, micros(at), id, attempt)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = ?)`, id).Scan(&found); err != nil {
			return err
		}
		return webhookNotSettled(found)
	})
	return wrap(op, err)
}

// webhookNotSettled is the error for an outcome that changed nothing.
func webhookNotSettled(found bool) error {
	if !found {
		return errDeliveryNotFound()
	}
	return &keycard.Error{Code: keycard.ECONFLICT, Message: "The webhook delivery's attempt is no longer the current one."}
}

// WebhookDelivered implements keycard.WebhookStore.
func (s *WebhookStore) WebhookDelivered(ctx context.Context, id int64, attempt int, at time.Time) error {
	return s.settleWebhook(ctx, "webhook delivered", id, attempt, keycard.WebhookDelivered, at, at, "")
}

// RetryWebhook implements keycard.WebhookStore.
func (s *WebhookStore) RetryWebhook(ctx context.Context, id int64, attempt int, at, next time.Time, reason string) error {
	return s.settleWebhook(ctx, "retry webhook", id, attempt, keycard.WebhookPending, next, at, reason)
}

// GiveUpWebhook implements keycard.WebhookStore.
func (s *WebhookStore) GiveUpWebhook(ctx context.Context, id int64, attempt int, at time.Time, reason string) error {
	return s.settleWebhook(ctx, "give up webhook", id, attempt, keycard.WebhookFailed, at, at, reason)
}

// ReplayWebhook implements keycard.WebhookStore.
func (s *WebhookStore) ReplayWebhook(ctx context.Context, id int64, at time.Time) (*keycard.WebhookDelivery, error) {
	var out *keycard.WebhookDelivery
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = 'pending', replayed_attempts = attempts,
			next_attempt_at = ?, updated_at = ? WHERE id = ? AND state <> 'pending'`, micros(at), micros(at), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		ds, err := deliveriesByID(ctx, tx, []any{id}, false)
		switch {
		case err != nil:
			return err
		case len(ds) == 0:
			return errDeliveryNotFound()
		case n == 0:
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "The webhook delivery is still pending."}
		}
		out = ds[0]
		return nil
	})
	if err != nil {
		return nil, wrap("replay webhook", err)
	}
	return out, nil
}

// ListWebhookDeliveries implements keycard.WebhookStore.
func (s *WebhookStore) ListWebhookDeliveries(ctx context.Context, f keycard.WebhookFilter) ([]*keycard.WebhookDelivery, error) {
	query, args := deliverySelect+` WHERE 1 = 1`, []any{}
	if f.State != "" {
		if !f.State.Valid() {
			return nil, keycard.Errorf(keycard.EINVALID, "Unknown webhook delivery state %q.", f.State)
		}
		query += ` AND d.state = ?`
		args = append(args, string(f.State))
	}
	if f.EndpointID != "" {
		query += ` AND d.endpoint_id = ?`
		args = append(args, f.EndpointID)
	}
	if f.Before != 0 {
		query += ` AND d.id < ?`
		args = append(args, f.Before)
	}
	query += ` ORDER BY d.id DESC LIMIT ?`
	rows, err := s.db.reader().QueryContext(ctx, query, append(args, keycard.PageSize(f.Limit))...)
	if err != nil {
		return nil, wrap("list webhook deliveries", err)
	}
	out, err := scanDeliveries(rows, false)
	return out, wrap("list webhook deliveries", err)
}

// PruneWebhookDeliveries implements keycard.WebhookStore.
func (s *WebhookStore) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < ?`, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, wrap("prune webhook deliveries", err)
}
