package storetrace

import (
	"context"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/tracing"
)

// One type per store interface. Each method starts its span, calls the
// store with the span in the context and ends the span with the error;
// the deferred end also ends it should the store panic.

// userStore traces a keycard.UserStore.
type userStore struct {
	keycard.UserStore
	op tracing.Op
}

var _ keycard.UserStore = userStore{}

func (w userStore) CreateUser(ctx context.Context, u *keycard.User) (err error) {
	ctx, end := w.op(ctx, "store.CreateUser")
	defer func() { end(err) }()
	return w.UserStore.CreateUser(ctx, u)
}

func (w userStore) UserByID(ctx context.Context, id string) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.UserByID")
	defer func() { end(err) }()
	return w.UserStore.UserByID(ctx, id)
}

func (w userStore) SignInUser(ctx context.Context, normalized string) (_ *keycard.User, _ keycard.MFAFactors, err error) {
	ctx, end := w.op(ctx, "store.SignInUser")
	defer func() { end(err) }()
	return w.UserStore.SignInUser(ctx, normalized)
}

func (w userStore) UserByUsername(ctx context.Context, normalized string) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.UserByUsername")
	defer func() { end(err) }()
	return w.UserStore.UserByUsername(ctx, normalized)
}

func (w userStore) ListUsers(ctx context.Context, f keycard.UserFilter) (_ []*keycard.User, err error) {
	ctx, end := w.op(ctx, "store.ListUsers")
	defer func() { end(err) }()
	return w.UserStore.ListUsers(ctx, f)
}

func (w userStore) UpdateUser(ctx context.Context, id string, upd keycard.UserUpdate, at time.Time) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.UpdateUser")
	defer func() { end(err) }()
	return w.UserStore.UpdateUser(ctx, id, upd, at)
}

func (w userStore) ChangePassword(ctx context.Context, id string, hash string, keepSessionID string, at time.Time) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.ChangePassword")
	defer func() { end(err) }()
	return w.UserStore.ChangePassword(ctx, id, hash, keepSessionID, at)
}

func (w userStore) RehashPassword(ctx context.Context, id string, oldHash string, newHash string, at time.Time) (_ bool, err error) {
	ctx, end := w.op(ctx, "store.RehashPassword")
	defer func() { end(err) }()
	return w.UserStore.RehashPassword(ctx, id, oldHash, newHash, at)
}

func (w userStore) DeleteUser(ctx context.Context, id string, at time.Time) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.DeleteUser")
	defer func() { end(err) }()
	return w.UserStore.DeleteUser(ctx, id, at)
}

// sessionStore traces a keycard.SessionStore.
type sessionStore struct {
	keycard.SessionStore
	op tracing.Op
}

var _ keycard.SessionStore = sessionStore{}

func (w sessionStore) CreateSession(ctx context.Context, s *keycard.Session, first *keycard.RefreshToken, opt *keycard.CreateSessionOptions) (err error) {
	ctx, end := w.op(ctx, "store.CreateSession")
	defer func() { end(err) }()
	return w.SessionStore.CreateSession(ctx, s, first, opt)
}

func (w sessionStore) Session(ctx context.Context, id string) (_ *keycard.Session, err error) {
	ctx, end := w.op(ctx, "store.Session")
	defer func() { end(err) }()
	return w.SessionStore.Session(ctx, id)
}

func (w sessionStore) SessionWithUser(ctx context.Context, id string) (_ *keycard.Session, _ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.SessionWithUser")
	defer func() { end(err) }()
	return w.SessionStore.SessionWithUser(ctx, id)
}

func (w sessionStore) ListSessions(ctx context.Context, f keycard.SessionFilter) (_ []*keycard.Session, err error) {
	ctx, end := w.op(ctx, "store.ListSessions")
	defer func() { end(err) }()
	return w.SessionStore.ListSessions(ctx, f)
}

