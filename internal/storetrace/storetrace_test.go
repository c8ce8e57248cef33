package storetrace_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/storetrace"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func newProvider(t *testing.T) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp, exp
}

// TestEveryMethodTraced calls every method of every store interface
// through Wrap, over stores that panic (nil interfaces), and checks that
// each call made its span: a method added to an interface without a
// traced wrapper would pass through untraced, and fail here.
func TestEveryMethodTraced(t *testing.T) {
	tp, exp := newProvider(t)
	wrapped := storetrace.Wrap(keycard.Stores{}, tp, storetrace.SQLite)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	defer parent.End()
	v := reflect.ValueOf(wrapped)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		store := v.Field(i).Elem() // the wrapper behind the interface
		iface := field.Type
		for m := range iface.NumMethod() {
			method := iface.Method(m)
			t.Run(field.Name+"."+method.Name, func(t *testing.T) {
				exp.Reset()
				args := []reflect.Value{reflect.ValueOf(ctx)}
				for a := 1; a < method.Type.NumIn(); a++ {
					args = append(args, reflect.Zero(method.Type.In(a)))
				}
				func() {
					defer func() { recover() }() // the nil store panics
					store.MethodByName(method.Name).Call(args)
				}()
				spans := exp.GetSpans()
				if len(spans) != 1 || spans[0].Name != "store."+method.Name {
					t.Fatalf("got spans %v, want one named store.%s", names(spans), method.Name)
				}
				if got, want := spans[0].Parent.SpanID(), parent.SpanContext().SpanID(); got != want {
					t.Errorf("got parent %s, want the request's span %s", got, want)
				}
			})
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// users answers every UserByID with err.
type users struct {
	keycard.UserStore
	err error
}

func (u users) UserByID(ctx context.Context, id string) (*keycard.User, error) {
	if u.err != nil {
		return nil, u.err
	}
	return &keycard.User{ID: id}, nil
}

// TestErrorsAndAttributes: the database kind is recorded; an error by its
// keycard code, never its text; only an internal error marks the span
// failed; and no span is made outside a recorded one.
func TestErrorsAndAttributes(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantType   string
		wantFailed bool
	}{
		{name: "success"},
		{name: "not found is an answer", err: &keycard.Error{Code: keycard.ENOTFOUND, Message: "no user secret-name"}, wantType: keycard.ENOTFOUND},
		{name: "internal error", err: errors.New("connection to db password=hunter2 failed"), wantType: keycard.EINTERNAL, wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, exp := newProvider(t)
			st := storetrace.Wrap(keycard.Stores{Users: users{err: tt.err}}, tp, storetrace.PostgreSQL)
			ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
			st.Users.UserByID(ctx, "u1")
			parent.End()
			spans := exp.GetSpans()
			if len(spans) != 2 {
				t.Fatalf("got spans %v, want the store's and the request's", names(spans))
			}
			s := spans[0]
			attrs := map[string]string{}
			for _, kv := range s.Attributes {
				attrs[string(kv.Key)] = kv.Value.String()
			}
			if attrs["db.system.name"] != "postgresql" {
				t.Errorf("got db.system.name %q, want postgresql", attrs["db.system.name"])
			}
			if attrs["error.type"] != tt.wantType {
				t.Errorf("got error.type %q, want %q", attrs["error.type"], tt.wantType)
			}
			if failed := s.Status.Code == codes.Error; failed != tt.wantFailed {
				t.Errorf("got failed %v, want %v", failed, tt.wantFailed)
			}
			if s.Status.Description != "" || len(s.Events) != 0 {
				t.Errorf("the error's text was recorded: status %q, events %v", s.Status.Description, s.Events)
			}
		})
	}
	t.Run("outside a recorded span", func(t *testing.T) {
		tp, exp := newProvider(t)
		st := storetrace.Wrap(keycard.Stores{Users: users{}}, tp, storetrace.SQLite)
		if _, err := st.Users.UserByID(context.Background(), "u1"); err != nil {
			t.Fatal(err)
		}
		if spans := exp.GetSpans(); len(spans) != 0 {
			t.Errorf("got spans %v outside any request, want none", names(spans))
		}
	})
	t.Run("no provider", func(t *testing.T) {
		in := keycard.Stores{Users: users{}}
		if got := storetrace.Wrap(in, nil, storetrace.SQLite); got != in {
			t.Error("Wrap without a provider changed the stores")
		}
	})
}
