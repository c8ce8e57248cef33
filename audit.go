package keycard

import (
	"context"
	"encoding/json"
	"time"
)

// Audit event types recorded by the auth server.
const (
	AuditUserCreated     = "user.created"
	AuditUserUpdated     = "user.updated"
	AuditPasswordChanged = "user.password_changed"
	AuditLoginSucceeded  = "login.succeeded"
	AuditLoginFailed     = "login.failed"
	AuditLoginThrottled  = "login.throttled" // refused by the login throttle before the password check
	AuditLogout          = "session.revoked"
	AuditTokenReuse      = "refresh.reuse_detected"
	AuditRefresh         = "refresh.rotated"
	AuditKeyRotated      = "key.rotated"
	AuditKeyRevoked      = "key.revoked"
	AuditRevokeAll       = "revoke_all"
)

// AuditEvent is one security-relevant event. It must never hold a
// password, token or secret.
type AuditEvent struct {
	// ID is assigned by the store, increasing.
	ID   int64
	Time time.Time
	Type string
	// Actor is who did it (a user or client id), empty if unknown.
	Actor string
	// Subject is what it was done to (a user, session or key id).
	Subject    string
	ClientAddr string
	UserAgent  string
	// Detail is a JSON object with type-specific fields; nil means {}.
	Detail json.RawMessage
}

// ValidAuditDetail reports whether d is an AuditEvent's Detail a store
// accepts: empty, or a JSON object. It is what decoding d into a map
// accepts (a valid JSON value whose first byte past white space is '{'),
// without decoding it: stores check every event, inside their write
// transactions.
func ValidAuditDetail(d json.RawMessage) bool {
	if len(d) == 0 {
		return true
	}
	for _, c := range d {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(d)
		}
		return false
	}
	return false
}

// AuditFilter selects a page of audit events, newest first.
type AuditFilter struct {
	// Type and Subject, when set, must match exactly.
	Type    string
	Subject string
	// User, when set, must match exactly either Actor or Subject: the
	// events a user did or had done to them.
	User string
	// Since and Until, when not zero, select events with Since <= Time
	// and Time < Until.
	Since time.Time
	Until time.Time
	// Before, when not 0, starts the page after the event with this id.
	Before int64
	// Limit is the page size; see PageSize.
	Limit int
}

// AuditStore keeps the audit log. Implementations are safe for concurrent
// use.
type AuditStore interface {
	// AppendAudit records e and sets e.ID. It fails with EINVALID if Type
	// is empty or Detail is not a JSON object.
	AppendAudit(ctx context.Context, e *AuditEvent) error

	// ListAudit returns a page of events, newest first.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEvent, error)
}
