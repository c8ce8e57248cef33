package gateway

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// designExample is the example of docs/architecture.md's "Gateway configuration".
const designExample = `
listen: 127.0.0.1:8080
issuer: http://127.0.0.1:4000      # discovery gives jwks_uri and the revocation feed
audience: api
client:                            # service client used to read the revocation feed
  id: gateway
  secret_file: gateway.secret
routes:                            # longest matching prefix wins
  - path: /weather/
    upstream: http://127.0.0.1:9001
    scopes: [weather:read]         # all listed are required; any_scopes for any-of
  - path: /orders/
    methods: [POST, PUT, DELETE]
    upstream: http://127.0.0.1:9002
    roles: [admin]
  - path: /public/
    upstream: http://127.0.0.1:9003
    auth: none                     # required (default) | optional | none
`

func TestParseDesignExample(t *testing.T) {
	cfg, err := LoadConfig("/etc/keycard/gateway.yaml", []byte(designExample))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Issuer != "http://127.0.0.1:4000" || cfg.Audience != "api" || cfg.Client.ID != "gateway" {
		t.Errorf("globals: %+v", cfg)
	}
	if want := filepath.Join("/etc/keycard", "gateway.secret"); cfg.ClientSecretFile != want {
		t.Errorf("secret file resolved to %q, want %q", cfg.ClientSecretFile, want)
	}
	if len(cfg.Routes) != 3 {
		t.Fatalf("routes: %d", len(cfg.Routes))
	}
	w, o, p := cfg.Routes[0], cfg.Routes[1], cfg.Routes[2]
	if w.Auth != AuthRequired || len(w.Scopes) != 1 || w.Scopes[0] != "weather:read" {
		t.Errorf("weather route: %+v", w)
	}
	if o.Name() != "POST,PUT,DELETE /orders/" || o.Roles[0] != "admin" {
		t.Errorf("orders route: %+v, name %q", o, o.Name())
	}
	if p.Auth != AuthNone {
		t.Errorf("public route auth %q", p.Auth)
	}
	// Defaults.
	if cfg.LeewayOrDefault() != DefaultLeeway || cfg.MaxFeedOutage != DefaultMaxFeedOutage || cfg.UpstreamTimeout != DefaultUpstreamTimeout ||
		cfg.ShutdownTimeout != DefaultShutdownTimeout || !cfg.AccessLogOn() || cfg.FailOpen || cfg.MetricsListen != "" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestParseGlobalOptions(t *testing.T) {
	cfg := mustParse(t, header+`
metrics_listen: 127.0.0.1:9090
algorithms: [ES256, EdDSA]
leeway: 0s
fail_open: true
max_feed_outage: 5m
upstream_timeout: 3s
shutdown_timeout: 1s
access_log: false
log_level: debug
otlp_endpoint: http://127.0.0.1:4318
routes:
  - {path: /, upstream: "http://127.0.0.1:1/base", auth: optional, audience: web, strip_authorization: true}
`)
	if cfg.OTLPEndpoint != "http://127.0.0.1:4318" {
		t.Errorf("otlp_endpoint: %q", cfg.OTLPEndpoint)
	}
	if cfg.LeewayOrDefault() != 0 || !cfg.FailOpen || cfg.MaxFeedOutage != 5*time.Minute || cfg.UpstreamTimeout != 3*time.Second ||
		cfg.ShutdownTimeout != time.Second || cfg.AccessLogOn() || cfg.Level().String() != "DEBUG" || len(cfg.JOSEAlgorithms()) != 2 {
		t.Errorf("globals: %+v", cfg)
	}
	if r := cfg.Routes[0]; r.Auth != AuthOptional || r.Audience != "web" || !r.StripAuthorization {
		t.Errorf("route: %+v", r)
	}
}

// TestParseErrors sends every kind of mistake, including a typo at each
// level of the file: each must be refused with a message that says
// where and what.
func TestParseErrors(t *testing.T) {
	route := func(extra string) string {
		return header + "routes:\n  - path: /weather/\n    upstream: http://127.0.0.1:9001\n" + extra
	}
	tests := []struct {
		name string
		yml  string
		want []string // all must be in the error
	}{
		{"empty file", "", []string{"empty"}},
		{"not a mapping", "- a\n- b\n", []string{"mapping"}},
		{"two documents", route("") + "---\nlisten: x\n", []string{"more than one"}},
		{"typo at the top", route("") + "audeince: web\n", []string{"line 8", `unknown key "audeince"`, `did you mean "audience"`}},
		{"typo in client", "issuer: https://a\naudience: api\nclient:\n  id: a\n  secret_fil: x\nroutes: [{path: /, upstream: 'http://a'}]\n", []string{"client", `unknown key "secret_fil"`, `"secret_file"`}},
		{"typo in a route", route("    scoeps: [weather:read]\n"), []string{"route /weather/", `unknown key "scoeps"`, `did you mean "scopes"`}},
		{"typo any_roles", route("    anyroles: [admin]\n"), []string{`unknown key "anyroles"`, `"any_roles"`}},
		{"key repeated", route("    auth: none\n    auth: required\n"), []string{`"auth" already defined`}},
		{"missing issuer", "audience: api\nclient: {id: a, secret_file: b}\nroutes: [{path: /, upstream: 'http://a'}]\n", []string{"issuer: missing"}},
		{"bad issuer", strings.Replace(route(""), "https://issuer.test", "issuer.test", 1), []string{"issuer:", "not an http(s) URL"}},
		{"missing audience", strings.Replace(route(""), "audience: api", "", 1), []string{"audience: missing"}},
		{"missing client", "issuer: https://a\naudience: api\nroutes: [{path: /, upstream: 'http://a'}]\n", []string{"client.id: missing", "client.secret_file: missing"}},
		{"bad listen", route("") + "listen: 8080\n", []string{"listen:", "host:port"}},
		{"bad algorithm", route("") + "algorithms: [none]\n", []string{`unsupported algorithm "none"`}},
		{"bad duration", route("") + "leeway: soon\n", []string{"line 8: leeway: cannot unmarshal", "want a duration"}},
		{"integer duration", route("") + "upstream_timeout: 30\n", []string{"upstream_timeout: cannot unmarshal"}},
		{"otlp endpoint with credentials", route("") + "otlp_endpoint: https://u:pw@otel.example\n", []string{"otlp_endpoint:", "OTEL_EXPORTER_OTLP_HEADERS"}},
		{"otlp endpoint over gRPC", route("") + "otlp_endpoint: grpc://otel.example:4317\n", []string{"otlp_endpoint:", "http:// or https://"}},
		{"negative duration", route("") + "max_feed_outage: -1s\n", []string{"max_feed_outage", "negative"}},
		{"bad log level", route("") + "log_level: loud\n", []string{"log_level"}},
		{"bad access_log", route("") + "access_log: sometimes\n", []string{"access_log: cannot unmarshal"}},
		{"no routes", header, []string{"routes: none"}},
		{"route without path", header + "routes:\n  - upstream: http://a\n", []string{"route without a path", "path: missing"}},
		{"relative path", header + "routes:\n  - {path: weather/, upstream: 'http://a'}\n", []string{"must start with /"}},
		{"unclean path", header + "routes:\n  - {path: /a/../b/, upstream: 'http://a'}\n", []string{"not clean", `"/b/"`}},
		{"double slash path", header + "routes:\n  - {path: //a, upstream: 'http://a'}\n", []string{"not clean"}},
		{"wildcard path", header + "routes:\n  - {path: /a/*, upstream: 'http://a'}\n", []string{"may not contain"}},
		{"reserved path", header + "routes:\n  - {path: /metrics, upstream: 'http://a'}\n", []string{"/metrics is reserved"}},
		{"under a reserved path", header + "routes:\n  - {path: /healthz/x, upstream: 'http://a'}\n", []string{"/healthz is reserved"}},
		{"missing upstream", header + "routes:\n  - {path: /a/}\n", []string{"route /a/", "upstream: missing"}},
		{"upstream without scheme", route("") + "  - {path: /b/, upstream: '127.0.0.1:9000'}\n", []string{"route /b/", "upstream"}},
		{"upstream ftp", route("") + "  - {path: /b/, upstream: 'ftp://h'}\n", []string{"http:// or https://"}},
		{"upstream without host", route("") + "  - {path: /b/, upstream: 'http:///x'}\n", []string{"has no host"}},
		{"upstream with query", route("") + "  - {path: /b/, upstream: 'http://h/?a=1'}\n", []string{"query or fragment"}},
		{"upstream with credentials", route("") + "  - {path: /b/, upstream: 'http://u:p@h/'}\n", []string{"credentials"}},
		{"unknown auth", route("    auth: requried\n"), []string{"route /weather/", `unknown mode "requried"`}},
		{"empty scope entry", route("    scopes: [weather:read, '']\n"), []string{"route /weather/", "scopes: empty entry"}},
		{"empty scopes list", route("    scopes: []\n"), []string{"scopes: empty"}},
		{"scope with a space", route("    any_scopes: ['a b']\n"), []string{"any_scopes", "without spaces"}},
		{"repeated role", route("    roles: [admin, admin]\n"), []string{`roles: "admin" listed twice`}},
		{"lower-case method", route("    methods: [get]\n"), []string{`write "get" in upper case (GET)`}},
		{"unknown method", route("    methods: [FETCH]\n"), []string{`unknown method "FETCH"`}},
		{"repeated method", route("    methods: [GET, GET]\n"), []string{"GET listed twice"}},
		{"empty methods", route("    methods: []\n"), []string{"methods: empty"}},
		{"none with scopes", route("    auth: none\n    scopes: [a]\n"), []string{"auth: none cannot require"}},
		{"none with audience", route("    auth: none\n    audience: x\n"), []string{"auth: none does not check an audience"}},
		{"optional with roles", route("    auth: optional\n    roles: [a]\n"), []string{"auth: optional with scopes, roles"}},
		{"optional with acr", route("    auth: optional\n    acr: [mfa]\n"), []string{"auth: optional with scopes, roles, acr or max_age"}},
		{"none with max_age", route("    auth: none\n    max_age: 5m\n"), []string{"auth: none cannot require"}},
		{"empty acr list", route("    acr: []\n"), []string{"acr: empty"}},
		{"repeated acr", route("    acr: [mfa, mfa]\n"), []string{`acr: "mfa" listed twice`}},
		{"acr with a quote", route("    acr: ['m\"fa']\n"), []string{"acr:", "without spaces or quotes"}},
		{"negative max_age", route("    max_age: -5m\n"), []string{"max_age: -5m0s is negative"}},
		{"max_age without a unit", route("    max_age: 300\n"), []string{"max_age: cannot unmarshal"}},
		{"bad route audience", route("    audience: 'a b'\n"), []string{"audience:", "without spaces"}},
		{"duplicate path", route("") + "  - {path: /weather/, upstream: 'http://b'}\n", []string{"route /weather/", "duplicate path", "line 6"}},
		{"overlapping methods", header + "routes:\n  - {path: /a/, methods: [GET, POST], upstream: 'http://a'}\n  - {path: /a/, methods: [POST], upstream: 'http://b'}\n", []string{"duplicate path", "POST"}},
		{"route not a mapping", header + "routes:\n  - /a/\n", []string{"cannot unmarshal"}},
		{"bad type in a route", route("    strip_authorization: maybe\n"), []string{"route /weather/ (routes[0]): strip_authorization: cannot unmarshal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.yml)
			}
			if !contains(err.Error(), tt.want...) {
				t.Errorf("error %q\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAcceptsDisjointMethodsOnOnePath(t *testing.T) {
	cfg := mustParse(t, header+`
routes:
  - {path: /api/, methods: [OPTIONS], upstream: 'http://a', auth: none}
  - {path: /api/, methods: [GET, POST], upstream: 'http://a'}
`)
	if len(cfg.Routes) != 2 {
		t.Fatalf("routes: %d", len(cfg.Routes))
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(header + `
routes:
  - {path: /a/, upstream: 'ftp://a'}
  - {path: /b/, upstream: 'http://b', auth: sometimes}
`))
	if err == nil || !contains(err.Error(), "route /a/", "route /b/") {
		t.Errorf("got %v, want both routes named", err)
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{{"", "", 0}, {"scopes", "scopes", 0}, {"scoeps", "scopes", 2}, {"scope", "scopes", 1}, {"", "abc", 3}, {"kitten", "sitting", 3}}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(designExample))
	f.Add([]byte(header + "routes: [{path: /, upstream: 'http://a', scopes: [x]}]\n"))
	f.Add([]byte("routes: {a: [1, {b: c}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil && (cfg.Issuer == "" || cfg.Audience == "" || len(cfg.Routes) == 0) {
			t.Errorf("accepted a configuration without issuer, audience or routes: %q", data)
		}
	})
}

// TestParseRefusesLeewayBeyondTheFeed: more leeway than the feed keeps
// revocation entries would accept revoked tokens again.
func TestParseRefusesLeewayBeyondTheFeed(t *testing.T) {
	base := "listen: 127.0.0.1:0\nissuer: http://127.0.0.1:4000\naudience: api\nclient: {id: g, secret_file: s}\nroutes:\n  - {path: /, upstream: 'http://127.0.0.1:9'}\n"
	if _, err := Parse([]byte(base + "leeway: 31s\n")); err == nil || !strings.Contains(err.Error(), "leeway") {
		t.Errorf("leeway 31s: %v, want an error", err)
	}
	if _, err := Parse([]byte(base + "leeway: 30s\n")); err != nil {
		t.Errorf("leeway 30s: %v", err)
	}
}
