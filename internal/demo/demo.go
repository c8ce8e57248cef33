// Package demo is "keycard demo": an auth server, a gateway and two small
// services behind it — weather and orders, each verifying tokens again
// with the verifier middleware — the weather page for a browser, and the
// travel app, a second web application on its own origin that signs in
// through the auth server's authorization endpoint (single sign-on with
// the weather page), in one process on a SQLite database in a data
// directory, with two users and a client for each verifying party.
//
// It is the one place where the auth server (internal/server) and the
// verifying side (verifier, internal/gateway) meet in a program; the
// auth server itself touches the verifying side only through jose and
// jwt.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/backchannel"
	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/server"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/verifier"
)

// The demo's users, role and scopes.
const (
	User         = "demo"     // has Role: may read the weather and order
	Viewer       = "viewer"   // has no role: may read the weather only
	Role         = "customer" // grants ScopeOrders
	ScopeWeather = "weather:read"
	ScopeOrders  = "orders:write"
	// WeatherApp is where the gateway serves the weather page.
	WeatherApp = "/weather-app/"
	// readyWait bounds how long start-up waits for the verifiers' keys
	// and feed.
	readyWait = 30 * time.Second
)

// roleScopes are the auth server's role scopes in the demo: every user's
// tokens carry weather:read, customers' also orders:write.
var roleScopes = map[string][]string{"*": {ScopeWeather}, Role: {ScopeOrders}}

// clients are the names of the service clients that read the revocation
// feed: one for the gateway and one for each service, as each would have
// in a real deployment.
var clients = []string{"demo-gateway", "demo-weather", "demo-orders"}

// travelClient is the name of the travel app's client.
const travelClient = "demo-travel"

// weatherPageClient is the name of the weather page's client (public).
const weatherPageClient = "demo-weather-page"

// Options configure a demo run.
type Options struct {
	// Data is the data directory: SQLite database, dev master key, the
	// gateway's configuration and, with TLS, the local CA.
	Data string
	// AuthListener and GatewayListener are where the auth server and the
	// gateway listen, and TravelListener the travel app, the second web
	// application (plain TCP; TLS is added with TLS).
	AuthListener, GatewayListener, TravelListener net.Listener
	// TLS serves HTTPS with certificates of a throw-away local CA kept in
	// Data.
	TLS bool
	// Logger receives the log of every part; nil discards it.
	Logger *slog.Logger
	// ShutdownTimeout bounds the drain of each server.
	ShutdownTimeout time.Duration
	// Argon2Memory and Argon2Iterations, when not zero, replace the
	// password hashing parameters (tests make them cheap).
	Argon2Memory, Argon2Iterations uint32
	// OTLPEndpoint, when set, sends the auth server's and the gateway's
	// OpenTelemetry traces to this OTLP/HTTP collector URL, as
	// `keycard serve --otlp-endpoint` and `keycard gateway
	// --otlp-endpoint` do (docs/observability.md).
	OTLPEndpoint string
}

// Info is what a started demo tells its user.
type Info struct {
	Data, Auth, Gateway, Weather, Orders string // data directory and base URLs
	// Travel is the travel app's base URL: the second web application,
	// which signs in through the auth server's authorization endpoint.
	Travel string
	// CAFile, with TLS, is the CA that clients must trust.
	CAFile                       string
	DemoPassword, ViewerPassword string
	// Reset: the users existed, and their passwords are new.
	Reset bool
}

