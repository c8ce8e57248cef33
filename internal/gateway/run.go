package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/verifier"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
)

// TLSNames name the gateway's TLS settings (YAML keys) in messages.
var TLSNames = tlsconfig.Names{Cert: "tls.cert", Key: "tls.key", BehindProxy: "behind_proxy",
	TrustedProxies: "trusted_proxies", Issuer: "issuer"}

// VerifierAuth is the gateway's Authenticator over a verifier: the token
// comes from Authorization: Bearer or, on WebSocket upgrades, from the
// Sec-WebSocket-Protocol offer (browsers cannot set headers there).
type VerifierAuth struct{ V *verifier.Verifier }

// Authenticate implements Authenticator.
func (a VerifierAuth) Authenticate(r *http.Request) (*verifier.Claims, error) {
	return a.V.AuthenticateFrom(r, verifier.Sources{WebSocket: true})
}

// Ready implements Authenticator.
func (a VerifierAuth) Ready() error { return a.V.Ready() }

var _ Authenticator = VerifierAuth{}

// RunOptions configure Run.
type RunOptions struct {
	// Config is the loaded configuration (LoadConfig).
	Config *Config
	// ConfigPath and Loaded, when ConfigPath is set, are the file Config
	// came from and its bytes: the gateway reloads it when it changes
	// and on Signals (WatchOptions).
	ConfigPath string
	Loaded     []byte
	Signals    <-chan os.Signal
	// Logger receives the log; Level, when not nil, is its level, which a
	// reload changes.
	Logger *slog.Logger
	Level  *slog.LevelVar
	// Listener, when not nil, is used instead of listening on
	// Config.Listen; Secured then says how it is secured (nil: plain).
	// The demo gives both.
	Listener net.Listener
	Secured  *tlsconfig.Secured
	// Verifier, when not nil, authenticates instead of one that Run makes
	// from Config (and closes).
	Verifier *verifier.Verifier
	// Started, when not nil, is called with the proxy's address once it
	// accepts requests.
	Started func(addr net.Addr)
	// Parse are the options Config was read with, for reloads.
	Parse ParseOptions
	// Tracer, when not nil, makes the spans instead of an exporter to
	// Config.OTLPEndpoint (the demo, tests).
	Tracer trace.TracerProvider
	// Replay, when not nil, remembers the DPoP proof ids of the verifier
	// Run makes, instead of a cache of this process alone: one shared by
	// every instance ("keycard gateway --redis").
	Replay dpop.Replayer
}

