package tracing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/internal/tracing/otlptest"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

func TestCheckEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "base URL", in: "http://127.0.0.1:4318", want: "http://127.0.0.1:4318/v1/traces"},
		{name: "base URL with slash", in: "http://collector:4318/", want: "http://collector:4318/v1/traces"},
		{name: "traces URL", in: "https://otel.example.com/v1/traces", want: "https://otel.example.com/v1/traces"},
		{name: "path prefix", in: "https://gw.example.com/otlp", want: "https://gw.example.com/otlp/v1/traces"},
		{name: "grpc scheme", in: "grpc://collector:4317", wantErr: "http:// or https://"},
		{name: "no scheme", in: "collector:4318", wantErr: "http:// or https://"},
		{name: "no host", in: "http:///v1/traces", wantErr: "no host"},
		{name: "credentials", in: "https://user:s3cret@collector:4318", wantErr: "OTEL_EXPORTER_OTLP_HEADERS"},
		{name: "query", in: "https://collector:4318/?api_key=s3cret", wantErr: "no query"},
		{name: "fragment", in: "https://collector:4318/#s3cret", wantErr: "no query"},
		{name: "not a URL", in: "http://[::1", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tracing.CheckEndpoint(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %q, %v; want an error with %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error repeats the URL's secret: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestExportOTLP: New's exporter sends the spans of a request, in OTLP
// protobuf, to the traces path under the endpoint given as a base URL,
// with the headers of OTEL_EXPORTER_OTLP_HEADERS and the service name of
// OTEL_SERVICE_NAME; Shutdown sends what is queued.
func TestExportOTLP(t *testing.T) {
	c := otlptest.NewReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k-123")
	t.Setenv("OTEL_SERVICE_NAME", "keycard-eu-1")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // the configured endpoint wins
	p, err := tracing.New(context.Background(), tracing.Config{Endpoint: c.URL, ServiceName: "keycard"})
	if err != nil {
		t.Fatal(err)
	}
	h := serverHandler(tracing.NewServer(p.TracerProvider()), "POST /v1/login")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/login", nil))
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := c.Spans()
	if len(spans) != 1 || spans[0].Name != "POST /v1/login" || spans[0].Service != "keycard-eu-1" {
		t.Errorf("the receiver got spans %v, want POST /v1/login of service keycard-eu-1 (OTEL_SERVICE_NAME)", spans)
	}
	if h := c.Headers(); len(h) != 1 || h[0].Get("X-Collector-Key") != "k-123" {
		t.Errorf("got export headers %v, want x-collector-key from OTEL_EXPORTER_OTLP_HEADERS", h)
	}
}

// TestExportFailureLogged: a collector that refuses spans is logged, as
// one line without the spans' content, not on standard error.
func TestExportFailureLogged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest) // not retried
	}))
	t.Cleanup(srv.Close)
	var logs bytes.Buffer
	p, err := tracing.New(context.Background(), tracing.Config{Endpoint: srv.URL, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := serverHandler(tracing.NewServer(p.TracerProvider()), "POST /v1/login")
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/login", nil))
	p.Shutdown(context.Background())
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: want one JSON line: %v", logs.String(), err)
	}
	if line["msg"] != "trace export failed; spans dropped" || line["level"] != "WARN" {
		t.Errorf("got log line %v", line)
	}
}

// serverHandler is a handler traced as the auth server traces: a span
// from Start, ended with End and the route.
func serverHandler(s *tracing.Server, route string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, span := s.Start(r)
		w.WriteHeader(http.StatusOK)
		tracing.End(span, r.Method, route, http.StatusOK)
	})
}

