package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/keycard-auth/keycard"
)

// sessionColumnTypes are the types of sessionColumns, in order: an
// INSERT … SELECT of parameters needs them spelled out.
var sessionColumnTypes = []string{"text", "text", "text", "text", "text", "timestamptz", "timestamptz", "text[]", "timestamptz",
	"text", "text", "bigint", "timestamptz", "timestamptz", "text", "text", "text", "text", "text"}

// redeemSealedFast is the common case of a sealed code's redemption —
// the code's first use, its browser session a live sign-in of the user,
// the consent there when needed — in one statement and one round trip,
// where the general path takes two pipelines and seven statements
// (BEGIN, the parent's read, the use's insert; the grant session's, its
// token's and the audit row's inserts, COMMIT). Every insert depends on
// the one before it, the first on the parent's row (locked FOR SHARE, as
// the general path locks it) and the consent's, so the statement writes
// everything or nothing. It reports false, having written nothing, for
// every other case — a code used before, an ended or unknown parent, a
// missing consent, an audit event the store refuses — which the general
// path then decides and reports as before.
func (s *GrantStore) redeemSealedFast(ctx context.Context, r keycard.RedeemRequest) (bool, error) {
	if r.Audit != nil && (r.Audit.Type == "" || !keycard.ValidAuditDetail(r.Audit.Detail)) {
		return false, nil
	}
	args := sessionArgs(r.Session)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var q strings.Builder
	at := arg(r.At)
	q.WriteString(`WITH p AS (SELECT FROM sessions WHERE id = ` + arg(r.Session.ParentID) + ` AND parent_id IS NULL AND user_id = $2
		AND revoked_at IS NULL AND expires_at > ` + at + ` AND ` + idleEnd + ` > ` + at + ` FOR SHARE)`)
	from := `p`
	if r.NeedsConsent {
		q.WriteString(`,
	c AS (SELECT FROM consents WHERE user_id = $2 AND client_id = $4 AND created_at <= ` + arg(r.ExpiresAt.Add(-keycard.AuthCodeLifetime)) + ` FOR SHARE)`)
		from = `p, c`
	}
	q.WriteString(`,
	u AS (INSERT INTO used_auth_codes (expires_at, id, grant_session_id) SELECT ` + arg(r.ExpiresAt) + `::timestamptz, ` + arg(r.ID) + `::text, $1::text FROM ` + from + `
		ON CONFLICT DO NOTHING RETURNING 1),
	s AS (INSERT INTO sessions (` + sessionColumns + `) SELECT `)
	for i, typ := range sessionColumnTypes {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("$" + strconv.Itoa(i+1) + "::" + typ)
	}
	q.WriteString(` FROM u RETURNING id)`)
	if t := r.First; t != nil {
		q.WriteString(`,
	t AS (INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at) SELECT ` + arg(t.ID) + `::text, id, ` + arg(t.SecretHash) + `::bytea, ` + arg(t.CreatedAt) + `::timestamptz FROM s)`)
	}
	audit := `NULL::bigint`
	if e := r.Audit; e != nil {
		detail := "{}"
		if len(e.Detail) > 0 {
			detail = string(e.Detail) // see queueAudit
		}
		q.WriteString(`,
	a AS (INSERT INTO audit_events (time, type, actor, subject, client_addr, user_agent, detail) SELECT ` +
			arg(e.Time) + `::timestamptz, ` + arg(cleanText(e.Type)) + `::text, ` + arg(cleanText(e.Actor)) + `::text, ` + arg(cleanText(e.Subject)) + `::text, ` +
			arg(cleanText(e.ClientAddr)) + `::text, ` + arg(cleanText(e.UserAgent)) + `::text, ` + arg(detail) + `::text::json FROM s RETURNING id)`)
		audit = `(SELECT id FROM a)`
	}
	q.WriteString(`
	SELECT ` + audit + ` FROM s`)
	var auditID *int64
	err := s.db.pool.QueryRow(ctx, q.String(), args...).Scan(&auditID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil // nothing was written: every insert depends on p
	case err != nil:
		// Also a lost connection: whether the statement committed is
		// unknown, as when the general path loses it after COMMIT.
		return false, sessionConflict(err)
	}
	if r.Audit != nil && auditID != nil {
		r.Audit.ID = *auditID
	}
	if r.First != nil {
		r.First.SessionID = r.Session.ID
	}
	return true, nil
}