func (w sessionStore) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (_ *keycard.Session, err error) {
	ctx, end := w.op(ctx, "store.RevokeSession")
	defer func() { end(err) }()
	return w.SessionStore.RevokeSession(ctx, id, at, reason)
}

func (w sessionStore) RevokeUserSessions(ctx context.Context, userID string, exceptID string, at time.Time, reason string) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.RevokeUserSessions")
	defer func() { end(err) }()
	return w.SessionStore.RevokeUserSessions(ctx, userID, exceptID, at, reason)
}

func (w sessionStore) Reauthenticated(ctx context.Context, id string, at time.Time, amr []string) (err error) {
	ctx, end := w.op(ctx, "store.Reauthenticated")
	defer func() { end(err) }()
	return w.SessionStore.Reauthenticated(ctx, id, at, amr)
}

func (w sessionStore) RevokeClientSessions(ctx context.Context, userID string, clientID string, at time.Time, reason string) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.RevokeClientSessions")
	defer func() { end(err) }()
	return w.SessionStore.RevokeClientSessions(ctx, userID, clientID, at, reason)
}

func (w sessionStore) RevokeAllSessions(ctx context.Context, at time.Time, reason string) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.RevokeAllSessions")
	defer func() { end(err) }()
	return w.SessionStore.RevokeAllSessions(ctx, at, reason)
}

func (w sessionStore) RefreshToken(ctx context.Context, id string) (_ *keycard.RefreshToken, err error) {
	ctx, end := w.op(ctx, "store.RefreshToken")
	defer func() { end(err) }()
	return w.SessionStore.RefreshToken(ctx, id)
}

func (w sessionStore) RotateRefreshToken(ctx context.Context, req keycard.RotateRequest) (_ *keycard.RotateResult, err error) {
	ctx, end := w.op(ctx, "store.RotateRefreshToken")
	defer func() { end(err) }()
	return w.SessionStore.RotateRefreshToken(ctx, req)
}

func (w sessionStore) PruneSessions(ctx context.Context, before time.Time, sealedBefore time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneSessions")
	defer func() { end(err) }()
	return w.SessionStore.PruneSessions(ctx, before, sealedBefore)
}

// keyStore traces a keycard.KeyStore.
type keyStore struct {
	keycard.KeyStore
	op tracing.Op
}

var _ keycard.KeyStore = keyStore{}

func (w keyStore) CreateKey(ctx context.Context, k *keycard.SigningKey) (err error) {
	ctx, end := w.op(ctx, "store.CreateKey")
	defer func() { end(err) }()
	return w.KeyStore.CreateKey(ctx, k)
}

func (w keyStore) Key(ctx context.Context, kid string) (_ *keycard.SigningKey, err error) {
	ctx, end := w.op(ctx, "store.Key")
	defer func() { end(err) }()
	return w.KeyStore.Key(ctx, kid)
}

func (w keyStore) ListKeys(ctx context.Context) (_ []*keycard.SigningKey, err error) {
	ctx, end := w.op(ctx, "store.ListKeys")
	defer func() { end(err) }()
	return w.KeyStore.ListKeys(ctx)
}

func (w keyStore) ActivateKey(ctx context.Context, kid string, at time.Time, removeAfter time.Time) (err error) {
	ctx, end := w.op(ctx, "store.ActivateKey")
	defer func() { end(err) }()
	return w.KeyStore.ActivateKey(ctx, kid, at, removeAfter)
}

func (w keyStore) RevokeKey(ctx context.Context, kid string, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.RevokeKey")
	defer func() { end(err) }()
	return w.KeyStore.RevokeKey(ctx, kid, at)
}

func (w keyStore) DeleteRemovedKeys(ctx context.Context, now time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.DeleteRemovedKeys")
	defer func() { end(err) }()
	return w.KeyStore.DeleteRemovedKeys(ctx, now)
}

func (w keyStore) KeyGeneration(ctx context.Context) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.KeyGeneration")
	defer func() { end(err) }()
	return w.KeyStore.KeyGeneration(ctx)
}