func TestServerSpanNames(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		route      string
		status     int
		wantName   string
		wantRoute  string
		wantMethod string
		wantFailed bool
	}{
		{name: "mux pattern", method: "DELETE", route: "DELETE /v1/sessions/{id}", status: 204, wantName: "DELETE /v1/sessions/{id}", wantRoute: "/v1/sessions/{id}", wantMethod: "DELETE"},
		{name: "pattern with a host", method: "GET", route: "GET example.com/x/{$}", status: 200, wantName: "GET /x/{$}", wantRoute: "/x/{$}", wantMethod: "GET"},
		{name: "gateway route", method: "POST", route: "/orders/", status: 201, wantName: "POST /orders/", wantRoute: "/orders/", wantMethod: "POST"},
		{name: "no route", method: "GET", route: "", status: 404, wantName: "GET", wantMethod: "GET"},
		{name: "made-up method", method: "SECRETMETHOD", route: "", status: 405, wantName: "HTTP", wantMethod: "_OTHER"},
		{name: "server error", method: "POST", route: "POST /v1/login", status: 500, wantName: "POST /v1/login", wantRoute: "/v1/login", wantMethod: "POST", wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			s := tracing.NewServer(rec.tp)
			req := httptest.NewRequest(tt.method, "/whatever/"+url.PathEscape(tt.name)+"?code=abc", nil)
			r, span := s.Start(req)
			if !trace.SpanFromContext(r.Context()).SpanContext().IsValid() {
				t.Fatal("the request's context holds no span")
			}
			tracing.End(span, tt.method, tt.route, tt.status)
			spans := rec.spans()
			if len(spans) != 1 {
				t.Fatalf("got %d spans", len(spans))
			}
			a := attributes(&spans[0])
			if spans[0].Name != tt.wantName || a["http.route"] != tt.wantRoute || a["http.request.method"] != tt.wantMethod {
				t.Errorf("got %q, route %q, method %q; want %q, %q, %q", spans[0].Name, a["http.route"], a["http.request.method"], tt.wantName, tt.wantRoute, tt.wantMethod)
			}
			if failed := spans[0].Status.Code == codes.Error; failed != tt.wantFailed {
				t.Errorf("got failed %v, want %v", failed, tt.wantFailed)
			}
			if spans[0].SpanKind != trace.SpanKindServer {
				t.Errorf("got kind %v, want server", spans[0].SpanKind)
			}
		})
	}
	if tracing.NewServer(nil) != nil {
		t.Error("NewServer(nil) made a server")
	}
}

// roundTripFunc is an http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestTransport: the client span is a child of the request's span; the
// request sent carries its context in traceparent instead of whatever
// traceparent and tracestate the caller had; the caller's request is not
// changed; the URL is not recorded; a transport error is recorded by
// kind.
func TestTransport(t *testing.T) {
	rec := newRecorder(t)
	var sent *http.Request
	ok := tracing.Transport(rec.tp, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return &http.Response{StatusCode: http.StatusNotFound, Body: http.NoBody}, nil
	}))
	ctx, parent := rec.tp.Tracer("t").Start(context.Background(), "server")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream.internal:9001/cb?code=abc&state=xyz", nil)
	req.Header.Set("Traceparent", remoteTraceparent)
	req.Header.Set("Tracestate", "vendor=client-said")
	res, err := ok.RoundTrip(req)
	if err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("got %v, %v", res, err)
	}
	parent.End()
	if req.Header.Get("Traceparent") != remoteTraceparent {
		t.Error("the caller's request was changed")
	}
	spans := rec.spans()
	client := spans[0]
	if client.SpanKind != trace.SpanKindClient || client.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("got span %q kind %v under %s, want a client span under %s", client.Name, client.SpanKind, client.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	want := "00-" + parent.SpanContext().TraceID().String() + "-" + client.SpanContext.SpanID().String() + "-01"
	if got := sent.Header.Get("Traceparent"); got != want {
		t.Errorf("sent traceparent %q, want %q", got, want)
	}
	if got := sent.Header.Get("Tracestate"); got != "" {
		t.Errorf("sent the caller's tracestate %q", got)
	}
	a := attributes(&client)
	if a["server.address"] != "upstream.internal" || a["server.port"] != "9001" || a["http.response.status_code"] != "404" ||
		a["error.type"] != "404" || client.Status.Code != codes.Error {
		t.Errorf("got attributes %v and status %v", a, client.Status)
	}
	if found := leaks(spans, map[string]string{"code": "abc", "query": "state=xyz"}); len(found) > 0 {
		t.Errorf("recorded: %v", found)
	}

	rec.exp.Reset()
	failing := tracing.Transport(rec.tp, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("dial tcp upstream.internal:9001?code=abc: connection refused")
	}))
	if _, err := failing.RoundTrip(req); err == nil {
		t.Fatal("want the transport's error")
	}
	spans = rec.spans()
	if a := attributes(&spans[0]); a["error.type"] != "*errors.errorString" || spans[0].Status.Code != codes.Error || spans[0].Status.Description != "" {
		t.Errorf("got attributes %v and status %v, want the error's kind only", a, spans[0].Status)
	}
	if tracing.Transport(nil, http.DefaultTransport) != http.DefaultTransport {
		t.Error("Transport without a provider wrapped the transport")
	}
}

