package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace and subsystem prefix every gateway metric:
// keycard_gateway_….
const (
	namespace = "keycard"
	subsystem = "gateway"
)

// Metrics is the gateway's Prometheus instrumentation, on a registry of
// its own (never the global one, so that several gateways can run in one
// process). It serves the exposition format as an http.Handler. Route
// labels are configured route names (RouteConfig.Name), the reserved
// paths, "unmatched" or "invalid": never a client-chosen path.
type Metrics struct {
	reg       *prometheus.Registry
	handler   http.Handler
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	upstream  *prometheus.HistogramVec
	authFails *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	lastOK    prometheus.Gauge
}

// newMetrics registers every family; ready feeds the verifier readiness
// gauge on each scrape.
func newMetrics(ready func() error) *Metrics {
	reg := prometheus.NewRegistry()
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "requests_total",
			Help: "Requests answered, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "request_duration_seconds",
			Help: "Time to answer a request (for an upgraded connection: its lifetime), by route.", Buckets: buckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "upstream_duration_seconds",
			Help: "Time from sending a request upstream to its response headers, by route.", Buckets: buckets,
		}, []string{"route"}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "auth_failures_total",
			Help: "Requests refused by authentication or authorization, by reason: no_token, malformed_request, invalid_token, revoked, wrong_audience, insufficient_scope, insufficient_role, insufficient_user_authentication (acr or max_age of the route), dpop, unavailable (revocation feed stale, failing closed) or other.",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "config_reloads_total",
			Help: "Configuration reloads, by result: ok or failed (the running configuration stays).",
		}, []string{"result"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load (the start counts).",
		}),
	}
	for _, r := range authReasons {
		m.authFails.WithLabelValues(r)
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	m.lastOK.SetToCurrentTime()
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "verifier_ready",
		Help: "1 when tokens can be verified (keys and revocation snapshot loaded, feed not stale), else 0.",
	}, func() float64 {
		if ready() != nil {
			return 0
		}
		return 1
	})
	reg.MustRegister(m.requests, m.duration, m.upstream, m.authFails, m.reloads, m.lastOK, readyGauge,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// ServeHTTP serves the metrics in the Prometheus exposition format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// Registry returns the registry, for registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

func (m *Metrics) authFailure(reason string) { m.authFails.WithLabelValues(reason).Inc() }

func (m *Metrics) reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.lastOK.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failed").Inc()
}

// Metrics returns the gateway's metrics.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// timedTransport observes the upstream latency of forwarded requests.
type timedTransport struct {
	next    http.RoundTripper
	metrics *Metrics
	now     func() time.Time
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := t.now()
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		if st := stateOf(r.Context()); st != nil {
			t.metrics.upstream.WithLabelValues(st.route.name).Observe(t.now().Sub(start).Seconds())
		}
	}
	return resp, err
}
