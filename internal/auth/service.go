// Package auth is the auth server's domain logic: registration, password
// login, access-token minting, refresh-token rotation with theft
// detection, sessions, logout and signing-key management. It knows no SQL
// and no HTTP: storage comes through the keycard store interfaces, and the
// HTTP layer maps its keycard.Error codes to responses.
package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/username"
	"github.com/keycard-auth/keycard/jwt"
)

// Defaults for Config.
const (
	DefaultAccessTTL = 15 * time.Minute
	// DefaultStepUpWithin is Config.StepUpWithin's default.
	DefaultStepUpWithin = 5 * time.Minute
	DefaultAudience     = "api"
	// DefaultClientID is the client_id (RFC 9068 section 2.2) of tokens
	// issued to users through Keycard's own login, which involves no
	// registered OAuth client.
	DefaultClientID = "keycard"
	DefaultLeeway   = jwt.DefaultLeeway
)

// Config is the token and session policy.
type Config struct {
	// Issuer is the "iss" of every token: the server's public base URL.
	Issuer string
	// Audience is the "aud" of access tokens; DefaultAudience when empty.
	Audience string
	// ClientID is the "client_id" of user access tokens; DefaultClientID
	// when empty.
	ClientID string
	// AccessTTL is the access-token lifetime; DefaultAccessTTL when zero.
	AccessTTL time.Duration
	// RefreshGrace is how long a rotated refresh token is still answered
	// with its successor; keycard.DefaultRotationGrace when zero.
	RefreshGrace time.Duration
	// IdleTimeout and SessionLifetime bound a session; the keycard
	// defaults (7 and 30 days) when zero.
	IdleTimeout     time.Duration
	SessionLifetime time.Duration
	// Registration allows POST /v1/users.
	Registration bool
	// MailQueue is how many mail jobs may wait for the mail worker;
	// DefaultMailQueue when zero.
	MailQueue int
	// RoleScopes grants scopes to users' access tokens by role: a user's
	// token carries, in "scope", the scopes of each of its roles, and
	// those of the key "*", which every user has. Empty: user tokens
	// carry roles and no scopes. (Service clients get the scopes they
	// were registered with.)
	RoleScopes map[string][]string

	// MaxSessionsPerUser caps a user's active sessions: a login beyond
	// the cap ends the user's least recently used session (revoked with
	// reason keycard.RevokeSessionLimit, so verifiers hear of it through
	// the feed). 0 means no cap.
	MaxSessionsPerUser int
	// RolePolicies override, by role, the access-token lifetime and the
	// session idle timeout and absolute lifetime (zero fields keep the
	// defaults above). A user with several roles gets the shortest of
	// each. A role's access-token lifetime may not exceed AccessTTL: the
	// revocation feed keeps entries only that long.
	RolePolicies map[string]SessionPolicy
	// StepUpWithin is how recent an admin's sign-in must be for the most
	// destructive admin actions (deleting a user), whatever ReauthWithin
	// says: DefaultStepUpWithin when zero; ReauthWithin when that is set
	// and shorter. An older sign-in gets a *ReauthRequiredError (401
	// insufficient_user_authentication with max_age, RFC 9470), and the
	// admin signs in again. The command line's operator is not asked.
	StepUpWithin time.Duration
	// ReauthWithin is how recent a login must be for sensitive actions
	// (changing the password, the admin API): an access token whose
	// auth_time is older gets ErrReauthRequired (401
	// insufficient_user_authentication, RFC 9470), and the user signs in
	// again. 0 means no such requirement.
	ReauthWithin time.Duration
	// ClaimsHookContinue mints tokens without custom claims when the
	// custom-claims hook (Deps.ClaimsHook) fails; false (the default)
	// fails the minting instead.
	ClaimsHookContinue bool
	// IntrospectionCache is how many answers of Introspect for active
	// access tokens the Service keeps, and turns on the cache of service
	// clients' authentication at the introspection endpoint
	// (AuthenticateClientCached); 0 keeps none. Give it only to a
	// Service whose process follows the revocation feed (calls
	// RevocationsAppended on other processes' appends, as
	// internal/server does): every change this Service makes ends the
	// cached answers at once, another process's feed entries when their
	// notification arrives, and its other changes (a client's secret or
	// a user's name changed on another instance) within
	// IntrospectionCacheFor.
	IntrospectionCache int
	// IntrospectionCacheFor is the longest a cached introspection answer
	// or client authentication is used; DefaultIntrospectionCacheFor
	// when zero.
	IntrospectionCacheFor time.Duration
	// WebhooksAllowHTTP lets webhook endpoints use http on any host, not
	// only a loopback one: for a private network, or development. The
	// bodies are then readable, and forgeable, on the way.
	WebhooksAllowHTTP bool
	// RequireMFAForRoles lists roles whose users must have a second
	// factor: a user with one of them and no second factor is stopped at
	// sign-in until one is enrolled (MFARequiredError.Enroll), and cannot
	// remove it. Empty: second factors are optional.
	RequireMFAForRoles []string
}

// SessionPolicy is what Config.RolePolicies overrides for a role.
type SessionPolicy struct {
	AccessTTL       time.Duration
	IdleTimeout     time.Duration
	SessionLifetime time.Duration
}

// policyFor returns the lifetimes that apply to u: the configured ones,
// shortened by the overrides of u's roles.
func (c *Config) policyFor(u *keycard.User) SessionPolicy {
	p := SessionPolicy{AccessTTL: c.AccessTTL, IdleTimeout: c.IdleTimeout, SessionLifetime: c.SessionLifetime}
	shorter := func(cur, o time.Duration) time.Duration {
		if o > 0 && o < cur {
			return o
		}
		return cur
	}
	for _, r := range u.Roles {
		o, ok := c.RolePolicies[r]
		if !ok {
			continue
		}
		p.AccessTTL = shorter(p.AccessTTL, o.AccessTTL)
		p.IdleTimeout = shorter(p.IdleTimeout, o.IdleTimeout)
		p.SessionLifetime = shorter(p.SessionLifetime, o.SessionLifetime)
	}
	return p
}

