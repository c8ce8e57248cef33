package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/internal/web"
	"github.com/keycard-auth/keycard/internal/webhook"
)

// Run runs "keycard serve": it checks cfg, listens on cfg.Addr, secures
// the listener (HTTPS, a proxy in front, or loopback), opens the App and
// serves it until ctx ends, then drains in-flight requests, stops the
// background work and closes the database. listening, when not nil, is
// called with the address and issuer once the server accepts requests.
func Run(ctx context.Context, cfg Config, listening func(addr net.Addr, issuer string)) error {
	if err := cfg.Check(); err != nil {
		return err
	}
	log := cfg.logger()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close() // Serve closes it too; a second Close is harmless
	sec, err := cfg.TLS.Secure(ln.Addr(), cfg.Dev, log)
	if err != nil {
		return err
	}
	if cfg.Issuer == "" {
		cfg.Issuer = sec.Scheme() + "://" + ln.Addr().String()
		if err := tlsconfig.CheckIssuer(cfg.Issuer, cfg.Dev, ServeTLSNames); err != nil {
			return err
		}
	}
	if cfg.CookieMode && !strings.HasPrefix(cfg.Issuer, "https://") {
		log.Warn("cookie mode with a non-https issuer: browsers only keep its Secure cookies on localhost", "issuer", cfg.Issuer)
	}
	if cfg.OTLPEndpoint != "" && cfg.Tracer == nil {
		p, err := tracing.New(ctx, tracing.Config{Endpoint: cfg.OTLPEndpoint, ServiceName: "keycard", Logger: log})
		if err != nil {
			return err
		}
		defer p.Close() // after the drain: the last requests' spans go too
		cfg.Tracer = p.TracerProvider()
	}
	a, err := Open(ctx, cfg, Options{Keys: true})
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, ln, sec, func() {
		log.Info("listening", "addr", ln.Addr().String(), "issuer", cfg.Issuer, "data", cfg.Data, "store", a.StoreKind(),
			"tls", sec.Config != nil, "behind_proxy", cfg.TLS.BehindProxy)
		if listening != nil {
			listening(ln.Addr(), cfg.Issuer)
		}
	})
}

// Handler returns the auth server's http.Handler: the JSON API with, when
// Config.Pages is set, the web pages beside it. The App must have been
// opened with keys. StopFeeds on the result ends the revocation feed's
// long-polls and streams, for a shutdown.
func (a *App) Handler() (*httpapi.Server, error) {
	log := a.cfg.logger()
	origins, err := browser.NewOrigins(a.cfg.Issuer, a.cfg.PageOrigins...)
	if err != nil {
		return nil, fmt.Errorf("--page-origin: %w", err)
	}
	var pages httpapi.Pages
	if len(a.cfg.Federation) > 0 && !a.cfg.Pages {
		return nil, errors.New("federation: signing in at upstream providers needs the pages (--pages)")
	}
	if a.cfg.Pages {
		p, err := web.New(a.svc, web.Options{CSRFKey: a.csrfKey, Logger: log, RedirectPrefixes: a.cfg.PageRedirects, Origins: a.cfg.PageOrigins, Federation: a.fed})
		if err != nil {
			return nil, fmt.Errorf("--pages: %w", err)
		}
		pages = p
	}
	checker := &dpop.Checker{}
	if a.cfg.DPoPNonce {
		if len(a.dpopNonceKey) == 0 {
			return nil, errors.New("--dpop-nonce: no master key to derive the nonce key from")
		}
		checker.Nonces = &dpop.Nonces{Secret: a.dpopNonceKey}
	}
	return httpapi.New(a.svc, httpapi.Options{Logger: log, Metrics: a.metrics, Cookies: a.cfg.CookieMode, CSRFKey: a.csrfKey,
		Origins: origins, Degraded: a.degraded, Pages: pages, Ready: a.ready, Tracer: a.cfg.Tracer, DPoP: checker, Providers: a.providers, Federation: fedAdmin{a}}), nil
}

// providers describes the upstream identity providers for the admin API.
func (a *App) providers() []httpapi.Provider {
	var out []httpapi.Provider
	for _, p := range a.fed.Providers() {
		out = append(out, a.describe(p.Config()))
	}
	return out
}

