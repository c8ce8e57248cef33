package keycard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// WebhookSecretPrefix starts every webhook signing secret (Standard
// Webhooks: the HMAC key is the standard base64 after it).
const WebhookSecretPrefix = "whsec_"

// webhookSecretLen is the number of random bytes in a secret made by
// NewWebhookSecret (Standard Webhooks asks for 24 to 64).
const webhookSecretLen = 32

// NewWebhookSecret returns a new signing secret: WebhookSecretPrefix and
// the standard base64 of 32 bytes read from r (normally
// crypto/rand.Reader).
func NewWebhookSecret(r io.Reader) (string, error) {
	var b [webhookSecretLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("keycard: reading a random webhook secret: %w", err)
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// Webhook event types: the type member of a webhook's body.
const (
	// WebhookUserCreated: a user was registered, by sign-up, an admin or
	// the command line (audit type user.created).
	WebhookUserCreated = "user.created"
	// WebhookUserSignedIn: a user signed in with their password,
	// including a step-up reauthentication (audit type login.succeeded).
	WebhookUserSignedIn = "user.signed_in"
	// WebhookPasswordChanged: a user's password was changed (audit type
	// user.password_changed).
	WebhookPasswordChanged = "user.password_changed"
	// WebhookSessionRevoked: sessions of a user were ended: logout,
	// logout everywhere, refresh token theft, an admin's action, the
	// session cap, a revoked app access or refresh token (audit types
	// session.revoked and refresh.reuse_detected).
	WebhookSessionRevoked = "session.revoked"
	// WebhookMFAEnrolled: a user enrolled a second factor (audit type
	// mfa.enrolled, recorded when an authenticator app is confirmed).
	WebhookMFAEnrolled = "mfa.enrolled"
)

// WebhookEventTypes returns every webhook event type, in a fixed order.
func WebhookEventTypes() []string {
	return []string{WebhookUserCreated, WebhookUserSignedIn, WebhookPasswordChanged, WebhookSessionRevoked, WebhookMFAEnrolled}
}

// ValidWebhookEventType reports whether t is a webhook event type.
func ValidWebhookEventType(t string) bool {
	for _, v := range WebhookEventTypes() {
		if t == v {
			return true
		}
	}
	return false
}

// WebhookEndpoint is a URL an admin registered to be told of events.
type WebhookEndpoint struct {
	ID  string
	URL string
	// Secret signs the deliveries (Standard Webhooks: whsec_ then the
	// base64 of the key). It is a credential: it is shown once, when the
	// endpoint is made, and never logged.
	Secret string
	// Events are the event types sent; empty means all of them.
	Events      []string
	Description string
	CreatedAt   time.Time
}

// Wants reports whether the endpoint subscribed to the event type.
func (e *WebhookEndpoint) Wants(eventType string) bool {
	if len(e.Events) == 0 {
		return true
	}
	for _, t := range e.Events {
		if t == eventType {
			return true
		}
	}
	return false
}

// WebhookState says where a webhook delivery stands.
type WebhookState string

const (
	// WebhookPending: not yet delivered; it is claimed when due.
	WebhookPending WebhookState = "pending"
	// WebhookDelivered: the endpoint answered 2xx.
	WebhookDelivered WebhookState = "delivered"
	// WebhookFailed: given up after the last attempt.
	WebhookFailed WebhookState = "failed"
)

// Valid reports whether s is one of the defined states.
func (s WebhookState) Valid() bool {
	switch s {
	case WebhookPending, WebhookDelivered, WebhookFailed:
		return true
	}
	return false
}

// WebhookDelivery is one event owed to one endpoint.
//
// The store makes deliveries by itself, in the transaction that appends
// the audit event they report (AuditStore.AppendAudit, whoever calls it),
// one for each endpoint subscribed to the event's type at that moment: a
// delivery is exactly as durable as the audit log. It keeps what the body
// needs, copied from the audit event.
type WebhookDelivery struct {
	// ID identifies the delivery (the admin API's and replay's handle).
	ID         int64
	EndpointID string
	// EventID is the audit event's id. The message id sent
	// (webhook-id) is made from it, so that every attempt and replay of
	// one event carries the same id and receivers can drop duplicates.
	EventID   int64
	EventType string // a Webhook… type
	// AuditType, Subject and Detail are the audit event's, from which
	// the body's data is made (by an allow-list of fields).
	AuditType string
	Subject   string
	Detail    json.RawMessage
	EventTime time.Time
	State     WebhookState
	// Attempts is how many times the delivery has been claimed, replays
	// included; it only grows, and fences the outcome of an attempt.
	Attempts int
	// ReplayedAttempts is Attempts when the delivery was last replayed
	// (0 if never): the attempts of the current round are Attempts minus
	// ReplayedAttempts.
	ReplayedAttempts int
	// NextAttemptAt is, for a pending delivery, when it can next be
	// claimed: when it is due, or when the lease of the attempt under
	// way runs out.
	NextAttemptAt time.Time
	// LastError says why the last attempt failed; empty if none did.
	LastError string
	UpdatedAt time.Time
	// URL is the endpoint's URL, read with the delivery.
	URL string
	// Secret is the endpoint's signing secret, filled in by
	// ClaimWebhookDeliveries only.
	Secret string
}

// MessageID returns the webhook-id of the delivery: "msg_" and the audit
// event's id, the same for every attempt and replay of one event, to
// every endpoint, so that a receiver can drop a message it already
// handled.
func (d *WebhookDelivery) MessageID() string {
	return "msg_" + strconv.FormatInt(d.EventID, 10)
}

// RoundAttempts returns the attempts made since the delivery was last
// replayed (or made).
func (d *WebhookDelivery) RoundAttempts() int { return d.Attempts - d.ReplayedAttempts }

// WebhookFilter selects a page of deliveries, newest event first.
type WebhookFilter struct {
	// State and EndpointID, when set, must match exactly.
	State      WebhookState
	EndpointID string
	// Before, when not 0, starts the page after the delivery with this
	// id.
	Before int64
	// Limit is the page size; see PageSize.
	Limit int
}

// WebhookStore keeps webhook endpoints and the outbox of their
// deliveries. Deliveries are added by the audit store (see
// WebhookDelivery); a worker claims due ones with a lease, sends them and
// records the outcome. Implementations are safe for concurrent use, also
// by several processes on one database: each due delivery is claimed by
// one caller at a time.
type WebhookStore interface {
	// CreateWebhook stores e. It fails with EINVALID when ID, URL or
	// Secret is empty or an event type is unknown, and ECONFLICT when
	// the id is taken.
	CreateWebhook(ctx context.Context, e *WebhookEndpoint) error
	// Webhook returns the endpoint, or ENOTFOUND.
	Webhook(ctx context.Context, id string) (*WebhookEndpoint, error)
	// ListWebhooks returns every endpoint, oldest first.
	ListWebhooks(ctx context.Context) ([]*WebhookEndpoint, error)
	// DeleteWebhook deletes the endpoint and its deliveries, or fails
	// with ENOTFOUND.
	DeleteWebhook(ctx context.Context, id string) error

	// WebhookDelivery returns the delivery with URL filled in, or
	// ENOTFOUND.
	WebhookDelivery(ctx context.Context, id int64) (*WebhookDelivery, error)
	// ClaimWebhookDeliveries claims up to limit (at most PageSize)
	// pending deliveries due at the given time, oldest due first: each
	// has its Attempts increased by one and its NextAttemptAt set to at
	// plus lease, so that no other caller claims it until then. URL and
	// Secret are filled in.
	ClaimWebhookDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) ([]*WebhookDelivery, error)
	// WebhookDelivered records that the attempt number attempt (the
	// claimed delivery's Attempts) succeeded at the given time. The
	// outcome of an attempt that is no longer the current one, or of a
	// delivery no longer pending, is refused with ECONFLICT; an unknown
	// delivery is ENOTFOUND.
	WebhookDelivered(ctx context.Context, id int64, attempt int, at time.Time) error
	// RetryWebhook records that the attempt failed at the given time with
	// the reason, and that the delivery is due again at next. Errors as
	// WebhookDelivered.
	RetryWebhook(ctx context.Context, id int64, attempt int, at, next time.Time, reason string) error
	// GiveUpWebhook records that the attempt failed with the reason and
	// marks the delivery WebhookFailed. Errors as WebhookDelivered.
	GiveUpWebhook(ctx context.Context, id int64, attempt int, at time.Time, reason string) error
	// ReplayWebhook makes a delivered or failed delivery pending again,
	// due at the given time, with a new round of attempts
	// (ReplayedAttempts = Attempts), and returns it. A pending one is
	// ECONFLICT, an unknown one ENOTFOUND.
	ReplayWebhook(ctx context.Context, id int64, at time.Time) (*WebhookDelivery, error)
	// ListWebhookDeliveries returns a page of deliveries, newest first,
	// with URL filled in. It fails with EINVALID for an unknown state.
	ListWebhookDeliveries(ctx context.Context, f WebhookFilter) ([]*WebhookDelivery, error)
	// PruneWebhookDeliveries deletes delivered and failed deliveries last
	// updated before the given time, and returns how many.
	PruneWebhookDeliveries(ctx context.Context, before time.Time) (int64, error)
}