// userScope returns the "scope" of u's access tokens: the scopes of "*"
// and of u's roles (Config.RoleScopes), space-separated, each once, in
// a stable order.
func (c *Config) userScope(u *keycard.User) string {
	if len(c.RoleScopes) == 0 {
		return ""
	}
	var out []string
	add := func(role string) {
		for _, sc := range c.RoleScopes[role] {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	add("*")
	for _, r := range u.Roles {
		add(r)
	}
	return strings.Join(out, " ")
}

func (c *Config) setDefaults() {
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshGrace == 0 {
		c.RefreshGrace = keycard.DefaultRotationGrace
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = keycard.DefaultIdleTimeout
	}
	if c.SessionLifetime == 0 {
		c.SessionLifetime = keycard.DefaultSessionLifetime
	}
	if c.IntrospectionCacheFor == 0 {
		c.IntrospectionCacheFor = DefaultIntrospectionCacheFor
	}
}

// Service implements the auth server's operations. It is safe for
// concurrent use.
type Service struct {
	stores keycard.Stores
	// feed wakes the revocation feed's waiters; stores notify it.
	feed   *feedNotifier
	keys   *KeyManager
	sealer *Sealer
	// codes seals authorization codes (sealedcode.go); nil without a
	// Sealer, when codes are stored.
	codes  *codeSealer
	limits LoginLimits
	stats  Metrics
	hasher *password.Hasher
	tracer Trace // nil: no tracing
	// claimsHook adds custom claims to user tokens; nil: none.
	claimsHook ClaimsHook
	cfg        Config
	now        func() time.Time
	rand       io.Reader
	log        *slog.Logger
	parser     *jwt.Parser
	// introspector verifies access tokens of any audience, with or
	// without a session: users' and service clients' tokens alike.
	introspector *jwt.Parser
	// introCache and clientCache, when not nil, keep introspection
	// answers and client authentications (Config.IntrospectionCache).
	introCache  *introCache
	clientCache *clientCache
	// hintParser verifies ID tokens given back as an id_token_hint: of
	// any audience, and expired up to a session's lifetime.
	hintParser *jwt.Parser
	// clientKeys fetches the key sets of private_key_jwt clients with a
	// jwks_uri; nil fetches none.
	clientKeys ClientKeys
	// mailer sends mail through the mail worker (RunMail); nil sends
	// none.
	mailer   Mailer
	mailJobs chan mailJob
	// webauthn runs the passkey ceremonies; nil: passkeys are off.
	webauthn WebAuthn
	// factors are the second factors of the MFA step (mfa.go).
	factors []SecondFactor
}

// Deps are the Service's collaborators. Now, Rand and Logger may be nil.
type Deps struct {
	Stores keycard.Stores
	Keys   *KeyManager
	Sealer *Sealer
	Hasher *password.Hasher
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger

	// LoginLimits throttle Login; the zero value throttles nothing.
	LoginLimits LoginLimits
	// Metrics receives counts of logins, refresh grants and revoked
	// sessions; nil reports nothing.
	Metrics Metrics
	// ClientKeys fetches the JWK Sets of clients that authenticate with
	// private_key_jwt and register a jwks_uri; nil: such clients cannot
	// authenticate (those with an inline JWK Set can).
	ClientKeys ClientKeys
	// Trace, when not nil, times password hashing and token signing in
	// the trace of the request that does them (see Trace).
	Trace Trace
	// ClaimsHook, when not nil, adds custom claims to the tokens minted
	// for users (see ClaimsHook, Config.ClaimsHookContinue).
	ClaimsHook ClaimsHook
	// Mailer, when not nil, sends verification and password-reset links
	// and notifications, from the worker RunMail runs.
	Mailer Mailer
	// WebAuthn, when not nil, lets users register passkeys and sign in
	// with them (internal/passkey implements it).
	WebAuthn WebAuthn
}

// NewService returns a Service.
func NewService(d Deps, cfg Config) (*Service, error) {
	cfg.setDefaults()
	if cfg.MaxSessionsPerUser < 0 {
		return nil, errors.New("auth: MaxSessionsPerUser must not be negative")
	}
	if d.WebAuthn != nil && d.Stores.Passkeys == nil {
		return nil, errors.New("auth: passkeys (Deps.WebAuthn) need a PasskeyStore")
	}
	if cfg.ReauthWithin < 0 {
		return nil, errors.New("auth: ReauthWithin must not be negative")
	}
	if cfg.StepUpWithin < 0 {
		return nil, errors.New("auth: StepUpWithin must not be negative")
	}
	if cfg.IntrospectionCache < 0 || cfg.IntrospectionCacheFor < 0 {
		return nil, errors.New("auth: IntrospectionCache and IntrospectionCacheFor must not be negative")
	}
	for role, p := range cfg.RolePolicies {
		if p.AccessTTL < 0 || p.IdleTimeout < 0 || p.SessionLifetime < 0 {
			return nil, fmt.Errorf("auth: role %q: lifetimes must not be negative", role)
		}
		if p.AccessTTL > cfg.AccessTTL {
			return nil, fmt.Errorf("auth: role %q: access-token lifetime %v exceeds the default %v; the revocation feed keeps entries only that long", role, p.AccessTTL, cfg.AccessTTL)
		}
	}
	for role, scopes := range cfg.RoleScopes {
		for _, sc := range scopes {
			if !isScopeToken(sc) || len(sc) > MaxScopeLen {
				return nil, fmt.Errorf("auth: role %q: %q is not a scope (RFC 6749 section 3.3)", role, sc)
			}
		}
	}
	feed := newFeedNotifier()
	s := &Service{stores: notifyingStores(d.Stores, feed), feed: feed, keys: d.Keys, sealer: d.Sealer, hasher: d.Hasher, tracer: d.Trace, cfg: cfg, now: d.Now, rand: d.Rand, log: d.Logger,
		limits: d.LoginLimits, stats: d.Metrics, clientKeys: d.ClientKeys, claimsHook: d.ClaimsHook,
		mailer: d.Mailer, webauthn: d.WebAuthn, mailJobs: make(chan mailJob, cmp.Or(cfg.MailQueue, DefaultMailQueue))}
	if s.stats == nil {
		s.stats = noMetrics{}
	}
	if cfg.IntrospectionCache > 0 {
		s.introCache = newIntroCache(cfg.IntrospectionCache, cfg.IntrospectionCacheFor, &feed.epochs)
		s.clientCache = newClientCache(cfg.IntrospectionCacheFor, &feed.epochs)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.sealer != nil {
		key, err := s.sealer.Derive(codeKeyInfo)
		if err != nil {
			return nil, err
		}
		if s.codes, err = newCodeSealer(key, s.rand); err != nil {
			return nil, err
		}
	}
	if s.hasher == nil {
		s.hasher = &password.Hasher{}
	}
	s.factors = s.builtinFactors()
	if s.webauthn != nil {
		s.factors = append(s.factors, s.passkeyFactor())
	}
	// Without keys (the CLI's user commands) nothing is minted or parsed.
	s.parser = jwt.NewParser(keySetResolver{s.keys},
		jwt.WithIssuer(cfg.Issuer), jwt.WithAudience(cfg.Audience), jwt.WithType("at+jwt"),
		jwt.WithRequired("sub", "sid", "jti"), jwt.WithNow(s.now))
	s.introspector = jwt.NewParser(keySetResolver{s.keys},
		jwt.WithIssuer(cfg.Issuer), jwt.WithType("at+jwt"),
		jwt.WithRequired("sub", "jti", "client_id"), jwt.WithNow(s.now))
	s.hintParser = jwt.NewParser(keySetResolver{s.keys},
		jwt.WithIssuer(cfg.Issuer), jwt.WithType("JWT"), jwt.WithRequired("sub", "aud"),
		jwt.WithLeeway(cfg.SessionLifetime), jwt.WithNow(s.now))
	return s, nil
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Keys returns the key manager.
func (s *Service) Keys() *KeyManager { return s.keys }

// Prune deletes what has ended for good: sessions (and their refresh
// tokens) revoked or expired before now, the successors kept for the
// rotation grace window once it has passed, revocation feed entries past
// their expiry, back-channel logouts delivered or given up more than
// LogoutRetention ago, webhook deliveries settled more than
// WebhookRetention ago, and codes, pushed requests and single-use markers
// an hour past theirs. The server calls it periodically.
func (s *Service) Prune(ctx context.Context) error {
	now := s.now()
	if _, err := s.stores.Sessions.PruneSessions(ctx, now, now.Add(-s.cfg.RefreshGrace)); err != nil {
		return fmt.Errorf("auth: pruning sessions: %w", err)
	}
	if _, err := s.stores.Revocations.PruneRevocations(ctx, now); err != nil {
		return fmt.Errorf("auth: pruning the revocation feed: %w", err)
	}
	if _, err := s.stores.Logouts.PruneLogouts(ctx, now.Add(-LogoutRetention)); err != nil {
		return fmt.Errorf("auth: pruning back-channel logouts: %w", err)
	}
	if _, err := s.stores.Webhooks.PruneWebhookDeliveries(ctx, now.Add(-WebhookRetention)); err != nil {
		return fmt.Errorf("auth: pruning webhook deliveries: %w", err)
	}
	if _, err := s.stores.Grants.PruneGrants(ctx, now.Add(-grantRetention)); err != nil {
		return fmt.Errorf("auth: pruning codes, pushed requests and single-use markers: %w", err)
	}
	if s.stores.Emails != nil {
		if _, err := s.stores.Emails.PruneEmailTokens(ctx, now); err != nil {
			return fmt.Errorf("auth: pruning email links: %w", err)
		}
	}
	if s.stores.Passkeys != nil {
		if _, err := s.stores.Passkeys.PrunePasskeyChallenges(ctx, now); err != nil {
			return fmt.Errorf("auth: pruning passkey challenges: %w", err)
		}
	}
	return nil
}

// grantRetention is how long Prune keeps codes, pushed requests and
// single-use markers past their expiry: a redeemed code kept that long
// still detects its reuse (RFC 6749 section 4.1.2).
const grantRetention = time.Hour

// Tokens is the result of a login or a refresh (RFC 6749 section 5.1).
type Tokens struct {
	AccessToken string
	// TokenType is "DPoP" for an access token bound to a DPoP key
	// (RFC 9449 section 5), "Bearer" otherwise.
	TokenType    string
	ExpiresIn    int64 // seconds
	RefreshToken string
	// IDToken is the ID token of an application's grant with the openid
	// scope (OpenID Connect Core section 3.1.3.3); empty otherwise.
	IDToken   string
	SessionID string
	// Scope granted to the access token (space-separated); for user
	// logins, what Config.RoleScopes grants the user's roles.
	Scope string
}

// errLogin is the one answer to every failed login, whatever the reason.
func errLogin() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid username or password."}
}

// Register creates a user with a password and roles. It fails with
// EINVALID for a bad username or password and ECONFLICT if the username
// is taken. It is used both by POST /v1/users (when registration is on)
// and by the CLI.
func (s *Service) Register(ctx context.Context, name, pass string, roles []string) (*keycard.User, error) {
	return s.register(ctx, name, pass, "", roles)
}

// register is Register with a normalized email address, or "".
func (s *Service) register(ctx context.Context, name, pass, email string, roles []string) (*keycard.User, error) {
	display, normalized, err := username.Normalize(name)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(pass); err != nil {
		return nil, err
	}
	hash, err := s.hashPassword(ctx, pass)
	if err != nil {
		return nil, err
	}
	id, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	now := s.now()
	u := &keycard.User{
		ID: id, Username: display, NormalizedUsername: normalized, PasswordHash: hash,
		Roles: roles, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now, Email: email,
	}
	if err := s.stores.Users.CreateUser(ctx, u); err != nil {
		if keycard.ErrorCode(err) == keycard.ECONFLICT {
			if email != "" {
				// Which of the two is taken is not said: an address
				// must not be found out by registering with it.
				return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "Username or email address is taken."}
			}
			return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "Username is taken."}
		}
		return nil, err
	}
	s.audit(ctx, keycard.AuditUserCreated, UserActor(id, Agent{}), id, map[string]string{"username": display})
	return u, nil
}

func checkPassword(pass string) error {
	switch password.CheckLength(pass) {
	case password.ErrTooShort:
		return keycard.Errorf(keycard.EINVALID, "Password must be at least %d bytes long.", password.MinLength)
	case password.ErrTooLong:
		return keycard.Errorf(keycard.EINVALID, "Password must be at most %d bytes long.", password.MaxLength)
	}
	return nil
}

// login is Login without the throttles (see throttle.go).
func (s *Service) login(ctx context.Context, name, pass string, c Agent) (*Tokens, error) {
	u, has, err := s.checkLogin(ctx, name, pass, c)
	if err != nil {
		return nil, err
	}
	if err := s.mfaGate(ctx, u, has, "", c); err != nil {
		return nil, err
	}
	return s.startSession(ctx, u, c, []string{AMRPassword}, nil)
}

// reauthenticate is Reauthenticate without the throttles.
func (s *Service) reauthenticate(ctx context.Context, sessionID, name, pass string, c Agent) (*Tokens, error) {
	u, has, err := s.checkLogin(ctx, name, pass, c)
	if err != nil {
		return nil, err
	}
	if _, err := s.ownSession(ctx, u, sessionID); err != nil {
		return nil, err
	}
	if err := s.mfaGate(ctx, u, has, sessionID, c); err != nil {
		return nil, err
	}
	t, err := s.renewSession(ctx, u, sessionID, []string{AMRPassword}, c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, keycard.AuditLoginSucceeded, UserActor(u.ID, c), u.ID, map[string]any{"session": t.SessionID, "reauthenticated": true})
	return t, nil
}

// ownSession returns the session sessionID if it is a browser session
// of u's own; any other is errLogin().
func (s *Service) ownSession(ctx context.Context, u *keycard.User, sessionID string) (*keycard.Session, error) {
	sess, err := s.stores.Sessions.Session(ctx, sessionID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errLogin()
	} else if err != nil {
		return nil, err
	}
	if sess.UserID != u.ID || sess.ParentID != "" {
		return nil, errLogin()
	}
	return sess, nil
}

// renewSession records a new authentication of u, with the methods amr,
// in u's browser session sessionID (a sign-in again), and mints an
// access token of it.
func (s *Service) renewSession(ctx context.Context, u *keycard.User, sessionID string, amr []string, c Agent) (*Tokens, error) {
	now := s.now()
	sess, err := s.ownSession(ctx, u, sessionID)
	if err != nil {
		return nil, err
	}
	if err := s.stores.Sessions.Reauthenticated(ctx, sessionID, now, amr); err != nil {
		if code := keycard.ErrorCode(err); code == keycard.ENOTFOUND || code == keycard.EUNAUTHORIZED {
			return nil, errLogin()
		}
		return nil, err
	}
	sess.AuthTime, sess.AMR, sess.LastUsedAt = now, amr, now
	if err := s.keys.Sync(ctx); err != nil { // before signing, as startSession reads it in its write
		return nil, err
	}
	custom, err := s.customClaims(ctx, u, sess, nil, false)
	if err != nil {
		return nil, err
	}
	access, ttl, err := s.mintFor(ctx, u, sess, nil, custom)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, ExpiresIn: int64(ttl / time.Second), SessionID: sess.ID, Scope: s.cfg.userScope(u)}, nil
}

