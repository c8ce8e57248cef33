package auth

import (
	"context"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
)

// Webhooks (docs/webhooks.md, docs/decisions/webhooks.md).
const (
	AuditWebhookCreated  = "webhook.created"
	AuditWebhookDeleted  = "webhook.deleted"
	AuditWebhookReplayed = "webhook.replayed"
	// AuditWebhookFailed records a delivery given up: the endpoint was
	// not told of an event.
	AuditWebhookFailed = "webhook.failed"
	// WebhookRetention is how long a delivery delivered or given up
	// stays listed (and can be replayed) before Prune deletes it.
	WebhookRetention = 7 * 24 * time.Hour
	// MaxWebhookDescriptionLen bounds an endpoint's description, in
	// bytes.
	MaxWebhookDescriptionLen = 200
	// MaxWebhookURLLen bounds an endpoint's URL, in bytes.
	MaxWebhookURLLen = 2048
)

// checkWebhookURL checks the URL of an endpoint: absolute, without user
// information or fragment, https, or http on a loopback host, or http
// anywhere when allowHTTP (Config.WebhooksAllowHTTP).
func checkWebhookURL(raw string, allowHTTP bool) error {
	if len(raw) > MaxWebhookURLLen {
		return invalid("Invalid webhook URL: at most %d bytes.", MaxWebhookURLLen)
	}
	if allowHTTP {
		if u, err := url.Parse(raw); err == nil && u.Scheme == "http" {
			raw = "https" + strings.TrimPrefix(raw, "http") // the other rules still apply
		}
	}
	return checkServerURI("webhook URL", raw)
}

// WebhookSpec is an endpoint to register.
type WebhookSpec struct {
	// URL is where deliveries are posted: https, or http on a loopback
	// host; http on any host with Config.WebhooksAllowHTTP or AllowHTTP.
	URL string
	// Events are the event types to send; none means all.
	Events      []string
	Description string
	// AllowHTTP is the operator's explicit allowance of http on any host
	// for this endpoint (keycard webhooks add --allow-http).
	AllowHTTP bool
}

// CreateWebhook registers an endpoint as spec describes, with a new
// signing secret, returned in the endpoint: shown only this once.
func (s *Service) CreateWebhook(ctx context.Context, by Actor, spec WebhookSpec) (*keycard.WebhookEndpoint, error) {
	rawURL, events, description := spec.URL, spec.Events, spec.Description
	if err := checkWebhookURL(rawURL, s.cfg.WebhooksAllowHTTP || spec.AllowHTTP); err != nil {
		return nil, err
	}
	events, err := cleanList("event type", events, len(keycard.WebhookEventTypes()), 64, keycard.ValidWebhookEventType)
	if err != nil {
		return nil, keycard.Errorf(keycard.EINVALID, "Unknown webhook event type: use %s.", strings.Join(keycard.WebhookEventTypes(), ", "))
	}
	if len(description) > MaxWebhookDescriptionLen || !utf8.ValidString(description) || strings.IndexFunc(description, unicode.IsControl) >= 0 {
		return nil, keycard.Errorf(keycard.EINVALID, "Webhook description must be at most %d bytes of UTF-8 text without control characters.", MaxWebhookDescriptionLen)
	}
	id, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	secret, err := keycard.NewWebhookSecret(s.rand)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 {
		events = nil
	}
	e := &keycard.WebhookEndpoint{ID: id, URL: rawURL, Secret: secret, Events: events, Description: description, CreatedAt: s.now()}
	if err := s.stores.Webhooks.CreateWebhook(ctx, e); err != nil {
		return nil, err
	}
	s.audit(ctx, AuditWebhookCreated, by, id, map[string]any{"url": rawURL, "events": nonNilRoles(events)})
	return e, nil
}

// Webhooks returns every endpoint, oldest first, without their secrets.
func (s *Service) Webhooks(ctx context.Context) ([]*keycard.WebhookEndpoint, error) {
	es, err := s.stores.Webhooks.ListWebhooks(ctx)
	for _, e := range es {
		e.Secret = ""
	}
	return es, err
}

// Webhook returns the endpoint without its secret, or ENOTFOUND.
func (s *Service) Webhook(ctx context.Context, id string) (*keycard.WebhookEndpoint, error) {
	e, err := s.stores.Webhooks.Webhook(ctx, id)
	if err != nil {
		return nil, err
	}
	e.Secret = ""
	return e, nil
}

// DeleteWebhook deletes the endpoint and its deliveries: what was owed to
// it is not sent.
func (s *Service) DeleteWebhook(ctx context.Context, by Actor, id string) error {
	if err := s.stores.Webhooks.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	s.audit(ctx, AuditWebhookDeleted, by, id, nil)
	return nil
}

// WebhookDeliveries returns a page of deliveries, newest first.
func (s *Service) WebhookDeliveries(ctx context.Context, f keycard.WebhookFilter) ([]*keycard.WebhookDelivery, error) {
	return s.stores.Webhooks.ListWebhookDeliveries(ctx, f)
}

// ReplayWebhook sends a delivered or given-up delivery again, at once,
// with a new round of attempts and the same message id (webhook-id).
func (s *Service) ReplayWebhook(ctx context.Context, by Actor, id int64) (*keycard.WebhookDelivery, error) {
	d, err := s.stores.Webhooks.ReplayWebhook(ctx, id, s.now())
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditWebhookReplayed, by, d.EndpointID, map[string]any{"delivery": d.ID, "event": d.EventType, "webhook_id": d.MessageID()})
	return d, nil
}

// WebhookGivenUp records in the audit log, as the system's act, that the
// delivery d was given up for the reason.
func (s *Service) WebhookGivenUp(ctx context.Context, d *keycard.WebhookDelivery, reason string) {
	s.audit(ctx, AuditWebhookFailed, System(), d.EndpointID, map[string]any{
		"delivery": d.ID, "event": d.EventType, "webhook_id": d.MessageID(), "attempts": d.RoundAttempts(), "error": reason,
	})
}
