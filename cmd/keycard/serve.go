package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/claimshook"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/server"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/webhook"
	"github.com/keycard-auth/keycard/jose"
)

// serverFlags are the auth server's settings; each has a KEYCARD_… variable
// and a YAML key (see config.go). serve registers all of them; the
// commands that work on the server's data (users, clients, keys, migrate,
// revoke-all) register the groups they use, and read the same
// configuration file.
type serverFlags struct {
	data, addr, issuer, config, masterKeyFile, audience, alg, logLevel string
	store                                                              string // "" for SQLite in data
	redis, redisPrefix                                                 string // "" for per-instance login throttles
	dev                                                                bool
	cookieMode                                                         bool
	dpopNonce                                                          bool
	registration                                                       string // "", "true" or "false": default follows --dev
	accessTTL, refreshGrace, idleTimeout, sessionLifetime, rotateEvery time.Duration
	shutdownTimeout                                                    time.Duration
	argonMemory, argonIterations                                       uint
	loginAttempts, loginAddressAttempts                                int
	loginRefill, loginBackoff, loginLockoutMax                         time.Duration
	roleScopes                                                         stringList // ROLE=SCOPE entries
	rolePolicies                                                       stringList // ROLE:FIELD=DURATION entries
	maxSessions, introspectionCache                                    int
	pages                                                              bool
	pageRedirects, pageOrigins                                         stringList
	webauthnRPID                                                       string
	webauthnOrigins                                                    stringList
	reauthWithin, stepUpWithin                                         time.Duration
	backchannelAttempts                                                int
	backchannelBackoff, backchannelTimeout                             time.Duration
	webhookAttempts                                                    int
	webhookBackoff, webhookTimeout                                     time.Duration
	webhooksAllowHTTP                                                  bool
	tlsCert, tlsKey                                                    string // "" for plain HTTP
	behindProxy                                                        bool   // a TLS-terminating proxy forwards to --addr
	trustedProxies                                                     string // CIDR prefixes whose X-Forwarded-Proto is believed
	otlpEndpoint                                                       string // "": no tracing
	claimsHookURL, claimsHookSecretFile, claimsHookOnFailure           string
	claimsHookTimeout                                                  time.Duration
	claimsHookMaxBytes                                                 int64
	smtpURL, mailFrom, mailTemplates                                   string // "": no mail (the log with --dev)
	requireMFAForRoles                                                 string // comma-separated roles
}

// flagGroup registers some of the server's flags on fs.
type flagGroup func(fs *flag.FlagSet, f *serverFlags)