// checkLogin checks a username and password and returns the user with
// their second factors, read before the hash by the same statement
// (UserStore.SignInUser: one read instead of two; BENCHMARKS.md "Login,
// round 4"). Every failure is errLogin() after the same argon2id work,
// audited with its reason.
func (s *Service) checkLogin(ctx context.Context, name, pass string, c Agent) (*keycard.User, keycard.MFAFactors, error) {
	var none keycard.MFAFactors
	c = c.clean()
	_, normalized, nameErr := username.Normalize(name)
	if nameErr != nil || password.CheckLength(pass) != nil {
		s.verifyDummy(ctx, pass[:min(len(pass), password.MaxLength)])
		s.audit(ctx, keycard.AuditLoginFailed, anonymous(c), "", map[string]string{"reason": "malformed"})
		return nil, none, errLogin()
	}
	u, has, err := s.stores.Users.SignInUser(ctx, normalized)
	if err != nil {
		if keycard.ErrorCode(err) != keycard.ENOTFOUND {
			return nil, none, err
		}
		s.verifyDummy(ctx, pass)
		s.audit(ctx, keycard.AuditLoginFailed, anonymous(c), "", map[string]string{"reason": "unknown_user"})
		return nil, none, errLogin()
	}
	if !u.HasPassword() {
		// Created by a sign-in at an upstream provider: no password
		// verifies, after the same work as a wrong one.
		s.verifyDummy(ctx, pass)
		s.audit(ctx, keycard.AuditLoginFailed, UserActor(u.ID, c), u.ID, map[string]string{"reason": "no_password"})
		return nil, none, errLogin()
	}
	ok, rehash, err := s.verifyPassword(ctx, pass, u.PasswordHash)
	if err != nil {
		// A stored hash we cannot read is our problem, not the user's;
		// answer like a failure and log it.
		s.log.ErrorContext(ctx, "stored password hash unreadable", "user", u.ID, "err", err)
		return nil, none, errLogin()
	}
	if !ok || u.Disabled {
		reason := "wrong_password"
		if ok {
			reason = "disabled"
		}
		s.audit(ctx, keycard.AuditLoginFailed, UserActor(u.ID, c), u.ID, map[string]string{"reason": reason})
		return nil, none, errLogin()
	}
	if rehash {
		if h, err := s.hashPassword(ctx, pass); err == nil {
			if _, err := s.stores.Users.RehashPassword(ctx, u.ID, u.PasswordHash, h, s.now()); err != nil {
				s.log.WarnContext(ctx, "password rehash failed", "user", u.ID, "err", err)
			}
		}
	}
	if s.stores.MFA == nil {
		has = none
	}
	return u, has, nil
}

