package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// tokenResponse is a successful token response (RFC 6749 §5.1), with
// Keycard's session_id.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	SessionID    string `json:"session_id"`
}

// writeTokens answers with tokens. Cache-Control: no-store and Pragma:
// no-cache are set on every response by logRequests, as RFC 6749 §5.1
// requires of this one. The body is the one writeJSON would write for the
// tokenResponse, encoded by appendTokenResponse: every refresh and code
// grant answers with it, and encoding/json's reflection was most of the
// answer's encoding.
func writeTokens(w http.ResponseWriter, t *auth.Tokens) {
	tokenType := t.TokenType
	if tokenType == "" {
		tokenType = auth.TokenTypeBearer
	}
	r := tokenResponse{
		AccessToken: t.AccessToken, TokenType: tokenType, ExpiresIn: t.ExpiresIn,
		RefreshToken: t.RefreshToken, IDToken: t.IDToken, Scope: t.Scope, SessionID: t.SessionID,
	}
	n := len(r.AccessToken) + len(r.RefreshToken) + len(r.IDToken) + len(r.Scope) + len(r.SessionID) + len(r.TokenType) + 160
	writeJSONBody(w, http.StatusOK, appendTokenResponse(make([]byte, 0, n), &r))
}

// appendTokenResponse appends r as writeJSON encodes it (encoding/json,
// HTML characters unescaped, a newline at the end) to b.
func appendTokenResponse(b []byte, r *tokenResponse) []byte {
	b = appendAccessToken(b, r.AccessToken, r.TokenType, r.ExpiresIn)
	b = appendOptional(b, `,"refresh_token":`, r.RefreshToken)
	b = appendOptional(b, `,"id_token":`, r.IDToken)
	b = appendOptional(b, `,"scope":`, r.Scope)
	b = append(b, `,"session_id":`...)
	b = appendJSONString(b, r.SessionID)
	return append(b, "}\n"...)
}

// appendAccessToken appends the members a token answer starts with, after
// its opening brace: access_token, token_type and expires_in.
func appendAccessToken(b []byte, token, typ string, expiresIn int64) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, token)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"expires_in":`...)
	return strconv.AppendInt(b, expiresIn, 10)
}

// appendOptional appends the member (its comma, name and colon) with the
// string s, unless s is empty (omitempty).
func appendOptional(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, member...), s)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it
// with HTML escaping off. Tokens, ids and scopes are printable ASCII
// without quotes or backslashes and are copied as they are; anything else
// is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// handleLogin is POST /v1/login: password login, starting a session.
// Every refusal is the same 401 invalid_grant, whatever its reason. A
// login refused by the throttle before its password was checked is 429
// too_many_requests with Retry-After, the same for every account, existing
// or not. A user with a second factor gets 403 mfa_required with an MFA
// token instead of tokens (mfa.go). With "cookies": true (cookie mode only) the tokens are set as
// cookies instead of returned (writeCookieTokens).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest // cookies.go
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := req.check(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Cookies {
		if err := s.checkCookieLogin(r); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	t, err := s.svc.Login(r.Context(), *req.Username, *req.Password, browser.AgentOf(r))
	if err != nil {
		if s.writeMFAStep(w, r, err) { // mfa.go
			return
		}
		s.writeError(w, r, asGrantError(err, http.StatusUnauthorized))
		return
	}
	if req.Cookies {
		s.writeCookieTokens(w, t)
		return
	}
	writeTokens(w, t)
}

// handleLogout is POST /v1/logout: revoke the caller's session. In cookie
// mode the answer also clears the cookies.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.Logout(r.Context(), principal(r.Context()), browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearCookies(w)
	w.WriteHeader(http.StatusNoContent)
}

// handleLogoutAll is POST /v1/logout/all: revoke every session of the
// caller, the calling one included. In cookie mode the answer also
// clears the cookies.
func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request) {
	if err := s.svc.LogoutAll(r.Context(), principal(r.Context()), browser.AgentOf(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.clearCookies(w)
	w.WriteHeader(http.StatusNoContent)
}

type sessionJSON struct {
	ID            string    `json:"id"`
	CreatedAt     time.Time `json:"created_at"`
	LastUsedAt    time.Time `json:"last_used_at"`
	UserAgent     string    `json:"user_agent"`
	ClientAddr    string    `json:"client_addr"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	Current       bool      `json:"current"`
}

type sessionsResponse struct {
	Sessions []sessionJSON `json:"sessions"`
}

// handleSessions is GET /v1/sessions: the caller's active sessions,
// newest first, the one making the request marked current.
func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	list, err := s.svc.Sessions(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := sessionsResponse{Sessions: make([]sessionJSON, 0, len(list))}
	for _, sess := range list {
		out.Sessions = append(out.Sessions, sessionJSON{
			ID:            sess.ID,
			CreatedAt:     sess.CreatedAt.UTC(),
			LastUsedAt:    sess.LastUsedAt.UTC(),
			UserAgent:     sess.UserAgent,
			ClientAddr:    sess.ClientAddr,
			ExpiresAt:     sess.ExpiresAt.UTC(),
			IdleExpiresAt: sess.IdleExpiresAt().UTC(),
			Current:       sess.ID == p.Claims.SessionID,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// handleRevokeSession is DELETE /v1/sessions/{id}: revoke one of the
// caller's sessions. Unknown ids and other users' sessions get the same
// 404, so ids cannot be probed.
func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	err := s.svc.RevokeSession(r.Context(), principal(r.Context()), r.PathValue("id"), browser.AgentOf(r))
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		err = errorf(http.StatusNotFound, codeNotFound, "Session not found.")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