func TestOperation(t *testing.T) {
	rec := newRecorder(t)
	op := tracing.Operation(rec.tp, tracing.OpOptions{})
	// Outside a recorded span: nothing.
	if _, end := op(context.Background(), "password.hash"); end != nil {
		end(nil)
	}
	ctx, parent := rec.tp.Tracer("t").Start(context.Background(), "request")
	_, end := op(ctx, "token.sign")
	end(errors.New("key s3cret unreadable"))
	parent.End()
	spans := rec.spans()
	if len(spans) != 2 || spans[0].Name != "token.sign" || spans[0].Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("got %v, want token.sign under the request", names(spans))
	}
	if spans[0].Status.Code != codes.Error || attributes(&spans[0])["error.type"] != "*errors.errorString" {
		t.Errorf("got %v %v, want a failure of kind *errors.errorString", spans[0].Status, attributes(&spans[0]))
	}
	if found := leaks(spans, map[string]string{"error text": "s3cret"}); len(found) > 0 {
		t.Errorf("recorded: %v", found)
	}
	if tracing.Operation(nil, tracing.OpOptions{}) != nil {
		t.Error("Operation without a provider returned a function")
	}
}

// TestLogHandler: records logged with a span's context carry its trace
// and span ids; others do not; attributes and groups added later keep
// them.
func TestLogHandler(t *testing.T) {
	rec := newRecorder(t)
	var buf bytes.Buffer
	log := slog.New(tracing.LogHandler(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))))
	ctx, span := rec.tp.Tracer("t").Start(context.Background(), "request")
	defer span.End()
	log.With("component", "test").WithGroup("g").InfoContext(ctx, "with a span", "k", "v")
	log.InfoContext(context.Background(), "without")
	var lines []map[string]any
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d lines", len(lines))
	}
	sc := span.SpanContext()
	// Inside a group, slog nests the attributes added by the handler too.
	g, _ := lines[0]["g"].(map[string]any)
	if g["trace_id"] != sc.TraceID().String() || g["span_id"] != sc.SpanID().String() || lines[0]["component"] != "test" {
		t.Errorf("got %v, want trace_id %s and span_id %s", lines[0], sc.TraceID(), sc.SpanID())
	}
	if _, ok := lines[1]["trace_id"]; ok {
		t.Errorf("a record without a span got a trace id: %v", lines[1])
	}
	if strings.Count(buf.String(), "trace_id") != 1 {
		t.Errorf("wrapping twice added the ids twice:\n%s", buf.String())
	}
}

func TestUntraced(t *testing.T) {
	for path, want := range map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/v1/login": false, "/healthz/x": false} {
		if got := tracing.Untraced(path); got != want {
			t.Errorf("Untraced(%q) = %v, want %v", path, got, want)
		}
	}
}
