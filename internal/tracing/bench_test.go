package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keycard-auth/keycard/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// discardExporter drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// BenchmarkRequestSpans measures the tracing work of one request shaped
// like a refresh grant — its server span and four internal spans (three
// store calls and a signing) — batched to an exporter that drops them:
// the CPU that tracing adds to a request, to hold against a refresh's
// own (cpu-us/op of internal/httpapi's BenchmarkRefreshGrant). "off" is
// the same code with tracing off: nil checks.
//
//	go test -run '^$' -bench RequestSpans -benchmem -count 6 ./internal/tracing
func BenchmarkRequestSpans(b *testing.B) {
	names := []string{"store.RotateRefreshToken", "store.KeyGeneration", "token.sign", "store.AppendAudit"}
	run := func(b *testing.B, s *tracing.Server, op tracing.Op) {
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", nil)
		b.ReportAllocs()
		for b.Loop() {
			// As httpapi, auth and storetrace do it: nil checks when off.
			r, span := req, trace.Span(nil)
			if s != nil {
				r, span = s.Start(req)
			}
			for _, name := range names {
				if op != nil {
					_, end := op(r.Context(), name)
					end(nil)
				}
			}
			if span != nil {
				tracing.End(span, r.Method, "POST /oauth/token", http.StatusOK)
			}
		}
	}
	b.Run("off", func(b *testing.B) { run(b, tracing.NewServer(nil), tracing.Operation(nil, tracing.OpOptions{})) })
	b.Run("on", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		defer tp.Shutdown(context.Background())
		run(b, tracing.NewServer(tp), tracing.Operation(tp, tracing.OpOptions{}))
	})
}
