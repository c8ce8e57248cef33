// Package metrics is the auth server's Prometheus instrumentation
// (prometheus/client_golang): HTTP requests by route and status with
// latencies, login outcomes, refresh grants, revoked sessions and the age
// of the active signing key, the revocation feed's readers and their lag,
// plus the Go runtime and process collectors.
//
// Every family lives on a registry owned by a Metrics value, never on the
// global default registry, so that several servers (in tests, say) can
// run in one process.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// Namespace prefixes every Keycard metric name.
const Namespace = "keycard"

// UnmatchedRoute is the route label of requests that matched no route
// (answered 404 or 405), so that clients cannot create label values.
const UnmatchedRoute = "unmatched"

// keysTimeout bounds the key listing of one scrape.
const keysTimeout = 5 * time.Second

// Options configure a Metrics. The zero value is usable.
type Options struct {
	// Now is the clock for the key age; nil means time.Now.
	Now func() time.Time
	// Keys lists the signing keys (auth.KeyManager.Keys), for
	// keycard_signing_key_age_seconds; nil leaves that gauge out. It is
	// called on every scrape.
	Keys func(ctx context.Context) ([]*keycard.SigningKey, error)
}

// Metrics holds the auth server's metrics and serves them in the
// Prometheus exposition format (it is an http.Handler). It implements
// auth.Metrics. It is safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	refresh  *prometheus.CounterVec
	revoked  *prometheus.CounterVec
	hook     *prometheus.CounterVec
	feedSubs *prometheus.GaugeVec
	feedLag  *prometheus.HistogramVec
	webhooks *prometheus.CounterVec
}

var _ auth.Metrics = (*Metrics)(nil)

// New returns a Metrics with every family registered on a new registry.
func New(opt Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "logins_total",
			Help: "Password logins, by outcome: succeeded, failed, throttled (refused before the password check) or error.",
		}, []string{"outcome"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "refresh_grants_total",
			Help: "Refresh-token grants, by outcome: rotated, replayed (grace window) or theft (reuse detected, session revoked).",
		}, []string{"outcome"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "sessions_revoked_total",
			Help: "Sessions revoked, by reason.",
		}, []string{"reason"}),
		hook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "claims_hook_calls_total",
			Help: "Calls of the custom-claims hook, by outcome: ok, or failed (error, timeout or refused answer).",
		}, []string{"outcome"}),
		feedSubs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "revocation_feed_subscribers",
			Help: "Revocation feed readers connected now, by kind: long_poll (GET /v1/revocations with wait) or stream (GET /v1/revocations/stream).",
		}, []string{"kind"}),
		feedLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "revocation_feed_lag_seconds",
			Help:    "Age of the oldest entry in each delivery of new revocation feed entries (snapshots excluded): how long a revocation waited before a reader got it, by kind: poll, long_poll or stream.",
			Buckets: []float64{.005, .025, .1, .25, 1, 2.5, 5, 15, 30, 60, 300, 900},
		}, []string{"kind"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts, by outcome: delivered (2xx), retried (failed, tried again later) or failed (given up).",
		}, []string{"outcome"}),
	}
	// Known label values start at 0, so that rates and alerts work
	// before the first event.
	for _, o := range []string{auth.LoginSucceeded, auth.LoginFailed, auth.LoginThrottled, auth.LoginError} {
		m.logins.WithLabelValues(o)
	}
	for _, o := range []string{auth.RefreshRotated, auth.RefreshReplayed, auth.RefreshTheft} {
		m.refresh.WithLabelValues(o)
	}
	for _, o := range []string{auth.ClaimsHookOK, auth.ClaimsHookFailed} {
		m.hook.WithLabelValues(o)
	}
	for _, r := range []string{keycard.RevokeLogout, keycard.RevokeLogoutAll, keycard.RevokePasswordChanged, keycard.RevokeTokenReuse} {
		m.revoked.WithLabelValues(r)
	}
	// The kinds of feed readers, httpapi.FeedLongPoll and FeedStream (this
	// package does not import httpapi, whose tests use it).
	for _, k := range []string{"long_poll", "stream"} {
		m.feedSubs.WithLabelValues(k)
	}
	// The outcomes of a webhook attempt, webhook.OutcomeDelivered, …
	// (this package does not import internal/webhook).
	for _, o := range []string{"delivered", "retried", "failed"} {
		m.webhooks.WithLabelValues(o)
	}
	reg.MustRegister(m.requests, m.duration, m.logins, m.refresh, m.revoked, m.hook, m.feedSubs, m.feedLag, m.webhooks,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opt.Keys != nil {
		now := opt.Now
		if now == nil {
			now = time.Now
		}
		reg.MustRegister(&keyAgeCollector{keys: opt.Keys, now: now, desc: prometheus.NewDesc(
			prometheus.BuildFQName(Namespace, "", "signing_key_age_seconds"),
			"Seconds since the active signing key was created.", nil, nil)})
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// Registry returns the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServeHTTP serves the metrics in the Prometheus exposition format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// ObserveRequest counts one answered HTTP request. route is the pattern
// of the route that served it (http.Request.Pattern, such as
// "POST /v1/login"), "" for none; it must never be the raw path, which
// the client chooses.
func (m *Metrics) ObserveRequest(route string, status int, d time.Duration) {
	if route == "" {
		route = UnmatchedRoute
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// LoginOutcome implements auth.Metrics.
func (m *Metrics) LoginOutcome(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// RefreshOutcome implements auth.Metrics.
func (m *Metrics) RefreshOutcome(outcome string) { m.refresh.WithLabelValues(outcome).Inc() }

// ClaimsHookOutcome implements auth.Metrics.
func (m *Metrics) ClaimsHookOutcome(outcome string) { m.hook.WithLabelValues(outcome).Inc() }

// WebhookOutcome counts a webhook delivery attempt by outcome
// (webhook.OutcomeDelivered, OutcomeRetried, OutcomeFailed).
func (m *Metrics) WebhookOutcome(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// SessionsRevoked implements auth.Metrics.
func (m *Metrics) SessionsRevoked(reason string, n int) {
	if n > 0 {
		m.revoked.WithLabelValues(reason).Add(float64(n))
	}
}

// FeedSubscribers adds delta to the revocation feed readers of kind
// connected now (httpapi.FeedMetrics).
func (m *Metrics) FeedSubscribers(kind string, delta int) {
	m.feedSubs.WithLabelValues(kind).Add(float64(delta))
}

// ObserveFeedLag records the age of the oldest entry of one delivery of
// new feed entries to a reader of kind (httpapi.FeedMetrics).
func (m *Metrics) ObserveFeedLag(kind string, lag time.Duration) {
	m.feedLag.WithLabelValues(kind).Observe(lag.Seconds())
}

// keyAgeCollector reports the age of the active signing key at scrape
// time; it reports nothing when there is no active key or the keys cannot
// be listed.
type keyAgeCollector struct {
	keys func(ctx context.Context) ([]*keycard.SigningKey, error)
	now  func() time.Time
	desc *prometheus.Desc
}

func (c *keyAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *keyAgeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
	defer cancel()
	keys, err := c.keys(ctx)
	if err != nil {
		return
	}
	for _, k := range keys {
		if k.State == keycard.KeyActive {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, c.now().Sub(k.CreatedAt).Seconds())
			return
		}
	}
}
