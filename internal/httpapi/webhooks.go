package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// webhookRoutes registers the admin API of webhooks (docs/webhooks.md).
func (s *Server) webhookRoutes(mux *http.ServeMux) {
	s.handle(mux, "GET /admin/v1/webhooks", s.admin(s.handleAdminWebhooks))
	s.handle(mux, "POST /admin/v1/webhooks", s.admin(s.handleAdminCreateWebhook))
	s.handle(mux, "GET /admin/v1/webhooks/{id}", s.admin(s.handleAdminWebhook))
	s.handle(mux, "DELETE /admin/v1/webhooks/{id}", s.admin(s.handleAdminDeleteWebhook))
	s.handle(mux, "GET /admin/v1/webhooks/deliveries", s.admin(s.handleAdminWebhookDeliveries))
	s.handle(mux, "POST /admin/v1/webhooks/deliveries/{id}/replay", s.admin(s.handleAdminReplayWebhook))
}

// webhookJSON is an endpoint in the admin API; Secret only in the answer
// that made it.
type webhookJSON struct {
	ID          string    `json:"id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	Secret      string    `json:"secret,omitempty"`
}

func adminWebhook(e *keycard.WebhookEndpoint) webhookJSON {
	events := e.Events
	if events == nil {
		events = []string{}
	}
	return webhookJSON{ID: e.ID, URL: e.URL, Events: events, Description: e.Description, CreatedAt: e.CreatedAt.UTC()}
}

// webhookRequest is the body of POST /admin/v1/webhooks.
type webhookRequest struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

// handleAdminCreateWebhook is POST /admin/v1/webhooks: 201 with the
// endpoint and its signing secret, shown only this once.
func (s *Server) handleAdminCreateWebhook(w http.ResponseWriter, r *http.Request) {
	var req webhookRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.URL == nil {
		s.writeError(w, r, badRequest(`Field "url" is required.`))
		return
	}
	e, err := s.svc.CreateWebhook(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)),
		auth.WebhookSpec{URL: *req.URL, Events: req.Events, Description: req.Description})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := adminWebhook(e)
	out.Secret = e.Secret
	writeJSON(w, http.StatusCreated, out)
}

// handleAdminWebhooks is GET /admin/v1/webhooks: every endpoint, oldest
// first, without secrets.
func (s *Server) handleAdminWebhooks(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	es, err := s.svc.Webhooks(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}{make([]webhookJSON, 0, len(es))}
	for _, e := range es {
		out.Webhooks = append(out.Webhooks, adminWebhook(e))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminWebhook is GET /admin/v1/webhooks/{id}.
func (s *Server) handleAdminWebhook(w http.ResponseWriter, r *http.Request) {
	e, err := s.svc.Webhook(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, adminWebhook(e))
}

// handleAdminDeleteWebhook is DELETE /admin/v1/webhooks/{id}: the
// endpoint and its deliveries go.
func (s *Server) handleAdminDeleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.DeleteWebhook(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookDeliveryJSON is a webhook delivery in the admin API.
type webhookDeliveryJSON struct {
	ID         int64  `json:"id"`
	EndpointID string `json:"endpoint_id"`
	URL        string `json:"url"`
	// WebhookID is the message id sent (webhook-id), the same for every
	// attempt and replay.
	WebhookID string    `json:"webhook_id"`
	EventType string    `json:"event_type"`
	EventTime time.Time `json:"event_time"`
	State     string    `json:"state"`
	// Attempts are those of the current round (since the last replay).
	Attempts      int               `json:"attempts"`
	NextAttemptAt time.Time         `json:"next_attempt_at"`
	LastError     string            `json:"last_error"`
	UpdatedAt     time.Time         `json:"updated_at"`
	Payload       *auth.WebhookBody `json:"payload,omitempty"`
}

// newWebhookDeliveryJSON returns d as the admin API shows it.
func newWebhookDeliveryJSON(d *keycard.WebhookDelivery) webhookDeliveryJSON {
	out := webhookDeliveryJSON{
		ID: d.ID, EndpointID: d.EndpointID, URL: d.URL, WebhookID: d.MessageID(), EventType: d.EventType,
		EventTime: d.EventTime.UTC(), State: string(d.State), Attempts: d.RoundAttempts(), NextAttemptAt: d.NextAttemptAt.UTC(),
		LastError: d.LastError, UpdatedAt: d.UpdatedAt.UTC(),
	}
	if b, err := auth.NewWebhookBody(d); err == nil {
		out.Payload = b
	}
	return out
}

// handleAdminWebhookDeliveries is GET
// /admin/v1/webhooks/deliveries?endpoint_id=&state=&before=&limit=: a page
// of deliveries, newest first; before is the id of the last delivery of
// the previous page.
func (s *Server) handleAdminWebhookDeliveries(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "endpoint_id", "state", "before", "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := keycard.WebhookFilter{State: keycard.WebhookState(q.get("state")), EndpointID: q.get("endpoint_id")}
	if f.State != "" && !f.State.Valid() {
		s.writeError(w, r, badRequest(`Query parameter "state" is pending, delivered or failed.`))
		return
	}
	if len(f.EndpointID) > maxAuditFilterLen {
		s.writeError(w, r, badRequest(fmt.Sprintf(`Query parameter "endpoint_id" is at most %d bytes.`, maxAuditFilterLen)))
		return
	}
	if before := q.get("before"); before != "" {
		if f.Before, err = strconv.ParseInt(before, 10, 64); err != nil || f.Before <= 0 {
			s.writeError(w, r, badRequest(`Query parameter "before" is a delivery id, a positive integer.`))
			return
		}
	}
	if f.Limit, err = q.limit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, err := s.svc.WebhookDeliveries(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := struct {
		Deliveries []webhookDeliveryJSON `json:"deliveries"`
	}{make([]webhookDeliveryJSON, 0, len(ds))}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, newWebhookDeliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAdminReplayWebhook is POST
// /admin/v1/webhooks/deliveries/{id}/replay: a delivered or failed
// delivery is sent again at once (409 while it is pending).
func (s *Server) handleAdminReplayWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.writeError(w, r, errorf(http.StatusNotFound, codeNotFound, "Webhook delivery not found."))
		return
	}
	d, err := s.svc.ReplayWebhook(r.Context(), auth.AdminActor(principal(r.Context()), browser.AgentOf(r)), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newWebhookDeliveryJSON(d))
}