// revocationStore traces a keycard.RevocationStore.
type revocationStore struct {
	keycard.RevocationStore
	op tracing.Op
}

var _ keycard.RevocationStore = revocationStore{}

func (w revocationStore) AddRevocation(ctx context.Context, r *keycard.Revocation) (err error) {
	ctx, end := w.op(ctx, "store.AddRevocation")
	defer func() { end(err) }()
	return w.RevocationStore.AddRevocation(ctx, r)
}

func (w revocationStore) Revocations(ctx context.Context, after int64, limit int) (_ []*keycard.Revocation, err error) {
	ctx, end := w.op(ctx, "store.Revocations")
	defer func() { end(err) }()
	return w.RevocationStore.Revocations(ctx, after, limit)
}

func (w revocationStore) HasRevocation(ctx context.Context, kind keycard.RevocationKind, value string) (_ bool, err error) {
	ctx, end := w.op(ctx, "store.HasRevocation")
	defer func() { end(err) }()
	return w.RevocationStore.HasRevocation(ctx, kind, value)
}

func (w revocationStore) LastRevocationSeq(ctx context.Context) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.LastRevocationSeq")
	defer func() { end(err) }()
	return w.RevocationStore.LastRevocationSeq(ctx)
}

func (w revocationStore) FirstRevocationSeq(ctx context.Context) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.FirstRevocationSeq")
	defer func() { end(err) }()
	return w.RevocationStore.FirstRevocationSeq(ctx)
}

func (w revocationStore) PruneRevocations(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneRevocations")
	defer func() { end(err) }()
	return w.RevocationStore.PruneRevocations(ctx, before)
}

// auditStore traces a keycard.AuditStore.
type auditStore struct {
	keycard.AuditStore
	op tracing.Op
}

var _ keycard.AuditStore = auditStore{}

func (w auditStore) AppendAudit(ctx context.Context, e *keycard.AuditEvent) (err error) {
	ctx, end := w.op(ctx, "store.AppendAudit")
	defer func() { end(err) }()
	return w.AuditStore.AppendAudit(ctx, e)
}

func (w auditStore) ListAudit(ctx context.Context, f keycard.AuditFilter) (_ []*keycard.AuditEvent, err error) {
	ctx, end := w.op(ctx, "store.ListAudit")
	defer func() { end(err) }()
	return w.AuditStore.ListAudit(ctx, f)
}

// clientStore traces a keycard.ClientStore.
type clientStore struct {
	keycard.ClientStore
	op tracing.Op
}

var _ keycard.ClientStore = clientStore{}

func (w clientStore) CreateClient(ctx context.Context, c *keycard.Client) (err error) {
	ctx, end := w.op(ctx, "store.CreateClient")
	defer func() { end(err) }()
	return w.ClientStore.CreateClient(ctx, c)
}

func (w clientStore) UpdateClient(ctx context.Context, c *keycard.Client) (_ *keycard.Client, err error) {
	ctx, end := w.op(ctx, "store.UpdateClient")
	defer func() { end(err) }()
	return w.ClientStore.UpdateClient(ctx, c)
}

func (w clientStore) Client(ctx context.Context, id string) (_ *keycard.Client, err error) {
	ctx, end := w.op(ctx, "store.Client")
	defer func() { end(err) }()
	return w.ClientStore.Client(ctx, id)
}

func (w clientStore) ClientWithKeyGeneration(ctx context.Context, id string) (_ *keycard.Client, _ int64, err error) {
	ctx, end := w.op(ctx, "store.ClientWithKeyGeneration")
	defer func() { end(err) }()
	return w.ClientStore.ClientWithKeyGeneration(ctx, id)
}

func (w clientStore) ListClients(ctx context.Context, f keycard.ClientFilter) (_ []*keycard.Client, err error) {
	ctx, end := w.op(ctx, "store.ListClients")
	defer func() { end(err) }()
	return w.ClientStore.ListClients(ctx, f)
}

