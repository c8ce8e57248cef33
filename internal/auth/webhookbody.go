package auth

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keycard-auth/keycard"
)

// WebhookBody is the JSON body of a webhook (Standard Webhooks, "Payload
// structure").
type WebhookBody struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"` // when the event happened, RFC 3339
	Data      map[string]any `json:"data"`
}

// auditDetail is every audit detail field a webhook may carry. Anything
// else in the detail is left out: a body is made from an allow-list, so
// that a field added to an audit event later is not sent by accident.
// Audit events never hold passwords, tokens or secrets; neither does a
// body.
type auditDetail struct {
	Username        string   `json:"username"`
	Session         string   `json:"session"`
	Sessions        []string `json:"sessions"`
	Reason          string   `json:"reason"`
	Client          string   `json:"client"`
	Reauthenticated bool     `json:"reauthenticated"`
	SessionsRevoked *int     `json:"sessions_revoked"`
	Method          string   `json:"method"`
}

// NewWebhookBody returns the body of the delivery d: its event type, the
// time of the event and the data of the event type (docs/webhooks.md
// lists them).
func NewWebhookBody(d *keycard.WebhookDelivery) (*WebhookBody, error) {
	var det auditDetail
	if len(d.Detail) > 0 {
		if err := json.Unmarshal(d.Detail, &det); err != nil {
			return nil, fmt.Errorf("auth: the audit detail of webhook of event %d: %w", d.EventID, err)
		}
	}
	data := map[string]any{"user_id": d.Subject}
	switch d.EventType {
	case keycard.WebhookUserCreated:
		if det.Username != "" {
			data["username"] = det.Username
		}
	case keycard.WebhookUserSignedIn:
		data["session_id"] = det.Session
		data["reauthenticated"] = det.Reauthenticated
	case keycard.WebhookPasswordChanged:
		if det.SessionsRevoked != nil {
			data["sessions_revoked"] = *det.SessionsRevoked
		}
	case keycard.WebhookSessionRevoked:
		ids := det.Sessions
		if det.Session != "" {
			ids = []string{det.Session}
		}
		if ids == nil {
			ids = []string{}
		}
		data["session_ids"] = ids
		data["reason"] = det.Reason
		if d.AuditType == keycard.AuditTokenReuse {
			data["reason"] = keycard.RevokeTokenReuse
		}
		if det.Client != "" {
			data["client_id"] = det.Client
		}
	case keycard.WebhookMFAEnrolled:
		data["method"] = det.Method
	default:
		return nil, fmt.Errorf("auth: unknown webhook event type %q", d.EventType)
	}
	return &WebhookBody{Type: d.EventType, Timestamp: d.EventTime.UTC(), Data: data}, nil
}

// WebhookBody returns the JSON body sent for the delivery d
// (NewWebhookBody).
func (s *Service) WebhookBody(d *keycard.WebhookDelivery) ([]byte, error) {
	b, err := NewWebhookBody(d)
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}
