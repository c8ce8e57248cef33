package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/verifier"
	"github.com/keycard-auth/keycard/web"
)

// The demo's users, role and scopes.
const (
	demoUser     = "demo"     // has demoRole: may read the weather and order
	demoViewer   = "viewer"   // has no role: may read the weather only
	demoRole     = "customer" // grants scopeOrders
	scopeWeather = "weather:read"
	// demoWeatherApp is where the gateway serves the weather page.
	demoWeatherApp = "/weather-app/"
	scopeOrders    = "orders:write"
	demoReadyWait  = 10 * time.Second // how long start-up waits for the verifiers' keys and feed
)

// demoRoleScopes are the auth server's --role-scopes in the demo: every
// user's tokens carry weather:read, customers' also orders:write.
var demoRoleScopes = stringList{"*=" + scopeWeather, demoRole + "=" + scopeOrders}

// demoClients are the names of the service clients that read the
// revocation feed: one for the gateway and one for each service, as each
// would have in a real deployment.
var demoClients = []string{"demo-gateway", "demo-weather", "demo-orders"}

// demo runs "keycard demo": the auth server, the gateway and two demo
// services behind it in one process, on a SQLite database in a data
// directory, with two users; it prints their passwords and a curl
// walk-through on stdout (logs go to stderr) and runs until the context
// is cancelled, then shuts everything down in reverse order.
func (e *cmdEnv) demo(args []string) int {
	fs := e.flagSet("demo")
	data := fs.String("data", "keycard-demo", "data `directory` (SQLite database, dev master key, gateway configuration)")
	authAddr := fs.String("auth-addr", "127.0.0.1:4000", "the auth server's listen `address` (port 0 picks a free port)")
	gatewayAddr := fs.String("gateway-addr", "127.0.0.1:8080", "the gateway's listen `address` (port 0 picks a free port)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	shutdownTimeout := fs.Duration("shutdown-timeout", 20*time.Second, "how long shutdown waits for in-flight requests")
	useTLS := fs.Bool("tls", false, "serve HTTPS, with certificates of a throw-away local CA kept in --data (trust DATA/ca.pem)")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	log, err := e.logger(*logLevel)
	if err != nil {
		return e.fail("%v", err)
	}
	authLn, err := net.Listen("tcp", *authAddr)
	if err != nil {
		return e.fail("listen (--auth-addr): %v", err)
	}
	defer authLn.Close() // the servers close their listeners too; a second Close is harmless
	gatewayLn, err := net.Listen("tcp", *gatewayAddr)
	if err != nil {
		return e.fail("listen (--gateway-addr): %v", err)
	}
	defer gatewayLn.Close()
	var dt *demoTLS // nil without --tls (tls.go)
	if *useTLS {
		if dt, err = newDemoTLS(*data, log, authLn.Addr(), gatewayLn.Addr()); err != nil {
			return e.fail("demo: --tls: %v", err)
		}
	}

	st := &demoStack{errc: make(chan error, 4)}
	info, err := e.startDemo(st, *data, log, dt.listener(authLn), dt.listener(gatewayLn), dt)
	code := exitOK
	switch {
	case err != nil && e.ctx.Err() == nil:
		log.Error("demo start-up failed", "err", err)
		fmt.Fprintf(e.stderr, "keycard: demo: %v\n", err)
		code = exitFailure
	case err == nil:
		info.print(e.stdout)
		log.Info("demo running", "auth", info.auth, "gateway", info.gateway, "data", info.data)
		select {
		case <-e.ctx.Done():
		case err := <-st.errc:
			log.Error("server stopped", "err", err)
			code = exitFailure
		}
	}
	log.Info("shutting down")
	if err := st.stop(*shutdownTimeout); err != nil {
		log.Error("shutdown", "err", err)
		code = exitFailure
	}
	log.Info("stopped")
	return code
}

// demoInfo is what the demo prints.
type demoInfo struct {
	data, auth, gateway, weather, orders string // data directory and base URLs
	caFile                               string // with --tls, the CA clients must trust
	demoPassword, viewerPassword         string
	reset                                bool // the users existed: their passwords were reset
}

// startDemo starts every part of the demo on st, which stops them.
func (e *cmdEnv) startDemo(st *demoStack, data string, log *slog.Logger, authLn, gatewayLn net.Listener, dt *demoTLS) (*demoInfo, error) {
	info := &demoInfo{data: data, auth: dt.scheme() + "://" + authLn.Addr().String(), gateway: dt.scheme() + "://" + gatewayLn.Addr().String()}
	if dt != nil {
		info.caFile = dt.caFile
	}

	// The auth server, in --dev mode: generated master key, registration on.
	var f serverFlags
	e.serverFlagSet("demo", &f) // only for serve's defaults; the demo has its own flags
	f.data, f.dev, f.issuer, f.roleScopes = data, true, info.auth, demoRoleScopes
	authLog := slog.New(httpapi.WithRequestID(log.With("component", "auth").Handler()))
	a, err := e.open(&f, true, authLog)
	if err != nil {
		return nil, err
	}
	st.onStop(func(context.Context) error { return a.Close() })
	if info.demoPassword, info.reset, err = e.demoAccount(a, demoUser, true); err != nil {
		return nil, err
	}
	if info.viewerPassword, _, err = e.demoAccount(a, demoViewer, false); err != nil {
		return nil, err
	}
	// Resetting a password revokes the user's tokens issued before it, by
	// a cut-off that verifiers compare with whole-second iat values,
	// failing closed: tokens from the rest of this second would be
	// refused, so the walk-through waits for the next one.
	usable := time.Now().Truncate(time.Second).Add(time.Second)
	secrets := map[string]*demoCredentials{}
	for _, name := range demoClients {
		if secrets[name], err = e.demoClient(a, name); err != nil {
			return nil, err
		}
	}
	// The auth server's pages (sign-in, account, admin), also reached
	// through the gateway, which serves the weather page under
	// /weather-app/: sign-in may send the browser back there.
	pages, err := web.New(a.svc, web.Options{CSRFKey: a.csrfKey, Logger: authLog,
		RedirectPrefixes: []string{demoWeatherApp}, Origins: []string{info.gateway}})
	if err != nil {
		return nil, err
	}
	handler := httpapi.New(a.svc, httpapi.Options{Logger: authLog, Metrics: a.metrics, CSRFKey: a.csrfKey, Pages: pages, Ready: func(ctx context.Context) error {
		_, _, err := a.keys.Signer(ctx)
		return err
	}})
	bg, stopBG := context.WithCancel(context.Background())
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		e.maintain(bg, a, authLog)
	}()
	st.onStop(func(context.Context) error {
		stopBG()
		<-bgDone
		return nil
	})
	authSrv := demoHTTPServer(dt.hsts(handler), authLog)
	authSrv.RegisterOnShutdown(handler.StopFeeds)
	st.serve("auth server", authSrv, authLn)
	log.Info("listening", "component", "auth", "addr", authLn.Addr().String(), "issuer", info.auth, "data", data)

	// The services and the gateway verify tokens with verifiers that
	// follow the auth server's keys and revocation feed until stopped.
	vctx, stopVerifiers := context.WithCancel(context.Background())
	st.onStop(func(context.Context) error { stopVerifiers(); return nil })
	audience := a.svc.Config().Audience
	newVerifier := func(client, component, aud string) (*verifier.Verifier, error) {
		v, err := verifier.New(vctx, verifier.Config{
			Issuer: info.auth, Audience: aud,
			ClientID: secrets[client].id, ClientSecret: secrets[client].secret,
			Logger: log.With("component", component), HTTPClient: dt.httpClient(),
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", component, err)
		}
		st.onStop(func(context.Context) error { v.Close(); return nil })
		return v, nil
	}
	weatherV, err := newVerifier("demo-weather", "weather", audience)
	if err != nil {
		return nil, err
	}
	weatherPage, err := web.NewWeather(weatherV, web.WeatherOptions{Path: demoWeatherApp, Scope: scopeWeather, Logger: log.With("component", "weather"),
		Username: func(ctx context.Context, sub string) (string, error) {
			u, err := a.svc.User(ctx, sub)
			if err != nil {
				return "", err
			}
			return u.Username, nil
		}})
	if err != nil {
		return nil, err
	}
	weatherMux := http.NewServeMux()
	weatherMux.Handle(demoWeatherApp, weatherPage) // verifies the access cookie itself
	weatherMux.Handle("/", weatherService(weatherV))
	if info.weather, err = st.listenAndServe("weather service", weatherMux, log.With("component", "weather")); err != nil {
		return nil, err
	}
	ordersV, err := newVerifier("demo-orders", "orders", audience)
	if err != nil {
		return nil, err
	}
	if info.orders, err = st.listenAndServe("orders service", ordersService(ordersV), log.With("component", "orders")); err != nil {
		return nil, err
	}

	// The gateway, configured by a file written into the data directory
	// like an operator's; its verifier leaves the audience to the routes.
	configPath, err := writeGatewayConfig(data, gatewayLn.Addr().String(), info, audience, secrets["demo-gateway"])
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return nil, err
	}
	cfg, err := gateway.LoadConfig(configPath, raw)
	if err != nil {
		return nil, err
	}
	gatewayLog := log.With("component", "gateway")
	gatewayV, err := newVerifier("demo-gateway", "gateway", "")
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(cfg, gateway.Options{Auth: gatewayAuth{gatewayV}, Logger: gatewayLog})
	if err != nil {
		return nil, err
	}
	gwSrv := demoHTTPServer(dt.hsts(gw), gatewayLog)
	// As in "keycard gateway": no ReadTimeout or WriteTimeout, bodies
	// and answers take as long as the upstream lets them.
	gwSrv.ReadTimeout, gwSrv.WriteTimeout = 0, 0
	st.serve("gateway", gwSrv, gatewayLn)
	log.Info("listening", "component", "gateway", "addr", gatewayLn.Addr().String())

	// Print the walk-through only once every verifier has the keys and
	// the revocation snapshot, so that its first command works.
	if err := waitReady(e.ctx, demoReadyWait, weatherV, ordersV, gatewayV); err != nil {
		return nil, err
	}
	if info.reset {
		select {
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		case <-time.After(time.Until(usable)):
		}
	}
	return info, nil
}

