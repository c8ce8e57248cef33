package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard"
)

// AuditStore implements keycard.AuditStore.
type AuditStore struct{ db *DB }

var _ keycard.AuditStore = (*AuditStore)(nil)

// AppendAudit implements keycard.AuditStore.
func (s *AuditStore) AppendAudit(ctx context.Context, e *keycard.AuditEvent) error {
	b := &pgx.Batch{}
	if err := queueAudit(b, e); err != nil {
		return err
	}
	err := s.db.pipeline(ctx, b, func(pgx.BatchResults) error { return nil })
	return wrap("append audit", err)
}

// queueAudit queues the insert of e into b and arranges for e.ID to be set
// when it runs.
func queueAudit(b *pgx.Batch, e *keycard.AuditEvent) error {
	if e.Type == "" || !keycard.ValidAuditDetail(e.Detail) {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Audit event needs a type, and its detail must be a JSON object."}
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		// A JSON object is valid UTF-8, but may escape a NUL (\u0000),
		// which the json type accepts and jsonb would not.
		detail = string(e.Detail)
	}
	b.Queue(`INSERT INTO audit_events (time, type, actor, subject, client_addr, user_agent, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7::text::json) RETURNING id`,
		e.Time, cleanText(e.Type), cleanText(e.Actor), cleanText(e.Subject), cleanText(e.ClientAddr), cleanText(e.UserAgent), detail).
		QueryRow(func(row pgx.Row) error { return row.Scan(&e.ID) })
	return nil
}

// ListAudit implements keycard.AuditStore.
func (s *AuditStore) ListAudit(ctx context.Context, f keycard.AuditFilter) ([]*keycard.AuditEvent, error) {
	if !validText(f.Type, f.Subject, f.User) {
		return []*keycard.AuditEvent{}, nil
	}
	query := `SELECT id, time, type, actor, subject, client_addr, user_agent, detail::text FROM audit_events WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return placeholder(len(args))
	}
	if f.Type != "" {
		query += ` AND type = ` + arg(f.Type)
	}
	if f.Subject != "" {
		query += ` AND subject = ` + arg(f.Subject)
	}
	if f.User != "" {
		p := arg(f.User)
		query += ` AND (actor = ` + p + ` OR subject = ` + p + `)`
	}
	if !f.Since.IsZero() {
		query += ` AND time >= ` + arg(f.Since)
	}
	if !f.Until.IsZero() {
		query += ` AND time < ` + arg(f.Until)
	}
	if f.Before != 0 {
		query += ` AND id < ` + arg(f.Before)
	}
	query += ` ORDER BY id DESC LIMIT ` + arg(keycard.PageSize(f.Limit))
	rows, err := s.db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	defer rows.Close()
	events := []*keycard.AuditEvent{}
	for rows.Next() {
		var (
			e      keycard.AuditEvent
			t      time.Time
			detail string
		)
		if err := rows.Scan(&e.ID, &t, &e.Type, &e.Actor, &e.Subject, &e.ClientAddr, &e.UserAgent, &detail); err != nil {
			return nil, wrap("list audit", err)
		}
		e.Time, e.Detail = t.UTC(), json.RawMessage(detail)
		events = append(events, &e)
	}
	return events, wrap("list audit", rows.Err())
}