// Run runs "keycard gateway": it opens the listeners (the proxy's and
// metrics_listen's), secures the proxy's (HTTPS, a proxy in front, or
// loopback), starts a verifier that follows the issuer's keys and
// revocation feed, and serves until ctx ends, reloading the configuration
// when its file changes. Then it stops accepting, drains in-flight
// requests for at most shutdown_timeout, closes upgraded connections and
// stops the verifier.
func Run(ctx context.Context, opt RunOptions) error {
	cfg, log := opt.Config, opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret := ""
	if opt.Verifier == nil {
		var err error
		if secret, err = readSecretFile(cfg.ClientSecretFile); err != nil {
			return fmt.Errorf("client.secret_file: %w", err)
		}
	}
	ln, sec := opt.Listener, opt.Secured
	if sec == nil {
		sec = &tlsconfig.Secured{}
	}
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close() // the servers close them too; a second Close is harmless
		}
	}()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		// Transport security: the proxy listener serves HTTPS, or sits
		// behind a TLS-terminating proxy, or listens on loopback only;
		// the issuer is https:// unless on loopback.
		lt := tlsconfig.Listener{BehindProxy: cfg.BehindProxy, TrustedProxies: cfg.TrustedProxyList(), Names: TLSNames}
		if cfg.TLS != nil {
			lt.CertFile, lt.KeyFile = cfg.TLS.Cert, cfg.TLS.Key
		}
		s, err := lt.Secure(ln.Addr(), false, log)
		if err == nil {
			err = tlsconfig.CheckIssuer(cfg.Issuer, false, TLSNames)
		}
		if err != nil {
			ln.Close()
			return err
		}
		sec = s
	}
	listeners = append(listeners, ln)
	// The metrics listener stays plain: it carries no tokens.
	var adminLn net.Listener
	if cfg.MetricsListen != "" {
		var err error
		if adminLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		listeners = append(listeners, adminLn)
	}
	upstreams, err := upstreamTransport(cfg)
	if err != nil {
		return err
	}
	tp := opt.Tracer
	if tp == nil && cfg.OTLPEndpoint != "" {
		p, err := tracing.New(ctx, tracing.Config{Endpoint: cfg.OTLPEndpoint, ServiceName: "keycard-gateway", Logger: log})
		if err != nil {
			return err
		}
		defer p.Close() // after the drain: the last requests' spans go too
		tp = p.TracerProvider()
	}
	v := opt.Verifier
	if v == nil {
		checker := &dpop.Checker{Replay: opt.Replay} // Replay nil: a cache of this process
		if cfg.DPoPNonceSecretFile != "" {
			key, err := readSecretFile(cfg.DPoPNonceSecretFile)
			if err != nil {
				return fmt.Errorf("dpop_nonce_secret_file: %w", err)
			}
			if len(key) < 32 {
				return errors.New("dpop_nonce_secret_file: the secret must be at least 32 bytes")
			}
			checker.Nonces = &dpop.Nonces{Secret: []byte(key)}
		}
		if v, err = newVerifier(ctx, cfg, secret, checker, log); err != nil {
			return err
		}
		defer v.Close()
	}
	g, err := New(cfg, Options{Auth: VerifierAuth{v}, Logger: log, Level: opt.Level, Transport: upstreams, Parse: opt.Parse, Tracer: tp})
	if err != nil {
		return err
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
	proxySrv := newServer(tlsconfig.HSTS(sec.Proxies)(g))
	proxySrv.TLSConfig = sec.Config
	servers := []*http.Server{proxySrv}
	if adminLn != nil {
		servers = append(servers, newServer(g.AdminHandler()))
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	if opt.ConfigPath != "" {
		bg.Go(func() {
			g.Watch(watchCtx, WatchOptions{Path: opt.ConfigPath, Loaded: opt.Loaded, Signals: opt.Signals})
		})
	}
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
		"tls", sec.Config != nil, "behind_proxy", cfg.BehindProxy}
	if fa := cfg.ForwardAuth; fa != nil {
		attrs = append(attrs, "forward_auth", fa.Path, "forward_auth_only", fa.Only)
	}
	if adminLn != nil {
		attrs = append(attrs, "metrics_addr", adminLn.Addr().String())
	}
	if err := v.Ready(); err != nil {
		log.Warn("not ready yet: /readyz answers 503 until the verifier is", "reason", err.Error())
	}
	log.Info("listening", attrs...)
	if opt.Started != nil {
		opt.Started(ln.Addr())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-serveErr:
		err = fmt.Errorf("server stopped: %w", err)
	}
	stopWatch()
	sctx, cancel := context.WithTimeout(context.Background(), g.Config().ShutdownTimeout)
	for _, srv := range servers {
		if serr := srv.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("shutdown: %w", serr)
		}
	}
	cancel()
	closeConns()
	bg.Wait()
	return err
}

// upstreamTransport returns the transport to the upstreams: nil (New's
// default, with the system's roots) unless upstream_ca names the roots.
// Certificates of the upstreams are always verified.
func upstreamTransport(cfg *Config) (http.RoundTripper, error) {
	if cfg.UpstreamCA == "" {
		return nil, nil
	}
	t, err := tlsconfig.Transport(cfg.UpstreamCA)
	if err != nil {
		return nil, fmt.Errorf("upstream_ca: %w", err)
	}
	// As New's default transport, with upstream_ca's roots.
	t.Proxy = nil
	t.ResponseHeaderTimeout = cfg.UpstreamTimeout
	t.MaxIdleConnsPerHost = 64
	return t, nil
}

// newVerifier returns the verifier that follows cfg's issuer: its keys,
// and its revocation feed as the configured service client. It leaves
// the audience to the routes.
func newVerifier(ctx context.Context, cfg *Config, secret string, checker *dpop.Checker, log *slog.Logger) (*verifier.Verifier, error) {
	var issuerClient *http.Client
	if cfg.IssuerCA != "" {
		t, err := tlsconfig.Transport(cfg.IssuerCA)
		if err != nil {
			return nil, fmt.Errorf("issuer_ca: %w", err)
		}
		// The verifier drops the timeout for the feed's long-polls.
		issuerClient = &http.Client{Transport: t, Timeout: 10 * time.Second}
	}
	leeway := cfg.LeewayOrDefault()
	if leeway == 0 {
		leeway = -1 // the verifier reads 0 as its default
	}
	return verifier.New(ctx, verifier.Config{
		Issuer:   cfg.Issuer,
		ClientID: cfg.Client.ID, ClientSecret: secret,
		// No Audience: the gateway checks each route's.
		Algorithms:    cfg.JOSEAlgorithms(),
		Leeway:        leeway,
		MaxFeedOutage: cfg.MaxFeedOutage,
		FailOpen:      cfg.FailOpen,
		Logger:        log,
		HTTPClient:    issuerClient,
		DPoP:          checker,
	})
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
