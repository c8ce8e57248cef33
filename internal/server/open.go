package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/federation"
	"github.com/keycard-auth/keycard/internal/mail"
	"github.com/keycard-auth/keycard/internal/metrics"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/internal/storetrace"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/jose"
	"github.com/prometheus/client_golang/prometheus"
)

// database is an opened storage back end.
type database interface {
	Stores() keycard.Stores
	Close() error
}

// App is an opened auth server: its database, login throttles, signing
// keys and auth.Service. Close it when done.
type App struct {
	cfg     Config
	db      database
	shared  *sharedThrottles // nil without Redis
	keys    *auth.KeyManager // nil when opened without keys
	svc     *auth.Service
	metrics *metrics.Metrics
	// csrfKey binds the CSRF tokens of the pages and cookie mode to
	// sessions; derived from the master key, so the same on every
	// instance and restart.
	csrfKey []byte
	// dpopNonceKey keys the server's DPoP nonces (Config.DPoPNonce),
	// derived from the master key like csrfKey.
	dpopNonceKey []byte
	// clientKeys fetches the JWK Sets of private_key_jwt clients.
	clientKeys *clientKeySets
	// fed is the upstream identity providers (Config.Federation), and
	// stopDiscovery ends their discovery in the background.
	fed           *federation.Set
	stopDiscovery context.CancelFunc
}

// Options say what Open opens.
type Options struct {
	// Keys opens the master key and the signing keys (making the first
	// one): needed to mint and verify tokens, not to manage users.
	Keys bool
	// Existing refuses to create a database: the command line's
	// commands work on the server's, and a mistyped --data must not
	// quietly make a new, empty one.
	Existing bool
}

// ErrNoDatabase is the error of Open with Options.Existing when the data
// directory holds no Keycard database.
var ErrNoDatabase = errors.New("server: no Keycard database")

