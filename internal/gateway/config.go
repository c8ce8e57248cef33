package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keycard-auth/keycard/internal/tlsconfig"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/verifier"
)

// Defaults of the global configuration keys.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultLeeway          = 30 * time.Second
	DefaultMaxFeedOutage   = 2 * time.Minute
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultShutdownTimeout = 20 * time.Second
)

// DPoP modes of a route (RFC 9449). Either way, a token bound to a DPoP
// key is accepted only with a valid proof of the key.
const (
	DPoPAllowed  = "allowed"  // bearer tokens and DPoP-bound tokens (the default)
	DPoPRequired = "required" // DPoP-bound tokens only
)

// Authentication modes of a route.
const (
	AuthRequired = "required" // a valid token is needed (the default)
	AuthOptional = "optional" // no token passes as anonymous; a bad token is still refused
	AuthNone     = "none"     // no verification; identity headers are still stripped
)

// Reserved paths are answered by the gateway itself on its listener; no
// route may be configured at or under them.
const (
	PathHealth  = "/healthz"
	PathReady   = "/readyz"
	PathMetrics = "/metrics"
)

var reservedPaths = []string{PathHealth, PathReady, PathMetrics}

// knownMethods are the methods a route may list (RFC 9110 section 9 and
// RFC 5789's PATCH).
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}