// demoAccount makes sure the user name exists, enabled, with demoRole
// exactly when customer is set, and gives it a new random password, which
// it returns. reset reports that the user existed already.
func (e *cmdEnv) demoAccount(a *app, name string, customer bool) (pass string, reset bool, err error) {
	if pass, err = randomPassword(); err != nil {
		return "", false, err
	}
	var roles []string
	if customer {
		roles = []string{demoRole}
	}
	u, err := e.findUser(a, name)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		if _, err := a.svc.Register(e.ctx, name, pass, roles); err != nil {
			return "", false, fmt.Errorf("user %s: %w", name, err)
		}
		return pass, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("user %s: %w", name, err)
	}
	want := slices.DeleteFunc(slices.Clone(u.Roles), func(r string) bool { return r == demoRole })
	want = append(want, roles...)
	if u.Disabled || !sameSet(u.Roles, want) {
		enabled := false
		if _, err := a.db.Stores().Users.UpdateUser(e.ctx, u.ID, keycard.UserUpdate{Roles: &want, Disabled: &enabled}, time.Now()); err != nil {
			return "", false, fmt.Errorf("user %s: %w", name, err)
		}
	}
	if err := a.svc.SetPassword(e.ctx, u.ID, pass, "", "demo", auth.Client{}); err != nil {
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

// demoCredentials is a service client's credentials.
type demoCredentials struct{ id, secret string }

// demoClient returns the credentials of the service client called name:
// a new client, or the existing one with a new secret (secrets are not
// kept, so every run rotates them).
func (e *cmdEnv) demoClient(a *app, name string) (*demoCredentials, error) {
	after := ""
	for {
		page, err := a.svc.ListClients(e.ctx, after, keycard.MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			if c.Name == name {
				secret, err := a.svc.RotateClientSecret(e.ctx, c.ID)
				if err != nil {
					return nil, fmt.Errorf("client %s: %w", name, err)
				}
				return &demoCredentials{c.ID, secret}, nil
			}
		}
		if len(page) < keycard.MaxPageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	c, secret, err := a.svc.CreateClient(e.ctx, name, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", name, err)
	}
	return &demoCredentials{c.ID, secret}, nil
}

// writeGatewayConfig writes DATA/gateway.yaml, the gateway's routes to the
// two services, and DATA/gateway.secret (0600), its client's secret, and
// returns the configuration's path. With them the gateway's setup reads
// like an operator's for "keycard gateway --config".
func writeGatewayConfig(data, listen string, info *demoInfo, audience string, client *demoCredentials) (string, error) {
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
  # The weather page, for a browser: it checks the access cookie itself.
  - {path: %[8]s, upstream: %[5]s, auth: none}
  # The auth server's pages it signs in and out with.
  - {path: /signin, upstream: %[2]s, auth: none}
  - {path: /signout, upstream: %[2]s, auth: none}
  - {path: /session/, upstream: %[2]s, auth: none}
  - {path: /account, upstream: %[2]s, auth: none}
  - {path: /assets/, upstream: %[2]s, auth: none}
`, listen, info.auth, audience, client.id, info.weather, info.orders, scopeOrders, demoWeatherApp, scopeWeather)
	if info.caFile != "" { // --tls: as "keycard gateway" would be set up
		conf += "tls: {cert: tls.pem, key: tls-key.pem}\nissuer_ca: " + filepath.Base(info.caFile) + "\n"
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

// demoStack is what a demo run has started, stopped in reverse order.
type demoStack struct {
	stops []func(context.Context) error
	errc  chan error // a server that stopped by itself; room for every server
}

func (s *demoStack) onStop(fn func(context.Context) error) { s.stops = append(s.stops, fn) }

// serve serves srv on ln in the background until stop shuts it down.
func (s *demoStack) serve(name string, srv *http.Server, ln net.Listener) {
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
	s.onStop(func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// listenAndServe serves h on a free loopback port, reached only through
// the gateway, and returns its base URL.
func (s *demoStack) listenAndServe(name string, h http.Handler, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	s.serve(name, demoHTTPServer(h, log), ln)
	log.Info("listening", "addr", ln.Addr().String())
	return "http://" + ln.Addr().String(), nil
}

// stop stops everything in reverse order of start, giving the servers
// until timeout to finish their requests.
func (s *demoStack) stop(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	for i := len(s.stops) - 1; i >= 0; i-- {
		errs = append(errs, s.stops[i](ctx))
	}
	return errors.Join(errs...)
}

// demoHTTPServer returns an http.Server for h with serve's settings.
func demoHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// weatherService is the demo weather service: GET /weather/{city} answers
// a made-up forecast to tokens with weather:read. It verifies tokens
// itself, as a service behind a gateway should, not trusting that every
// request came through the gateway.
func weatherService(v *verifier.Verifier) http.Handler {
	conditions := []string{"sunny", "cloudy", "rain", "fog", "snow", "wind"}
	mux := http.NewServeMux()
	mux.Handle("GET /weather/{city}", verifier.RequireScope(scopeWeather)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		city := r.PathValue("city")
		if !demoName(city) {
			demoError(w, http.StatusBadRequest, "invalid_request", "A city is 1 to 64 letters, digits, spaces or dashes.")
			return
		}
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(city)))
		n := h.Sum32()
		c, _ := verifier.FromContext(r.Context())
		demoJSON(w, http.StatusOK, map[string]any{
			"city": city, "temperature_c": int(n%36) - 5, "conditions": conditions[n/36%uint32(len(conditions))],
			"subject": c.Subject,
		})
	})))
	return v.Middleware()(mux)
}

// ordersService is the demo orders service: POST /orders/ with
// {"item":"…","quantity":N} accepts an order (201) from tokens with
// orders:write. Like the weather service it verifies tokens itself. It
// keeps nothing but a counter.
func ordersService(v *verifier.Verifier) http.Handler {
	var seq atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("POST /orders/{$}", verifier.RequireScope(scopeOrders)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			demoError(w, http.StatusUnsupportedMediaType, "invalid_request", "Send the order as application/json.")
			return
		}
		var order struct {
			Item     string `json:"item"`
			Quantity int    `json:"quantity"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&order); err != nil || dec.More() {
			demoError(w, http.StatusBadRequest, "invalid_request", `The body must be one JSON object {"item":"…","quantity":N} of at most 1 KiB.`)
			return
		}
		if !demoName(order.Item) || order.Quantity < 1 || order.Quantity > 99 {
			demoError(w, http.StatusBadRequest, "invalid_request", "item is 1 to 64 letters, digits, spaces or dashes; quantity is 1 to 99.")
			return
		}
		c, _ := verifier.FromContext(r.Context())
		demoJSON(w, http.StatusCreated, map[string]any{
			"order_id": seq.Add(1), "item": order.Item, "quantity": order.Quantity,
			"status": "accepted", "subject": c.Subject,
		})
	})))
	return v.Middleware()(mux)
}

