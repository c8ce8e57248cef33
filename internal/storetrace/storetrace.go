// Package storetrace traces the auth server's store calls: Wrap returns
// keycard.Stores whose every method runs in a span named "store.METHOD"
// (store.UserByUsername, store.RotateRefreshToken, …), a child of the
// request's span, with the database's kind (db.system.name) and the
// method (db.operation.name) as attributes. Arguments and results are
// never recorded: they hold password hashes, refresh-token hashes and
// sealed secrets. An error is recorded by its keycard code (error.type);
// only an internal one marks the span as failed, since not_found or
// conflict are answers, not failures.
//
// It is one layer above the back ends, so that SQLite and PostgreSQL are
// traced alike, and the span covers what the auth logic waits for: for a
// refresh on SQLite, the wait for the group commit as well as the
// transaction.
package storetrace

import (
	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/tracing"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Database kinds, for Wrap.
const (
	SQLite     = "sqlite"
	PostgreSQL = "postgresql"
)

// Wrap returns st with every call traced with tp's tracer (see the
// package documentation); system is SQLite or PostgreSQL. Calls made
// outside a recorded span (background work, requests not sampled) make
// no span. With a nil tp, Wrap returns st as it is.
func Wrap(st keycard.Stores, tp trace.TracerProvider, system string) keycard.Stores {
	if tp == nil {
		return st
	}
	op := tracing.Operation(tp, tracing.OpOptions{
		ErrorKind:  keycard.ErrorCode,
		Expected:   func(err error) bool { return keycard.ErrorCode(err) != keycard.EINTERNAL },
		Attributes: []attribute.KeyValue{semconv.DBSystemNameKey.String(system)},
	})
	return keycard.Stores{
		Users:       userStore{st.Users, op},
		Sessions:    sessionStore{st.Sessions, op},
		Keys:        keyStore{st.Keys, op},
		Revocations: revocationStore{st.Revocations, op},
		Audit:       auditStore{st.Audit, op},
		Clients:     clientStore{st.Clients, op},
		Grants:      grantStore{st.Grants, op},
		Logouts:     logoutStore{st.Logouts, op},
		Webhooks:    webhookStore{st.Webhooks, op},
		Emails:      emailStore{st.Emails, op},
		Passkeys:    passkeyStore{st.Passkeys, op},
		MFA:         mfaStore{st.MFA, op},
		Federation:  federationStore{st.Federation, op},
	}
}
