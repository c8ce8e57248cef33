package httpapi_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/sqlite"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing on: the same benchmarks with every request sampled and its
// spans (the request's, the store calls', password.verify, token.sign)
// batched to an exporter that drops them, so that the figure is the cost
// of making and queuing spans, without a network. Compare with the
// untraced benchmarks:
//
//	go test -run '^$' -bench 'RefreshGrant|Login$|LoginTraced' -benchtime 3s -count 6 ./internal/httpapi | benchstat -col /traced -

// discardExporter drops every span.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func newTracedBenchServer(b *testing.B) *benchServer {
	b.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keycard.db"),
		sqlite.Options{RevocationTTL: auth.DefaultAccessTTL + auth.DefaultLeeway})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return newBenchServerTraced(b, db.Stores(), tp)
}

// BenchmarkRefreshGrantTraced is BenchmarkRefreshGrant with tracing on.
func BenchmarkRefreshGrantTraced(b *testing.B) { benchRefreshGrant(b, newTracedBenchServer(b)) }

// BenchmarkLoginTraced is BenchmarkLogin with tracing on.
func BenchmarkLoginTraced(b *testing.B) { benchLogin(b, newTracedBenchServer(b)) }