func (w clientStore) DeleteClient(ctx context.Context, id string, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.DeleteClient")
	defer func() { end(err) }()
	return w.ClientStore.DeleteClient(ctx, id, at)
}

func (w clientStore) SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.SetClientSecret")
	defer func() { end(err) }()
	return w.ClientStore.SetClientSecret(ctx, id, hash, at)
}

// grantStore traces a keycard.GrantStore.
type grantStore struct {
	keycard.GrantStore
	op tracing.Op
}

var _ keycard.GrantStore = grantStore{}

func (w grantStore) CreateAuthCode(ctx context.Context, c *keycard.AuthCode) (err error) {
	ctx, end := w.op(ctx, "store.CreateAuthCode")
	defer func() { end(err) }()
	return w.GrantStore.CreateAuthCode(ctx, c)
}

func (w grantStore) AuthCode(ctx context.Context, id string) (_ *keycard.AuthCode, err error) {
	ctx, end := w.op(ctx, "store.AuthCode")
	defer func() { end(err) }()
	return w.GrantStore.AuthCode(ctx, id)
}

func (w grantStore) CreateDeviceCode(ctx context.Context, d *keycard.DeviceCode) (err error) {
	ctx, end := w.op(ctx, "store.CreateDeviceCode")
	defer func() { end(err) }()
	return w.GrantStore.CreateDeviceCode(ctx, d)
}

func (w grantStore) DeviceCode(ctx context.Context, id string) (_ *keycard.DeviceCode, err error) {
	ctx, end := w.op(ctx, "store.DeviceCode")
	defer func() { end(err) }()
	return w.GrantStore.DeviceCode(ctx, id)
}

func (w grantStore) DeviceCodeByUserCode(ctx context.Context, userCode string, at time.Time) (_ *keycard.DeviceCode, err error) {
	ctx, end := w.op(ctx, "store.DeviceCodeByUserCode")
	defer func() { end(err) }()
	return w.GrantStore.DeviceCodeByUserCode(ctx, userCode, at)
}

func (w grantStore) DecideDeviceCode(ctx context.Context, d *keycard.DeviceCode, state keycard.DeviceCodeState, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.DecideDeviceCode")
	defer func() { end(err) }()
	return w.GrantStore.DecideDeviceCode(ctx, d, state, at)
}

func (w grantStore) PollDeviceCode(ctx context.Context, id string, at time.Time) (_ *keycard.DeviceCode, err error) {
	ctx, end := w.op(ctx, "store.PollDeviceCode")
	defer func() { end(err) }()
	return w.GrantStore.PollDeviceCode(ctx, id, at)
}

func (w grantStore) Redeem(ctx context.Context, r keycard.RedeemRequest) (_ keycard.RedeemOutcome, err error) {
	ctx, end := w.op(ctx, "store.Redeem")
	defer func() { end(err) }()
	return w.GrantStore.Redeem(ctx, r)
}

func (w grantStore) Consent(ctx context.Context, userID string, clientID string) (_ *keycard.Consent, err error) {
	ctx, end := w.op(ctx, "store.Consent")
	defer func() { end(err) }()
	return w.GrantStore.Consent(ctx, userID, clientID)
}

func (w grantStore) SaveConsent(ctx context.Context, c *keycard.Consent) (err error) {
	ctx, end := w.op(ctx, "store.SaveConsent")
	defer func() { end(err) }()
	return w.GrantStore.SaveConsent(ctx, c)
}

func (w grantStore) ListConsents(ctx context.Context, userID string) (_ []*keycard.Consent, err error) {
	ctx, end := w.op(ctx, "store.ListConsents")
	defer func() { end(err) }()
	return w.GrantStore.ListConsents(ctx, userID)
}

