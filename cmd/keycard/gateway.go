package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/verifier"
	"github.com/prometheus/client_golang/prometheus"
)

// gatewayAuth is the gateway's Authenticator: the verifier, reading the
// token from Authorization: Bearer or, on WebSocket upgrades, from the
// Sec-WebSocket-Protocol offer (browsers cannot set headers there).
type gatewayAuth struct{ v *verifier.Verifier }

func (a gatewayAuth) Authenticate(r *http.Request) (*verifier.Claims, error) {
	return a.v.AuthenticateFrom(r, verifier.Sources{WebSocket: true})
}

func (a gatewayAuth) Ready() error { return a.v.Ready() }

var _ gateway.Authenticator = gatewayAuth{}

// registerVerifierMetrics exports the state of v's revocation feed
// follower and key set, read at each scrape: the feed's lag and
// staleness (the verifier fails closed once it is stale) say whether
// revocations still arrive.
func registerVerifierMetrics(reg *prometheus.Registry, v *verifier.Verifier) {
	gauge := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "keycard", Subsystem: "gateway", Name: name, Help: help}, fn))
	}
	if f := v.Follower(); f != nil {
		gauge("revocation_feed_lag_seconds", "Time since the revocation feed was last heard from (0 while a stream is live).",
			func() float64 { return f.Status().Lag.Seconds() })
		gauge("revocation_feed_stale", "1 while the revocation feed has been unreachable for longer than max_feed_outage (the gateway then refuses tokens, unless fail_open), else 0.",
			func() float64 {
				if f.Status().Stale {
					return 1
				}
				return 0
			})
		gauge("revocation_entries", "Revocation entries held in memory.", func() float64 { return float64(f.Status().Entries) })
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "keycard", Subsystem: "gateway", Name: "revocation_feed_reconnects_total",
			Help: "Connections to the revocation feed made again after a failure or the end of a stream."},
			func() float64 { return float64(f.Status().Reconnects) }))
	}
	if ks := v.KeySet(); ks != nil {
		gauge("jwks_keys", "Usable keys in the cached JWKS.", func() float64 { return float64(ks.Status().Keys) })
		gauge("jwks_fetch_failures", "Failed JWKS fetches since the last success (the last good keys keep serving).",
			func() float64 { return float64(ks.Status().Failures) })
	}
}

