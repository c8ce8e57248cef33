// Package pgtest gives tests a fresh PostgreSQL database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the environment variable with the URL of a PostgreSQL server
// on which tests may create and drop databases, such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable.
const EnvVar = "KEYCARD_TEST_POSTGRES"

// Skip hint when EnvVar is not set.
const hint = EnvVar + " not set (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); skipping PostgreSQL test"

// NewDatabase creates an empty database named keycard_test_<random> on the
// server named by EnvVar, drops it WITH (FORCE) when the test ends, and returns its
// URL. Without EnvVar the test is skipped.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := lookup(t)
	var b [8]byte
	rand.Read(b[:])
	name := "keycard_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: connecting to %s: %v", EnvVar, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvVar)
	}
	u.Path = "/" + name
	return u.String()
}

// AdminURL returns the URL in EnvVar, skipping the test without it.
func AdminURL(t testing.TB) string {
	t.Helper()
	return lookup(t)
}

func lookup(t testing.TB) string {
	t.Helper()
	v := os.Getenv(EnvVar)
	if v == "" {
		t.Skip(hint)
	}
	return v
}
