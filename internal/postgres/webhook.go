package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// WebhookStore implements keycard.WebhookStore. The deliveries themselves
// are made by a trigger on audit_events (migration 0006).
type WebhookStore struct{ db *DB }

var _ keycard.WebhookStore = (*WebhookStore)(nil)

// validWebhook checks what the store requires of an endpoint.
func validWebhook(e *keycard.WebhookEndpoint) error {
	if e.ID == "" || e.URL == "" || e.Secret == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "A webhook endpoint needs an id, a URL and a secret."}
	}
	if !validText(e.ID, e.URL, e.Secret, e.Description) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "The webhook endpoint holds a value the database cannot store."}
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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, url, secret, events, description, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			e.ID, e.URL, e.Secret, append([]string{}, e.Events...), e.Description, e.CreatedAt)
		if pgCode(err) == uniqueViolation {
			return &keycard.Error{Code: keycard.ECONFLICT, Message: "Webhook endpoint already exists."}
		}
		return err
	})
	return wrap("create webhook", err)
}

const webhookColumns = `id, url, secret, events, description, created_at`

func scanWebhook(row pgx.Row) (*keycard.WebhookEndpoint, error) {
	var e keycard.WebhookEndpoint
	if err := row.Scan(&e.ID, &e.URL, &e.Secret, &e.Events, &e.Description, &e.CreatedAt); err != nil {
		return nil, err
	}
	if len(e.Events) == 0 {
		e.Events = nil
	}
	e.CreatedAt = e.CreatedAt.UTC()
	return &e, nil
}

// Webhook implements keycard.WebhookStore.
func (s *WebhookStore) Webhook(ctx context.Context, id string) (*keycard.WebhookEndpoint, error) {
	if !validText(id) {
		return nil, errWebhookNotFound()
	}
	e, err := scanWebhook(s.db.reads().QueryRow(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints WHERE id = $1`, id))
	if err == pgx.ErrNoRows {
		return nil, errWebhookNotFound()
	}
	return e, wrap("webhook", err)
}

// ListWebhooks implements keycard.WebhookStore.
func (s *WebhookStore) ListWebhooks(ctx context.Context) ([]*keycard.WebhookEndpoint, error) {
	rows, err := s.db.reads().Query(ctx, `SELECT `+webhookColumns+` FROM webhook_endpoints ORDER BY created_at, id`)
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
	if !validText(id) {
		return errWebhookNotFound()
	}
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1`, id)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		return errWebhookNotFound()
	})
	return wrap("delete webhook", err)
}

// deliveryColumns are a delivery's columns, of the table aliased d, and
// its endpoint's URL and secret, of webhook_endpoints aliased e.
const deliveryColumns = `d.id, d.endpoint_id, d.event_id, d.event_type, d.audit_type, d.subject, d.detail::text, d.event_time,
	d.state, d.attempts, d.replayed_attempts, d.next_attempt_at, d.last_error, d.updated_at, e.url, e.secret`

// scanDeliveries reads deliveries, keeping their secret only if
// withSecret.
func scanDeliveries(rows pgx.Rows, withSecret bool) ([]*keycard.WebhookDelivery, error) {
	defer rows.Close()
	out := []*keycard.WebhookDelivery{}
	for rows.Next() {
		var (
			d      keycard.WebhookDelivery
			detail string
		)
		if err := rows.Scan(&d.ID, &d.EndpointID, &d.EventID, &d.EventType, &d.AuditType, &d.Subject, &detail, &d.EventTime,
			&d.State, &d.Attempts, &d.ReplayedAttempts, &d.NextAttemptAt, &d.LastError, &d.UpdatedAt, &d.URL, &d.Secret); err != nil {
			return nil, err
		}
		d.Detail = json.RawMessage(detail)
		d.EventTime, d.NextAttemptAt, d.UpdatedAt = d.EventTime.UTC(), d.NextAttemptAt.UTC(), d.UpdatedAt.UTC()
		if !withSecret {
			d.Secret = ""
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}

// WebhookDelivery implements keycard.WebhookStore.
func (s *WebhookStore) WebhookDelivery(ctx context.Context, id int64) (*keycard.WebhookDelivery, error) {
	rows, err := s.db.reads().Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.id = $1`, id)
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

// ClaimWebhookDeliveries implements keycard.WebhookStore. Concurrent
// claimers (the instances of a cluster) skip the rows another has locked,
// so each due delivery goes to one of them and none waits for another.
func (s *WebhookStore) ClaimWebhookDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*keycard.WebhookDelivery, error) {
	var out []*keycard.WebhookDelivery
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `WITH due AS (
				SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1
				ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
			), claimed AS (
				UPDATE webhook_deliveries d SET attempts = d.attempts + 1, next_attempt_at = $2
				FROM due WHERE d.id = due.id
				RETURNING d.*
			)
			SELECT `+deliveryColumns+` FROM claimed d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			ORDER BY d.id`,
			at, at.Add(lease), keycard.PageSize(limit))
		if err != nil {
			return err
		}
		out, err = scanDeliveries(rows, true)
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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, last_error = $3, updated_at = $4
			WHERE id = $5 AND state = 'pending' AND attempts = $6`,
			string(state), next, cleanText(reason), at, id, attempt)
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var found bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1)`, id).Scan(&found); err != nil {
			return err
		}
		if !found {
			return errDeliveryNotFound()
		}
		return &keycard.Error{Code: keycard.ECONFLICT, Message: "The webhook delivery's attempt is no longer the current one."}
	})
	return wrap(op, err)
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
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = 'pending', replayed_attempts = attempts,
			next_attempt_at = $1, updated_at = $1 WHERE id = $2 AND state <> 'pending'`, at, id)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
			WHERE d.id = $1`, id)
		if err != nil {
			return err
		}
		ds, err := scanDeliveries(rows, false)
		switch {
		case err != nil:
			return err
		case len(ds) == 0:
			return errDeliveryNotFound()
		case tag.RowsAffected() == 0:
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
	if f.State != "" && !f.State.Valid() {
		return nil, keycard.Errorf(keycard.EINVALID, "Unknown webhook delivery state %q.", f.State)
	}
	if !validText(f.EndpointID) {
		return []*keycard.WebhookDelivery{}, nil
	}
	rows, err := s.db.reads().Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE ($1 = '' OR d.state = $1) AND ($2 = '' OR d.endpoint_id = $2) AND ($3 = 0 OR d.id < $3)
		ORDER BY d.id DESC LIMIT $4`, string(f.State), f.EndpointID, f.Before, keycard.PageSize(f.Limit))
	if err != nil {
		return nil, wrap("list webhook deliveries", err)
	}
	out, err := scanDeliveries(rows, false)
	return out, wrap("list webhook deliveries", err)
}

// PruneWebhookDeliveries implements keycard.WebhookStore.
func (s *WebhookStore) PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.db.update(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < $1`, before)
		n = tag.RowsAffected()
		return err
	})
	return n, wrap("prune webhook deliveries", err)
}
