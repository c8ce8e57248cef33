package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Server makes the server spans of an HTTP server: one per request,
// named "METHOD ROUTE" once the route is known. A nil *Server makes
// none, so a server without tracing pays only a nil check. It is safe
// for concurrent use.
type Server struct {
	tracer trace.Tracer
}

// NewServer returns a Server making spans with tp's tracer; nil when tp
// is nil.
func NewServer(tp trace.TracerProvider) *Server {
	if tp == nil {
		return nil
	}
	return &Server{tracer: tp.Tracer(InstrumentationName)}
}

// Untraced reports whether requests for path get no span: the health,
// readiness and metrics endpoints, which probes and scrapers call every
// few seconds.
func Untraced(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// Start starts the server span of r, a child of the span that r's
// traceparent header names (W3C Trace Context) when it has a valid one,
// and returns r with the span in its context. The span's only attribute
// so far is the method; End adds the route and the status.
func (s *Server) Start(r *http.Request) (*http.Request, trace.Span) {
	ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	method := methodAttr(r.Method)
	ctx, span := s.tracer.Start(ctx, spanName(method.Value.AsString(), ""),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(method))
	return r.WithContext(ctx), span
}

// End ends a span that Start started: it names it after the request's
// method and route — a route pattern such as "/v1/sessions/{id}" or
// "GET /v1/sessions/{id}" (a net/http.ServeMux pattern, whose method
// and host are dropped), or "" when no route served the request — and
// records the status code; a 5xx marks the span as failed.
func End(span trace.Span, method, route string, status int) {
	if !span.IsRecording() {
		span.End()
		return
	}
	m := methodAttr(method).Value.AsString()
	route = routePath(route)
	span.SetName(spanName(m, route))
	attrs := []attribute.KeyValue{semconv.HTTPResponseStatusCode(status)}
	if route != "" {
		attrs = append(attrs, semconv.HTTPRoute(route))
	}
	if status >= 500 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(attrs...)
	span.End()
}

// routePath returns the path of a ServeMux pattern: "POST /v1/login" →
// "/v1/login", "example.com/x" → "/x".
func routePath(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimLeft(p, " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:]
	}
	return pattern
}

// spanName is the OpenTelemetry HTTP span name: "METHOD ROUTE", or the
// method alone without a route; "HTTP" for a method outside the standard
// set.
func spanName(method, route string) string {
	if method == "_OTHER" {
		method = "HTTP"
	}
	if route == "" {
		return method
	}
	return method + " " + route
}

// methods are the request methods recorded as they are; any other is
// recorded as _OTHER, so that clients cannot make up attribute values.
var methods = map[string]attribute.KeyValue{
	http.MethodGet: semconv.HTTPRequestMethodGet, http.MethodHead: semconv.HTTPRequestMethodHead,
	http.MethodPost: semconv.HTTPRequestMethodPost, http.MethodPut: semconv.HTTPRequestMethodPut,
	http.MethodPatch: semconv.HTTPRequestMethodPatch, http.MethodDelete: semconv.HTTPRequestMethodDelete,
	http.MethodOptions: semconv.HTTPRequestMethodOptions, http.MethodConnect: semconv.HTTPRequestMethodConnect,
	http.MethodTrace: semconv.HTTPRequestMethodTrace,
}

func methodAttr(m string) attribute.KeyValue {
	if kv, ok := methods[m]; ok {
		return kv
	}
	return semconv.HTTPRequestMethodOther
}

// Transport returns a RoundTripper that sends each request through next
// inside a client span, a child of the span in the request's context, and
// sets the request's traceparent (and tracestate, when there is one) to
// that span's context, replacing any that the request carried. The span
// lasts until the response headers arrive, and records the method, the
// server's host and port and the status code; 4xx and 5xx answers and
// transport errors mark it as failed. Nothing else of the request is
// recorded: not its URL, whose query string may hold a code. With a nil
// tp, Transport returns next.
func Transport(tp trace.TracerProvider, next http.RoundTripper) http.RoundTripper {
	if tp == nil {
		return next
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{tracer: tp.Tracer(InstrumentationName), next: next}
}

type transport struct {
	tracer trace.Tracer
	next   http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := methodAttr(req.Method)
	attrs := []attribute.KeyValue{method, semconv.ServerAddress(req.URL.Hostname())}
	if port := urlPort(req); port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	ctx, span := t.tracer.Start(req.Context(), spanName(method.Value.AsString(), ""),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	// A RoundTripper must not change the request it is given.
	out := req.Clone(ctx)
	out.Header.Del("Traceparent")
	out.Header.Del("Tracestate")
	propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	res, err := t.next.RoundTrip(out)
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, "")
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(res.StatusCode))
	if res.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(res.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return res, nil
}

// urlPort returns the port of req's URL, or its scheme's default.
func urlPort(req *http.Request) int {
	if p := req.URL.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch req.URL.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// errorType names the kind of a transport error, never its text (which
// can quote the URL).
func errorType(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return fmt.Sprintf("%T", err)
}