// startSession creates a session, whose sign-in used the methods amr
// (RFC 8176), with its first refresh token and mints an access token for
// it. The sign-in's login.succeeded audit event, with detail and the
// session's id, is written in the session's transaction: no session
// without its record, and one write the fewer per sign-in.
func (s *Service) startSession(ctx context.Context, u *keycard.User, c Agent, amr []string, detail map[string]any) (*Tokens, error) {
	return s.startSessionFrom(ctx, u, c, amr, nil, detail)
}

// startSessionFrom is startSession for a sign-in at the upstream provider
// of up (whose amr is then AMRFederated), or at Keycard when up is nil.
func (s *Service) startSessionFrom(ctx context.Context, u *keycard.User, c Agent, amr []string, up *UpstreamIdentity, detail map[string]any) (*Tokens, error) {
	now := s.now()
	sid, err := keycard.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	refresh, rid, hash, err := keycard.NewRefreshToken(s.rand)
	if err != nil {
		return nil, err
	}
	pol := s.cfg.policyFor(u)
	sess := &keycard.Session{
		ID: sid, UserID: u.ID, CreatedAt: now, LastUsedAt: now, AuthTime: now, AMR: amr,
		UserAgent: c.UserAgent, ClientAddr: c.Addr,
		IdleTimeout: pol.IdleTimeout, ExpiresAt: now.Add(pol.SessionLifetime),
	}
	if up != nil {
		if amr == nil {
			sess.AMR = []string{AMRFederated}
		}
		sess.IdP, sess.IdPSubject, sess.IdPSessionID = up.Provider, up.Subject, up.SessionID
	}
	// The hook is asked before the session is stored, so that a failed
	// hook leaves no session behind.
	custom, err := s.customClaims(ctx, u, sess, nil, false)
	if err != nil {
		return nil, err
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["session"] = sid
	audit := s.auditEvent(keycard.AuditLoginSucceeded, UserActor(u.ID, c), u.ID, detail)
	// The token must not be signed by a key revoked by another process
	// before this login: the key generation is read in the session's
	// transaction, and a newer one reloads the keys before mintFor signs.
	opt := &keycard.CreateSessionOptions{Audit: audit, WithKeyGeneration: s.keys != nil}
	if err := s.stores.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: rid, SecretHash: hash, CreatedAt: now}, opt); err != nil {
		return nil, err
	}
	if s.keys != nil {
		s.keys.Observe(opt.KeyGeneration)
	}
	if s.cfg.MaxSessionsPerUser > 0 {
		if err := s.enforceSessionLimit(ctx, u.ID, sid, c); err != nil {
			return nil, err
		}
	}
	access, ttl, err := s.mintFor(ctx, u, sess, nil, custom)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, TokenType: tokenType(ctx), ExpiresIn: int64(ttl / time.Second), RefreshToken: refresh, SessionID: sid, Scope: s.cfg.userScope(u)}, nil
}