// demoName reports whether s is 1 to 64 ASCII letters, digits, spaces or
// dashes.
func demoName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == ' ' || r == '-') {
			return false
		}
	}
	return true
}

func demoJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func demoError(w http.ResponseWriter, status int, code, desc string) {
	demoJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// print writes the addresses, the passwords and the walk-through. Each
// numbered step's comment ends with the status its last command answers;
// the test runs the commands and checks them.
func (d *demoInfo) print(w io.Writer) {
	passwords := "These passwords are shown only now; the next run on this data directory sets new ones."
	if d.reset {
		passwords = "The users existed: their passwords are new, their old sessions are revoked. Shown only now."
	}
	login := func(user, pass string) string {
		return fmt.Sprintf(`curl -s %s/v1/login -H 'Content-Type: application/json' -d '{"username":"%s","password":"%s"}'`, d.auth, user, pass)
	}
	order := `-H 'Content-Type: application/json' -d '{"item":"umbrella","quantity":1}'`
	fmt.Fprintf(w, `Keycard demo: an auth server, a gateway and two services, in one process.
Data in %s (SQLite database, dev master key, gateway.yaml). Ctrl-C stops everything.
%s
auth server:     %s
gateway:         %s
weather service: %s   (behind the gateway at /weather/, needs %s)
orders service:  %s   (behind the gateway at /orders/, needs %s)
weather page:    %s%s   (in a browser, through the gateway; sign in as %s)

user %s:   password %s   (role %s: tokens carry %s %s)
user %s: password %s   (no role: tokens carry %s)
%s

Walk-through (bash, with curl and jq):

# 1. Log in as %s: an access token (a JWT, 15 minutes) and a refresh token.
LOGIN=$(%s)
ACCESS=$(echo "$LOGIN" | jq -r .access_token)
REFRESH=$(echo "$LOGIN" | jq -r .refresh_token)

# 2. Read the weather through the gateway: 200.
curl -si %s/weather/paris -H "Authorization: Bearer $ACCESS"

# 3. Without a token the gateway refuses: 401.
curl -si %s/weather/paris

# 4. Place an order (role %s grants %s): 201.
curl -si -X POST %s/orders/ -H "Authorization: Bearer $ACCESS" %s

# 5. %s may read the weather but not order: 403 insufficient_scope.
VIEWER=$(%s | jq -r .access_token)
curl -si -X POST %s/orders/ -H "Authorization: Bearer $VIEWER" %s

# 6. Refresh: a new access token and a new refresh token (the old one is used up); the weather again: 200.
LOGIN=$(curl -s %s/oauth/token -d grant_type=refresh_token -d "refresh_token=$REFRESH")
ACCESS=$(echo "$LOGIN" | jq -r .access_token)
REFRESH=$(echo "$LOGIN" | jq -r .refresh_token)
curl -si %s/weather/paris -H "Authorization: Bearer $ACCESS"

# 7. Log out: the session and all its tokens are revoked: 204.
curl -si -X POST %s/v1/logout -H "Authorization: Bearer $ACCESS"

# 8. The same call as in 6, within a second of the logout: 401, at the gateway and at the service.
curl -si %s/weather/paris -H "Authorization: Bearer $ACCESS"

`,
		d.data, d.trust(), d.auth, d.gateway, d.weather, scopeWeather, d.orders, scopeOrders,
		d.gateway, demoWeatherApp, demoUser,
		demoUser, d.demoPassword, demoRole, scopeWeather, scopeOrders,
		demoViewer, d.viewerPassword, scopeWeather, passwords,
		demoUser, login(demoUser, d.demoPassword),
		d.gateway, d.gateway,
		demoRole, scopeOrders, d.gateway, order,
		demoViewer, login(demoViewer, d.viewerPassword), d.gateway, order,
		d.auth, d.gateway, d.auth, d.gateway)
}

// trust says, with --tls, how to trust the demo's certificates.
func (d *demoInfo) trust() string {
	if d.caFile == "" {
		return ""
	}
	return fmt.Sprintf(`HTTPS with certificates of a throw-away local CA, made for this demo: trust it with
curl --cacert %[1]s, or for the walk-through below: export CURL_CA_BUNDLE=%[1]s
Do not install it in a system trust store. Delete it and %[2]s to make a new one.
`, d.caFile, filepath.Join(filepath.Dir(d.caFile), tlsconfig.CAKeyFile))
}
