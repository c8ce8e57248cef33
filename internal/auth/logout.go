package auth

import (
	"context"
	"errors"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jwt"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0).
const (
	// LogoutTokenType is the header typ of a logout token (section 2.4).
	LogoutTokenType = "logout+jwt"
	// BackchannelLogoutEvent is the one member of a logout token's
	// events claim (section 2.4).
	BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// LogoutTokenLifetime is how long a logout token is valid: it is made
	// for one request, minted again for every attempt.
	LogoutTokenLifetime = 2 * time.Minute
	// AuditBackchannelLogoutFailed records a back-channel logout given up:
	// the client was not told that a session ended.
	AuditBackchannelLogoutFailed = "backchannel_logout.failed"
	// LogoutRetention is how long a back-channel logout delivered or
	// given up stays listed before Prune deletes it.
	LogoutRetention = 7 * 24 * time.Hour
)

// LogoutClaims are the claims of a logout token (OpenID Connect
// Back-Channel Logout 1.0 section 2.4): iss, aud (the client), iat, exp,
// jti, sub and sid, and the events claim. A logout token never has a
// nonce, so that it cannot pass for an ID token.
type LogoutClaims struct {
	jwt.RegisteredClaims
	Events map[string]struct{} `json:"events"`
	// SessionID is the sid of the ID tokens the client got: the browser
	// session the ended grant session was granted through.
	SessionID string `json:"sid,omitempty"`
}

// LogoutToken signs the logout token of the delivery d with the active
// key, header typ LogoutTokenType: aud is d's client, sub its user, sid
// its browser session, and a fresh jti, so that each attempt's token is
// its own (the client may keep the jti to refuse replays, section 2.6).
// It expires LogoutTokenLifetime after it is made.
func (s *Service) LogoutToken(ctx context.Context, d *keycard.LogoutDelivery) (string, error) {
	if s.keys == nil {
		return "", errors.New("auth: a logout token needs the signing keys")
	}
	signer, _, err := s.keys.TypedSigner(ctx, LogoutTokenType)
	if err != nil {
		return "", err
	}
	jti, err := keycard.NewID(s.rand)
	if err != nil {
		return "", err
	}
	now := s.now()
	return s.sign(ctx, signer, &LogoutClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.cfg.Issuer, Subject: d.UserID, Audience: jwt.Audience{d.ClientID},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(LogoutTokenLifetime)), ID: jti,
		},
		Events:    map[string]struct{}{BackchannelLogoutEvent: {}},
		SessionID: d.BrowserSessionID,
	})
}

// Logouts returns a page of back-channel logout deliveries, the most
// recently ended first (keycard.LogoutStore ListLogouts).
func (s *Service) Logouts(ctx context.Context, f keycard.LogoutFilter) ([]*keycard.LogoutDelivery, error) {
	return s.stores.Logouts.ListLogouts(ctx, f)
}

// LogoutGivenUp records in the audit log, as the system's act, that the
// back-channel logout d was given up for the reason: the client was not
// told that its session ended.
func (s *Service) LogoutGivenUp(ctx context.Context, d *keycard.LogoutDelivery, reason string) {
	s.audit(ctx, AuditBackchannelLogoutFailed, System(), d.SessionID, map[string]any{
		"client_id": d.ClientID, "user_id": d.UserID, "sid": d.BrowserSessionID, "attempts": d.Attempts, "error": reason,
	})
}
