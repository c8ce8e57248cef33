// Package claimshook calls the custom-claims hook over HTTP
// (docs/claims-hook.md): an endpoint of the operator's that Keycard asks,
// at each token minting for a user, which claims to add. It implements
// auth.ClaimsHook; auth checks the answer against auth.ReservedClaims and
// decides what a failure means (auth.Config.ClaimsHookContinue).
//
// The request is a JSON POST signed as Standard Webhooks
// (https://www.standardwebhooks.com) signs: headers webhook-id,
// webhook-timestamp and webhook-signature, an HMAC-SHA256 under the
// shared secret of "id.timestamp.body", so the hook can tell Keycard's
// calls from anyone else's (internal/webhook signs it, as it signs
// webhooks). Each call has a deadline (Timeout), the
// answer a size limit (MaxBytes), and redirects are not followed.
package claimshook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/webhook"
)

// Defaults of Hook's limits.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultMaxBytes = 4096
)

// EventType is the "type" of every request body.
const EventType = "token.claims"

// Hook calls the custom-claims hook at URL. The zero value of each limit
// takes its default; Client nil: an http.Client of its own.
type Hook struct {
	URL      string
	Secret   string // whsec_ and the base64 of the HMAC key (keycard.WebhookSecretPrefix)
	Timeout  time.Duration
	MaxBytes int64
	Client   *http.Client
	Now      func() time.Time
}

var _ auth.ClaimsHook = (*Hook)(nil)

// New returns a Hook for rawURL with the secret in its whsec_ form,
// checked: the URL must be https, or http to a loopback address (or any
// address when insecure, for development).
func New(rawURL, secret string, insecure bool) (*Hook, error) {
	if err := CheckURL(rawURL, insecure); err != nil {
		return nil, err
	}
	if err := webhook.CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("claims hook secret: %w", err)
	}
	return &Hook{URL: rawURL, Secret: secret}, nil
}

// CheckURL refuses a hook URL that is not absolute http(s), carries
// userinfo or a fragment, or is plain http to a host that is not a
// loopback address (unless insecure).
func CheckURL(rawURL string, insecure bool) error {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return fmt.Errorf("claims hook URL: %w", err)
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return errors.New("claims hook URL: must be an absolute http or https URL")
	case u.User != nil || u.Fragment != "":
		return errors.New("claims hook URL: no userinfo or fragment")
	case u.Scheme == "http" && !insecure && !loopback(u.Hostname()):
		return errors.New("claims hook URL: plain http only to a loopback address (or with --dev); use https")
	}
	return nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// request is the body of a call.
type request struct {
	Type      string   `json:"type"`
	Timestamp string   `json:"timestamp"`
	User      user     `json:"user"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope"`
	SessionID string   `json:"session_id"`
	Tokens    []string `json:"tokens"` // access_token, and id_token when one is minted
}

type user struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
}

// Claims implements auth.ClaimsHook: one signed POST, answered 200 with
// {"access_token": {...}, "id_token": {...}} (either may be left out) or
// 204 for no claims. Anything else is an error: another status, a body
// that is not that JSON object or exceeds MaxBytes, a timeout.
func (h *Hook) Claims(ctx context.Context, r *auth.ClaimsRequest) (*auth.CustomClaims, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	at := now()
	tokens := []string{"access_token"}
	if r.IDToken {
		tokens = append(tokens, "id_token")
	}
	roles := r.Roles
	if roles == nil {
		roles = []string{}
	}
	body, err := json.Marshal(request{Type: EventType, Timestamp: at.UTC().Format(time.RFC3339), ClientID: r.ClientID,
		User: user{ID: r.UserID, Username: r.Username, Roles: roles}, Scope: r.Scope, SessionID: r.SessionID, Tokens: tokens})
	if err != nil {
		return nil, err
	}
	var idBytes [16]byte
	if _, err := rand.Read(idBytes[:]); err != nil {
		return nil, err
	}
	id := "msg_" + hex.EncodeToString(idBytes[:])
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(at.Unix(), 10))
	sig, err := webhook.Sign(h.Secret, id, at, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Webhook-Signature", sig)
	resp, err := h.client().Do(req)
	if err != nil {
		// The URL is left out of the error: it could carry a credential
		// in its query, and the error reaches the log.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("claims hook: %w", err)
	}
	defer resp.Body.Close()
	limit := h.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("claims hook: reading the answer: %w", err)
	case resp.StatusCode == http.StatusNoContent:
		return &auth.CustomClaims{}, nil
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("claims hook: answered %d", resp.StatusCode)
	case int64(len(data)) > limit:
		return nil, fmt.Errorf("claims hook: answer over %d bytes", limit)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("claims hook: answer of type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	var cc auth.CustomClaims
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cc); err != nil {
		return nil, fmt.Errorf("claims hook: answer is not {\"access_token\": {...}, \"id_token\": {...}}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("claims hook: data after the answer's JSON object")
	}
	return &cc, nil
}

// client returns h.Client, or one that follows no redirect: the hook's
// address is the one configured, not one its answer names (a redirect
// is then a status other than 200, and fails the call).
func (h *Hook) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
