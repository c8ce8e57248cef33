package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Op is a function that times a named piece of work: it starts a span
// named name, a child of the span in ctx, and returns the context to do
// the work in and the function that ends the span with the work's error
// (nil for success). It has the type of auth.Deps.Trace.
type Op = func(ctx context.Context, name string) (context.Context, func(error))

// Operation returns an Op making internal spans with tp's tracer; nil
// when tp is nil. Its spans are made only inside a recorded span (a
// sampled request): work outside any request, such as the background key
// maintenance and the feed watch, and work of requests not sampled, gets
// none, and costs a context lookup. An error is recorded by its kind
// (OpOptions.ErrorKind), never by its text.
func Operation(tp trace.TracerProvider, opt OpOptions) Op {
	if tp == nil {
		return nil
	}
	tracer := tp.Tracer(InstrumentationName)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	if len(opt.Attributes) > 0 {
		opts = append(opts, trace.WithAttributes(opt.Attributes...))
	}
	return func(ctx context.Context, name string) (context.Context, func(error)) {
		if !trace.SpanFromContext(ctx).IsRecording() {
			return ctx, noEnd
		}
		ctx, span := tracer.Start(ctx, name, opts...)
		return ctx, func(err error) {
			if err != nil {
				kind := ""
				if opt.ErrorKind != nil {
					kind = opt.ErrorKind(err)
				}
				if kind == "" {
					kind = fmt.Sprintf("%T", err)
				}
				span.SetAttributes(semconv.ErrorTypeKey.String(kind))
				if opt.Expected == nil || !opt.Expected(err) {
					span.SetStatus(codes.Error, "")
				}
			}
			span.End()
		}
	}
}

func noEnd(error) {}

// OpOptions configure the spans of an Operation.
type OpOptions struct {
	// ErrorKind names the kind of an error for the error.type attribute;
	// when nil or when it returns "", the error's Go type is its kind.
	// It must not return the error's text, which may quote input.
	ErrorKind func(error) string
	// Expected reports errors that are outcomes rather than failures (a
	// lookup that finds nothing): their kind is recorded, but the span
	// is not marked as failed. nil: every error is a failure.
	Expected func(error) bool
	// Attributes are set on every span.
	Attributes []attribute.KeyValue
}
