package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/keycard-auth/keycard"
)

// AuditStore implements keycard.AuditStore.
type AuditStore struct{ db *DB }

var _ keycard.AuditStore = (*AuditStore)(nil)

// NewAuditStore returns the audit store on db.
func NewAuditStore(db *DB) *AuditStore { return &AuditStore{db: db} }

// AppendAudit implements keycard.AuditStore.
func (s *AuditStore) AppendAudit(ctx context.Context, e *keycard.AuditEvent) error {
	err := s.db.update(ctx, func(tx txn) error { return insertAudit(ctx, tx, e) })
	return wrap("append audit", err)
}

// insertAudit appends e inside the transaction tx.
func insertAudit(ctx context.Context, tx txn, e *keycard.AuditEvent) error {
	if e.Type == "" || !keycard.ValidAuditDetail(e.Detail) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Audit event needs a type, and its detail must be a JSON object."}
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		detail = string(e.Detail)
	}
	// An Exec and the rowid cost less than RETURNING's rows.
	res, err := tx.rawExec(ctx, `INSERT INTO audit_events (time, type, actor, subject, client_addr, user_agent, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		micros(e.Time), e.Type, e.Actor, e.Subject, e.ClientAddr, e.UserAgent, detail)
	if err != nil {
		return err
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	if !webhookAudit(e.Type) {
		return nil
	}
	// The deliveries the event owes, one per endpoint that takes its
	// webhook event type (all of them for an endpoint with no list), in
	// the event's transaction.
	_, err = tx.rawExec(ctx, `INSERT OR IGNORE INTO webhook_deliveries (endpoint_id, event_id, event_type, audit_type, subject, detail, event_time, next_attempt_at, updated_at)
		SELECT e.id, ?1, t.event_type, ?2, ?3, ?4, ?5, ?5, ?5
		FROM webhook_endpoints e, (SELECT CASE ?2
				WHEN 'login.succeeded' THEN 'user.signed_in'
				WHEN 'refresh.reuse_detected' THEN 'session.revoked'
				ELSE ?2 END AS event_type) t
		WHERE e.events = '[]' OR EXISTS (SELECT 1 FROM json_each(e.events) WHERE value = t.event_type)`,
		e.ID, e.Type, e.Subject, detail, micros(e.Time))
	return err
}

// webhookAudit reports whether an audit event of type typ owes webhook
// deliveries: the audit types of keycard's webhook event types (see
// keycard.WebhookUserCreated and the others), as the trigger
// audit_events_webhooks chose them until migration 0017 and as
// PostgreSQL's trigger of that name still does. An audit event of any
// other type is one insert.
func webhookAudit(typ string) bool {
	switch typ {
	case keycard.AuditUserCreated, keycard.AuditLoginSucceeded, keycard.AuditPasswordChanged,
		keycard.AuditLogout, keycard.AuditTokenReuse,
		"mfa.enrolled": // auth.AuditMFAEnrolled
		return true
	}
	return false
}

// ListAudit implements keycard.AuditStore.
func (s *AuditStore) ListAudit(ctx context.Context, f keycard.AuditFilter) ([]*keycard.AuditEvent, error) {
	query := `SELECT id, time, type, actor, subject, client_addr, user_agent, detail FROM audit_events WHERE 1 = 1`
	var args []any
	if f.Type != "" {
		query += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.Subject != "" {
		query += ` AND subject = ?`
		args = append(args, f.Subject)
	}
	if f.User != "" {
		query += ` AND (actor = ? OR subject = ?)`
		args = append(args, f.User, f.User)
	}
	if !f.Since.IsZero() {
		query += ` AND time >= ?`
		args = append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		query += ` AND time < ?`
		args = append(args, micros(f.Until))
	}
	if f.Before != 0 {
		query += ` AND id < ?`
		args = append(args, f.Before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, keycard.PageSize(f.Limit))
	rows, err := s.db.reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	defer rows.Close()
	events := []*keycard.AuditEvent{}
	for rows.Next() {
		var (
			e      keycard.AuditEvent
			t      sql.NullInt64
			detail string
		)
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.Actor, &e.Subject, &e.ClientAddr, &e.UserAgent, &detail); err != nil {
			return nil, wrap("list audit", err)
		}
		e.Time, e.Detail = fromMicros(t), json.RawMessage(detail)
		events = append(events, &e)
	}
	return events, wrap("list audit", rows.Err())
}