// Open opens what cfg names: the database (migrated to this binary's
// schema), the login throttles, and with opt.Keys the master key and the
// signing keys, and builds the auth.Service on them.
func Open(ctx context.Context, cfg Config, opt Options) (*App, error) {
	if cfg.Tracer != nil && cfg.Logger != nil {
		cfg.Logger = slog.New(tracing.LogHandler(cfg.Logger.Handler()))
	}
	log := cfg.logger()
	db, err := openDB(ctx, &cfg, opt.Existing)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, db: db}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	stores := storetrace.Wrap(db.Stores(), cfg.Tracer, a.dbSystem())
	hasher := &password.Hasher{Params: password.DefaultParams()}
	if cfg.Argon2Memory != 0 {
		hasher.Params.Memory = cfg.Argon2Memory
	}
	if cfg.Argon2Iterations != 0 {
		hasher.Params.Iterations = cfg.Argon2Iterations
	}
	var sealer *auth.Sealer
	if opt.Keys {
		mk, err := masterKey(&cfg)
		if err != nil {
			return nil, err
		}
		if sealer, err = auth.NewSealer(mk); err != nil {
			return nil, err
		}
		if a.csrfKey, err = hkdf.Key(sha256.New, mk, nil, "keycard csrf key v1", 32); err != nil {
			return nil, err
		}
		if a.dpopNonceKey, err = hkdf.Key(sha256.New, mk, nil, "keycard dpop nonce key v1", 32); err != nil {
			return nil, err
		}
		accessTTL := cfg.AccessTTL
		if accessTTL == 0 {
			accessTTL = auth.DefaultAccessTTL
		}
		alg := cfg.Alg
		if alg == "" {
			alg = jose.ES256
		}
		a.keys, err = auth.NewKeyManager(stores.Keys, sealer, auth.KeyOptions{
			Algorithm:   alg,
			RotateEvery: cfg.KeyRotation,
			RetainFor:   accessTTL + auth.DefaultLeeway,
		}, nil)
		if err != nil {
			return nil, err
		}
		if err := a.keys.Maintain(ctx); err != nil {
			return nil, err
		}
	}
	// Login throttles: in memory, per instance, or shared in Redis (and
	// in memory while Redis is unreachable).
	if cfg.Redis != "" {
		if a.shared, err = newSharedThrottles(cfg.Redis, cfg.RedisPrefix); err != nil {
			return nil, err
		}
	}
	limits := cfg.loginLimits(a.shared, log)
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
	a.clientKeys = newClientKeySets(log)
	if a.fed, err = federation.New(cfg.Federation, federation.Options{Logger: log, Load: a.loadProviders}); err != nil {
		return nil, err
	}
	if len(cfg.Federation) > 0 && opt.Keys {
		dctx, cancel := context.WithCancel(context.Background())
		a.stopDiscovery = cancel
		go a.fed.DiscoverAll(dctx, log)
	}
	deps := auth.Deps{Stores: stores, Keys: a.keys, Sealer: sealer, Hasher: hasher, Logger: log,
		LoginLimits: limits, Metrics: a.metrics, ClientKeys: a.clientKeys, Trace: tracing.Operation(cfg.Tracer, tracing.OpOptions{})}
	hook, err := cfg.claimsHook()
	if err != nil {
		return nil, err
	}
	if hook != nil {
		deps.ClaimsHook = hook
	}
	if opt.Keys { // the server, not the command line, sends mail
		mailer, err := cfg.mailer(log)
		if err != nil {
			return nil, err
		}
		switch m := mailer.(type) {
		case nil:
			log.Warn("no --smtp-url: the server sends no mail, so email addresses are not verified and passwords cannot be reset by email")
		case *mail.LogMailer:
			log.Warn("development: no --smtp-url, so mail is written to this log, links included")
			deps.Mailer = m
		case *mail.Mailer:
			log.Info("sending mail", "smtp", m.String(), "from", cfg.Mail.From)
			deps.Mailer = m
		}
		rp, off, err := cfg.relyingParty()
		if err != nil {
			return nil, err
		}
		if rp == nil {
			log.Warn("passkeys off: " + off)
		} else {
			deps.WebAuthn = rp
		}
	}
	a.svc, err = auth.NewService(deps, auth.Config{
		Issuer: cfg.Issuer, Audience: cfg.Audience, AccessTTL: cfg.AccessTTL, RefreshGrace: cfg.RefreshGrace,
		IdleTimeout: cfg.IdleTimeout, SessionLifetime: cfg.SessionLifetime, Registration: cfg.Registration,
		RoleScopes: cfg.RoleScopes, RolePolicies: cfg.RolePolicies, MaxSessionsPerUser: cfg.MaxSessionsPerUser,
		ReauthWithin: cfg.ReauthWithin, StepUpWithin: cfg.StepUpWithin, ClaimsHookContinue: cfg.ClaimsHook.Continue, WebhooksAllowHTTP: cfg.WebhooksAllowHTTP,
		RequireMFAForRoles: cfg.RequireMFAForRoles,
		// The server follows the revocation feed (Background), which is
		// what the introspection cache needs.
		IntrospectionCache: cfg.IntrospectionCache,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// Service returns the auth.Service: every change to users, sessions,
// clients and keys goes through it.
func (a *App) Service() *auth.Service { return a.svc }

// StoreKind returns "sqlite" or "postgres".
func (a *App) StoreKind() string {
	kind, _ := storeKind(a.cfg.Store) // Open checked it
	return kind
}

// SchemaVersion returns the database's schema version, which Open
// migrated it to.
func (a *App) SchemaVersion(ctx context.Context) (int, error) {
	switch db := a.db.(type) {
	case *postgres.DB:
		return db.Version(ctx)
	case *sqlite.DB:
		// Open refuses a newer schema and migrates an older one.
		return sqlite.SchemaVersion(), nil
	}
	return 0, fmt.Errorf("server: unknown database %T", a.db)
}

// dbSystem names the database for the store spans.
func (a *App) dbSystem() string {
	if a.StoreKind() == "postgres" {
		return storetrace.PostgreSQL
	}
	return storetrace.SQLite
}

// Close closes the throttles' Redis client and the database.
func (a *App) Close() error {
	if a.stopDiscovery != nil {
		a.stopDiscovery()
	}
	a.fed.Close()
	if a.shared != nil {
		a.shared.Close()
	}
	return a.db.Close()
}

// degraded lists what the server does in a reduced way, for /readyz.
func (a *App) degraded() []string {
	if a.shared == nil {
		return nil
	}
	return a.shared.Degraded()
}

// openDB opens the database cfg names and applies pending migrations:
// PostgreSQL at Store, or SQLite in Data (created 0700 if missing, unless
// existing is set).
func openDB(ctx context.Context, cfg *Config, existing bool) (database, error) {
	kind, err := storeKind(cfg.Store)
	if err != nil {
		return nil, err
	}
	if kind == "postgres" {
		return postgres.Open(ctx, cfg.Store, postgres.Options{RevocationTTL: cfg.revocationTTL(), Logger: cfg.Logger})
	}
	path := filepath.Join(cfg.Data, "keycard.db")
	if existing {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w at %s; run serve first or pass --data", ErrNoDatabase, cfg.Data)
		}
	} else if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, path, sqlite.Options{RevocationTTL: cfg.revocationTTL()})
}

// masterKey finds the master key: MasterKeyFile, then MasterKey, then
// (with Dev only) Data/master.key, created 0600 on first start.
func masterKey(cfg *Config) ([]byte, error) {
	if cfg.MasterKeyFile != "" {
		b, err := os.ReadFile(cfg.MasterKeyFile)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		return auth.ParseMasterKey(b)
	}
	if cfg.MasterKey != "" {
		return auth.ParseMasterKey([]byte(cfg.MasterKey))
	}
	if !cfg.Dev {
		return nil, errNoMasterKey
	}
	path := filepath.Join(cfg.Data, "master.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newDevMasterKey(cfg.Data, path)
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return auth.ParseMasterKey(b)
}

// newDevMasterKey writes a new master key to path, 0600, refusing to
// overwrite one that another process wrote meanwhile.
func newDevMasterKey(dir, path string) ([]byte, error) {
	// With a PostgreSQL store the data directory holds only this key.
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
