package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// deliveriesPerPage is the page size of the webhook deliveries.
const deliveriesPerPage = 50

// webhookDelivery is one row of the deliveries table.
type webhookDelivery struct {
	*keycard.WebhookDelivery
	// Endpoint is the endpoint's description, or its URL.
	Endpoint string
}

// Replayable reports whether the delivery may be sent again: it is
// settled (delivered or failed).
func (d webhookDelivery) Replayable() bool { return d.State != keycard.WebhookPending }

// webhooksData is the webhooks page's data.
type webhooksData struct {
	Endpoints   []*keycard.WebhookEndpoint
	States      []keycard.WebhookState
	State       string
	EndpointID  string
	FilterError string
	Deliveries  []webhookDelivery
	Next        string
	// Back is this page's URL, where a replay returns.
	Back string
}

// handleWebhooks is GET /admin/webhooks?state=&endpoint=&before=: the
// endpoints, and their deliveries newest first, filtered, with a replay
// button on each settled one.
func (h *Handler) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := &webhooksData{State: q.Get("state"), EndpointID: q.Get("endpoint"), Back: r.URL.RequestURI(),
		States: []keycard.WebhookState{keycard.WebhookPending, keycard.WebhookDelivered, keycard.WebhookFailed}}
	f := keycard.WebhookFilter{State: keycard.WebhookState(d.State), EndpointID: d.EndpointID, Limit: deliveriesPerPage + 1}
	if f.State != "" && !f.State.Valid() {
		d.FilterError = "Choose a state from the list."
	}
	if len(d.EndpointID) > maxFilterLen {
		d.FilterError = "A filter is too long."
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			d.FilterError = "The page link is broken; start again from the first page."
		}
		f.Before = n
	}
	eps, err := h.svc.Webhooks(r.Context())
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	d.Endpoints = eps
	if d.FilterError != "" {
		h.render(w, r, http.StatusBadRequest, "webhooks", h.adminPage(r, "Webhooks", "webhooks", d))
		return
	}
	ds, err := h.svc.WebhookDeliveries(r.Context(), f)
	if err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	if len(ds) > deliveriesPerPage {
		ds = ds[:deliveriesPerPage]
		v := url.Values{}
		for k, val := range map[string]string{"state": d.State, "endpoint": d.EndpointID} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("before", strconv.FormatInt(ds[len(ds)-1].ID, 10))
		d.Next = "/admin/webhooks?" + v.Encode()
	}
	names := map[string]string{}
	for _, e := range eps {
		names[e.ID] = e.URL
		if e.Description != "" {
			names[e.ID] = e.Description
		}
	}
	for _, dl := range ds {
		d.Deliveries = append(d.Deliveries, webhookDelivery{WebhookDelivery: dl, Endpoint: names[dl.EndpointID]})
	}
	h.render(w, r, http.StatusOK, "webhooks", h.adminPage(r, "Webhooks", "webhooks", d))
}

// handleReplayWebhook is POST /admin/webhooks/deliveries/{id}/replay:
// send a delivered or failed delivery again, then back to the list (its
// "back" field, when it is the webhooks page).
func (h *Handler) handleReplayWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.message(w, r, http.StatusNotFound, "Not found", "There is no such webhook delivery.", current(r).User)
		return
	}
	if _, err := h.svc.ReplayWebhook(r.Context(), auth.AdminActor(current(r), browser.AgentOf(r)), id); err != nil {
		h.serviceError(w, r, err, current(r).User)
		return
	}
	back := "/admin/webhooks"
	if u, err := url.Parse(formValue(r, "back")); err == nil && u.Path == "/admin/webhooks" && u.Host == "" && u.Scheme == "" {
		q := u.Query()
		q.Set("done", "replayed")
		back = "/admin/webhooks?" + q.Encode()
	} else {
		back += "?done=replayed"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
