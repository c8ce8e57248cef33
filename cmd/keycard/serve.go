package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/metrics"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/web"
	"github.com/prometheus/client_golang/prometheus"
)

// serverFlags are the auth server's settings; each has a KEYCARD_… variable
// and a YAML key (see config.go).
type serverFlags struct {
	data, addr, issuer, config, masterKeyFile, audience, alg, logLevel string
	store                                                              string // "" for SQLite in data
	redis, redisPrefix                                                 string // "" for per-instance login throttles
	dev                                                                bool
	cookieMode                                                         bool
	registration                                                       string // "", "true" or "false": default follows --dev
	accessTTL, refreshGrace, idleTimeout, sessionLifetime, rotateEvery time.Duration
	shutdownTimeout                                                    time.Duration
	argonMemory, argonIterations                                       uint
	loginAttempts, loginAddressAttempts                                int
	loginRefill, loginLockoutMax                                       time.Duration
	roleScopes                                                         stringList // ROLE=SCOPE entries
	rolePolicies                                                       stringList // ROLE:FIELD=DURATION entries
	maxSessions                                                        int
	pages                                                              bool
	pageRedirects, pageOrigins                                         stringList
	reauthWithin                                                       time.Duration
	tlsCert, tlsKey                                                    string // "" for plain HTTP
	behindProxy                                                        bool   // a TLS-terminating proxy forwards to --addr
	trustedProxies                                                     string // CIDR prefixes whose X-Forwarded-Proto is believed
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

// serverFlagSet registers every server flag, so that one configuration
// file serves "serve" and the users and keys commands alike.
func (e *cmdEnv) serverFlagSet(name string, f *serverFlags) *flagSetWithConfig {
	fs := e.flagSet(name)
	fs.StringVar(&f.data, "data", "keycard-data", "data `directory` (SQLite database, dev master key)")
	fs.StringVar(&f.store, "store", "", "database `URL`: postgres://… or postgresql://… for PostgreSQL; empty for SQLite in --data")
	fs.StringVar(&f.redis, "redis", "", "Redis `URL` (redis://…, rediss://…) for login throttles shared by every instance; empty: per instance")
	fs.StringVar(&f.redisPrefix, "redis-prefix", "keycard:", "prefix of Keycard's Redis keys, to share one Redis between deployments")
	fs.StringVar(&f.config, "config", "", "YAML configuration `file`; keys are the flag names with _ for -")
	fs.StringVar(&f.masterKeyFile, "master-key-file", "", "`file` holding the base64 master key that encrypts private keys at rest (or KEYCARD_MASTER_KEY)")
	fs.BoolVar(&f.dev, "dev", false, "development mode: generate a master key in the data directory and allow registration")
	{
		fs.StringVar(&f.addr, "addr", "127.0.0.1:4000", "listen `address` (port 0 picks a free port)")
		fs.StringVar(&f.issuer, "issuer", "", "issuer `URL` in tokens and discovery (default https://ADDR with --tls-cert, else http://ADDR); must be https:// unless on loopback or with --dev")
		fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with the certificate chain in this PEM `file`, reread when it changes")
		fs.StringVar(&f.tlsKey, "tls-key", "", "private key `file` (PEM) of --tls-cert, reread when it changes")
		fs.BoolVar(&f.behindProxy, "behind-proxy", false, "a TLS-terminating load balancer forwards to --addr: allow plain HTTP there and believe X-Forwarded-Proto from --trusted-proxies")
		fs.StringVar(&f.trustedProxies, "trusted-proxies", tlsconfig.DefaultTrustedProxies, "with --behind-proxy, the proxies' addresses: comma-separated CIDR `prefixes`")
		fs.StringVar(&f.audience, "audience", auth.DefaultAudience, "aud of access tokens")
		fs.StringVar(&f.alg, "signing-alg", string(jose.ES256), "signing `algorithm`: ES256, EdDSA, RS256, PS256 or HS256")
		fs.DurationVar(&f.accessTTL, "access-ttl", auth.DefaultAccessTTL, "access token lifetime")
		fs.DurationVar(&f.refreshGrace, "refresh-grace", keycard.DefaultRotationGrace, "window in which a rotated refresh token still gets its successor")
		fs.DurationVar(&f.idleTimeout, "session-idle-timeout", keycard.DefaultIdleTimeout, "session idle timeout")
		fs.DurationVar(&f.sessionLifetime, "session-lifetime", keycard.DefaultSessionLifetime, "session absolute lifetime")
		fs.DurationVar(&f.rotateEvery, "key-rotation", auth.DefaultRotateEvery, "automatic signing-key rotation interval (negative: never)")
		fs.BoolVar(&f.cookieMode, "cookie-mode", false, "let browser logins keep their tokens in HttpOnly cookies, with a CSRF defence (needs --tls-cert or --behind-proxy, unless --dev)")
		fs.StringVar(&f.registration, "registration", "", "allow POST /v1/users: true or false (default: true with --dev)")
		fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
		fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long shutdown waits for in-flight requests")
		fs.UintVar(&f.argonMemory, "argon2-memory", password.DefaultMemory, "argon2id memory in KiB")
		fs.UintVar(&f.argonIterations, "argon2-iterations", password.DefaultIterations, "argon2id iterations")
		fs.IntVar(&f.loginAttempts, "login-attempts", defaultLoginAttempts, "failed logins per account before back-off (0: no per-account throttle)")
		fs.IntVar(&f.loginAddressAttempts, "login-address-attempts", defaultLoginAddressAttempts, "failed logins per client address before back-off (0: no per-address throttle)")
		fs.DurationVar(&f.loginRefill, "login-refill", throttle.DefaultRefill, "one failed login forgiven per this interval, until back-off starts")
		fs.DurationVar(&f.loginLockoutMax, "login-lockout-max", throttle.DefaultMaxDelay, "longest login back-off (it doubles from 1s)")
		fs.BoolVar(&f.pages, "pages", true, "serve the web pages: sign-in, account and sessions, admin console (docs/web.md)")
		fs.Var(&f.pageRedirects, "page-redirect", "a path prefix (such as /weather/) the sign-in page may send the browser back to, besides its own pages; repeatable")
		fs.Var(&f.pageOrigins, "page-origin", "another origin the pages are served under (a gateway in front, such as https://app.example); repeatable")
		fs.IntVar(&f.maxSessions, "max-sessions-per-user", 0, "a user's active sessions at most; a login beyond ends the least recently used (0: unlimited)")
		fs.Var(&f.rolePolicies, "role-policies", "shorter lifetimes by role: ROLE:FIELD=DURATION, FIELD access_ttl, session_idle_timeout or session_lifetime; comma-separated or repeated")
		fs.DurationVar(&f.reauthWithin, "reauth-within", 0, "password changes and the admin API need a login this recent, else 401 insufficient_user_authentication (0: no such requirement)")
		fs.Var(&f.roleScopes, "role-scopes", "scopes for users' tokens by role: ROLE=SCOPE, comma-separated or repeated; role * is every user")
	}
	return &flagSetWithConfig{FlagSet: fs, config: &f.config}
}

// masterKey finds the master key: --master-key-file, then
// KEYCARD_MASTER_KEY, then (with --dev only) DATA/master.key, created 0600
// on first start. Without one the server refuses to start.
func (e *cmdEnv) masterKey(f *serverFlags) ([]byte, error) {
	if f.masterKeyFile != "" {
		b, err := os.ReadFile(f.masterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		return auth.ParseMasterKey(b)
	}
	if v := e.getenv("KEYCARD_MASTER_KEY"); v != "" {
		return auth.ParseMasterKey([]byte(v))
	}
	if !f.dev {
		return nil, errors.New("no master key: give --master-key-file or KEYCARD_MASTER_KEY (or --dev to generate one in the data directory)")
	}
	path := filepath.Join(f.data, "master.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// With --store the data directory holds only this key.
		if err := os.MkdirAll(f.data, 0o700); err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		text, err := auth.GenerateMasterKey(nil)
		if err != nil {
			return nil, err
		}
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		if _, err := fh.WriteString(text + "\n"); err != nil {
			fh.Close()
			return nil, err
		}
		if err := fh.Close(); err != nil {
			return nil, err
		}
		return auth.ParseMasterKey([]byte(text))
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return auth.ParseMasterKey(b)
}

// database is an opened storage back end: SQLite in the data directory,
// or PostgreSQL.
type database interface {
	Stores() keycard.Stores
	Close() error
}

// app is an opened data directory: database, keys and service.
type app struct {
	db      database
	shared  *sharedThrottles // nil without --redis
	keys    *auth.KeyManager
	svc     *auth.Service
	metrics *metrics.Metrics
	// csrfKey binds cookie mode's CSRF tokens to sessions; derived from
	// the master key, so it is the same on every instance and restart.
	csrfKey []byte
}

func (a *app) Close() error {
	if a.shared != nil {
		a.shared.Close()
	}
	return a.db.Close()
}

// feedWatchInterval is how often a server on SQLite looks for feed
// entries appended by other processes (the CLI).
const feedWatchInterval = 200 * time.Millisecond

// watchFeed calls appended whenever the feed's last sequence number
// changes, looking every interval until ctx ends. One cheap query per
// interval for the whole process, however many readers wait.
func watchFeed(ctx context.Context, feed keycard.RevocationStore, interval time.Duration, appended func()) {
	last, _ := feed.LastRevocationSeq(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq, err := feed.LastRevocationSeq(ctx)
		if err != nil || seq == last {
			continue
		}
		last = seq
		appended()
	}
}

// degraded lists what the server does in a reduced way, for /readyz.
func (a *app) degraded() []string {
	if a.shared == nil {
		return nil
	}
	return a.shared.Degraded()
}

// onData opens the data directory of f, runs fn on it and closes it.
func (e *cmdEnv) onData(f *serverFlags, withKeys bool, fn func(a *app) int) int {
	a, err := e.open(f, withKeys, nil)
	if err != nil {
		return e.fail("%v", err)
	}
	defer a.Close()
	return fn(a)
}

// printPages prints every item of a paged store listing as one JSON object
// a line. page fetches the page after a cursor, cursor gives an item's
// cursor, line the object printed for it.
func printPages[T any](e *cmdEnv, page func(after string) ([]T, error), cursor func(T) string, line func(T) any) int {
	after := ""
	for {
		items, err := page(after)
		if err != nil {
			return e.fail("%v", err)
		}
		for _, it := range items {
			out, err := json.Marshal(line(it))
			if err != nil {
				return e.fail("%v", err)
			}
			fmt.Fprintf(e.stdout, "%s\n", out)
		}
		if len(items) < keycard.MaxPageSize {
			return exitOK
		}
		after = cursor(items[len(items)-1])
	}
}

// open opens the data directory. withKeys also unseals the signing keys
// (creating the first one), which needs the master key.
func (e *cmdEnv) open(f *serverFlags, withKeys bool, log *slog.Logger) (*app, error) {
	db, err := e.openDB(f, log)
	if err != nil {
		return nil, err
	}
	a := &app{db: db}
	stores := db.Stores()
	hasher := &password.Hasher{Params: password.DefaultParams()}
	if f.argonMemory != 0 {
		hasher.Params.Memory = uint32(f.argonMemory)
	}
	if f.argonIterations != 0 {
		hasher.Params.Iterations = uint32(f.argonIterations)
	}
	var sealer *auth.Sealer
	if withKeys {
		mk, err := e.masterKey(f)
		if err != nil {
			db.Close()
			return nil, err
		}
		if sealer, err = auth.NewSealer(mk); err != nil {
			db.Close()
			return nil, err
		}
		if a.csrfKey, err = hkdf.Key(sha256.New, mk, nil, "keycard csrf key v1", 32); err != nil {
			db.Close()
			return nil, err
		}
		accessTTL := f.accessTTL
		if accessTTL == 0 {
			accessTTL = auth.DefaultAccessTTL
		}
		a.keys, err = auth.NewKeyManager(stores.Keys, sealer, auth.KeyOptions{
			Algorithm:   jose.Algorithm(f.alg),
			RotateEvery: f.rotateEvery,
			RetainFor:   accessTTL + auth.DefaultLeeway,
		}, nil)
		if err == nil {
			err = a.keys.Maintain(e.ctx)
		}
		if err != nil {
			db.Close()
			return nil, err
		}
	}
	registration := f.dev
	switch f.registration {
	case "true":
		registration = true
	case "false":
		registration = false
	case "":
	default:
		db.Close()
		return nil, fmt.Errorf("--registration must be true or false, not %q", f.registration)
	}
	roleScopes, err := f.roleScopeMap()
	if err != nil {
		db.Close()
		return nil, err
	}
	rolePolicies, err := f.rolePolicyMap()
	if err != nil {
		db.Close()
		return nil, err
	}
	// Login throttles: in memory, per instance, or with --redis shared by
	// every instance (and in memory while Redis is unreachable).
	if f.redis != "" {
		if a.shared, err = newSharedThrottles(f.redis, f.redisPrefix); err != nil {
			db.Close()
			return nil, err
		}
	}
	limits, err := f.loginLimits(a.shared, log)
	if err != nil {
		a.Close()
		return nil, err
	}
	var keysFn func(context.Context) ([]*keycard.SigningKey, error)
	if a.keys != nil {
		keysFn = a.keys.Keys
	}
	a.metrics = metrics.New(metrics.Options{Keys: keysFn})
	if a.shared != nil {
		a.metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Name: "login_throttle_degraded",
			Help: "Login throttles on per-instance limits because Redis is unreachable (0 when all are shared).",
		}, a.shared.degradedCount))
	}
	a.svc, err = auth.NewService(auth.Deps{Stores: stores, Keys: a.keys, Sealer: sealer, Hasher: hasher, Logger: log,
		LoginLimits: limits, Metrics: a.metrics}, auth.Config{
		Issuer: f.issuer, Audience: f.audience, AccessTTL: f.accessTTL, RefreshGrace: f.refreshGrace,
		IdleTimeout: f.idleTimeout, SessionLifetime: f.sessionLifetime, Registration: registration,
		RoleScopes: roleScopes, RolePolicies: rolePolicies, MaxSessionsPerUser: f.maxSessions, ReauthWithin: f.reauthWithin,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// storeKind returns the back end --store names: "sqlite" for none,
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

// openDB opens the database f names and applies pending migrations:
// PostgreSQL at --store, or SQLite in --data (created 0700 if missing).
// log, which may be nil, gets the PostgreSQL listener's reconnections.
func (e *cmdEnv) openDB(f *serverFlags, log *slog.Logger) (database, error) {
	kind, err := storeKind(f.store)
	if err != nil {
		return nil, err
	}
	// Revocation feed entries last as long as a token they could match:
	// the access-token lifetime plus the verifiers' leeway.
	revocationTTL := f.accessTTL
	if revocationTTL <= 0 {
		revocationTTL = auth.DefaultAccessTTL
	}
	revocationTTL += auth.DefaultLeeway
	if kind == "postgres" {
		db, err := postgres.Open(e.ctx, f.store, postgres.Options{RevocationTTL: revocationTTL, Logger: log})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return nil, err
	}
	db, err := sqlite.Open(e.ctx, filepath.Join(f.data, "keycard.db"), sqlite.Options{RevocationTTL: revocationTTL})
	if err != nil {
		return nil, err
	}
	return db, nil
}

func (e *cmdEnv) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: l})), nil
}

