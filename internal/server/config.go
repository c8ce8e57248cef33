// Package server builds and runs a Keycard auth server from a Config: it
// opens the store (SQLite in a data directory, or PostgreSQL), the login
// throttles (in memory, or shared in Redis), the master key and the
// signing keys, builds the auth.Service, mounts the HTTP API
// (internal/httpapi) and the pages (internal/web), and runs the
// background work — key maintenance, pruning, and the watch that wakes the
// revocation feed's readers when another process appends to it — until
// its context ends, then drains and closes everything.
//
// "keycard serve" and "keycard demo" run servers through it; the command
// line's users, clients, keys and migrate commands open a store through
// it (Open) and change it through the auth.Service, like the API does.
// cmd/keycard keeps only flags and output.
package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/claimshook"
	"github.com/keycard-auth/keycard/internal/federation"
	"github.com/keycard-auth/keycard/internal/mail"
	"github.com/keycard-auth/keycard/internal/passkey"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/internal/webhook"
	"github.com/keycard-auth/keycard/jose"
	"go.opentelemetry.io/otel/trace"
)

// Config is an auth server's settings: those of "keycard serve", whose
// flags docs/operations.md documents. Zero durations and counts take the
// defaults named on each field; Defaults returns a Config with all of
// them filled in.
type Config struct {
	// Data is the data directory: the SQLite database (unless Store is
	// set) and, with Dev, the generated master key.
	Data string
	// Store is a postgres:// or postgresql:// URL; empty for SQLite in
	// Data.
	Store string
	// Redis is a redis:// or rediss:// URL for login throttles shared by
	// every instance; empty keeps them per instance. RedisPrefix prefixes
	// Keycard's keys.
	Redis, RedisPrefix string

	// MasterKeyFile holds the base64 master key; MasterKey is the key
	// itself (KEYCARD_MASTER_KEY). With neither and Dev, one is generated
	// into Data/master.key (0600) on the first start.
	MasterKeyFile string
	MasterKey     string
	// Dev is development mode: a generated master key, registration on
	// by default, and plain HTTP allowed off loopback (with a warning).
	Dev bool

	// Addr is the listen address (port 0 picks one).
	Addr string
	// TLS is how the listener is secured (HTTPS, a proxy in front, or
	// loopback).
	TLS tlsconfig.Listener
	// Issuer is the "iss" of tokens and the base of discovery: by default
	// https://ADDR with a certificate, else http://ADDR.
	Issuer   string
	Audience string         // auth.DefaultAudience when empty
	Alg      jose.Algorithm // ES256 when empty

	AccessTTL       time.Duration // auth.DefaultAccessTTL
	RefreshGrace    time.Duration // keycard.DefaultRotationGrace
	IdleTimeout     time.Duration // keycard.DefaultIdleTimeout
	SessionLifetime time.Duration // keycard.DefaultSessionLifetime
	// KeyRotation is the automatic rotation interval; negative: never.
	KeyRotation time.Duration // auth.DefaultRotateEvery

	// Registration allows POST /v1/users and the registration page.
	Registration       bool
	RoleScopes         map[string][]string
	RolePolicies       map[string]auth.SessionPolicy
	MaxSessionsPerUser int
	ReauthWithin       time.Duration
	// IntrospectionCache is how many answers of the introspection
	// endpoint for active access tokens the server keeps, about 1 KiB
	// each (auth.Config.IntrospectionCache); 0 keeps none, and every
	// introspection verifies the token and reads the store.
	// Defaults sets DefaultIntrospectionCache.
	IntrospectionCache int
	// StepUpWithin is auth.Config.StepUpWithin: how recent an admin's
	// sign-in must be to delete a user; 0 means its default (5 minutes).
	StepUpWithin time.Duration
	// RequireMFAForRoles lists roles whose users must have a second
	// factor (auth.Config.RequireMFAForRoles).
	RequireMFAForRoles []string

	// Argon2 parameters; the password package's defaults when zero.
	Argon2Memory, Argon2Iterations uint32
	// Login throttles: failures per account and per address before
	// back-off (0 turns one off), one failure forgiven every LoginRefill,
	// back-off doubling from LoginBackoff (1 s by default) up to
	// LoginLockoutMax.
	LoginAttempts, LoginAddressAttempts        int
	LoginRefill, LoginBackoff, LoginLockoutMax time.Duration

	// CookieMode lets browser logins of the JSON API keep their tokens in
	// HttpOnly cookies.
	CookieMode bool
	// DPoPNonce requires server-issued nonces in the DPoP proofs of the
	// token and userinfo endpoints (RFC 9449 section 8). The nonces'
	// key is derived from the master key, so every instance accepts
	// the others'.
	DPoPNonce bool
	// Pages serves the web pages (sign-in, account, admin console).
	Pages bool
	// PageRedirects are path prefixes the sign-in page may send the
	// browser back to; PageOrigins other origins the pages are served
	// under (a gateway in front).
	PageRedirects, PageOrigins []string
	// WebAuthn is the passkeys' relying party (docs/accounts.md,
	// "Passkeys"); its zero value derives it from the issuer.
	WebAuthn WebAuthnConfig

	// Backchannel tunes the back-channel logout worker: attempts,
	// back-off, request timeout (backchannel.Options; zero fields take
	// its defaults). Its Wake, Now and Logger are the server's.
	Backchannel backchannel.Options
	// Webhooks tunes the webhook worker: attempts, back-off, request
	// timeout (webhook.Options; zero fields take its defaults). Its
	// Outcome and Logger are the server's.
	Webhooks webhook.Options
	// WebhooksAllowHTTP lets webhook endpoints use http on any host
	// (auth.Config.WebhooksAllowHTTP).
	WebhooksAllowHTTP bool

	// ClaimsHook configures the custom-claims hook (docs/claims-hook.md);
	// its zero value: none.
	ClaimsHook ClaimsHookConfig

	// Federation lists the upstream identity providers users may sign in
	// with (docs/federation.md); they need the pages (Pages).
	Federation []federation.Config

	// Mail configures the mail the server sends (verification and
	// password-reset links, notifications; docs/accounts.md).
	Mail MailConfig

	// ShutdownTimeout bounds the drain of in-flight requests.
	ShutdownTimeout time.Duration
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger

	// OTLPEndpoint, when set, turns tracing on (docs/observability.md):
	// Run exports spans to this OTLP/HTTP collector URL and flushes them
	// at shutdown. Empty: no spans are made.
	OTLPEndpoint string
	// Tracer, when not nil, makes the spans instead of an exporter to
	// OTLPEndpoint (tests, and a process that exports for several
	// parts). With either, log records carry the trace and span ids.
	Tracer trace.TracerProvider
}