// The groups of server flags. Every command that takes them has storage.
var (
	// storageFlags say where the server's data is.
	storageFlags flagGroup = func(fs *flag.FlagSet, f *serverFlags) {
		fs.StringVar(&f.data, "data", "keycard-data", "data `directory` (SQLite database, dev master key)")
		fs.StringVar(&f.store, "store", "", "database `URL`: postgres://… or postgresql://… for PostgreSQL; empty for SQLite in --data")
		fs.StringVar(&f.config, "config", "", "YAML configuration `file`; keys are the flag names with _ for -")
		fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
		// How long revocation feed entries live, and keys are kept after
		// retiring: commands that revoke or rotate must agree with serve.
		fs.DurationVar(&f.accessTTL, "access-ttl", auth.DefaultAccessTTL, "access token lifetime")
	}
	// keyFlags open the master key and the signing keys.
	keyFlags flagGroup = func(fs *flag.FlagSet, f *serverFlags) {
		fs.StringVar(&f.masterKeyFile, "master-key-file", "", "`file` holding the base64 master key that encrypts private keys at rest (or KEYCARD_MASTER_KEY)")
		fs.BoolVar(&f.dev, "dev", false, "development mode: generate a master key in the data directory and allow registration")
		fs.StringVar(&f.alg, "signing-alg", string(jose.ES256), "signing `algorithm`: ES256, EdDSA, RS256, PS256 or HS256")
	}
	// passwordFlags hash new passwords.
	passwordFlags flagGroup = func(fs *flag.FlagSet, f *serverFlags) {
		fs.UintVar(&f.argonMemory, "argon2-memory", password.DefaultMemory, "argon2id memory in KiB")
		fs.UintVar(&f.argonIterations, "argon2-iterations", password.DefaultIterations, "argon2id iterations")
	}
	// serveFlags are the rest, which only a running server uses.
	serveFlags flagGroup = func(fs *flag.FlagSet, f *serverFlags) {
		fs.StringVar(&f.redis, "redis", "", "Redis `URL` (redis://…, rediss://…) for login throttles shared by every instance; empty: per instance")
		fs.StringVar(&f.redisPrefix, "redis-prefix", "keycard:", "prefix of Keycard's Redis keys, to share one Redis between deployments")
		fs.StringVar(&f.addr, "addr", "127.0.0.1:4000", "listen `address` (port 0 picks a free port)")
		fs.StringVar(&f.issuer, "issuer", "", "issuer `URL` in tokens and discovery (default https://ADDR with --tls-cert, else http://ADDR); must be https:// unless on loopback or with --dev")
		fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with the certificate chain in this PEM `file`, reread when it changes")
		fs.StringVar(&f.tlsKey, "tls-key", "", "private key `file` (PEM) of --tls-cert, reread when it changes")
		fs.BoolVar(&f.behindProxy, "behind-proxy", false, "a TLS-terminating load balancer forwards to --addr: allow plain HTTP there and believe X-Forwarded-Proto from --trusted-proxies")
		fs.StringVar(&f.trustedProxies, "trusted-proxies", tlsconfig.DefaultTrustedProxies, "with --behind-proxy, the proxies' addresses: comma-separated CIDR `prefixes`")
		fs.StringVar(&f.audience, "audience", auth.DefaultAudience, "aud of access tokens")
		fs.DurationVar(&f.refreshGrace, "refresh-grace", keycard.DefaultRotationGrace, "window in which a rotated refresh token still gets its successor")
		fs.DurationVar(&f.idleTimeout, "session-idle-timeout", keycard.DefaultIdleTimeout, "session idle timeout")
		fs.DurationVar(&f.sessionLifetime, "session-lifetime", keycard.DefaultSessionLifetime, "session absolute lifetime")
		fs.DurationVar(&f.rotateEvery, "key-rotation", auth.DefaultRotateEvery, "automatic signing-key rotation interval (negative: never)")
		fs.BoolVar(&f.cookieMode, "cookie-mode", false, "let browser logins keep their tokens in HttpOnly cookies, with a CSRF defence (needs --tls-cert or --behind-proxy, unless --dev)")
		fs.StringVar(&f.registration, "registration", "", "allow POST /v1/users: true or false (default: true with --dev)")
		fs.BoolVar(&f.dpopNonce, "dpop-nonce", false, "require server-issued nonces in DPoP proofs at the token and userinfo endpoints (RFC 9449 section 8)")
		fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long shutdown waits for in-flight requests")
		fs.IntVar(&f.loginAttempts, "login-attempts", server.DefaultLoginAttempts, "failed logins per account before back-off (0: no per-account throttle)")
		fs.IntVar(&f.loginAddressAttempts, "login-address-attempts", server.DefaultLoginAddressAttempts, "failed logins per client address before back-off (0: no per-address throttle)")
		fs.DurationVar(&f.loginRefill, "login-refill", throttle.DefaultRefill, "one failed login forgiven per this interval, until back-off starts")
		fs.DurationVar(&f.loginBackoff, "login-backoff", throttle.DefaultBaseDelay, "first login back-off, once the failures are spent (at least 1s); it doubles with each further failure")
		fs.DurationVar(&f.loginLockoutMax, "login-lockout-max", throttle.DefaultMaxDelay, "longest login back-off (it doubles from --login-backoff)")
		fs.BoolVar(&f.pages, "pages", true, "serve the web pages: sign-in, account and sessions, admin console (docs/web.md)")
		fs.Var(&f.pageRedirects, "page-redirect", "a path prefix (such as /weather/) the sign-in page may send the browser back to, besides its own pages; repeatable")
		fs.Var(&f.pageOrigins, "page-origin", "another origin the pages are served under (a gateway in front, such as https://app.example); repeatable")
		fs.StringVar(&f.webauthnRPID, "webauthn-rp-id", "", "the passkeys' WebAuthn relying party `id`, a domain such as example.com; passkeys are bound to it (default: the issuer's host; off when that is an IP address)")
		fs.Var(&f.webauthnOrigins, "webauthn-origin", "an origin whose pages may use passkeys, such as https://auth.example.com, on the relying party id's domain; repeatable (default: the issuer's and the --page-origin ones on that domain)")
		fs.IntVar(&f.maxSessions, "max-sessions-per-user", 0, "a user's active sessions at most; a login beyond ends the least recently used (0: unlimited)")
		fs.Var(&f.rolePolicies, "role-policies", "shorter lifetimes by role: ROLE:FIELD=DURATION, FIELD access_ttl, session_idle_timeout or session_lifetime; comma-separated or repeated")
		fs.DurationVar(&f.reauthWithin, "reauth-within", 0, "password changes and the admin API need a login this recent, else 401 insufficient_user_authentication (0: no such requirement)")
		fs.IntVar(&f.introspectionCache, "introspection-cache", server.DefaultIntrospectionCache, "introspection answers kept for active access tokens, about 1 KiB each, each used for at most a second (0: none; every introspection verifies the token and reads the database)")
		fs.DurationVar(&f.stepUpWithin, "step-up-within", auth.DefaultStepUpWithin, "deleting a user (admin API, console) needs an admin login this recent, whatever --reauth-within says (which wins when shorter)")
		fs.StringVar(&f.requireMFAForRoles, "require-mfa-for-roles", "", "comma-separated `roles` whose users must have a second factor: without one they enrol at their next sign-in before getting tokens (docs/accounts.md)")
		fs.Var(&f.roleScopes, "role-scopes", "scopes for users' tokens by role: ROLE=SCOPE, comma-separated or repeated; role * is every user")
		fs.IntVar(&f.backchannelAttempts, "backchannel-attempts", backchannel.DefaultMaxAttempts, "back-channel logout: attempts per logout before it is given up")
		fs.DurationVar(&f.backchannelBackoff, "backchannel-backoff", backchannel.DefaultBackoff, "back-channel logout: delay before the first retry, doubling up to 5m, with jitter")
		fs.DurationVar(&f.backchannelTimeout, "backchannel-timeout", backchannel.DefaultTimeout, "back-channel logout: timeout of one request to a client")
		fs.StringVar(&f.claimsHookURL, "claims-hook-url", "", "custom-claims hook: `URL` asked for extra claims at each token minting for a user (docs/claims-hook.md); empty: none")
		fs.StringVar(&f.claimsHookSecretFile, "claims-hook-secret-file", "", "custom-claims hook: `file` holding the whsec_ secret that signs its requests (or KEYCARD_CLAIMS_HOOK_SECRET)")
		fs.DurationVar(&f.claimsHookTimeout, "claims-hook-timeout", claimshook.DefaultTimeout, "custom-claims hook: deadline of one call")
		fs.Int64Var(&f.claimsHookMaxBytes, "claims-hook-max-bytes", claimshook.DefaultMaxBytes, "custom-claims hook: largest answer accepted")
		fs.StringVar(&f.claimsHookOnFailure, "claims-hook-on-failure", "deny", "custom-claims hook: when it fails, deny (the sign-in or refresh fails) or continue (tokens without its claims)")
		fs.IntVar(&f.webhookAttempts, "webhook-attempts", webhook.DefaultMaxAttempts, "webhooks: attempts per delivery before it is given up")
		fs.DurationVar(&f.webhookBackoff, "webhook-backoff", webhook.DefaultBackoff, "webhooks: delay before the first retry, doubling up to 30m, with jitter")
		fs.DurationVar(&f.webhookTimeout, "webhook-timeout", webhook.DefaultTimeout, "webhooks: timeout of one request to an endpoint")
		fs.BoolVar(&f.webhooksAllowHTTP, "webhooks-allow-http", false, "webhooks: let the admin API register http endpoints on any host, not only loopback (bodies travel in clear)")
		fs.StringVar(&f.smtpURL, "smtp-url", "", "send mail (verification and password-reset links) through this SMTP server: smtp://user:password@host:port (STARTTLS when offered) or smtps://… (TLS); prefer KEYCARD_SMTP_URL, out of the process list; empty: no mail (with --dev: written to the log)")
		fs.StringVar(&f.mailFrom, "mail-from", "", "the sender `address` of the mail; required with --smtp-url")
		fs.StringVar(&f.mailTemplates, "mail-templates", "", "a `directory` of mail templates (NAME.txt, NAME.html) replacing the built-in ones of the same name (docs/accounts.md)")
		fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "send OpenTelemetry traces to this OTLP/HTTP collector `URL` (such as http://127.0.0.1:4318); empty: no tracing (docs/observability.md)")
	}
)