// enforceSessionLimit ends the user's least recently used sessions beyond
// Config.MaxSessionsPerUser, never the one just created (keep). Two
// logins racing each other may each leave one session too many for a
// moment; the next login trims them.
func (s *Service) enforceSessionLimit(ctx context.Context, userID, keep string, c Agent) error {
	now := s.now()
	var active []*keycard.Session
	after := ""
	for {
		// The cap is on sign-ins: an application's grant session lives
		// and dies with the sign-in it came from.
		page, err := s.stores.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: userID, SignInsOnly: true, ActiveAt: now, Before: after, Limit: keycard.MaxPageSize})
		if err != nil {
			return err
		}
		active = append(active, page...)
		if len(page) < keycard.MaxPageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	excess := len(active) - s.cfg.MaxSessionsPerUser
	if excess <= 0 {
		return nil
	}
	// Least recently used first; the oldest login breaks ties.
	slices.SortFunc(active, func(a, b *keycard.Session) int {
		if c := a.LastUsedAt.Compare(b.LastUsedAt); c != 0 {
			return c
		}
		return a.CreatedAt.Compare(b.CreatedAt)
	})
	for _, sess := range active {
		if excess == 0 {
			break
		}
		if sess.ID == keep {
			continue
		}
		if _, err := s.stores.Sessions.RevokeSession(ctx, sess.ID, now, keycard.RevokeSessionLimit); err != nil && keycard.ErrorCode(err) != keycard.ENOTFOUND {
			return err
		}
		s.stats.SessionsRevoked(keycard.RevokeSessionLimit, 1)
		s.audit(ctx, keycard.AuditLogout, UserActor(userID, c), userID, map[string]string{"session": sess.ID, "reason": keycard.RevokeSessionLimit})
		excess--
	}
	return nil
}

