package auth

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
)

// The device authorization grant (RFC 8628): a device without a browser
// (a command line, a TV) asks for a device code and a short user code; the
// user types the user code on the /device page of a browser where they are
// signed in and approves; meanwhile the device polls the token endpoint
// with its device code and, once approved, gets the same tokens the code
// grant gives, in a grant session under that browser session.

// Device grant settings.
const (
	// DeviceInterval is the least time between two polls of a device
	// code (RFC 8628 section 3.2 interval; its default, 5 seconds).
	DeviceInterval = 5 * time.Second
	// DeviceSlowDown is what a client adds to its interval each time it
	// is told slow_down (RFC 8628 section 3.5).
	DeviceSlowDown = 5 * time.Second
	// DeviceVerificationPath is the page where users enter user codes,
	// under the issuer.
	DeviceVerificationPath = "/device"

	// userCodeAlphabet has no vowels (no words are spelled) and none of
	// the letters read as digits or as each other (RFC 8628 section
	// 6.1): 20 letters, so an 8-letter code holds 34.5 bits.
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
	// maxUserCodeInput bounds what is read of a typed user code.
	maxUserCodeInput = 64
	// newUserCodeTries is how many user codes StartDevice draws before
	// giving up on one that is free.
	newUserCodeTries = 4
)

// The errors of a device code's token request (RFC 8628 section 3.5).
const (
	DeviceAuthorizationPending = "authorization_pending"
	DeviceSlowDownError        = "slow_down"
	DeviceAccessDenied         = "access_denied"
	DeviceExpiredToken         = "expired_token"
)

// DeviceTokenError is a device code's token request that gets no tokens
// yet, or never will: Code is one of DeviceAuthorizationPending,
// DeviceSlowDownError, DeviceAccessDenied or DeviceExpiredToken, which the
// token endpoint answers as a 400 with that error code (RFC 8628 section
// 3.5). A device code that is not honoured at all is an EUNAUTHORIZED
// keycard error instead (invalid_grant).
type DeviceTokenError struct {
	Code        string
	Description string
}

func (e *DeviceTokenError) Error() string {
	return fmt.Sprintf("auth: device token request: %s: %s", e.Code, e.Description)
}

// DeviceAuthorization is the answer of the device authorization endpoint
// (RFC 8628 section 3.2).
type DeviceAuthorization struct {
	// DeviceCode is the device's secret, "<id>.<secret>": only its hash
	// is stored.
	DeviceCode string
	// UserCode is what the user types, as shown: "BCDF-GHJK".
	UserCode string
	// VerificationURI is the page where the user types it;
	// VerificationURIComplete the same page with the code filled in (for
	// a link or a QR code).
	VerificationURI         string
	VerificationURIComplete string
	ExpiresIn               time.Duration
	Interval                time.Duration
}

// errDeviceCode is the answer to every device code that is not honoured:
// the token endpoint's invalid_grant.
func errDeviceCode() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid device code."}
}

// Audit event types of the device grant.
const (
	AuditDeviceApproved = "device.approved"
	AuditDeviceDenied   = "device.denied"
)

