package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/keycard-auth/keycard/internal/demo"
	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
)

// demo runs "keycard demo" (package demo): the auth server, the gateway
// and two demo services behind it in one process, on a SQLite database in
// a data directory, with two users; it prints their passwords and a curl
// walk-through on stdout (logs go to stderr) and runs until the context
// is cancelled, then shuts everything down in reverse order.
func (e *cmdEnv) demo(args []string) int {
	fs := e.flagSet("demo")
	data := fs.String("data", "keycard-demo", "data `directory` (SQLite database, dev master key, gateway configuration)")
	authAddr := fs.String("auth-addr", "127.0.0.1:4000", "the auth server's listen `address` (port 0 picks a free port)")
	gatewayAddr := fs.String("gateway-addr", "127.0.0.1:8080", "the gateway's listen `address` (port 0 picks a free port)")
	travelAddr := fs.String("travel-addr", "127.0.0.1:8090", "the travel app's listen `address`, the second web application (port 0 picks a free port)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	shutdownTimeout := fs.Duration("shutdown-timeout", 20*time.Second, "how long shutdown waits for in-flight requests")
	useTLS := fs.Bool("tls", false, "serve HTTPS, with certificates of a throw-away local CA kept in --data (trust DATA/ca.pem)")
	otlpEndpoint := fs.String("otlp-endpoint", "", "send the auth server's and the gateway's OpenTelemetry traces to this OTLP/HTTP collector `URL` (such as http://127.0.0.1:4318); empty: no tracing (docs/observability.md)")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	if *otlpEndpoint != "" {
		if _, err := tracing.CheckEndpoint(*otlpEndpoint); err != nil {
			fmt.Fprintf(e.stderr, "keycard demo: --otlp-endpoint: %v\n", err)
			return exitUsage
		}
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
	travelLn, err := net.Listen("tcp", *travelAddr)
	if err != nil {
		return e.fail("listen (--travel-addr): %v", err)
	}
	defer travelLn.Close()
	err = demo.Run(e.ctx, demo.Options{Data: *data, AuthListener: authLn, GatewayListener: gatewayLn, TravelListener: travelLn, TLS: *useTLS,
		Logger: log, ShutdownTimeout: *shutdownTimeout, OTLPEndpoint: *otlpEndpoint}, func(info *demo.Info) {
		printDemo(e.stdout, info)
		log.Info("demo running", "auth", info.Auth, "gateway", info.Gateway, "data", info.Data)
	})
	if err != nil {
		return e.fail("demo: %v", err)
	}
	log.Info("stopped")
	return exitOK
}

// print writes the addresses, the passwords and the walk-through. Each
// numbered step's comment ends with the status its last command answers;
// the test runs the commands and checks them.
func printDemo(w io.Writer, d *demo.Info) {
	passwords := "These passwords are shown only now; the next run on this data directory sets new ones."
	if d.Reset {
		passwords = "The users existed: their passwords are new, their old sessions are revoked. Shown only now."
	}
	login := func(user, pass string) string {
		return fmt.Sprintf(`curl -s %s/v1/login -H 'Content-Type: application/json' -d '{"username":"%s","password":"%s"}'`, d.Auth, user, pass)
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
travel app:      %s   (in the same browser: signed in through the auth server, no password; sign out in one, both are out)

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
		d.Data, demoTrust(d), d.Auth, d.Gateway, d.Weather, demo.ScopeWeather, d.Orders, demo.ScopeOrders,
		d.Gateway, demo.WeatherApp, demo.User, d.Travel,
		demo.User, d.DemoPassword, demo.Role, demo.ScopeWeather, demo.ScopeOrders,
		demo.Viewer, d.ViewerPassword, demo.ScopeWeather, passwords,
		demo.User, login(demo.User, d.DemoPassword),
		d.Gateway, d.Gateway,
		demo.Role, demo.ScopeOrders, d.Gateway, order,
		demo.Viewer, login(demo.Viewer, d.ViewerPassword), d.Gateway, order,
		d.Auth, d.Gateway, d.Auth, d.Gateway)
}

// trust says, with --tls, how to trust the demo's certificates.
func demoTrust(d *demo.Info) string {
	if d.CAFile == "" {
		return ""
	}
	return fmt.Sprintf(`HTTPS with certificates of a throw-away local CA, made for this demo: trust it with
curl --cacert %[1]s, or for the walk-through below: export CURL_CA_BUNDLE=%[1]s
Do not install it in a system trust store. Delete it and %[2]s to make a new one.
`, d.CAFile, filepath.Join(filepath.Dir(d.CAFile), tlsconfig.CAKeyFile))
}