// mintFor signs an access token for the user's session (RFC 9068 profile)
// and returns it with its lifetime (Config.AccessTTL, or shorter for the
// user's roles). For a grant session client is the session's client: the
// token's client_id, audience (its first, or the server's) and scope are
// the grant's, and its lifetime no longer than the client's. For
// Keycard's own sessions client is nil: client_id is Config.ClientID and
// the scope is the user's roles' (Config.RoleScopes).
func (s *Service) mintFor(ctx context.Context, u *keycard.User, sess *keycard.Session, client *keycard.Client, custom *CustomClaims) (string, time.Duration, error) {
	if s.cfg.Issuer == "" || s.keys == nil {
		return "", 0, errors.New("auth: minting tokens needs an issuer and signing keys")
	}
	signer, _, err := s.keys.Signer(ctx)
	if err != nil {
		return "", 0, err
	}
	jti, err := keycard.NewID(s.rand)
	if err != nil {
		return "", 0, err
	}
	ttl, aud, clientID, scope := s.cfg.policyFor(u).AccessTTL, s.cfg.Audience, s.cfg.ClientID, ""
	if client != nil {
		ttl, clientID, scope = s.grantPolicy(u, client).AccessTTL, client.ID, sess.Scope
		if len(client.Audiences) > 0 {
			aud = client.Audiences[0]
		}
	} else {
		scope = s.cfg.userScope(u)
	}
	now := s.now()
	c := &jwt.AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   u.ID,
			Audience:  jwt.Audience{aud},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		SessionID: sess.ID,
		ClientID:  clientID,
		Scope:     scope,
		Roles:     u.Roles,
		AuthTime:  jwt.NewNumericDate(sess.AuthenticatedAt()),
		// How the user signed in, kept by the session through every
		// refresh (RFC 9470 step-up reads acr).
		ACR: acrOf(sess.AMR),
		AMR: sess.AMR,
	}
	c.Confirmation.JKT = DPoPKey(ctx)
	tok, err := s.sign(ctx, signer, extend(c, idpClaim(custom.access(), sess)))
	return tok, ttl, err
}

func successorLabel(presentedID string) string { return "refresh-successor:" + presentedID }

// errRefresh is the answer to every refresh that is not honoured.
func errRefresh() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid refresh token."}
}

// Refresh rotates a refresh token (RFC 6749 section 6) and mints a new
// access token. Within the grace window, presenting an already rotated
// token returns the same successor, so concurrent tabs share one session;
// after it, the reuse is treated as theft and the whole session is
// revoked. It is RefreshFor without a client: for Keycard's own sessions.
func (s *Service) Refresh(ctx context.Context, token string, c Agent) (*Tokens, error) {
	return s.RefreshFor(ctx, token, nil, c)
}

// RefreshFor is Refresh by a client that identified itself (a public
// client by its client_id) or authenticated (a confidential one); nil for
// none. A grant session's refresh token is honoured only for its own
// client, and a session bound to a DPoP key only with a proof of that key
// (WithDPoPKey): presented by another client, or by none, or without the
// key, it is refused before the store changes anything
// (RotateRequest.Presenter), whatever state the token is in. Someone who
// holds the token but not the client's credentials or the key can then
// neither spend it (which would make the legitimate client's next refresh
// look like theft and revoke the session) nor have the session revoked by
// presenting an old token: the binding is what makes the token
// sender-constrained (RFC 9449 sections 1 and 5; RFC 6749 section 6). The
// tokens of a grant session carry its client and scope, and an ID token
// when openid was granted (OpenID Connect Core section 12.2).
func (s *Service) RefreshFor(ctx context.Context, token string, client *keycard.Client, c Agent) (*Tokens, error) {
	c = c.clean()
	if err := requireDPoP(ctx, client); err != nil {
		return nil, err
	}
	id, hash, err := keycard.ParseRefreshToken(token)
	if err != nil {
		return nil, errRefresh()
	}
	next, nextID, nextHash, err := keycard.NewRefreshToken(s.rand)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealer.Seal([]byte(next), successorLabel(id))
	if err != nil {
		return nil, err
	}
	// Who presents the token, checked by the store against the session's
	// bindings before it rotates anything, in the rotation's own
	// transaction: no extra read.
	presenter := &keycard.Presenter{DPoPKey: DPoPKey(ctx)}
	if client != nil && client.AllowsGrant(keycard.GrantRefreshToken) {
		presenter.ClientID = client.ID
	}
	now := s.now()
	res, err := s.stores.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
		TokenID: id, SecretHash: hash, Now: now, Grace: s.cfg.RefreshGrace,
		Successor:       keycard.RefreshToken{ID: nextID, SecretHash: nextHash},
		SuccessorSealed: sealed,
		// Recorded in the rotation's own transaction; the store fills in
		// the session's user.
		Audit: &keycard.AuditEvent{Time: now, Type: keycard.AuditRefresh, ClientAddr: c.Addr, UserAgent: c.UserAgent},
		// The user comes back from the same transaction, which spares a
		// read per refresh; so does the key generation, which tells
		// whether the signing keys changed (KeyManager.Observe).
		WithUser:          true,
		WithKeyGeneration: s.keys != nil,
		Presenter:         presenter,
	})
	if err != nil {
		if perr := (*keycard.PresenterError)(nil); errors.As(err, &perr) {
			return nil, s.presenterRefused(ctx, perr)
		}
		if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
			return nil, errRefresh()
		}
		return nil, err
	}
	switch res.Outcome {
	case keycard.Rotated:
		s.stats.RefreshOutcome(RefreshRotated)
	case keycard.Replayed:
		s.stats.RefreshOutcome(RefreshReplayed)
		plain, err := s.sealer.Open(res.Presented.SuccessorSealed, successorLabel(id))
		if err != nil {
			return nil, fmt.Errorf("auth: opening refresh successor: %w", err)
		}
		next = string(plain)
	case keycard.TheftDetected:
		s.log.WarnContext(ctx, "refresh token reuse detected; session revoked", "session", res.Session.ID, "user", res.Session.UserID)
		s.stats.RefreshOutcome(RefreshTheft)
		s.stats.SessionsRevoked(keycard.RevokeTokenReuse, 1)
		s.audit(ctx, keycard.AuditTokenReuse, UserActor(res.Session.UserID, c), res.Session.UserID, map[string]string{"session": res.Session.ID})
		return nil, errRefresh()
	default:
		return nil, fmt.Errorf("auth: unexpected rotation outcome %v", res.Outcome)
	}
	u := res.User
	if u == nil {
		return nil, fmt.Errorf("auth: the session store returned no user for a %v refresh", res.Outcome)
	}
	if u.Disabled {
		return nil, errRefresh()
	}
	// The store checked the presenter before rotating; a store that did
	// not is still refused here.
	if perr := (*keycard.PresenterError)(nil); errors.As(keycard.CheckPresenter(res.Session, presenter), &perr) {
		return nil, s.presenterRefused(ctx, perr)
	}
	if s.keys != nil {
		s.keys.Observe(res.KeyGeneration)
	}
	if sess := res.Session; sess.ClientID != "" {
		t, err := s.sessionTokens(ctx, u, client, sess, sess.ParentID, "")
		if err != nil {
			return nil, err
		}
		t.RefreshToken = next
		return t, nil
	}
	custom, err := s.customClaims(ctx, u, res.Session, nil, false)
	if err != nil {
		return nil, err
	}
	access, ttl, err := s.mintFor(ctx, u, res.Session, nil, custom)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, TokenType: tokenType(ctx), ExpiresIn: int64(ttl / time.Second), RefreshToken: next, SessionID: res.Session.ID, Scope: s.cfg.userScope(u)}, nil
}