// Config is a gateway configuration file (YAML). Field tags name the keys;
// docs/gateway.md is the reference. Parse fills defaults and validates it.
type Config struct {
	// Listen is the address of the proxy listener. Restart only.
	Listen string `yaml:"listen"`
	// MetricsListen, when set, is a separate listener for /metrics (and
	// /healthz, /readyz), and the proxy listener no longer serves
	// /metrics. Restart only.
	MetricsListen string `yaml:"metrics_listen"`
	// Issuer is the auth server's issuer URL; discovery gives the JWKS
	// and revocation feed endpoints. Restart only.
	Issuer string `yaml:"issuer"`
	// IssuerCA is a PEM bundle of the certificate authorities trusted
	// for the issuer's discovery, JWKS and revocation feed; empty means
	// the system's. Restart only.
	IssuerCA string `yaml:"issuer_ca"`
	// TLS, when set, makes the proxy listener serve HTTPS. Restart only;
	// the certificate files themselves are reread when they change.
	TLS *TLSConfig `yaml:"tls"`
	// PublicURL is the scheme and host (and path prefix, if any) clients
	// reach the gateway at, such as https://api.example.com: the URL a
	// DPoP proof must name is PublicURL followed by the request's path.
	// When empty, it is the request's: https over TLS or from a trusted
	// proxy whose X-Forwarded-Proto says so (behind_proxy), else http,
	// and the request's Host.
	PublicURL string `yaml:"public_url"`
	// DPoPNonceSecretFile, when set, makes the gateway require server
	// nonces in DPoP proofs (RFC 9449 section 8), keyed with the secret
	// in this file (at least 32 bytes; every instance must share it).
	// Relative to the configuration file. Restart only.
	DPoPNonceSecretFile string `yaml:"dpop_nonce_secret_file"`
	// BehindProxy says that a TLS-terminating load balancer forwards to
	// Listen: plain HTTP is then allowed on a non-loopback address, and
	// X-Forwarded-Proto is believed from TrustedProxies. Restart only.
	BehindProxy bool `yaml:"behind_proxy"`
	// TrustedProxies are the load balancers' addresses (CIDR prefixes);
	// default loopback. Only with BehindProxy. Restart only.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// UpstreamCA is a PEM bundle of the certificate authorities trusted
	// for https:// upstreams; empty means the system's. Restart only.
	UpstreamCA string `yaml:"upstream_ca"`
	// Audience is the aud every token must carry unless its route names
	// another. The gateway checks it (not the verifier), so a reload can
	// change it.
	Audience string `yaml:"audience"`
	// Client is the service client that reads the revocation feed.
	// Restart only.
	Client ClientConfig `yaml:"client"`
	// Algorithms are the accepted signature algorithms; empty means the
	// verifier's default. Restart only.
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the allowed clock skew for exp, nbf and iat. Restart only.
	Leeway *time.Duration `yaml:"leeway"`
	// FailOpen keeps accepting tokens when the revocation feed has been
	// unreachable for longer than MaxFeedOutage (default: refuse them).
	// Restart only.
	FailOpen bool `yaml:"fail_open"`
	// MaxFeedOutage is how long the revocation feed may be unreachable
	// before the verifier counts as stale. Restart only.
	MaxFeedOutage time.Duration `yaml:"max_feed_outage"`
	// UpstreamTimeout bounds the wait for an upstream's response
	// headers. Restart only.
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// ShutdownTimeout bounds how long shutdown waits for in-flight
	// requests. Restart only.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// AccessLog turns the per-request access log on (default) or off.
	AccessLog *bool `yaml:"access_log"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `yaml:"log_level"`
	// OTLPEndpoint, when set, turns tracing on: spans go to this
	// OTLP/HTTP collector URL (docs/observability.md). The command
	// line's --otlp-endpoint wins over it. Restart only.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// ForwardAuth, when set, answers the auth subrequests of a proxy in
	// front (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth,
	// Envoy ext_authz) by the same routes; docs/forward-auth.md.
	ForwardAuth *ForwardAuthConfig `yaml:"forward_auth"`
	// Routes map path prefixes to upstreams; the longest matching prefix
	// wins.
	Routes []RouteConfig `yaml:"routes"`

	// ClientSecretFile is Client.SecretFile resolved against the
	// directory of the configuration file.
	ClientSecretFile string `yaml:"-"`
	level            slog.Level
}

// DefaultForwardAuthPath is where the gateway answers auth subrequests.
const DefaultForwardAuthPath = "/auth"

// ForwardAuthConfig configures the answers to a proxy's auth subrequests.
type ForwardAuthConfig struct {
	// Path is where the subrequests arrive; DefaultForwardAuthPath when
	// empty. No route may be at or under it.
	Path string `yaml:"path"`
	// TrustedProxies are the proxies' addresses (CIDR prefixes or
	// addresses), the only ones whose X-Forwarded-* and X-Original-*
	// headers say what the original request was; default loopback.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Only makes the gateway answer subrequests alone and proxy nothing:
	// routes then need no upstream ("keycard gateway --forward-auth").
	Only bool `yaml:"only"`

	proxies *tlsconfig.Proxies
}

// TLSConfig names the certificate chain and private key (PEM files) the
// proxy listener serves; relative paths are relative to the
// configuration file.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// ClientConfig names the service client of the revocation feed.
type ClientConfig struct {
	ID         string `yaml:"id"`
	SecretFile string `yaml:"secret_file"` // relative paths are relative to the configuration file
}

// RouteConfig is one route of the configuration.
type RouteConfig struct {
	Path               string   `yaml:"path"`
	Methods            []string `yaml:"methods"`
	Upstream           string   `yaml:"upstream"`
	Auth               string   `yaml:"auth"`
	Scopes             []string `yaml:"scopes"`
	AnyScopes          []string `yaml:"any_scopes"`
	Roles              []string `yaml:"roles"`
	AnyRoles           []string `yaml:"any_roles"`
	Audience           string   `yaml:"audience"`
	StripAuthorization bool     `yaml:"strip_authorization"`
	// DPoP is DPoPAllowed (the default) or DPoPRequired.
	DPoP string `yaml:"dpop"`
	// ACR lists the authentication context classes the route accepts
	// (the token's acr must be one, compared exactly: [mfa] demands a
	// second factor, [pwd, mfa] any sign-in); MaxAge, when set, is the
	// longest time since the user signed in (auth_time). A token that
	// falls short gets 401 insufficient_user_authentication (RFC 9470).
	ACR    []string      `yaml:"acr"`
	MaxAge time.Duration `yaml:"max_age"`

	line int // in the configuration file, for messages
}

// Name returns the route's name in logs and metrics: its path, preceded
// by its methods when it lists some ("GET,HEAD /weather/").
func (rc *RouteConfig) Name() string {
	if len(rc.Methods) == 0 {
		return rc.Path
	}
	return strings.Join(rc.Methods, ",") + " " + rc.Path
}

// AccessLogOn reports whether the access log is on.
func (c *Config) AccessLogOn() bool { return c.AccessLog == nil || *c.AccessLog }

// Level returns the parsed log level.
func (c *Config) Level() slog.Level { return c.level }

// LeewayOrDefault returns the configured leeway or DefaultLeeway.
func (c *Config) LeewayOrDefault() time.Duration {
	if c.Leeway == nil {
		return DefaultLeeway
	}
	return *c.Leeway
}

// JOSEAlgorithms returns Algorithms as jose algorithms.
func (c *Config) JOSEAlgorithms() []jose.Algorithm {
	out := make([]jose.Algorithm, len(c.Algorithms))
	for i, a := range c.Algorithms {
		out[i] = jose.Algorithm(a)
	}
	return out
}

// LoadConfig parses data, the content of the configuration file name (see
// Parse), resolves the client secret file against name's directory, and
// rewrites the relative paths of tls, issuer_ca and upstream_ca to be
// relative to it too. Errors name the file.
func LoadConfig(name string, data []byte) (*Config, error) {
	return LoadConfigWith(name, data, ParseOptions{})
}

// ParseOptions change how a configuration is read.
type ParseOptions struct {
	// ForwardAuthOnly is "keycard gateway --forward-auth": forward_auth
	// is on (with its defaults when the file has no forward_auth key)
	// and only, so routes need no upstream.
	ForwardAuthOnly bool
	// OTLPEndpoint, when set, replaces the file's otlp_endpoint: the
	// command line's --otlp-endpoint.
	OTLPEndpoint string
}

// LoadConfigWith is LoadConfig with options.
func LoadConfigWith(name string, data []byte, opt ParseOptions) (*Config, error) {
	cfg, err := ParseWith(data, opt)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	resolve := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(filepath.Dir(name), p)
	}
	cfg.ClientSecretFile = resolve(cfg.Client.SecretFile)
	cfg.IssuerCA, cfg.UpstreamCA = resolve(cfg.IssuerCA), resolve(cfg.UpstreamCA)
	if cfg.DPoPNonceSecretFile != "" {
		cfg.DPoPNonceSecretFile = resolve(cfg.DPoPNonceSecretFile)
	}
	if cfg.TLS != nil {
		cfg.TLS = &TLSConfig{Cert: resolve(cfg.TLS.Cert), Key: resolve(cfg.TLS.Key)}
	}
	return cfg, nil
}

// TrustedProxyList returns TrustedProxies comma-joined, or the default
// (loopback) when none are configured.
func (c *Config) TrustedProxyList() string {
	if len(c.TrustedProxies) == 0 {
		return tlsconfig.DefaultTrustedProxies
	}
	return strings.Join(c.TrustedProxies, ",")
}

// Parse decodes a YAML configuration, fills in defaults and validates
// every field. Unknown keys are an error at every level, so that a typo
// never silently drops a check; every problem found is reported, each
// with its line and, for routes, the route's path.
func Parse(data []byte) (*Config, error) { return ParseWith(data, ParseOptions{}) }

// ParseWith is Parse with options.
func ParseWith(data []byte, opt ParseOptions) (*Config, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the configuration is empty")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the configuration holds more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the configuration must be a mapping of keys to values", root.Line)
	}
	keys := map[int]string{} // line → key path, for the decoder's messages
	if errs := unknownKeys(root, reflect.TypeFor[Config](), "", keys); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var cfg Config
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true) // a second guard; unknownKeys reported them better
	if err := strict.Decode(&cfg); err != nil {
		return nil, explainTypeErrors(err, keys)
	}
	if rs := mappingValue(root, "routes"); rs != nil && rs.Kind == yaml.SequenceNode {
		for i, n := range rs.Content {
			if i < len(cfg.Routes) {
				cfg.Routes[i].line = n.Line
			}
		}
	}
	if opt.ForwardAuthOnly {
		if cfg.ForwardAuth == nil {
			cfg.ForwardAuth = &ForwardAuthConfig{}
		}
		cfg.ForwardAuth.Only = true
	}
	if opt.OTLPEndpoint != "" {
		cfg.OTLPEndpoint = opt.OTLPEndpoint
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// explainTypeErrors rewrites the decoder's "line N: cannot unmarshal …"
// messages to name the key at line N.
func explainTypeErrors(err error, keys map[int]string) error {
	te, ok := errors.AsType[*yaml.TypeError](err)
	if !ok {
		return err
	}
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil && keys[line] != "" {
			_, rest, _ := strings.Cut(msg, ": ")
			msg = fmt.Sprintf("line %d: %s: %s", line, keys[line], rest)
			if strings.Contains(rest, "time.Duration") {
				msg += " (want a duration such as 30s or 2m)"
			}
		}
		errs = append(errs, errors.New(msg))
	}
	return errors.Join(errs...)
}

// unknownKeys reports every key of the mapping n that is not a yaml tag
// of the struct type t, recursing into nested structs and slices of
// structs. where names the position for messages ("routes[2]"); keys
// records the path of each key by line.
func unknownKeys(n *yaml.Node, t reflect.Type, where string, keys map[int]string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || n.Kind != yaml.MappingNode {
		return nil // type mismatches are the decoder's to report
	}
	fields := map[string]reflect.Type{}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("line %d: %sunknown key %q", k.Line, prefix(where, n), k.Value)
			if s := closest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, errors.New(msg))
			continue
		}
		sub := k.Value
		if where != "" {
			sub = where + "." + k.Value
		}
		keys[k.Line] = prefix(where, n) + k.Value
		switch {
		case ft.Kind() == reflect.Slice && v.Kind == yaml.SequenceNode:
			for j, item := range v.Content {
				errs = append(errs, unknownKeys(item, ft.Elem(), fmt.Sprintf("%s[%d]", sub, j), keys)...)
			}
		default:
			errs = append(errs, unknownKeys(v, ft, sub, keys)...)
		}
	}
	return errs
}

// prefix returns "where: " for messages, with a route's path when the
// mapping is a route.
func prefix(where string, n *yaml.Node) string {
	if where == "" {
		return ""
	}
	if p := mappingValue(n, "path"); p != nil && p.Kind == yaml.ScalarNode && strings.HasPrefix(where, "routes[") {
		return fmt.Sprintf("route %s (%s): ", p.Value, where)
	}
	return where + ": "
}

// closest returns the name among names within edit distance 2 of s, or
// "" when none is that close.
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// validate fills defaults and checks every field, returning all problems
// found.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not a host:port address", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			add("metrics_listen: %q is not a host:port address", c.MetricsListen)
		}
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
			add("public_url: %q is not an http(s) URL without query, fragment or credentials", c.PublicURL)
		}
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
	switch u, err := url.Parse(c.Issuer); {
	case c.Issuer == "":
		add("issuer: missing: give the auth server's issuer URL")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		add("issuer: %q is not an http(s) URL without query, fragment or credentials", c.Issuer)
	}
	if c.OTLPEndpoint != "" {
		if _, err := tracing.CheckEndpoint(c.OTLPEndpoint); err != nil {
			add("otlp_endpoint: %v", err)
		}
	}
	if c.TLS != nil {
		if c.TLS.Cert == "" {
			add("tls.cert: missing: the PEM file of the certificate chain to serve")
		}
		if c.TLS.Key == "" {
			add("tls.key: missing: the PEM file of the certificate's private key")
		}
	}
	switch {
	case c.TrustedProxies != nil && !c.BehindProxy:
		add("trusted_proxies: only used with behind_proxy: true")
	case c.TrustedProxies != nil && len(c.TrustedProxies) == 0:
		add("trusted_proxies: empty: leave the key out for the default (loopback)")
	case c.TrustedProxies != nil:
		for _, p := range c.TrustedProxies {
			if _, err := tlsconfig.ParseProxies(p); err != nil || strings.Contains(p, ",") {
				add("trusted_proxies: %q is not an address or CIDR prefix such as 10.0.0.0/8", p)
			}
		}
	}
	if c.Audience == "" {
		add("audience: missing: give the aud that tokens for these routes carry")
	} else if !isToken(c.Audience) {
		add("audience: %q must be printable ASCII without spaces", c.Audience)
	}
	if c.Client.ID == "" {
		add("client.id: missing: the service client that reads the revocation feed")
	}
	if c.Client.SecretFile == "" {
		add("client.secret_file: missing: the file holding that client's secret")
	}
	seenAlg := map[string]bool{}
	for _, a := range c.Algorithms {
		switch {
		case !jose.Algorithm(a).Valid():
			add("algorithms: unsupported algorithm %q", a)
		case seenAlg[a]:
			add("algorithms: %s listed twice", a)
		}
		seenAlg[a] = true
	}
	if c.Algorithms != nil && len(c.Algorithms) == 0 {
		add("algorithms: empty: leave the key out for the default")
	}
	// More leeway than the auth server keeps revocation entries (the
	// token lifetime plus 30 s) would accept revoked tokens again.
	if c.Leeway != nil && (*c.Leeway < 0 || *c.Leeway > verifier.MaxLeeway) {
		add("leeway: %v is outside 0s…%v (revocation entries outlive a token by only %v)", *c.Leeway, verifier.MaxLeeway, verifier.MaxLeeway)
	}
	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"max_feed_outage", &c.MaxFeedOutage, DefaultMaxFeedOutage},
		{"upstream_timeout", &c.UpstreamTimeout, DefaultUpstreamTimeout},
		{"shutdown_timeout", &c.ShutdownTimeout, DefaultShutdownTimeout},
	}
	for _, d := range durations {
		switch {
		case *d.d == 0:
			*d.d = d.def
		case *d.d < 0:
			add("%s: %v is negative", d.name, *d.d)
		}
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if err := c.level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		add("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	if len(c.Routes) == 0 {
		add("routes: none configured: every request would be 404")
	}
	only := false
	if fa := c.ForwardAuth; fa != nil {
		only = fa.Only
		errs = append(errs, fa.validate(c.Routes)...)
	}
	for i := range c.Routes {
		errs = append(errs, c.Routes[i].validate(only)...)
	}
	errs = append(errs, overlaps(c.Routes)...)
	return errors.Join(errs...)
}

// where names a route in messages: its line and path.
func (rc *RouteConfig) where() string {
	if rc.Path == "" {
		return fmt.Sprintf("line %d: route without a path", rc.line)
	}
	return fmt.Sprintf("line %d: route %s", rc.line, rc.Path)
}

// validate fills the forward-auth defaults and checks them against the
// routes.
func (fa *ForwardAuthConfig) validate(routes []RouteConfig) []error {
	var errs []error
	if fa.Path == "" {
		fa.Path = DefaultForwardAuthPath
	}
	if problem := checkRoutePath(fa.Path); problem != "" || strings.HasSuffix(fa.Path, "/") && fa.Path != "/" {
		errs = append(errs, fmt.Errorf("forward_auth.path: %q must be a clean path not ending in / (%s)", fa.Path, problem))
	}
	for i := range routes {
		if p := routes[i].Path; p == fa.Path || strings.HasPrefix(p, fa.Path+"/") {
			errs = append(errs, fmt.Errorf("%s: path: %s is where forward_auth answers", routes[i].where(), fa.Path))
		}
	}
	list := fa.TrustedProxies
	if list == nil {
		list = strings.Split(tlsconfig.DefaultTrustedProxies, ",")
	} else if len(list) == 0 {
		errs = append(errs, errors.New("forward_auth.trusted_proxies: empty: leave the key out for the default (loopback)"))
	}
	for _, p := range list {
		if _, err := tlsconfig.ParseProxies(p); err != nil || strings.Contains(p, ",") {
			errs = append(errs, fmt.Errorf("forward_auth.trusted_proxies: %q is not an address or CIDR prefix such as 10.0.0.0/8", p))
		}
	}
	if len(errs) == 0 {
		fa.proxies, _ = tlsconfig.ParseProxies(strings.Join(list, ","))
	}
	return errs
}

// validate fills the route's defaults and checks it. In forward-auth-only
// mode a route needs no upstream.
func (rc *RouteConfig) validate(forwardAuthOnly bool) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(rc.where()+": "+format, args...))
	}
	if rc.Path == "" {
		add("path: missing")
	} else if problem := checkRoutePath(rc.Path); problem != "" {
		add("path: %s", problem)
	}
	if rc.Methods != nil && len(rc.Methods) == 0 {
		add("methods: empty: leave the key out to allow every method")
	}
	seen := map[string]bool{}
	for _, m := range rc.Methods {
		switch {
		case slices.Contains(knownMethods, m):
			if seen[m] {
				add("methods: %s listed twice", m)
			}
			seen[m] = true
		case slices.Contains(knownMethods, strings.ToUpper(m)):
			add("methods: write %q in upper case (%s)", m, strings.ToUpper(m))
		default:
			add("methods: unknown method %q (want one of %s)", m, strings.Join(knownMethods, ", "))
		}
	}
	switch u, err := url.Parse(rc.Upstream); {
	case rc.Upstream == "" && forwardAuthOnly:
	case rc.Upstream == "":
		add("upstream: missing")
	case err != nil:
		add("upstream: %q is not a URL", rc.Upstream)
	case u.Scheme != "http" && u.Scheme != "https":
		add("upstream: %q must be an http:// or https:// URL", rc.Upstream)
	case u.Host == "":
		add("upstream: %q has no host", rc.Upstream)
	case u.User != nil:
		add("upstream: credentials in the URL are not supported")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		add("upstream: %q must not have a query or fragment", rc.Upstream)
	}
	switch rc.Auth {
	case "":
		rc.Auth = AuthRequired
	case AuthRequired, AuthOptional, AuthNone:
	default:
		add("auth: unknown mode %q (want required, optional or none)", rc.Auth)
	}
	switch rc.DPoP {
	case "":
		rc.DPoP = DPoPAllowed
	case DPoPAllowed, DPoPRequired:
	default:
		add("dpop: unknown mode %q (want allowed or required)", rc.DPoP)
	}
	if rc.Auth == AuthNone && rc.DPoP == DPoPRequired {
		add("auth: none verifies no token, DPoP or not")
	}
	lists := []struct {
		name string
		vals []string
	}{{"scopes", rc.Scopes}, {"any_scopes", rc.AnyScopes}, {"roles", rc.Roles}, {"any_roles", rc.AnyRoles}, {"acr", rc.ACR}}
	demands := false
	for _, l := range lists {
		if l.vals != nil && len(l.vals) == 0 {
			add("%s: empty: leave the key out to require nothing", l.name)
		}
		seen := map[string]bool{}
		for _, v := range l.vals {
			switch {
			case v == "":
				add("%s: empty entry", l.name)
			case !isToken(v):
				add("%s: %q must be printable ASCII without spaces or quotes", l.name, v)
			case seen[v]:
				add("%s: %q listed twice", l.name, v)
			}
			seen[v] = true
		}
		demands = demands || len(l.vals) > 0
	}
	if rc.MaxAge < 0 {
		add("max_age: %v is negative", rc.MaxAge)
	}
	demands = demands || rc.MaxAge > 0
	switch {
	case rc.Auth == AuthNone && demands:
		add("auth: none cannot require scopes, roles, acr or max_age")
	case rc.Auth == AuthNone && rc.Audience != "":
		add("auth: none does not check an audience")
	case rc.Auth == AuthOptional && demands:
		add("auth: optional with scopes, roles, acr or max_age would let anonymous requests through without them; use auth: required")
	}
	if rc.Audience != "" && !isToken(rc.Audience) {
		add("audience: %q must be printable ASCII without spaces", rc.Audience)
	}
	return errs
}

// checkRoutePath returns what is wrong with a route path, or "".
func checkRoutePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return fmt.Sprintf("%q must start with /", p)
	}
	if strings.ContainsAny(p, "?#%*\\") || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Sprintf("%q may not contain ?, #, %%, *, \\, spaces or control characters", p)
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	if clean != p {
		return fmt.Sprintf("%q is not clean (want %q)", p, clean)
	}
	for _, r := range reservedPaths {
		if p == r || p == r+"/" || strings.HasPrefix(p, r+"/") {
			return fmt.Sprintf("%s is reserved for the gateway itself", r)
		}
	}
	return ""
}

// overlaps reports routes with the same path whose methods overlap (no
// methods means every method), since neither would win.
func overlaps(routes []RouteConfig) []error {
	var errs []error
	for i := range routes {
		for j := range i {
			a, b := &routes[j], &routes[i]
			if a.Path != b.Path || a.Path == "" {
				continue
			}
			var common []string
			switch {
			case len(a.Methods) == 0 || len(b.Methods) == 0:
				common = []string{"every method"}
			default:
				for _, m := range b.Methods {
					if slices.Contains(a.Methods, m) {
						common = append(common, m)
					}
				}
			}
			if len(common) > 0 {
				errs = append(errs, fmt.Errorf("%s: duplicate path (line %d has the same path) for %s", b.where(), a.line, strings.Join(common, ", ")))
			}
		}
	}
	return errs
}

// isToken reports whether s is a non-empty run of printable ASCII other
// than space, double quote and backslash: RFC 6749 section 3.3's
// scope-token, which is also what Keycard allows in roles and audiences.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// restartOnly lists the keys whose value differs between a and b among
// those that are read only at start.
func restartOnly(a, b *Config) []string {
	var changed []string
	check := func(name string, same bool) {
		if !same {
			changed = append(changed, name)
		}
	}
	check("listen", a.Listen == b.Listen)
	check("metrics_listen", a.MetricsListen == b.MetricsListen)
	check("issuer", a.Issuer == b.Issuer)
	check("issuer_ca", a.IssuerCA == b.IssuerCA)
	check("tls", (a.TLS == nil) == (b.TLS == nil) && (a.TLS == nil || *a.TLS == *b.TLS))
	check("behind_proxy", a.BehindProxy == b.BehindProxy)
	check("trusted_proxies", slices.Equal(a.TrustedProxies, b.TrustedProxies))
	check("upstream_ca", a.UpstreamCA == b.UpstreamCA)
	check("client", a.Client == b.Client)
	check("algorithms", slices.Equal(a.Algorithms, b.Algorithms))
	check("leeway", a.LeewayOrDefault() == b.LeewayOrDefault())
	check("fail_open", a.FailOpen == b.FailOpen)
	check("max_feed_outage", a.MaxFeedOutage == b.MaxFeedOutage)
	check("upstream_timeout", a.UpstreamTimeout == b.UpstreamTimeout)
	check("shutdown_timeout", a.ShutdownTimeout == b.ShutdownTimeout)
	check("otlp_endpoint", a.OTLPEndpoint == b.OTLPEndpoint)
	return changed
}