// serve runs the auth server until the context is cancelled (SIGINT or
// SIGTERM), then stops accepting, drains in-flight requests, stops the
// background work and closes the database.
func (e *cmdEnv) serve(args []string) int {
	var f serverFlags
	fs := e.serverFlagSet("serve", &f)
	if code, ok := e.parseLayered(fs, args, 0); !ok {
		return code
	}
	if !jose.Algorithm(f.alg).Valid() {
		return e.fail("--signing-alg: unsupported algorithm %q", f.alg)
	}
	log, err := e.logger(f.logLevel)
	if err != nil {
		return e.fail("%v", err)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return e.fail("listen: %v", err)
	}
	// Transport security: HTTPS, or a TLS-terminating proxy in front, or
	// loopback only (docs/operations.md, "TLS").
	lt := listenerTLS{certFile: f.tlsCert, keyFile: f.tlsKey, behindProxy: f.behindProxy, trustedProxies: f.trustedProxies, names: serveTLSNames}
	sec, err := lt.setUp(ln.Addr(), f.dev, log)
	if err != nil {
		ln.Close()
		return e.fail("serve: %v", err)
	}
	if f.issuer == "" {
		f.issuer = sec.scheme() + "://" + ln.Addr().String()
	}
	if err := checkIssuer(f.issuer, f.dev, serveTLSNames); err != nil {
		ln.Close()
		return e.fail("serve: %v", err)
	}
	if f.cookieMode && !f.dev && sec.config == nil && !f.behindProxy {
		ln.Close()
		return e.fail("serve: refusing --cookie-mode without TLS: its cookies are Secure, which browsers keep only over HTTPS. Give --tls-cert and --tls-key, or --behind-proxy behind a TLS-terminating load balancer (or --dev for development)")
	}
	// Service log lines carry the request id of the request they serve.
	log = slog.New(httpapi.WithRequestID(log.Handler()))
	a, err := e.open(&f, true, log)
	if err != nil {
		ln.Close()
		return e.fail("%v", err)
	}
	defer a.Close()

	if f.cookieMode && !strings.HasPrefix(f.issuer, "https://") {
		log.Warn("cookie mode with a non-https issuer: browsers only keep its Secure cookies on localhost", "issuer", f.issuer)
	}
	var pages httpapi.Pages
	if f.pages {
		p, err := web.New(a.svc, web.Options{CSRFKey: a.csrfKey, Logger: log, RedirectPrefixes: f.pageRedirects, Origins: f.pageOrigins})
		if err != nil {
			return e.fail("--pages: %v", err)
		}
		pages = p
	}
	handler := httpapi.New(a.svc, httpapi.Options{Logger: log, Metrics: a.metrics, Cookies: f.cookieMode, CSRFKey: a.csrfKey, Degraded: a.degraded, Pages: pages, Ready: func(ctx context.Context) error {
		// A shared database can go away while the server runs; the 503
		// names no host or user, the log does.
		if pg, ok := a.db.(*postgres.DB); ok {
			if err := pg.Ping(ctx); err != nil {
				log.Warn("readiness: database ping failed", "err", err)
				return errors.New("the database does not answer")
			}
		}
		_, _, err := a.keys.Signer(ctx)
		return err
	}})
	srv := &http.Server{
		Handler:           tlsconfig.HSTS(sec.proxies)(handler),
		TLSConfig:         sec.config,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for running requests but does not cancel them: end
	// the revocation feed's long-polls and streams so that it can drain.
	srv.RegisterOnShutdown(handler.StopFeeds)
	bg, stopBG := context.WithCancel(context.Background())
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		e.maintain(bg, a, log)
	}()
	// Other processes append to the feed too: other instances on
	// PostgreSQL, whose NOTIFY wakes this server's long-polls and streams,
	// and the CLI (keys revoke, users disable) on either database. SQLite
	// has no notifications, so one watcher looks at the feed's last
	// sequence number every feedWatchInterval and wakes the readers when
	// it moved.
	listenDone := make(chan struct{})
	if pg, ok := a.db.(*postgres.DB); ok {
		go func() {
			defer close(listenDone)
			pg.ListenRevocations(bg, a.svc.RevocationsAppended)
		}()
	} else {
		go func() {
			defer close(listenDone)
			watchFeed(bg, a.db.Stores().Revocations, feedWatchInterval, a.svc.RevocationsAppended)
		}()
	}
	serveErr := make(chan error, 1)
	go func() {
		if sec.config != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	kind, _ := storeKind(f.store) // open checked it
	log.Info("listening", "addr", ln.Addr().String(), "issuer", f.issuer, "data", f.data, "store", kind,
		"tls", sec.config != nil, "behind_proxy", f.behindProxy)

	code := exitOK
	select {
	case <-e.ctx.Done():
		log.Info("shutting down")
		ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
		if err := srv.Shutdown(ctx); err != nil {
			log.Error("shutdown", "err", err)
			code = exitFailure
		}
		cancel()
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
		code = exitFailure
	}
	stopBG()
	<-bgDone
	<-listenDone
	log.Info("stopped")
	return code
}

// maintain runs the periodic work: key lifecycle every minute and pruning
// of ended sessions and of revocation entries past their expires_at every
// hour.
func (e *cmdEnv) maintain(ctx context.Context, a *app, log *slog.Logger) {
	keyTick := time.NewTicker(time.Minute)
	defer keyTick.Stop()
	pruneTick := time.NewTicker(time.Hour)
	defer pruneTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keyTick.C:
			if err := a.keys.Maintain(ctx); err != nil && ctx.Err() == nil {
				log.Error("key maintenance", "err", err)
			}
		case <-pruneTick.C:
			now := time.Now()
			cfg := a.svc.Config()
			if _, err := a.db.Stores().Sessions.PruneSessions(ctx, now, now.Add(-cfg.RefreshGrace)); err != nil && ctx.Err() == nil {
				log.Error("session pruning", "err", err)
			}
			if _, err := a.db.Stores().Revocations.PruneRevocations(ctx, now); err != nil && ctx.Err() == nil {
				log.Error("revocation pruning", "err", err)
			}
		}
	}
}