// serverConfigKeys are the YAML keys of every server flag: a
// configuration file written for serve is valid for the commands that
// use some of them.
func serverConfigKeys() map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var f serverFlags
	for _, g := range []flagGroup{storageFlags, keyFlags, passwordFlags, serveFlags} {
		g(fs, &f)
	}
	keys := map[string]bool{federationKey: true}
	fs.VisitAll(func(fl *flag.Flag) { keys[yamlName(fl.Name)] = true })
	return keys
}

// serverFlagSet returns a flag set for the command name with the flag
// groups it uses (storage always).
func (e *cmdEnv) serverFlagSet(name string, f *serverFlags, groups ...flagGroup) *flagSetWithConfig {
	fs := e.flagSet(name)
	storageFlags(fs, f)
	for _, g := range groups {
		g(fs, f)
	}
	return &flagSetWithConfig{FlagSet: fs, config: &f.config, known: serverConfigKeys}
}

// rolePolicyMap turns --role-policies entries (ROLE:FIELD=DURATION, FIELD
// one of access_ttl, session_idle_timeout, session_lifetime) into
// auth.Config.RolePolicies.
func (f *serverFlags) rolePolicyMap() (map[string]auth.SessionPolicy, error) {
	if len(f.rolePolicies) == 0 {
		return nil, nil
	}
	m := map[string]auth.SessionPolicy{}
	for _, e := range f.rolePolicies {
		role, rest, ok1 := strings.Cut(e, ":")
		field, value, ok2 := strings.Cut(rest, "=")
		d, err := time.ParseDuration(strings.TrimSpace(value))
		role, field = strings.TrimSpace(role), strings.TrimSpace(field)
		if !ok1 || !ok2 || role == "" || err != nil || d <= 0 {
			return nil, fmt.Errorf("--role-policies: %q is not ROLE:FIELD=DURATION (for example admin:access_ttl=5m)", e)
		}
		p := m[role]
		switch field {
		case "access_ttl":
			p.AccessTTL = d
		case "session_idle_timeout":
			p.IdleTimeout = d
		case "session_lifetime":
			p.SessionLifetime = d
		default:
			return nil, fmt.Errorf("--role-policies: %q: the field must be access_ttl, session_idle_timeout or session_lifetime", e)
		}
		m[role] = p
	}
	return m, nil
}

