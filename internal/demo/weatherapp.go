package demo

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/keycard-auth/keycard/internal/web"
)

//go:embed weatherapp.html
var weatherAppHTML string

//go:embed weather-app.js
var weatherAppJS []byte

// WeatherSPAOptions configure a WeatherSPA.
type WeatherSPAOptions struct {
	// Path is where the page is served, ending in "/" (such as
	// "/weather-app/"); its scripts are served under it.
	Path string
	// Issuer is the auth server's issuer URL, and ClientID the page's
	// public client (authorization_code and refresh_token, the redirect
	// URI the page's URL, the post-logout redirect URI the page's URL with
	// "?signed-out").
	Issuer, ClientID string
	// Scope is the scopes the page asks for.
	Scope string
	// Cities are the cities whose weather the page reads from the weather
	// service (GET /weather/{city} on the page's origin).
	Cities []string
}

// WeatherSPA is the demo weather page: a single-page app on
// @keycard/browser (js/browser; the bundle is BrowserBundle). It signs in
// with the authorization code flow and PKCE at the issuer, holds
// DPoP-bound tokens in memory (the refresh token, bound to a
// non-extractable key, in IndexedDB), renews them once for all its tabs,
// and reads the forecast from the weather service through the gateway
// with DPoP proofs. The server side only serves three static files:
// the page, its script and the bundle. It is safe for concurrent use.
type WeatherSPA struct {
	path string
	page []byte
	csp  string
}

// NewWeatherSPA returns the page for opt.
func NewWeatherSPA(opt WeatherSPAOptions) (*WeatherSPA, error) {
	if !strings.HasPrefix(opt.Path, "/") || !strings.HasSuffix(opt.Path, "/") || strings.HasPrefix(opt.Path, "//") {
		return nil, fmt.Errorf("demo: weather app path %q must start and end with /", opt.Path)
	}
	iss, err := url.Parse(opt.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" {
		return nil, fmt.Errorf("demo: weather app: issuer %q is not an http(s) URL", opt.Issuer)
	}
	if opt.ClientID == "" || len(opt.Cities) == 0 {
		return nil, fmt.Errorf("demo: weather app: a client id and cities are required")
	}
	cfg, err := json.Marshal(map[string]any{"issuer": opt.Issuer, "clientId": opt.ClientID, "scope": opt.Scope, "cities": opt.Cities})
	if err != nil {
		return nil, err
	}
	t, err := template.New("page").Parse(weatherAppHTML)
	if err != nil {
		return nil, err
	}
	var page bytes.Buffer
	// json.Marshal escapes <, > and & (\u003c …), so no "</script>" in
	// the configuration can end its script element early.
	if err := t.Execute(&page, template.JS(cfg)); err != nil {
		return nil, err
	}
	origin := iss.Scheme + "://" + iss.Host
	return &WeatherSPA{path: opt.Path, page: page.Bytes(),
		// Scripts from this origin only; fetch to this origin (the
		// gateway) and the issuer's (discovery, JWKS, token endpoint).
		csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self' " + origin +
			"; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"}, nil
}

// ServeHTTP answers GET and HEAD of the page, its script and the bundle;
// anything else is 404 or 405.
func (a *WeatherSPA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	ctype := "text/javascript; charset=utf-8"
	switch r.URL.Path {
	case a.path:
		body, ctype = a.page, "text/html; charset=utf-8"
	case a.path + "weather-app.js":
		body = weatherAppJS
	case a.path + "keycard-browser.js":
		body = browserBundle
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	web.SecurityHeaders(h) // the pages' headers, with this page's policy:
	h.Set("Content-Security-Policy", a.csp)
	h.Set("Content-Type", ctype)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}
