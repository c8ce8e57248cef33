// Package tracing is Keycard's OpenTelemetry tracing: it builds the
// tracer provider that exports spans to an OTLP/HTTP collector
// (New), starts and ends the server span of each request the auth server
// or the gateway answers (Server), makes the client span of each request
// the gateway forwards and puts its W3C trace context in the request's
// traceparent header (Transport), times named pieces of work (Operation),
// and adds the trace and span ids to log records (LogHandler).
//
// Tracing is off unless an endpoint is configured: then no span is
// started anywhere, and the only cost on a request is a nil check.
//
// What is recorded is an allowlist, never the request as it came: span
// names are a method and a route pattern (never a raw path, which may hold
// ids), and attributes are the method, the route, the status code, the
// upstream's host and port, and error kinds. No URL, query string,
// header, cookie, body, token, password, code or client secret is ever
// recorded; docs/observability.md lists every span and attribute.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// InstrumentationName names the tracer of every span Keycard makes.
const InstrumentationName = "github.com/keycard-auth/keycard"

// TracesPath is the path of the OTLP/HTTP traces endpoint, appended to
// an endpoint given as a collector's base URL.
const TracesPath = "/v1/traces"

// propagator reads and writes W3C trace context (traceparent and
// tracestate). Baggage is neither read nor written: a client's baggage
// is not Keycard's to pass on as its own.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Config says where spans go.
type Config struct {
	// Endpoint is the OTLP/HTTP URL of a collector: its base URL
	// (http://127.0.0.1:4318), to which TracesPath is appended, or the
	// full traces URL ending in TracesPath. http:// or https://, with no
	// user, query or fragment: credentials for the collector go in
	// OTEL_EXPORTER_OTLP_HEADERS, which the exporter reads.
	Endpoint string
	// ServiceName is the service.name of the spans' resource unless
	// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
	ServiceName string
	// Version is the service.version, when known.
	Version string
	// Logger receives export failures (at most one line a minute); nil
	// discards them.
	Logger *slog.Logger
}

// CheckEndpoint reports whether s is an endpoint New accepts, and returns
// the traces URL it names. Its errors do not repeat s, which is the
// operator's, but might hold a secret by mistake.
func CheckEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("want an http:// or https:// URL of an OTLP/HTTP collector (port 4318)")
	case u.Host == "" || u.Hostname() == "":
		return "", errors.New("the URL has no host")
	case u.User != nil:
		return "", errors.New("no user or password in the URL: give the collector's credentials in OTEL_EXPORTER_OTLP_HEADERS")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", errors.New("no query string or fragment in the URL")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, TracesPath) {
		u.Path += TracesPath
	}
	u.RawPath = ""
	return u.String(), nil
}

// Provider is a tracer provider that exports to an OTLP/HTTP collector in
// batches. Shut it down when done: that exports what is still queued.
type Provider struct {
	tp  *sdktrace.TracerProvider
	log *slog.Logger
}

// New returns a Provider exporting to c.Endpoint. The exporter and the
// SDK also read the standard variables: OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _COMPRESSION and _CERTIFICATE (and their _TRACES_ forms),
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default: sample
// every trace that has no sampled parent, follow the parent's decision
// otherwise), OTEL_BSP_* for the batching, OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES. The endpoint given here wins over
// OTEL_EXPORTER_OTLP_ENDPOINT. Nothing is sent before the first span
// ends, so New succeeds while the collector is down.
func New(ctx context.Context, c Config) (*Provider, error) {
	endpoint, err := CheckEndpoint(c.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("otlp endpoint: %w", err)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := newResource(ctx, c)
	if err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{log: log, tp: sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&loggedExporter{SpanExporter: exp, log: log, every: time.Minute}),
		sdktrace.WithResource(res),
	)}, nil
}

// newResource describes the service: its name and version, then what the
// environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES say (which
// win), and the SDK's own attributes.
func newResource(ctx context.Context, c Config) (*resource.Resource, error) {
	name := c.ServiceName
	if name == "" {
		name = "keycard"
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(name))}
	if c.Version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(c.Version)))
	}
	res, err := resource.New(ctx, append(attrs, resource.WithTelemetrySDK(), resource.WithFromEnv())...)
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	return res, nil
}

// TracerProvider returns the provider to hand to Server, Transport,
// Operation and the store wrapper.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Shutdown exports the spans still queued, within ctx, and stops the
// exporter.
func (p *Provider) Shutdown(ctx context.Context) error { return p.tp.Shutdown(ctx) }

// FlushTimeout bounds Close's export of the spans still queued.
const FlushTimeout = 5 * time.Second

// Close is Shutdown within FlushTimeout, for the end of a server's run:
// call it after the drain, so that the last requests' spans go too. A
// failure is logged (Config.Logger).
func (p *Provider) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		p.log.Warn("trace export at shutdown failed", "err", err.Error())
	}
}

// loggedExporter logs failed exports, at most once per every, instead of
// the SDK's global error handler (which writes to the process's standard
// error in its own format). The spans of a failed batch are dropped, as
// the SDK would drop them.
type loggedExporter struct {
	sdktrace.SpanExporter
	log    *slog.Logger
	every  time.Duration
	last   atomic.Int64 // unix nanoseconds of the last line
	missed atomic.Int64 // failures not logged since
}

func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	now := time.Now().UnixNano()
	last := e.last.Load()
	if now-last < int64(e.every) || !e.last.CompareAndSwap(last, now) {
		e.missed.Add(1)
		return nil
	}
	e.log.Warn("trace export failed; spans dropped", "spans", len(spans), "err", err.Error(),
		"failures_not_logged", e.missed.Swap(0))
	return nil
}
