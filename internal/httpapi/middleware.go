package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/keycard-auth/keycard/internal/tracing"
	"go.opentelemetry.io/otel/trace"
)

// ctxKey is the type of this package's context keys.
type ctxKey int

const (
	requestIDKey ctxKey = iota
	principalKey
)

// RequestID returns the request id of the request whose context ctx is,
// or "" outside a request served by a Server.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// maxRequestIDLen bounds a request id accepted from a client.
const maxRequestIDLen = 64

// requestID returns the client's X-Request-Id when it is short and plain
// (at most maxRequestIDLen characters from [A-Za-z0-9._:-]), and a new
// random id otherwise, so that nothing a client sends is logged verbatim
// unless it is harmless.
func requestID(r *http.Request) string {
	if v := r.Header.Values("X-Request-Id"); len(v) == 1 && plainID(v[0]) {
		return v[0]
	}
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func plainID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._:-", c) >= 0) {
			return false
		}
	}
	return true
}

// maxLoggedPath bounds the path written to the log.
const maxLoggedPath = 200

// logPath returns the request path for the log: never the query string,
// and at most maxLoggedPath bytes of the path.
func logPath(r *http.Request) string { return truncate(r.URL.Path, maxLoggedPath) }

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an id (echoed in X-Request-Id and
// available from RequestID), sets the headers every response carries, and
// logs one line per request: method, path, status, duration and request
// id. It logs nothing else from the request: no query string, no headers,
// no body. With tracing on, the request runs in its server span, named by
// its route once the mux has found it, so the line logged carries the
// trace id.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		var span trace.Span
		if s.tracer != nil && !tracing.Untraced(r.URL.Path) {
			r, span = s.tracer.Start(r)
		}
		id := requestID(r)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		// Responses hold tokens or personal data unless a handler says
		// otherwise (the JWKS and discovery documents do).
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		elapsed := s.now().Sub(start)
		if s.metrics != nil {
			// The mux set r.Pattern on this request: a route pattern,
			// never the raw path, so clients cannot create label values.
			s.metrics.ObserveRequest(r.Pattern, sw.status, elapsed)
		}
		if span != nil {
			tracing.End(span, r.Method, r.Pattern, sw.status)
		}
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		ctx := r.Context()
		if !s.log.Enabled(ctx, level) {
			return
		}
		// The record is made here rather than by Logger.LogAttrs, which
		// also records the caller's program counter (runtime.Callers, a
		// tenth of the line's cost) for a handler's AddSource: Keycard's
		// handlers have none, and the source of the access log would
		// always be this line.
		rec := slog.NewRecord(time.Now(), level, "request", 0)
		rec.AddAttrs(
			slog.String("method", truncate(r.Method, 32)),
			slog.String("path", logPath(r)),
			slog.Int("status", sw.status),
			slog.Duration("duration", elapsed),
		)
		s.log.Handler().Handle(ctx, rec)
	})
}

// recoverPanics answers a panicking handler with a 500 (if nothing has
// been written yet) and logs the panic with its stack. The stack and the
// panic value come from the code, not the request, but the request's
// headers and body are never logged. http.ErrAbortHandler is re-raised, as
// net/http expects.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw, ok := w.(*statusWriter)
		if !ok {
			sw = &statusWriter{ResponseWriter: w}
		}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			ctx := r.Context()
			s.log.ErrorContext(ctx, "panic", "method", r.Method, "path", logPath(r),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if sw.status == 0 {
				writeJSON(sw, http.StatusInternalServerError, errorBody{Error: codeServerError, Description: "Internal error."})
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// jsonErrorsFromMux replaces the plain-text bodies of ServeMux's own 404
// and 405 answers with the error shape. It leaves the Allow header of a
// 405 in place, and does not touch responses of the routes, which set
// their own JSON content type before writing an error.
func jsonErrorsFromMux(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&muxErrorWriter{ResponseWriter: w}, r)
	})
}

type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (w *muxErrorWriter) WriteHeader(code int) {
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.replaced = true
		body := errorBody{Error: codeNotFound, Description: "No such endpoint."}
		if code == http.StatusMethodNotAllowed {
			body = errorBody{Error: codeMethodNotAllowed, Description: "Method not allowed; see the Allow header."}
		}
		writeJSON(w.ResponseWriter, code, body)
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *muxErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *muxErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WithRequestID returns a slog.Handler that adds the request id of the
// context (see RequestID), when there is one, to every record, so that
// the logs of the auth service can be matched to requests: wrap the
// handler of the service's logger in it. Wrapping twice adds the id once.
func WithRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