// roleScopeMap turns --role-scopes entries (ROLE=SCOPE, "*" for every
// user) into auth.Config.RoleScopes.
func (f *serverFlags) roleScopeMap() (map[string][]string, error) {
	if len(f.roleScopes) == 0 {
		return nil, nil
	}
	m := map[string][]string{}
	for _, e := range f.roleScopes {
		role, scope, ok := strings.Cut(e, "=")
		role, scope = strings.TrimSpace(role), strings.TrimSpace(scope)
		if !ok || role == "" || scope == "" {
			return nil, fmt.Errorf("--role-scopes: %q is not ROLE=SCOPE", e)
		}
		m[role] = append(m[role], scope)
	}
	return m, nil
}

// serverConfig turns the flags of fs into the server's configuration.
// Flags of groups the command did not register keep server.Defaults.
func (e *cmdEnv) serverConfig(fs *flagSetWithConfig, f *serverFlags, log *slog.Logger) (server.Config, error) {
	c := server.Defaults()
	c.Data, c.Store = f.data, f.store
	c.MasterKey = e.getenv("KEYCARD_MASTER_KEY")
	if v := fs.Lookup("access-ttl"); v != nil {
		c.AccessTTL = f.accessTTL
	}
	if fs.Lookup("master-key-file") != nil { // keyFlags
		c.MasterKeyFile, c.Dev, c.Alg = f.masterKeyFile, f.dev, jose.Algorithm(f.alg)
	}
	if fs.Lookup("argon2-memory") != nil { // passwordFlags
		c.Argon2Memory, c.Argon2Iterations = uint32(f.argonMemory), uint32(f.argonIterations)
	}
	if fs.Lookup("addr") == nil { // no serveFlags
		c.Logger = log
		return c, nil
	}
	c.Redis, c.RedisPrefix, c.Addr, c.Issuer, c.Audience = f.redis, f.redisPrefix, f.addr, f.issuer, f.audience
	c.TLS.CertFile, c.TLS.KeyFile, c.TLS.BehindProxy, c.TLS.TrustedProxies = f.tlsCert, f.tlsKey, f.behindProxy, f.trustedProxies
	c.RefreshGrace, c.IdleTimeout, c.SessionLifetime, c.KeyRotation = f.refreshGrace, f.idleTimeout, f.sessionLifetime, f.rotateEvery
	c.ShutdownTimeout, c.LoginRefill, c.LoginBackoff, c.LoginLockoutMax = f.shutdownTimeout, f.loginRefill, f.loginBackoff, f.loginLockoutMax
	c.LoginAttempts, c.LoginAddressAttempts = f.loginAttempts, f.loginAddressAttempts
	c.MaxSessionsPerUser, c.ReauthWithin, c.StepUpWithin = f.maxSessions, f.reauthWithin, f.stepUpWithin
	c.IntrospectionCache = f.introspectionCache
	for _, role := range strings.Split(f.requireMFAForRoles, ",") {
		if role = strings.TrimSpace(role); role != "" {
			c.RequireMFAForRoles = append(c.RequireMFAForRoles, role)
		}
	}
	c.CookieMode, c.Pages, c.DPoPNonce = f.cookieMode, f.pages, f.dpopNonce
	c.Backchannel.MaxAttempts, c.Backchannel.Backoff, c.Backchannel.Timeout = f.backchannelAttempts, f.backchannelBackoff, f.backchannelTimeout
	c.Webhooks.MaxAttempts, c.Webhooks.Backoff, c.Webhooks.Timeout = f.webhookAttempts, f.webhookBackoff, f.webhookTimeout
	c.WebhooksAllowHTTP = f.webhooksAllowHTTP
	c.PageRedirects, c.PageOrigins = f.pageRedirects, f.pageOrigins
	c.WebAuthn = server.WebAuthnConfig{RPID: f.webauthnRPID, Origins: f.webauthnOrigins}
	c.OTLPEndpoint = f.otlpEndpoint
	c.Mail = server.MailConfig{SMTPURL: f.smtpURL, From: f.mailFrom, Templates: f.mailTemplates}
	c.ClaimsHook = server.ClaimsHookConfig{URL: f.claimsHookURL, SecretFile: f.claimsHookSecretFile, Secret: e.getenv("KEYCARD_CLAIMS_HOOK_SECRET"),
		Timeout: f.claimsHookTimeout, MaxBytes: f.claimsHookMaxBytes}
	switch f.claimsHookOnFailure {
	case "deny":
	case "continue":
		c.ClaimsHook.Continue = true
	default:
		return c, fmt.Errorf("--claims-hook-on-failure: %q is neither deny nor continue", f.claimsHookOnFailure)
	}
	c.Registration = f.dev
	switch f.registration {
	case "true":
		c.Registration = true
	case "false":
		c.Registration = false
	case "":
	default:
		return c, fmt.Errorf("--registration must be true or false, not %q", f.registration)
	}
	var err error
	if c.RoleScopes, err = f.roleScopeMap(); err != nil {
		return c, err
	}
	if c.RolePolicies, err = f.rolePolicyMap(); err != nil {
		return c, err
	}
	path := *fs.config
	if path == "" {
		path = e.getenv(envName("config"))
	}
	if c.Federation, err = readFederation(path, e.getenv); err != nil {
		return c, err
	}
	c.Logger = log
	return c, nil
}