// ReauthRequiredError is the refusal of a sensitive action to a caller
// whose login is older than Config.ReauthWithin (RFC 9470): the user must
// sign in again. It wraps a *keycard.Error with code EUNAUTHORIZED.
type ReauthRequiredError struct {
	// MaxAge is the largest acceptable time since the login.
	MaxAge time.Duration
	// ACR, when not empty, is the acr the new sign-in must have
	// (ACRMFA: an admin who has a second factor steps up with it).
	ACR string
}

func (e *ReauthRequiredError) Error() string {
	if e.ACR != "" {
		return fmt.Sprintf("auth: a sign-in of acr %q within the last %v is required", e.ACR, e.MaxAge)
	}
	return fmt.Sprintf("auth: a sign-in within the last %v is required", e.MaxAge)
}

func (e *ReauthRequiredError) Unwrap() error {
	if e.ACR == ACRMFA {
		return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This action needs a recent sign-in with your second factor: sign in again."}
	}
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This action needs a recent sign-in: sign in again."}
}

// CheckRecentAuth returns a *ReauthRequiredError when Config.ReauthWithin
// is set and p's login (its token's auth_time) is older than that. The
// admin API and password changes call it.
func (s *Service) CheckRecentAuth(p *Principal) error {
	if s.cfg.ReauthWithin <= 0 {
		return nil
	}
	if p.Claims.AuthTime.IsZero() || s.now().Sub(p.Claims.AuthTime.Time) > s.cfg.ReauthWithin {
		return &ReauthRequiredError{MaxAge: s.cfg.ReauthWithin}
	}
	return nil
}

// stepUpWithin returns the step-up window: Config.StepUpWithin (or its
// default), or ReauthWithin when that is set and shorter.
func (s *Service) stepUpWithin() time.Duration {
	d := s.cfg.StepUpWithin
	if d == 0 {
		d = DefaultStepUpWithin
	}
	if s.cfg.ReauthWithin > 0 && s.cfg.ReauthWithin < d {
		d = s.cfg.ReauthWithin
	}
	return d
}

// checkStepUp returns a *ReauthRequiredError unless by may take one of
// the most destructive admin actions now (deleting a user, removing a
// user's second factors or passkeys): an admin whose sign-in (the
// auth_time of the token they act with) is within the step-up window
// (Config.StepUpWithin) and, when the admin has a second factor, was
// made with it (by.ACR is ACRMFA); the error's ACR is then ACRMFA, so
// that the admin is asked for the factor, not only the password
// (docs/decisions/step-up.md). The command line's operator and the
// system are not asked: they hold the server's data already.
func (s *Service) checkStepUp(ctx context.Context, by Actor) error {
	if by.Kind != ActorAdmin {
		return nil
	}
	d := s.stepUpWithin()
	u, err := s.stores.Users.UserByID(ctx, by.ID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return &ReauthRequiredError{MaxAge: d}
	} else if err != nil {
		return err
	}
	factors, err := s.userFactors(ctx, u)
	if err != nil {
		return err
	}
	need := ""
	if len(factors) > 0 {
		need = ACRMFA
	}
	if by.AuthTime.IsZero() || s.now().Sub(by.AuthTime) > d || (need != "" && by.ACR != need) {
		return &ReauthRequiredError{MaxAge: d, ACR: need}
	}
	return nil
}

// Principal is an authenticated caller of the user API.
type Principal struct {
	Claims jwt.AccessClaims
	User   *keycard.User
}