// Run starts every part of the demo, calls ready with what to tell the
// user once every verifier has the keys and the revocation snapshot (so
// that the first command of a walk-through works), and runs until ctx
// ends or a server fails; then it stops everything in reverse order.
func Run(ctx context.Context, opt Options, ready func(*Info)) error {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var dt *localTLS // nil without TLS
	if opt.TLS {
		var err error
		if dt, err = newLocalTLS(opt.Data, log, opt.AuthListener.Addr(), opt.GatewayListener.Addr(), opt.TravelListener.Addr()); err != nil {
			return fmt.Errorf("--tls: %w", err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	st := &stack{errc: make(chan error, 8)}
	info, err := start(runCtx, st, opt, log, dt)
	if err == nil {
		ready(info)
		select {
		case <-ctx.Done():
		case err = <-st.errc:
		}
	}
	stop()
	if serr := st.stop(); err == nil {
		err = serr
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // the run was asked to end during start-up
	}
	return err
}

// start starts every part of the demo on st.
func start(ctx context.Context, st *stack, opt Options, log *slog.Logger, dt *localTLS) (*Info, error) {
	info := &Info{Data: opt.Data, Auth: dt.scheme() + "://" + opt.AuthListener.Addr().String(),
		Gateway: dt.scheme() + "://" + opt.GatewayListener.Addr().String(), Travel: dt.scheme() + "://" + opt.TravelListener.Addr().String()}
	if dt != nil {
		info.CAFile = dt.caFile
	}

	// The auth server, in dev mode (a generated master key, registration
	// on), with its pages, also reached through the gateway, which serves
	// the weather page under WeatherApp: sign-in may send the browser
	// back there.
	authLog := slog.New(httpapi.WithRequestID(log.With("component", "auth").Handler()))
	cfg := server.Defaults()
	cfg.Data, cfg.Dev, cfg.Registration, cfg.Issuer, cfg.RoleScopes = opt.Data, true, true, info.Auth, roleScopes
	cfg.PageRedirects, cfg.PageOrigins = []string{WeatherApp}, []string{info.Gateway}
	cfg.Logger = authLog
	if opt.ShutdownTimeout > 0 {
		cfg.ShutdownTimeout = opt.ShutdownTimeout
	}
	if opt.Argon2Memory > 0 {
		cfg.Argon2Memory, cfg.Argon2Iterations = opt.Argon2Memory, opt.Argon2Iterations
	}
	if dt != nil {
		// Back-channel logouts go to the travel app over HTTPS with the
		// local CA's certificate: trust that CA alone, follow no redirect
		// (as the worker's own client would not).
		cfg.Backchannel.Client = &http.Client{Transport: dt.client.Transport, Timeout: backchannel.DefaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opt.OTLPEndpoint != "" {
		p, err := tracing.New(ctx, tracing.Config{Endpoint: opt.OTLPEndpoint, ServiceName: "keycard", Logger: authLog})
		if err != nil {
			return nil, err
		}
		// Stopped after the auth server (the stack stops in reverse
		// order): its last requests' spans go too.
		st.onStop(func() error { p.Close(); return nil })
		cfg.Tracer = p.TracerProvider()
	}
	app, err := server.Open(ctx, cfg, server.Options{Keys: true})
	if err != nil {
		return nil, err
	}
	st.onStop(app.Close)
	svc := app.Service()
	if info.DemoPassword, info.Reset, err = account(ctx, svc, User, true); err != nil {
		return nil, err
	}
	if info.ViewerPassword, _, err = account(ctx, svc, Viewer, false); err != nil {
		return nil, err
	}
	// Resetting a password revokes the user's tokens issued before it, by
	// a cut-off that verifiers compare with whole-second iat values,
	// failing closed: tokens from the rest of this second would be
	// refused, so the walk-through waits for the next one.
	usable := time.Now().Truncate(time.Second).Add(time.Second)
	secrets := map[string]*credentials{}
	for _, name := range clients {
		if secrets[name], err = client(ctx, svc, auth.ClientSpec{Name: name}); err != nil {
			return nil, err
		}
	}
	// The travel app: a confidential first-party web application whose
	// addresses change with its port, registered again at every start.
	if secrets[travelClient], err = client(ctx, svc, auth.ClientSpec{Name: travelClient, OAuth: keycard.OAuthSettings{
		GrantTypes:             []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
		FirstParty:             true,
		RedirectURIs:           []string{info.Travel + TravelCallback},
		PostLogoutRedirectURIs: []string{info.Travel + TravelSignedOut},
		BackchannelLogoutURI:   info.Travel + TravelBackchannelLogout,
	}}); err != nil {
		return nil, err
	}
	// The weather page: a single-page app on @keycard/browser, a public
	// first-party client whose addresses follow the gateway's port.
	if secrets[weatherPageClient], err = client(ctx, svc, auth.ClientSpec{Name: weatherPageClient, Scopes: []string{ScopeWeather}, OAuth: keycard.OAuthSettings{
		Public:                 true,
		GrantTypes:             []string{keycard.GrantAuthorizationCode, keycard.GrantRefreshToken},
		FirstParty:             true,
		RedirectURIs:           []string{info.Gateway + WeatherApp},
		PostLogoutRedirectURIs: []string{info.Gateway + WeatherApp + "?signed-out"},
	}}); err != nil {
		return nil, err
	}
	sec := &tlsconfig.Secured{}
	if dt != nil {
		sec.Config = dt.server
	}
	st.run("auth server", func(ctx context.Context) error { return app.Serve(ctx, opt.AuthListener, sec, nil) })
	log.Info("listening", "component", "auth", "addr", opt.AuthListener.Addr().String(), "issuer", info.Auth, "data", opt.Data)

	// The services and the gateway verify tokens with verifiers that
	// follow the auth server's keys and revocation feed until stopped.
	audience := svc.Config().Audience
	newVerifier := func(client, component, aud, publicURL string) (*verifier.Verifier, error) {
		v, err := verifier.New(ctx, verifier.Config{
			Issuer: info.Auth, Audience: aud, PublicURL: publicURL,
			ClientID: secrets[client].id, ClientSecret: secrets[client].secret,
			Logger: log.With("component", component), HTTPClient: dt.httpClient(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", component, err)
		}
		st.onStop(func() error { v.Close(); return nil })
		return v, nil
	}
	// The weather page's tokens are DPoP-bound: their proofs name the URL
	// the browser called, the gateway's, which the weather service must
	// check them against.
	weatherV, err := newVerifier("demo-weather", "weather", audience, info.Gateway)
	if err != nil {
		return nil, err
	}
	weatherPage, err := NewWeatherSPA(WeatherSPAOptions{Path: WeatherApp, Issuer: info.Auth, ClientID: secrets[weatherPageClient].id,
		Scope: "openid profile " + ScopeWeather, Cities: []string{"Lisbon", "Oslo", "Nairobi", "Tokyo"}})
	if err != nil {
		return nil, err
	}
	weatherMux := http.NewServeMux()
	weatherMux.Handle(WeatherApp, weatherPage) // static files: the page signs in and calls the service itself
	weatherMux.Handle("/", weatherService(weatherV))
	if info.Weather, err = st.listenAndServe("weather service", weatherMux, log.With("component", "weather"), opt.ShutdownTimeout); err != nil {
		return nil, err
	}
	ordersV, err := newVerifier("demo-orders", "orders", audience, "")
	if err != nil {
		return nil, err
	}
	if info.Orders, err = st.listenAndServe("orders service", ordersService(ordersV), log.With("component", "orders"), opt.ShutdownTimeout); err != nil {
		return nil, err
	}

	// The travel app, on its own origin, with a verifier of its own: the
	// issuer's keys check its ID and logout tokens, and the revocation
	// feed its access tokens.
	travelV, err := newVerifier(travelClient, "travel", audience, "")
	if err != nil {
		return nil, err
	}
	travel, err := NewTravel(TravelOptions{BaseURL: info.Travel, Issuer: info.Auth,
		ClientID: secrets[travelClient].id, ClientSecret: secrets[travelClient].secret,
		Keys: travelV.KeySet(), Access: travelV, HTTPClient: dt.httpClient(), Logger: log.With("component", "travel")})
	if err != nil {
		return nil, err
	}
	st.serve("travel app", opt.TravelListener, sec.Config, travel, log.With("component", "travel"), opt.ShutdownTimeout)

	// The gateway, configured by a file written into the data directory
	// like an operator's; its verifier leaves the audience to the routes.
	configPath, err := writeGatewayConfig(opt.Data, opt.GatewayListener.Addr().String(), info, audience, secrets["demo-gateway"])
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	gcfg, err := gateway.LoadConfig(configPath, raw)
	if err != nil {
		return nil, err
	}
	if opt.ShutdownTimeout > 0 {
		gcfg.ShutdownTimeout = opt.ShutdownTimeout
	}
	gcfg.OTLPEndpoint = opt.OTLPEndpoint
	gatewayV, err := newVerifier("demo-gateway", "gateway", "", "")
	if err != nil {
		return nil, err
	}
	st.run("gateway", func(ctx context.Context) error {
		return gateway.Run(ctx, gateway.RunOptions{Config: gcfg, Logger: log.With("component", "gateway"),
			Listener: opt.GatewayListener, Secured: sec, Verifier: gatewayV})
	})

	if err := waitReady(ctx, readyWait, weatherV, ordersV, gatewayV, travelV); err != nil {
		return nil, err
	}
	if info.Reset {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(usable)):
		}
	}
	return info, nil
}

// account makes sure the user name exists, enabled, with Role exactly
// when customer is set, and gives it a new random password, which it
// returns. reset reports that the user existed already. Every change goes
// through the service, audited as the system's.
func account(ctx context.Context, svc *auth.Service, name string, customer bool) (pass string, reset bool, err error) {
	if pass, err = randomPassword(); err != nil {
		return "", false, err
	}
	var roles []string
	if customer {
		roles = []string{Role}
	}
	u, err := svc.UserByName(ctx, name)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		if _, err := svc.CreateUser(ctx, auth.System(), name, pass, roles); err != nil {
			return "", false, fmt.Errorf("user %s: %w", name, err)
		}
		return pass, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("user %s: %w", name, err)
	}
	want := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r == Role })
	want = append(want, roles...)
	if !sameSet(u.Roles, want) {
		if _, err := svc.SetUserRoles(ctx, auth.System(), u.ID, want); err != nil {
			return "", false, fmt.Errorf("user %s: %w", name, err)
		}
	}
	if u.Disabled {
		if _, err := svc.SetUserDisabled(ctx, auth.System(), u.ID, false); err != nil {
			return "", false, fmt.Errorf("user %s: %w", name, err)
		}
	}
	if err := svc.SetPassword(ctx, auth.System(), u.ID, pass, ""); err != nil {
		return "", false, fmt.Errorf("user %s: %w", name, err)
	}
	return pass, true, nil
}

// sameSet reports whether a and b hold the same strings.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// randomPassword returns a random password of 144 bits, base64url.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// credentials are a service client's credentials.
type credentials struct{ id, secret string }

// client returns the credentials of the client spec describes, found by
// its name: a new client, or the existing one registered again as spec
// says, with a new secret (secrets are not kept, so every run rotates
// them).
func client(ctx context.Context, svc *auth.Service, spec auth.ClientSpec) (*credentials, error) {
	name := spec.Name
	after := ""
	for {
		page, err := svc.ListClients(ctx, after, keycard.MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			if c.Name == name {
				if _, err := svc.UpdateClient(ctx, auth.System(), c.ID, spec); err != nil {
					return nil, fmt.Errorf("client %s: %w", name, err)
				}
				if spec.OAuth.Public {
					return &credentials{id: c.ID}, nil // no secret to rotate
				}
				secret, err := svc.RotateClientSecret(ctx, auth.System(), c.ID)
				if err != nil {
					return nil, fmt.Errorf("client %s: %w", name, err)
				}
				return &credentials{c.ID, secret}, nil
			}
		}
		if len(page) < keycard.MaxPageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	c, secret, err := svc.CreateClient(ctx, auth.System(), spec)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", name, err)
	}
	return &credentials{c.ID, secret}, nil
}

// writeGatewayConfig writes DATA/gateway.yaml, the gateway's routes to the
// two services, and DATA/gateway.secret (0600), its client's secret, and
// returns the configuration's path. With them the gateway's setup reads
// like an operator's for "keycard gateway --config".
func writeGatewayConfig(data, listen string, info *Info, audience string, client *credentials) (string, error) {
	secretPath := filepath.Join(data, "gateway.secret")
	if err := os.WriteFile(secretPath, []byte(client.secret+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Chmod(secretPath, 0o600); err != nil { // WriteFile keeps an existing file's mode
		return "", err
	}
	conf := fmt.Sprintf(`# Written by "keycard demo" at every start; the services' ports change.
listen: %s
issuer: %s
audience: %s
client:
  id: %s
  secret_file: gateway.secret
routes:
  - path: /weather/
    methods: [GET, HEAD]
    upstream: %[5]s
    scopes: [%[9]s]
  - path: /orders/
    methods: [POST]
    upstream: %[6]s
    scopes: [%[7]s]
  # The weather page, for a browser: static files of a single-page app
  # that signs in at the issuer and calls /weather/ with its own tokens.
  - {path: %[8]s, upstream: %[5]s, auth: none}
  # The auth server's pages (the account page), on the gateway's origin.
  - {path: /signin, upstream: %[2]s, auth: none}
  - {path: /signout, upstream: %[2]s, auth: none}
  - {path: /session/, upstream: %[2]s, auth: none}
  - {path: /account, upstream: %[2]s, auth: none}
  - {path: /assets/, upstream: %[2]s, auth: none}
`, listen, info.Auth, audience, client.id, info.Weather, info.Orders, ScopeOrders, WeatherApp, ScopeWeather)
	if info.CAFile != "" { // TLS: as "keycard gateway" would be set up
		conf += "tls: {cert: tls.pem, key: tls-key.pem}\nissuer_ca: " + filepath.Base(info.CAFile) + "\nupstream_ca: " + filepath.Base(info.CAFile) + "\n"
	}
	path := filepath.Join(data, "gateway.yaml")
	return path, os.WriteFile(path, []byte(conf), 0o600)
}

// waitReady waits until every verifier is ready, for at most d.
func waitReady(ctx context.Context, d time.Duration, vs ...*verifier.Verifier) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var err error
		for _, v := range vs {
			if err = v.Ready(); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the verifiers are not ready: %w", err)
		case <-tick.C:
		}
	}
}