func (w grantStore) RevokeConsent(ctx context.Context, userID string, clientID string, at time.Time) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.RevokeConsent")
	defer func() { end(err) }()
	return w.GrantStore.RevokeConsent(ctx, userID, clientID, at)
}

func (w grantStore) CreatePushedRequest(ctx context.Context, p *keycard.PushedRequest) (err error) {
	ctx, end := w.op(ctx, "store.CreatePushedRequest")
	defer func() { end(err) }()
	return w.GrantStore.CreatePushedRequest(ctx, p)
}

func (w grantStore) PushedRequest(ctx context.Context, id string, at time.Time) (_ *keycard.PushedRequest, err error) {
	ctx, end := w.op(ctx, "store.PushedRequest")
	defer func() { end(err) }()
	return w.GrantStore.PushedRequest(ctx, id, at)
}

func (w grantStore) DeletePushedRequest(ctx context.Context, id string) (err error) {
	ctx, end := w.op(ctx, "store.DeletePushedRequest")
	defer func() { end(err) }()
	return w.GrantStore.DeletePushedRequest(ctx, id)
}

func (w grantStore) PruneGrants(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneGrants")
	defer func() { end(err) }()
	return w.GrantStore.PruneGrants(ctx, before)
}

func (w grantStore) UseOnce(ctx context.Context, key string, at, expiresAt time.Time) (_ bool, err error) {
	ctx, end := w.op(ctx, "store.UseOnce")
	defer func() { end(err) }()
	return w.GrantStore.UseOnce(ctx, key, at, expiresAt)
}

// logoutStore traces a keycard.LogoutStore.
type logoutStore struct {
	keycard.LogoutStore
	op tracing.Op
}

var _ keycard.LogoutStore = logoutStore{}

func (w logoutStore) ClaimLogouts(ctx context.Context, at time.Time, lease time.Duration, limit int) (_ []*keycard.LogoutDelivery, err error) {
	ctx, end := w.op(ctx, "store.ClaimLogouts")
	defer func() { end(err) }()
	return w.LogoutStore.ClaimLogouts(ctx, at, lease, limit)
}

func (w logoutStore) LogoutDelivered(ctx context.Context, sessionID string, attempt int, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.LogoutDelivered")
	defer func() { end(err) }()
	return w.LogoutStore.LogoutDelivered(ctx, sessionID, attempt, at)
}

func (w logoutStore) RetryLogout(ctx context.Context, sessionID string, attempt int, at, next time.Time, reason string) (err error) {
	ctx, end := w.op(ctx, "store.RetryLogout")
	defer func() { end(err) }()
	return w.LogoutStore.RetryLogout(ctx, sessionID, attempt, at, next, reason)
}

func (w logoutStore) GiveUpLogout(ctx context.Context, sessionID string, attempt int, at time.Time, reason string) (err error) {
	ctx, end := w.op(ctx, "store.GiveUpLogout")
	defer func() { end(err) }()
	return w.LogoutStore.GiveUpLogout(ctx, sessionID, attempt, at, reason)
}

func (w logoutStore) ListLogouts(ctx context.Context, f keycard.LogoutFilter) (_ []*keycard.LogoutDelivery, err error) {
	ctx, end := w.op(ctx, "store.ListLogouts")
	defer func() { end(err) }()
	return w.LogoutStore.ListLogouts(ctx, f)
}

func (w logoutStore) PruneLogouts(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneLogouts")
	defer func() { end(err) }()
	return w.LogoutStore.PruneLogouts(ctx, before)
}

// webhookStore traces a keycard.WebhookStore.
type webhookStore struct {
	keycard.WebhookStore
	op tracing.Op
}

var _ keycard.WebhookStore = webhookStore{}

func (w webhookStore) CreateWebhook(ctx context.Context, e *keycard.WebhookEndpoint) (err error) {
	ctx, end := w.op(ctx, "store.CreateWebhook")
	defer func() { end(err) }()
	return w.WebhookStore.CreateWebhook(ctx, e)
}