// ready is the readiness check: the database answers and a key signs. A
// shared database can go away while the server runs; the 503 names no
// host or user, the log does.
func (a *App) ready(ctx context.Context) error {
	if pg, ok := a.db.(*postgres.DB); ok {
		if err := pg.Ping(ctx); err != nil {
			a.cfg.logger().Warn("readiness: database ping failed", "err", err)
			return errors.New("the database does not answer")
		}
	}
	_, _, err := a.keys.Signer(ctx)
	return err
}

// Serve serves the App's Handler on ln, secured as sec says (TLS with
// sec.Config, Strict-Transport-Security on HTTPS requests), and runs the background work (Background) until ctx ends; then
// it stops accepting, drains in-flight requests for at most
// Config.ShutdownTimeout and stops the background work. started, when not
// nil, is called once the server accepts requests. Serve returns nil
// after a clean shutdown.
func (a *App) Serve(ctx context.Context, ln net.Listener, sec *tlsconfig.Secured, started func()) error {
	log := a.cfg.logger()
	handler, err := a.Handler()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           tlsconfig.HSTS(sec.Proxies)(handler),
		TLSConfig:         sec.Config,
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
		a.Background(bg)
	}()
	serveErr := make(chan error, 1)
	go func() {
		if sec.Config != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	if started != nil {
		started()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
	case err = <-serveErr:
		err = fmt.Errorf("server stopped: %w", err)
	}
	stopBG()
	<-bgDone
	return err
}

// Maintenance intervals.
const (
	keyMaintenanceEvery = time.Minute
	pruneEvery          = time.Hour
	// feedWatchInterval is how often a server on SQLite looks for feed
	// entries appended by other processes (the command line).
	feedWatchInterval = 200 * time.Millisecond
)

// DefaultIntrospectionCache is Config.IntrospectionCache's default: how
// many introspection answers the server keeps, about 10 MiB of them.
const DefaultIntrospectionCache = 10_000

// Background runs the server's periodic work until ctx ends: key
// lifecycle every minute, pruning of what has ended every hour, the
// back-channel logout worker (with the signing keys), the webhook worker,
// and the
// watch for revocation feed entries that other processes append — other
// instances on PostgreSQL, whose NOTIFY wakes this server's long-polls and
// streams, and the command line (keys revoke, users disable) on either
// database. SQLite has no notifications, so a watcher looks at the feed's
// last sequence number every feedWatchInterval.
func (a *App) Background(ctx context.Context) {
	log := a.cfg.logger()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pg, ok := a.db.(*postgres.DB); ok {
			pg.ListenRevocations(ctx, a.svc.RevocationsAppended)
			return
		}
		watchFeed(ctx, a.db.Stores().Revocations, feedWatchInterval, a.svc.RevocationsAppended)
	}()
	defer func() { <-done }()
	mailed := make(chan struct{})
	go func() {
		defer close(mailed)
		a.svc.RunMail(ctx)
	}()
	defer func() { <-mailed }()
	if a.keys != nil {
		opts := a.cfg.Backchannel
		opts.Wake, opts.Logger = a.svc.RevocationsChanged, log
		w, err := backchannel.New(a.db.Stores().Logouts, a.svc, opts)
		if err != nil {
			log.Error("back-channel logout worker not started", "err", err) // Config.Check refuses such options first
		} else {
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				w.Run(ctx)
			}()
			defer func() { <-sent }()
		}
	}
	hooks := a.cfg.Webhooks
	hooks.Outcome, hooks.Logger = a.metrics.WebhookOutcome, log
	if w, err := webhook.New(a.db.Stores().Webhooks, a.svc, hooks); err != nil {
		log.Error("webhook worker not started", "err", err) // Config.Check refuses such options first
	} else {
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			w.Run(ctx)
		}()
		defer func() { <-sent }()
	}
	keyTick := time.NewTicker(keyMaintenanceEvery)
	defer keyTick.Stop()
	pruneTick := time.NewTicker(pruneEvery)
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
			if err := a.svc.Prune(ctx); err != nil && ctx.Err() == nil {
				log.Error("pruning", "err", err)
			}
		}
	}
}

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
