package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/keycard-auth/keycard"
)

// logoutJSON is a back-channel logout delivery in the admin API.
type logoutJSON struct {
	SessionID     string    `json:"session_id"`
	ClientID      string    `json:"client_id"`
	UserID        string    `json:"user_id"`
	SID           string    `json:"sid"`
	Reason        string    `json:"reason"`
	EndedAt       time.Time `json:"ended_at"`
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	UpdatedAt     time.Time `json:"updated_at"`
	URI           string    `json:"backchannel_logout_uri"`
}

// logoutsResponse is the answer of GET /admin/v1/backchannel-logouts.
type logoutsResponse struct {
	Deliveries []logoutJSON `json:"deliveries"`
}

// handleAdminLogouts is GET
// /admin/v1/backchannel-logouts?state=&client_id=&limit=: the latest
// back-channel logout deliveries, the most recently ended first (one page:
// rows are kept a week, and what an operator looks for is recent).
func (s *Server) handleAdminLogouts(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "state", "client_id", "limit")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := keycard.LogoutFilter{State: keycard.LogoutState(q.get("state")), ClientID: q.get("client_id")}
	if f.State != "" && !f.State.Valid() {
		s.writeError(w, r, badRequest(`Query parameter "state" is pending, delivered or failed.`))
		return
	}
	if len(f.ClientID) > maxAuditFilterLen {
		s.writeError(w, r, badRequest(fmt.Sprintf(`Query parameter "client_id" is at most %d bytes.`, maxAuditFilterLen)))
		return
	}
	if f.Limit, err = q.limit(); err != nil {
		s.writeError(w, r, err)
		return
	}
	ds, err := s.svc.Logouts(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := logoutsResponse{Deliveries: make([]logoutJSON, 0, len(ds))}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, logoutJSON{
			SessionID: d.SessionID, ClientID: d.ClientID, UserID: d.UserID, SID: d.BrowserSessionID, Reason: d.Reason,
			EndedAt: d.EndedAt.UTC(), State: string(d.State), Attempts: d.Attempts, NextAttemptAt: d.NextAttemptAt.UTC(),
			LastError: d.LastError, UpdatedAt: d.UpdatedAt.UTC(), URI: d.URI,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