func (w webhookStore) Webhook(ctx context.Context, id string) (_ *keycard.WebhookEndpoint, err error) {
	ctx, end := w.op(ctx, "store.Webhook")
	defer func() { end(err) }()
	return w.WebhookStore.Webhook(ctx, id)
}

func (w webhookStore) ListWebhooks(ctx context.Context) (_ []*keycard.WebhookEndpoint, err error) {
	ctx, end := w.op(ctx, "store.ListWebhooks")
	defer func() { end(err) }()
	return w.WebhookStore.ListWebhooks(ctx)
}

func (w webhookStore) DeleteWebhook(ctx context.Context, id string) (err error) {
	ctx, end := w.op(ctx, "store.DeleteWebhook")
	defer func() { end(err) }()
	return w.WebhookStore.DeleteWebhook(ctx, id)
}

func (w webhookStore) WebhookDelivery(ctx context.Context, id int64) (_ *keycard.WebhookDelivery, err error) {
	ctx, end := w.op(ctx, "store.WebhookDelivery")
	defer func() { end(err) }()
	return w.WebhookStore.WebhookDelivery(ctx, id)
}

func (w webhookStore) ClaimWebhookDeliveries(ctx context.Context, at time.Time, lease time.Duration, limit int) (_ []*keycard.WebhookDelivery, err error) {
	ctx, end := w.op(ctx, "store.ClaimWebhookDeliveries")
	defer func() { end(err) }()
	return w.WebhookStore.ClaimWebhookDeliveries(ctx, at, lease, limit)
}

func (w webhookStore) WebhookDelivered(ctx context.Context, id int64, attempt int, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.WebhookDelivered")
	defer func() { end(err) }()
	return w.WebhookStore.WebhookDelivered(ctx, id, attempt, at)
}

func (w webhookStore) RetryWebhook(ctx context.Context, id int64, attempt int, at, next time.Time, reason string) (err error) {
	ctx, end := w.op(ctx, "store.RetryWebhook")
	defer func() { end(err) }()
	return w.WebhookStore.RetryWebhook(ctx, id, attempt, at, next, reason)
}

func (w webhookStore) GiveUpWebhook(ctx context.Context, id int64, attempt int, at time.Time, reason string) (err error) {
	ctx, end := w.op(ctx, "store.GiveUpWebhook")
	defer func() { end(err) }()
	return w.WebhookStore.GiveUpWebhook(ctx, id, attempt, at, reason)
}

func (w webhookStore) ReplayWebhook(ctx context.Context, id int64, at time.Time) (_ *keycard.WebhookDelivery, err error) {
	ctx, end := w.op(ctx, "store.ReplayWebhook")
	defer func() { end(err) }()
	return w.WebhookStore.ReplayWebhook(ctx, id, at)
}

func (w webhookStore) ListWebhookDeliveries(ctx context.Context, f keycard.WebhookFilter) (_ []*keycard.WebhookDelivery, err error) {
	ctx, end := w.op(ctx, "store.ListWebhookDeliveries")
	defer func() { end(err) }()
	return w.WebhookStore.ListWebhookDeliveries(ctx, f)
}

func (w webhookStore) PruneWebhookDeliveries(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneWebhookDeliveries")
	defer func() { end(err) }()
	return w.WebhookStore.PruneWebhookDeliveries(ctx, before)
}

// emailStore traces a keycard.EmailStore.
type emailStore struct {
	keycard.EmailStore
	op tracing.Op
}

var _ keycard.EmailStore = emailStore{}

func (w emailStore) UserByEmail(ctx context.Context, email string) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.UserByEmail")
	defer func() { end(err) }()
	return w.EmailStore.UserByEmail(ctx, email)
}

func (w emailStore) SetEmail(ctx context.Context, userID, email string, verified bool, at time.Time) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.SetEmail")
	defer func() { end(err) }()
	return w.EmailStore.SetEmail(ctx, userID, email, verified, at)
}

