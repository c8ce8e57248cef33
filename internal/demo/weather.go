package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/browser"
	"github.com/keycard-auth/keycard/internal/web"
	"github.com/keycard-auth/keycard/verifier"
)

// CookieVerifier verifies the access token of a request;
// *verifier.Verifier implements it.
type CookieVerifier interface {
	AuthenticateFrom(r *http.Request, src verifier.Sources) (*verifier.Claims, error)
}

// WeatherOptions configure a Weather page.
type WeatherOptions struct {
	// Path is where the page is served, ending in "/" (such as
	// "/weather-app/"). The auth server's pages must allow it as a
	// redirect target (Options.RedirectPrefixes).
	Path string
	// Scope, if not empty, must be among the token's scopes.
	Scope string
	// Username returns the username of a token's subject for the page;
	// nil, or an error, shows the subject id. Tokens carry no personal
	// data, so only the auth server's store knows the name.
	Username func(ctx context.Context, subject string) (string, error)
	// Logger receives internal errors; nil discards.
	Logger *slog.Logger
	// Now is the clock that picks today's weather; nil means time.Now.
	Now func() time.Time
}

//go:embed weather.html
var weatherTemplate string

// Weather is the demo weather application's page, a service behind the
// gateway: it shows the signed-in user and today's made-up weather. It
// reads the access token from the pages' access cookie and verifies it
// itself (signature, expiry, revocation feed); when there is no accepted
// token — never signed in, signed out, session revoked, everyone signed
// out — it sends the browser to the auth pages' refresh, which renews the
// token or asks to sign in, and back.
//
// It relies on the auth server's pages (/session/refresh, /signin,
// /signout, /account, /assets/) being on the same origin, as they are when
// the gateway routes those paths to the auth server. It is safe for
// concurrent use.
type Weather struct {
	v     CookieVerifier
	opt   WeatherOptions
	log   *slog.Logger
	frame *web.Frame
}

// NewWeather returns the page, verifying tokens with v.
func NewWeather(v CookieVerifier, opt WeatherOptions) (*Weather, error) {
	if !strings.HasPrefix(opt.Path, "/") || !strings.HasSuffix(opt.Path, "/") || strings.HasPrefix(opt.Path, "//") {
		return nil, fmt.Errorf("demo: weather path %q must start and end with /", opt.Path)
	}
	w := &Weather{v: v, opt: opt, log: opt.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	frame, err := web.NewFrame(weatherTemplate, w.log)
	if err != nil {
		return nil, err
	}
	w.frame = frame
	if w.opt.Now == nil {
		w.opt.Now = time.Now
	}
	return w, nil
}

// forecast is one city's weather on the page.
type forecast struct {
	City        string
	Temperature int
	Conditions  string
}

// weatherData is the page's data.
type weatherData struct {
	Subject  string
	Roles    []string
	Day      string
	Forecast []forecast
}

// ServeHTTP answers GET and HEAD of the page's path; anything else is 404
// or 405.
func (wp *Weather) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	web.SecurityHeaders(w.Header())
	if r.URL.Path != wp.opt.Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	c, err := wp.v.AuthenticateFrom(r, verifier.Sources{Cookie: browser.AccessCookie})
	var verr *verifier.Error
	switch {
	case err == nil:
	case errors.Is(err, verifier.ErrNoToken) || errors.As(err, &verr) && verr.Status < 500:
		// Not signed in, or the token is no longer accepted.
		http.Redirect(w, r, browser.PageRefreshPath+"?next="+url.QueryEscape(wp.opt.Path), http.StatusSeeOther)
		return
	default:
		wp.log.ErrorContext(r.Context(), "demo: weather: verifying the token", "err", err)
		http.Error(w, "The weather is unavailable; try again soon.", http.StatusServiceUnavailable)
		return
	}
	name := c.Subject
	if wp.opt.Username != nil {
		if n, err := wp.opt.Username(r.Context(), c.Subject); err == nil && n != "" {
			name = n
		}
	}
	user := &keycard.User{ID: c.Subject, Username: name}
	if wp.opt.Scope != "" && !c.HasScope(wp.opt.Scope) {
		wp.frame.Render(w, r, http.StatusForbidden, web.FramePage{Title: "No weather for you", Section: "weather", User: user, CSRF: csrfOf(r),
			Error: "Your account may not read the weather (it needs the " + wp.opt.Scope + " scope)."})
		return
	}
	day := wp.opt.Now().UTC()
	d := &weatherData{Subject: c.Subject, Roles: c.Roles, Day: day.Format("Monday 2 January 2006")}
	for _, city := range []string{"Lisbon", "Oslo", "Nairobi", "Tokyo"} {
		h := fnv.New32a()
		h.Write([]byte(city + day.Format("2006-01-02")))
		n := h.Sum32()
		conditions := []string{"sunny", "cloudy", "rain", "fog", "snow", "wind"}
		d.Forecast = append(d.Forecast, forecast{City: city, Temperature: int(n%36) - 5, Conditions: conditions[n/36%uint32(len(conditions))]})
	}
	wp.frame.Render(w, r, http.StatusOK, web.FramePage{Title: "Today's weather", Section: "weather", User: user, CSRF: csrfOf(r), Data: d})
}

// csrfOf returns the session's CSRF token from the pages' CSRF cookie, for
// the sign-out form (whose POST the auth pages check against the session).
func csrfOf(r *http.Request) string {
	if c, err := r.Cookie(browser.CSRFCookie); err == nil {
		return c.Value
	}
	return ""
}