// ClaimsHookConfig is the custom-claims hook's part of Config.
type ClaimsHookConfig struct {
	// URL is the hook's endpoint; empty: no hook.
	URL string
	// SecretFile holds the shared secret in its whsec_ form; Secret is
	// the secret itself (KEYCARD_CLAIMS_HOOK_SECRET). One is required
	// with URL.
	SecretFile, Secret string
	// Timeout bounds a call, MaxBytes its answer (claimshook defaults
	// when zero).
	Timeout  time.Duration
	MaxBytes int64
	// Continue mints tokens without custom claims when the hook fails;
	// false fails the sign-in or refresh (auth.Config.ClaimsHookContinue).
	Continue bool
}

// MailConfig is the mailer's part of Config. Without SMTPURL the server
// sends no mail, except with Dev, where messages go to the log (links
// included) instead.
type MailConfig struct {
	// SMTPURL is smtp://[user[:password]@]host[:port] or smtps://… (see
	// mail.Config.URL); its password is never logged.
	SMTPURL string
	// From is the sender's address; required with SMTPURL.
	From string
	// Templates is a directory of templates that replace the built-in
	// ones of the same name (mail.LoadTemplates); empty: built-in only.
	Templates string
	// TLS, when not nil, is the base TLS configuration of the SMTP
	// connections (a private CA's RootCAs).
	TLS *tls.Config
}

// WebAuthnConfig configures the passkeys' relying party.
type WebAuthnConfig struct {
	// RPID is the relying party id; empty: the issuer's host, unless it
	// is an IP address (passkeys are then off: browsers accept only
	// domain names).
	RPID string
	// Origins are the origins allowed to run the ceremonies; empty: the
	// issuer's, and those of PageOrigins on the RP id's domain.
	Origins []string
}

// relyingParty returns the passkeys' relying party of c, or nil (with
// the reason) when passkeys are off.
func (c *Config) relyingParty() (*passkey.RelyingParty, string, error) {
	if c.Issuer == "" {
		return nil, "the server has no issuer URL", nil
	}
	rpID, issuerOrigin, err := passkey.Defaults(c.Issuer)
	if err != nil {
		return nil, "", fmt.Errorf("passkeys: %w", err)
	}
	explicit := c.WebAuthn.RPID != ""
	if explicit {
		rpID = c.WebAuthn.RPID
	} else if net.ParseIP(rpID) != nil {
		return nil, "the issuer's host is an IP address, which cannot be a WebAuthn relying party id: set --webauthn-rp-id (and serve under that name) to enable passkeys", nil
	}
	origins := c.WebAuthn.Origins
	if len(origins) == 0 {
		origins = []string{issuerOrigin}
		for _, o := range c.PageOrigins {
			if u, err := url.Parse(o); err == nil && onDomain(u.Hostname(), rpID) {
				origins = append(origins, strings.TrimSuffix(o, "/"))
			}
		}
	}
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || !onDomain(u.Hostname(), rpID) {
			return nil, "", fmt.Errorf("--webauthn-origin %q: its host is not %s or under it (--webauthn-rp-id)", o, rpID)
		}
	}
	rp, err := passkey.New(passkey.Config{RPID: rpID, Origins: origins})
	if err != nil {
		return nil, "", fmt.Errorf("--webauthn-rp-id: %w", err)
	}
	return rp, "", nil
}