// StartDevice is the device authorization request (RFC 8628 section 3.1)
// of client (authenticated, or a public client by its client_id) for
// scope: one to a few OpenID Connect scopes and the client's API scopes,
// as at the authorization endpoint. It stores a pending device code that
// lives keycard.DeviceCodeLifetime. Errors are *AuthorizeError, answered
// as JSON errors: unauthorized_client for a client not allowed the device
// grant, invalid_scope.
func (s *Service) StartDevice(ctx context.Context, client *keycard.Client, scope string) (*DeviceAuthorization, error) {
	if !client.AllowsGrant(keycard.GrantDeviceCode) {
		return nil, &AuthorizeError{Code: "unauthorized_client", Description: "This client may not use the device authorization grant."}
	}
	scopes, err := requestedScopes(client, scope)
	if err != nil {
		return nil, err
	}
	code, id, hash, err := keycard.NewOpaqueToken(s.rand)
	if err != nil {
		return nil, err
	}
	now := s.now()
	d := &keycard.DeviceCode{ID: id, SecretHash: hash, ClientID: client.ID, Scope: strings.Join(scopes, " "),
		State: keycard.DevicePending, Interval: DeviceInterval, CreatedAt: now, ExpiresAt: now.Add(keycard.DeviceCodeLifetime)}
	for try := 1; ; try++ {
		if d.UserCode, err = newUserCode(s.rand); err != nil {
			return nil, err
		}
		err = s.stores.Grants.CreateDeviceCode(ctx, d)
		if keycard.ErrorCode(err) != keycard.ECONFLICT || try == newUserCodeTries {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	uri := strings.TrimRight(s.cfg.Issuer, "/") + DeviceVerificationPath
	shown := FormatUserCode(d.UserCode)
	return &DeviceAuthorization{DeviceCode: code, UserCode: shown, VerificationURI: uri,
		VerificationURIComplete: uri + "?user_code=" + shown, ExpiresIn: keycard.DeviceCodeLifetime, Interval: DeviceInterval}, nil
}

// newUserCode returns userCodeLen letters of userCodeAlphabet, uniformly
// random (bytes past the last whole multiple of the alphabet's size are
// drawn again).
func newUserCode(r io.Reader) (string, error) {
	const n = len(userCodeAlphabet)
	limit := 256 - 256%n
	out := make([]byte, 0, userCodeLen)
	var buf [2 * userCodeLen]byte
	for len(out) < userCodeLen {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("auth: reading a random user code: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < userCodeLen {
				out = append(out, userCodeAlphabet[int(b)%n])
			}
		}
	}
	return string(out), nil
}

// FormatUserCode returns a normalized user code as users see it: two
// groups of four letters, "BCDF-GHJK".
func FormatUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// NormalizeUserCode returns a typed user code as it is stored: upper case,
// without the dashes and spaces people type or copy with it (RFC 8628
// section 6.1). ok is false when what is left is not userCodeLen letters
// of the alphabet.
func NormalizeUserCode(typed string) (code string, ok bool) {
	if len(typed) > maxUserCodeInput {
		return "", false
	}
	var b strings.Builder
	for _, c := range strings.ToUpper(typed) {
		switch {
		case c == '-' || c == ' ' || c == '\t' || c == '\u00a0':
			continue
		case c > 0x7f || !strings.ContainsRune(userCodeAlphabet, c):
			return "", false
		}
		b.WriteRune(c)
	}
	if b.Len() != userCodeLen {
		return "", false
	}
	return b.String(), true
}

// DeviceRequest is a pending device authorization as the verification
// page shows it, for the user to confirm.
type DeviceRequest struct {
	// UserCode is the code as users see it ("BCDF-GHJK").
	UserCode string
	Client   *keycard.Client
	// Scopes are what the device asks for.
	Scopes    []string
	ExpiresAt time.Time
}

// userCodeKeys returns the throttle keys of user code attempts: the
// browser session's, in the account limiter (no account is named), and
// the client address's, in the address limiter; each apart from the
// sign-in keys of the same limiters.
func userCodeKeys(sessionID, addr string) (session, address string) {
	_, address = loginKeys("", addr)
	if address != "" {
		address = "device-" + address
	}
	return "device-session:" + sessionID, address
}

// pendingDevice finds the pending device code a user typed in browser
// session b. Attempts are throttled like sign-ins, per browser session and
// per client address (Deps.LoginLimits): a user code is short, so guessing
// must stay slow (RFC 8628 section 5.1). An unknown or expired code counts
// as a failure; a success forgets nothing, since anybody can make valid
// codes to reset a count with. It fails with a *ThrottledError, EINVALID
// for what cannot be a user code, ENOTFOUND for a code that is unknown or
// has expired, and ECONFLICT for one already approved or denied.
func (s *Service) pendingDevice(ctx context.Context, b *BrowserSession, typed string, from Agent) (*keycard.DeviceCode, *keycard.Client, error) {
	code, ok := NormalizeUserCode(typed)
	if !ok {
		return nil, nil, keycard.Errorf(keycard.EINVALID, "A code is %d letters, such as %s.", userCodeLen, FormatUserCode("BCDFGHJK"))
	}
	session, address := userCodeKeys(b.Session.ID, from.Addr)
	if retry, limits := s.loginAllowed(ctx, session, address); retry > 0 {
		s.audit(ctx, keycard.AuditLoginThrottled, UserActor(b.User.ID, from), b.User.ID, map[string]any{
			"limits": limits, "retry_after": int64(retry / time.Second), "what": "user_code",
		})
		return nil, nil, &ThrottledError{RetryAfter: retry}
	}
	d, err := s.stores.Grants.DeviceCodeByUserCode(ctx, code, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		s.loginFailed(ctx, session, address)
		return nil, nil, keycard.Errorf(keycard.ENOTFOUND, "There is no such code, or it has expired. Check the code on your device.")
	} else if err != nil {
		return nil, nil, err
	}
	if d.State != keycard.DevicePending {
		return nil, nil, keycard.Errorf(keycard.ECONFLICT, "This code has been used already. Start again on your device.")
	}
	c, err := s.stores.Clients.Client(ctx, d.ClientID)
	if err != nil {
		return nil, nil, err
	}
	return d, c, nil
}

// LookupDevice returns the pending device authorization of the user code
// typed in browser session b, for the user to confirm. Its errors are
// pendingDevice's.
func (s *Service) LookupDevice(ctx context.Context, b *BrowserSession, userCode string, from Agent) (*DeviceRequest, error) {
	from = from.clean()
	d, c, err := s.pendingDevice(ctx, b, userCode, from)
	if err != nil {
		return nil, err
	}
	return &DeviceRequest{UserCode: FormatUserCode(d.UserCode), Client: c, Scopes: strings.Fields(d.Scope), ExpiresAt: d.ExpiresAt}, nil
}

// DecideDevice approves or denies the pending device authorization of the
// user code typed in browser session b. An approval binds the device code
// to b's user and session: the device's tokens belong to a grant session
// under b, ended with it. For a third-party client, it also records the
// user's consent to the scopes shown, which the user can take back on the
// account page. Its errors are pendingDevice's, and ENOTFOUND when the
// code expired or was decided meanwhile.
func (s *Service) DecideDevice(ctx context.Context, b *BrowserSession, userCode string, approve bool, from Agent) (*DeviceRequest, error) {
	from = from.clean()
	d, c, err := s.pendingDevice(ctx, b, userCode, from)
	if err != nil {
		return nil, err
	}
	state, event := keycard.DeviceDenied, AuditDeviceDenied
	if approve {
		state, event = keycard.DeviceApproved, AuditDeviceApproved
		d.UserID, d.SessionID, d.AuthTime, d.AMR = b.User.ID, b.Session.ID, b.Session.AuthenticatedAt(), b.Session.AMR
	}
	err = s.stores.Grants.DecideDeviceCode(ctx, d, state, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, keycard.Errorf(keycard.ENOTFOUND, "This code has expired or has been used already. Start again on your device.")
	} else if err != nil {
		return nil, err
	}
	scopes := strings.Fields(d.Scope)
	if approve && !c.OAuth.FirstParty {
		if err := s.saveConsent(ctx, b.User.ID, c.ID, scopes, from); err != nil {
			return nil, err
		}
	}
	s.audit(ctx, event, UserActor(b.User.ID, from), b.User.ID, map[string]string{"client": c.ID, "session": b.Session.ID, "scope": d.Scope})
	return &DeviceRequest{UserCode: FormatUserCode(d.UserCode), Client: c, Scopes: scopes, ExpiresAt: d.ExpiresAt}, nil
}

// DeviceToken is the device code grant (RFC 8628 section 3.4): client
// (authenticated, or a public client by its client_id) polls with its
// device code. Until the user decides it gets a *DeviceTokenError:
// authorization_pending, slow_down when it polls sooner than the interval
// after its previous poll, access_denied once denied, expired_token once
// the code has expired. Once approved it gets what the code grant gives
// (ExchangeCode), in a new grant session under the browser session that
// approved, and the code is used up: presented again, it revokes what its
// first use got, like an authorization code. A code that is malformed,
// unknown or another client's is EUNAUTHORIZED (invalid_grant).
func (s *Service) DeviceToken(ctx context.Context, client *keycard.Client, deviceCode string, from Agent) (*Tokens, error) {
	from = from.clean()
	if err := requireDPoP(ctx, client); err != nil {
		return nil, err
	}
	id, hash, ok := keycard.ParseOpaqueToken(deviceCode)
	if !ok {
		return nil, errDeviceCode()
	}
	d, err := s.stores.Grants.DeviceCode(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errDeviceCode()
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(d.SecretHash, hash) != 1 || d.ClientID != client.ID {
		return nil, errDeviceCode() // not this client's: it is left as it is
	}
	scope := d.Scope
	// A redeemed code goes on to Redeem, whatever else: presented again,
	// it revokes what its first use got.
	if d.RedeemedAt.IsZero() {
		now := s.now()
		if !now.Before(d.ExpiresAt) {
			return nil, &DeviceTokenError{Code: DeviceExpiredToken, Description: "The device code has expired: start again."}
		}
		prev, err := s.stores.Grants.PollDeviceCode(ctx, id, now)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, errDeviceCode()
		} else if err != nil {
			return nil, err
		}
		if !prev.LastPolledAt.IsZero() && now.Sub(prev.LastPolledAt) < prev.Interval {
			return nil, &DeviceTokenError{Code: DeviceSlowDownError,
				Description: fmt.Sprintf("Polled too soon: wait at least %d seconds between requests, 5 more from now on.", int64(prev.Interval/time.Second))}
		}
		switch prev.State {
		case keycard.DevicePending:
			return nil, &DeviceTokenError{Code: DeviceAuthorizationPending, Description: "The user has not approved the device yet."}
		case keycard.DeviceDenied:
			return nil, &DeviceTokenError{Code: DeviceAccessDenied, Description: "The user denied the device."}
		}
		d = prev
		u, err := s.stores.Users.UserByID(ctx, d.UserID)
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, errDeviceCode()
		} else if err != nil {
			return nil, err
		}
		scope = strings.Join(s.grantedScopes(strings.Fields(d.Scope), u), " ")
	}
	sess := &keycard.Session{UserID: d.UserID, ParentID: d.SessionID, ClientID: client.ID, Scope: scope,
		AuthTime: d.AuthTime, AMR: d.AMR, UserAgent: from.UserAgent, ClientAddr: from.Addr}
	return s.grantTokens(ctx, keycard.RedeemRequest{Kind: keycard.GrantKindDeviceCode, ID: id}, client, sess, nil, "", from)
}