func (e *cmdEnv) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l})), nil
}

// serve runs the auth server until the context is cancelled (SIGINT or
// SIGTERM), then drains and stops (server.Run). Every setting is checked
// before the port is opened.
func (e *cmdEnv) serve(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("serve", &f, keyFlags, passwordFlags, serveFlags)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	log, err := e.logger(f.logLevel)
	if err != nil {
		return e.fail("%v", err)
	}
	// Service log lines carry the request id of the request they serve.
	log = slog.New(httpapi.WithRequestID(log.Handler()))
	cfg, err := e.serverConfig(fs, &f, log)
	if err != nil {
		return e.fail("%v", err)
	}
	if err := server.Run(e.ctx, cfg, nil); err != nil {
		return e.fail("serve: %v", err)
	}
	log.Info("stopped")
	return exitOK
}

// openData opens the server's existing database for a command that works
// on it: never a new one (a mistyped --data is an error, not an empty
// database). withKeys also opens the master key and the signing keys.
func (e *cmdEnv) openData(fs *flagSetWithConfig, f *serverFlags, withKeys bool) (*server.App, error) {
	return e.openWith(fs, f, server.Options{Keys: withKeys, Existing: true})
}

// openWith opens the server's data with opt.
func (e *cmdEnv) openWith(fs *flagSetWithConfig, f *serverFlags, opt server.Options) (*server.App, error) {
	log, err := e.logger(f.logLevel)
	if err != nil {
		return nil, err
	}
	cfg, err := e.serverConfig(fs, f, log)
	if err != nil {
		return nil, err
	}
	a, err := server.Open(e.ctx, cfg, opt)
	if errors.Is(err, server.ErrNoDatabase) {
		return nil, noDatabase(f.data)
	}
	return a, err
}

// noDatabase is openWith's error for a --data with no Keycard database in
// it; it is a server.ErrNoDatabase.
type noDatabase string

func (d noDatabase) Error() string {
	return fmt.Sprintf("no Keycard database at %s; run serve first or pass --data (or --store)", string(d))
}

func (noDatabase) Unwrap() error { return server.ErrNoDatabase }

// onData opens the server's data, runs fn on its service and closes it.
func (e *cmdEnv) onData(fs *flagSetWithConfig, f *serverFlags, withKeys bool, fn func(svc *auth.Service) int) int {
	a, err := e.openData(fs, f, withKeys)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	return fn(a.Service())
}

// printPages prints every item of a paged listing as one JSON object a
// line. page fetches the page after a cursor, cursor gives an item's
// cursor, line the object printed for it.
func printPages[T any](e *cmdEnv, page func(ctx context.Context, after string) ([]T, error), cursor func(T) string, line func(T) any) int {
	after := ""
	for {
		items, err := page(e.ctx, after)
		if err != nil {
			return e.fail("%v", err)
		}
		for _, it := range items {
			e.printJSON(line(it))
		}
		if len(items) < keycard.MaxPageSize {
			return exitOK
		}
		after = cursor(items[len(items)-1])
	}
}