func (w emailStore) CreateEmailToken(ctx context.Context, t *keycard.EmailToken) (err error) {
	ctx, end := w.op(ctx, "store.CreateEmailToken")
	defer func() { end(err) }()
	return w.EmailStore.CreateEmailToken(ctx, t)
}

func (w emailStore) EmailToken(ctx context.Context, id string) (_ *keycard.EmailToken, err error) {
	ctx, end := w.op(ctx, "store.EmailToken")
	defer func() { end(err) }()
	return w.EmailStore.EmailToken(ctx, id)
}

func (w emailStore) VerifyEmail(ctx context.Context, id string, at time.Time) (_ *keycard.User, err error) {
	ctx, end := w.op(ctx, "store.VerifyEmail")
	defer func() { end(err) }()
	return w.EmailStore.VerifyEmail(ctx, id, at)
}

func (w emailStore) ResetPassword(ctx context.Context, id, hash string, at time.Time) (_ *keycard.User, _ []string, err error) {
	ctx, end := w.op(ctx, "store.ResetPassword")
	defer func() { end(err) }()
	return w.EmailStore.ResetPassword(ctx, id, hash, at)
}

func (w emailStore) PruneEmailTokens(ctx context.Context, before time.Time) (_ int64, err error) {
	ctx, end := w.op(ctx, "store.PruneEmailTokens")
	defer func() { end(err) }()
	return w.EmailStore.PruneEmailTokens(ctx, before)
}

// mfaStore traces a keycard.MFAStore.
type mfaStore struct {
	keycard.MFAStore
	op tracing.Op
}

var _ keycard.MFAStore = mfaStore{}

func (w mfaStore) PutPendingTOTP(ctx context.Context, c *keycard.TOTPCredential) (err error) {
	ctx, end := w.op(ctx, "store.PutPendingTOTP")
	defer func() { end(err) }()
	return w.MFAStore.PutPendingTOTP(ctx, c)
}

func (w mfaStore) TOTP(ctx context.Context, userID string) (_ *keycard.TOTPCredential, err error) {
	ctx, end := w.op(ctx, "store.TOTP")
	defer func() { end(err) }()
	return w.MFAStore.TOTP(ctx, userID)
}

func (w mfaStore) ConfirmTOTP(ctx context.Context, userID string, step int64, codes [][]byte, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.ConfirmTOTP")
	defer func() { end(err) }()
	return w.MFAStore.ConfirmTOTP(ctx, userID, step, codes, at)
}

func (w mfaStore) UseTOTPStep(ctx context.Context, userID string, step int64) (err error) {
	ctx, end := w.op(ctx, "store.UseTOTPStep")
	defer func() { end(err) }()
	return w.MFAStore.UseTOTPStep(ctx, userID, step)
}

func (w mfaStore) DeleteTOTP(ctx context.Context, userID string) (err error) {
	ctx, end := w.op(ctx, "store.DeleteTOTP")
	defer func() { end(err) }()
	return w.MFAStore.DeleteTOTP(ctx, userID)
}

func (w mfaStore) ReplaceRecoveryCodes(ctx context.Context, userID string, codes [][]byte, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.ReplaceRecoveryCodes")
	defer func() { end(err) }()
	return w.MFAStore.ReplaceRecoveryCodes(ctx, userID, codes, at)
}

func (w mfaStore) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.UseRecoveryCode")
	defer func() { end(err) }()
	return w.MFAStore.UseRecoveryCode(ctx, userID, hash, at)
}

func (w mfaStore) Factors(ctx context.Context, userID string) (_ keycard.MFAFactors, err error) {
	ctx, end := w.op(ctx, "store.Factors")
	defer func() { end(err) }()
	return w.MFAStore.Factors(ctx, userID)
}

func (w mfaStore) RecoveryCodesLeft(ctx context.Context, userID string) (_ int, err error) {
	ctx, end := w.op(ctx, "store.RecoveryCodesLeft")
	defer func() { end(err) }()
	return w.MFAStore.RecoveryCodesLeft(ctx, userID)
}