// onDomain reports whether host is domain or a subdomain of it.
func onDomain(host, domain string) bool {
	host, domain = strings.ToLower(host), strings.ToLower(domain)
	return host == domain || strings.HasSuffix(host, "."+domain)
}

// mailer returns the mailer c.Mail configures: SMTP, the log with Dev
// and no SMTP URL, or nil.
func (c *Config) mailer(log *slog.Logger) (auth.Mailer, error) {
	m := c.Mail
	if m.SMTPURL == "" && m.From != "" {
		return nil, errors.New("--mail-from needs --smtp-url")
	}
	if m.SMTPURL == "" && !c.Dev {
		return nil, nil
	}
	tpl, err := mail.LoadTemplates(m.Templates)
	if err != nil {
		return nil, fmt.Errorf("--mail-templates: %w", err)
	}
	if m.SMTPURL == "" {
		return &mail.LogMailer{Templates: tpl, Logger: log}, nil
	}
	if m.From == "" {
		return nil, errors.New("--smtp-url needs --mail-from, the sender's address")
	}
	mailer, err := mail.New(mail.Config{URL: m.SMTPURL, From: m.From, Templates: tpl, TLS: m.TLS})
	if err != nil {
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	return mailer, nil
}

// ServeTLSNames name the TLS settings of "keycard serve" in messages.
var ServeTLSNames = tlsconfig.Names{Cert: "--tls-cert", Key: "--tls-key", BehindProxy: "--behind-proxy",
	TrustedProxies: "--trusted-proxies", Issuer: "--issuer", Dev: "--dev"}

// Defaults returns a Config with every default filled in: SQLite in
// ./keycard-data, 127.0.0.1:4000, ES256, the token and session lifetimes
// of docs/architecture.md, the login throttles, pages on.
func Defaults() Config {
	return Config{
		Data: "keycard-data", RedisPrefix: "keycard:", Addr: "127.0.0.1:4000",
		TLS:      tlsconfig.Listener{TrustedProxies: tlsconfig.DefaultTrustedProxies, Names: ServeTLSNames},
		Audience: auth.DefaultAudience, Alg: jose.ES256,
		AccessTTL: auth.DefaultAccessTTL, RefreshGrace: keycard.DefaultRotationGrace,
		IdleTimeout: keycard.DefaultIdleTimeout, SessionLifetime: keycard.DefaultSessionLifetime,
		KeyRotation:  auth.DefaultRotateEvery,
		Argon2Memory: password.DefaultMemory, Argon2Iterations: password.DefaultIterations,
		LoginAttempts: DefaultLoginAttempts, LoginAddressAttempts: DefaultLoginAddressAttempts,
		LoginRefill: throttle.DefaultRefill, LoginBackoff: throttle.DefaultBaseDelay, LoginLockoutMax: throttle.DefaultMaxDelay,
		IntrospectionCache: DefaultIntrospectionCache,
		Pages:              true, ShutdownTimeout: 20 * time.Second,
	}
}

// Check reports the first setting that is wrong on its face, before any
// port is opened or file read: "keycard serve" calls it first, so that a
// bad setting is never reported as a busy port.
func (c *Config) Check() error {
	if _, err := storeKind(c.Store); err != nil {
		return err
	}
	if c.Alg != "" && !c.Alg.Valid() {
		return fmt.Errorf("--signing-alg: unsupported algorithm %q", c.Alg)
	}
	switch {
	case c.LoginAttempts < 0:
		return errors.New("--login-attempts must not be negative")
	case c.LoginAddressAttempts < 0:
		return errors.New("--login-address-attempts must not be negative")
	case c.LoginBackoff < time.Second:
		// Retry-After counts whole seconds.
		return errors.New("--login-backoff must be at least 1s")
	case c.LoginLockoutMax < c.LoginBackoff:
		return errors.New("--login-lockout-max must be at least --login-backoff")
	case c.LoginRefill <= 0:
		return errors.New("--login-refill must be positive")
	case c.MaxSessionsPerUser < 0:
		return errors.New("--max-sessions-per-user must not be negative")
	case c.ReauthWithin < 0:
		return errors.New("--reauth-within must not be negative")
	case c.IntrospectionCache < 0:
		return errors.New("--introspection-cache must not be negative")
	case c.StepUpWithin < 0:
		return errors.New("--step-up-within must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--access-ttl", c.AccessTTL}, {"--refresh-grace", c.RefreshGrace}, {"--session-idle-timeout", c.IdleTimeout},
		{"--session-lifetime", c.SessionLifetime}, {"--shutdown-timeout", c.ShutdownTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s must not be negative", d.name)
		}
	}
	switch {
	case c.Backchannel.MaxAttempts < 0:
		return errors.New("--backchannel-attempts must not be negative")
	case c.Backchannel.Backoff < 0:
		return errors.New("--backchannel-backoff must not be negative")
	case c.Backchannel.Timeout < 0:
		return errors.New("--backchannel-timeout must not be negative")
	}
	if err := c.Backchannel.Check(); err != nil {
		return err
	}
	switch {
	case c.Webhooks.MaxAttempts < 0:
		return errors.New("--webhook-attempts must not be negative")
	case c.Webhooks.Backoff < 0:
		return errors.New("--webhook-backoff must not be negative")
	case c.Webhooks.Timeout < 0:
		return errors.New("--webhook-timeout must not be negative")
	}
	if err := c.Webhooks.Check(); err != nil {
		return err
	}
	if err := c.TLS.Check(); err != nil {
		return err
	}
	if c.Issuer != "" {
		if err := tlsconfig.CheckIssuer(c.Issuer, c.Dev, ServeTLSNames); err != nil {
			return err
		}
	}
	if c.CookieMode && !c.Dev && c.TLS.CertFile == "" && !c.TLS.BehindProxy {
		return errors.New("refusing --cookie-mode without TLS: its cookies are Secure, which browsers keep only over HTTPS. Give --tls-cert and --tls-key, or --behind-proxy behind a TLS-terminating load balancer (or --dev for development)")
	}
	if c.MasterKeyFile == "" && c.MasterKey == "" && !c.Dev {
		return errNoMasterKey
	}
	if c.OTLPEndpoint != "" {
		if _, err := tracing.CheckEndpoint(c.OTLPEndpoint); err != nil {
			return fmt.Errorf("--otlp-endpoint: %w", err)
		}
	}
	if _, err := c.claimsHook(); err != nil {
		return err
	}
	if _, err := c.mailer(slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	return nil
}

// claimsHook returns the custom-claims hook of c.ClaimsHook, nil for
// none, or why it is refused (flags named as the command line has them).
func (c *Config) claimsHook() (*claimshook.Hook, error) {
	h := c.ClaimsHook
	if h.URL == "" {
		if h.SecretFile != "" || h.Secret != "" {
			return nil, errors.New("--claims-hook-secret-file or KEYCARD_CLAIMS_HOOK_SECRET without --claims-hook-url")
		}
		return nil, nil
	}
	if h.Timeout < 0 || h.MaxBytes < 0 {
		return nil, errors.New("--claims-hook-timeout and --claims-hook-max-bytes must not be negative")
	}
	secret := h.Secret
	if h.SecretFile != "" {
		b, err := os.ReadFile(h.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("--claims-hook-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return nil, errors.New("--claims-hook-url needs a secret: --claims-hook-secret-file or KEYCARD_CLAIMS_HOOK_SECRET (docs/claims-hook.md)")
	}
	hook, err := claimshook.New(h.URL, secret, c.Dev)
	if err != nil {
		return nil, fmt.Errorf("--claims-hook-url: %w", err)
	}
	hook.Timeout, hook.MaxBytes = h.Timeout, h.MaxBytes
	return hook, nil
}

var errNoMasterKey = errors.New("no master key: give --master-key-file or KEYCARD_MASTER_KEY (or --dev to generate one in the data directory)")

// storeKind returns the back end Store names: "sqlite" for none,
// "postgres" for a postgres:// or postgresql:// URL. Anything else is an
// error that does not repeat the URL, which may hold a password.
func storeKind(store string) (string, error) {
	switch {
	case store == "":
		return "sqlite", nil
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		return "postgres", nil
	}
	return "", errors.New("--store: want a postgres:// or postgresql:// URL, or nothing for SQLite in --data")
}

// revocationTTL is how long a revocation feed entry can match a valid
// token: the access-token lifetime plus the verifiers' leeway.
func (c *Config) revocationTTL() time.Duration {
	ttl := c.AccessTTL
	if ttl <= 0 {
		ttl = auth.DefaultAccessTTL
	}
	return ttl + auth.DefaultLeeway
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}