// gateway runs the verifying reverse proxy of the configuration file
// until the context is cancelled (SIGINT or SIGTERM), reloading it on
// SIGHUP and whenever the file changes; then it stops accepting, drains
// in-flight requests, closes upgraded connections and stops the verifier.
func (e *cmdEnv) gateway(args []string) int {
	fs := e.flagSet("gateway")
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML configuration `file` (or KEYCARD_CONFIG); see docs/gateway.md")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	if configPath == "" {
		configPath = e.getenv(envName("config"))
	}
	if configPath == "" {
		fmt.Fprintln(e.stderr, "keycard gateway: --config is required")
		fs.Usage()
		return exitUsage
	}
	data, err := os.ReadFile(configPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard gateway: %v\n", err)
		return exitUsage
	}
	cfg, err := gateway.LoadConfig(configPath, data)
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard gateway: %v\n", err)
		return exitUsage
	}
	secret, err := readSecretFile(cfg.ClientSecretFile)
	if err != nil {
		return e.fail("gateway: client.secret_file: %v", err)
	}

	level := new(slog.LevelVar)
	level.Set(cfg.Level())
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return e.fail("gateway: listen: %v", err)
	}
	var adminLn net.Listener
	if cfg.MetricsListen != "" {
		if adminLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			ln.Close()
			return e.fail("gateway: metrics_listen: %v", err)
		}
	}
	closeListeners := func() {
		ln.Close()
		if adminLn != nil {
			adminLn.Close()
		}
	}
	// Transport security: the proxy listener serves HTTPS, or sits behind
	// a TLS-terminating proxy, or listens on loopback only; the issuer
	// is https:// unless on loopback. The metrics listener stays plain:
	// it carries no tokens.
	lt := listenerTLS{behindProxy: cfg.BehindProxy, trustedProxies: cfg.TrustedProxyList(), names: gatewayTLSNames}
	if cfg.TLS != nil {
		lt.certFile, lt.keyFile = cfg.TLS.Cert, cfg.TLS.Key
	}
	sec, err := lt.setUp(ln.Addr(), false, log)
	if err == nil {
		err = checkIssuer(cfg.Issuer, false, gatewayTLSNames)
	}
	if err != nil {
		closeListeners()
		return e.fail("gateway: %v", err)
	}
	// Certificates of the issuer and the upstreams are always verified,
	// against issuer_ca and upstream_ca when given.
	var issuerClient *http.Client
	if cfg.IssuerCA != "" {
		t, err := tlsconfig.Transport(cfg.IssuerCA)
		if err != nil {
			closeListeners()
			return e.fail("gateway: issuer_ca: %v", err)
		}
		// The verifier drops the timeout for the feed's long-polls.
		issuerClient = &http.Client{Transport: t, Timeout: 10 * time.Second}
	}
	var upstreams http.RoundTripper // nil: the gateway's default, with the system's roots
	if cfg.UpstreamCA != "" {
		t, err := tlsconfig.Transport(cfg.UpstreamCA)
		if err != nil {
			closeListeners()
			return e.fail("gateway: upstream_ca: %v", err)
		}
		// As gateway.New's default transport, with upstream_ca's roots.
		t.Proxy = nil
		t.ResponseHeaderTimeout = cfg.UpstreamTimeout
		t.MaxIdleConnsPerHost = 64
		upstreams = t
	}

	leeway := cfg.LeewayOrDefault()
	if leeway == 0 {
		leeway = -1 // the verifier reads 0 as its default
	}
	v, err := verifier.New(e.ctx, verifier.Config{
		Issuer:   cfg.Issuer,
		ClientID: cfg.Client.ID, ClientSecret: secret,
		// No Audience: the gateway checks each route's (gateway.Options.Auth).
		Algorithms:    cfg.JOSEAlgorithms(),
		Leeway:        leeway,
		MaxFeedOutage: cfg.MaxFeedOutage,
		FailOpen:      cfg.FailOpen,
		Logger:        log,
		HTTPClient:    issuerClient,
	})
	if err != nil {
		closeListeners()
		return e.fail("gateway: %v", err)
	}
	defer v.Close()
	g, err := gateway.New(cfg, gateway.Options{Auth: gatewayAuth{v}, Logger: log, Level: level, Transport: upstreams})
	if err != nil {
		closeListeners()
		return e.fail("%v", err)
	}
	registerVerifierMetrics(g.Metrics().Registry(), v)

	// Upgraded (WebSocket) connections are not tracked by Shutdown: they
	// live on their requests' contexts, which end when conns is cancelled
	// after the drain.
	conns, closeConns := context.WithCancel(context.Background())
	defer closeConns()
	newServer := func(h http.Handler) *http.Server {
		// No ReadTimeout or WriteTimeout: request bodies, streamed
		// answers and upgraded connections may take as long as the
		// upstream lets them.
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return conns },
		}
	}
	proxySrv := newServer(tlsconfig.HSTS(sec.proxies)(g))
	proxySrv.TLSConfig = sec.config
	servers := []*http.Server{proxySrv}
	listeners := []net.Listener{ln}
	if adminLn != nil {
		servers = append(servers, newServer(g.AdminHandler()))
		listeners = append(listeners, adminLn)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Go(func() { g.Watch(watchCtx, gateway.WatchOptions{Path: configPath, Loaded: data, Signals: hup}) })

	serveErr := make(chan error, len(servers))
	for i, srv := range servers {
		bg.Go(func() {
			var err error
			if srv.TLSConfig != nil {
				err = srv.ServeTLS(listeners[i], "", "") // the certificate comes from TLSConfig
			} else {
				err = srv.Serve(listeners[i])
			}
			if !errors.Is(err, http.ErrServerClosed) {
				serveErr <- err
			}
		})
	}
	attrs := []any{"addr", ln.Addr().String(), "issuer", cfg.Issuer, "routes", len(cfg.Routes),
		"tls", sec.config != nil, "behind_proxy", cfg.BehindProxy}
	if adminLn != nil {
		attrs = append(attrs, "metrics_addr", adminLn.Addr().String())
	}
	if err := v.Ready(); err != nil {
		log.Warn("not ready yet: /readyz answers 503 until the verifier is", "reason", err.Error())
	}
	log.Info("listening", attrs...)

	code := exitOK
	select {
	case <-e.ctx.Done():
		log.Info("shutting down")
	case err := <-serveErr:
		log.Error("server stopped", "err", err)
		code = exitFailure
	}
	stopWatch()
	ctx, cancel := context.WithTimeout(context.Background(), g.Config().ShutdownTimeout)
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			log.Error("shutdown", "err", err)
			code = exitFailure
		}
	}
	cancel()
	closeConns()
	bg.Wait()
	log.Info("stopped")
	return code
}

// readSecretFile reads a secret from a file, without surrounding white
// space. The file must hold one.
func readSecretFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return s, nil
}