// federationStore traces a keycard.FederationStore.
type federationStore struct {
	keycard.FederationStore
	op tracing.Op
}

var _ keycard.FederationStore = federationStore{}

func (w federationStore) CreateFederatedUser(ctx context.Context, u *keycard.User, id *keycard.FederatedIdentity) (err error) {
	ctx, end := w.op(ctx, "store.CreateFederatedUser")
	defer func() { end(err) }()
	return w.FederationStore.CreateFederatedUser(ctx, u, id)
}

func (w federationStore) LinkIdentity(ctx context.Context, id *keycard.FederatedIdentity) (err error) {
	ctx, end := w.op(ctx, "store.LinkIdentity")
	defer func() { end(err) }()
	return w.FederationStore.LinkIdentity(ctx, id)
}

func (w federationStore) Identity(ctx context.Context, provider, subject string) (_ *keycard.FederatedIdentity, err error) {
	ctx, end := w.op(ctx, "store.Identity")
	defer func() { end(err) }()
	return w.FederationStore.Identity(ctx, provider, subject)
}

func (w federationStore) UserIdentities(ctx context.Context, userID string) (_ []*keycard.FederatedIdentity, err error) {
	ctx, end := w.op(ctx, "store.UserIdentities")
	defer func() { end(err) }()
	return w.FederationStore.UserIdentities(ctx, userID)
}

func (w federationStore) IdentityUsed(ctx context.Context, provider, subject, email string, at time.Time) (err error) {
	ctx, end := w.op(ctx, "store.IdentityUsed")
	defer func() { end(err) }()
	return w.FederationStore.IdentityUsed(ctx, provider, subject, email, at)
}

func (w federationStore) UnlinkIdentity(ctx context.Context, userID, provider, subject string) (err error) {
	ctx, end := w.op(ctx, "store.UnlinkIdentity")
	defer func() { end(err) }()
	return w.FederationStore.UnlinkIdentity(ctx, userID, provider, subject)
}

func (w federationStore) UpstreamSessions(ctx context.Context, provider, subject, sid string, at time.Time) (_ []string, err error) {
	ctx, end := w.op(ctx, "store.UpstreamSessions")
	defer func() { end(err) }()
	return w.FederationStore.UpstreamSessions(ctx, provider, subject, sid, at)
}

func (w federationStore) CreateUpstreamProvider(ctx context.Context, p *keycard.UpstreamProvider) (err error) {
	ctx, end := w.op(ctx, "store.CreateUpstreamProvider")
	defer func() { end(err) }()
	return w.FederationStore.CreateUpstreamProvider(ctx, p)
}

func (w federationStore) UpdateUpstreamProvider(ctx context.Context, p *keycard.UpstreamProvider) (err error) {
	ctx, end := w.op(ctx, "store.UpdateUpstreamProvider")
	defer func() { end(err) }()
	return w.FederationStore.UpdateUpstreamProvider(ctx, p)
}

func (w federationStore) DeleteUpstreamProvider(ctx context.Context, name string) (err error) {
	ctx, end := w.op(ctx, "store.DeleteUpstreamProvider")
	defer func() { end(err) }()
	return w.FederationStore.DeleteUpstreamProvider(ctx, name)
}

func (w federationStore) UpstreamProvider(ctx context.Context, name string) (_ *keycard.UpstreamProvider, err error) {
	ctx, end := w.op(ctx, "store.UpstreamProvider")
	defer func() { end(err) }()
	return w.FederationStore.UpstreamProvider(ctx, name)
}

func (w federationStore) UpstreamProviders(ctx context.Context) (_ []*keycard.UpstreamProvider, err error) {
	ctx, end := w.op(ctx, "store.UpstreamProviders")
	defer func() { end(err) }()
	return w.FederationStore.UpstreamProviders(ctx)
}