// errToken is the answer to every access token that is not accepted.
func errToken() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid access token."}
}

// Authenticate verifies an access token issued by this server to a user
// and checks, as only the server itself can afford to on every request,
// that its jti is not revoked, its session is still active and its user
// still enabled. A token obtained by token exchange (one with an act
// claim) is refused: it lets a service act for the user towards another
// service, not manage the user's account.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	p := &Principal{}
	if err := s.parser.Parse(token, &p.Claims); err != nil {
		s.log.DebugContext(ctx, "access token rejected", "err", err)
		return nil, errToken()
	}
	if p.Claims.Act != nil {
		s.log.DebugContext(ctx, "access token rejected: a delegated token at the user API")
		return nil, errToken()
	}
	if err := s.checkTokenKey(ctx, &p.Claims); err != nil {
		return nil, err
	}
	u, _, err := s.liveAccess(ctx, &p.Claims)
	if err != nil {
		return nil, err
	}
	if u == nil { // not a user's token
		return nil, errToken()
	}
	p.User = u
	return p, nil
}

// Logout revokes the caller's session.
func (s *Service) Logout(ctx context.Context, p *Principal, c Agent) error {
	if _, err := s.stores.Sessions.RevokeSession(ctx, p.Claims.SessionID, s.now(), keycard.RevokeLogout); err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeLogout, 1)
	s.audit(ctx, keycard.AuditLogout, UserActor(p.User.ID, c), p.User.ID, map[string]string{"session": p.Claims.SessionID, "reason": keycard.RevokeLogout})
	return nil
}

// LogoutAll revokes every session of the caller ("sign out everywhere").
func (s *Service) LogoutAll(ctx context.Context, p *Principal, c Agent) error {
	ids, err := s.stores.Sessions.RevokeUserSessions(ctx, p.User.ID, "", s.now(), keycard.RevokeLogoutAll)
	if err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeLogoutAll, len(ids))
	s.audit(ctx, keycard.AuditLogout, UserActor(p.User.ID, c), p.User.ID, map[string]any{"sessions": ids, "reason": keycard.RevokeLogoutAll})
	return nil
}

// Sessions returns the caller's active sign-ins (devices), newest first;
// the grant sessions of applications under them are not listed.
func (s *Service) Sessions(ctx context.Context, p *Principal) ([]*keycard.Session, error) {
	var out []*keycard.Session
	before := ""
	for {
		page, err := s.stores.Sessions.ListSessions(ctx, keycard.SessionFilter{UserID: p.User.ID, SignInsOnly: true, ActiveAt: s.now(), Before: before, Limit: keycard.MaxPageSize})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < keycard.MaxPageSize {
			return out, nil
		}
		before = page[len(page)-1].ID
	}
}

// RevokeSession revokes one of the caller's own sessions. Another user's
// session id is answered as not found.
func (s *Service) RevokeSession(ctx context.Context, p *Principal, id string, c Agent) error {
	notFound := &keycard.Error{Code: keycard.ENOTFOUND, Message: "Session not found."}
	sess, err := s.stores.Sessions.Session(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return notFound
	} else if err != nil {
		return err
	}
	if sess.UserID != p.User.ID {
		return notFound // another user's session looks exactly like an unknown one
	}
	if _, err := s.stores.Sessions.RevokeSession(ctx, id, s.now(), keycard.RevokeLogout); err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokeLogout, 1)
	s.audit(ctx, keycard.AuditLogout, UserActor(p.User.ID, c), p.User.ID, map[string]string{"session": id, "reason": keycard.RevokeLogout})
	return nil
}

// ChangePassword changes the caller's password after checking the current
// one, and revokes every other session of the user.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next string, c Agent) error {
	if err := s.CheckRecentAuth(p); err != nil {
		return err
	}
	if password.CheckLength(current) != nil { // bounds the argon2 work
		return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Current password is wrong."}
	}
	ok, _, err := s.verifyPassword(ctx, current, p.User.PasswordHash)
	if err != nil || !ok {
		return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Current password is wrong."}
	}
	return s.SetPassword(ctx, UserActor(p.User.ID, c), p.User.ID, next, p.Claims.SessionID)
}

// SetPassword sets a user's password (for the command line and admins, or
// after ChangePassword checked the old one) and revokes every session of
// the user except keepSession (which may be empty).
func (s *Service) SetPassword(ctx context.Context, by Actor, userID, next, keepSession string) error {
	if err := checkPassword(next); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return err
	}
	revoked, err := s.stores.Users.ChangePassword(ctx, userID, hash, keepSession, s.now())
	if err != nil {
		return err
	}
	s.stats.SessionsRevoked(keycard.RevokePasswordChanged, len(revoked))
	s.audit(ctx, keycard.AuditPasswordChanged, by, userID, map[string]any{"sessions_revoked": len(revoked)})
	return nil
}

// audit appends an event; a failure is logged, not returned, so that the
// audit log cannot turn a successful operation into an error.
func (s *Service) audit(ctx context.Context, typ string, by Actor, subject string, detail any) {
	if err := s.stores.Audit.AppendAudit(ctx, s.auditEvent(typ, by, subject, detail)); err != nil {
		s.log.ErrorContext(ctx, "audit append failed", "type", typ, "err", err)
	}
}

// auditEvent returns the event audit appends, for a store operation that
// appends it in its own transaction.
func (s *Service) auditEvent(typ string, by Actor, subject string, detail any) *keycard.AuditEvent {
	e := &keycard.AuditEvent{Time: s.now(), Type: typ, Actor: by.auditID(), Subject: subject, ClientAddr: by.Agent.Addr, UserAgent: by.Agent.UserAgent}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err == nil {
			e.Detail = b
		}
	}
	return e
}
