package postgres_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
	"github.com/keycard-auth/keycard/internal/storetest"
)

// BenchmarkRotate measures store-level refresh rotations, each on its own
// session's live token, from parallel goroutines: the database share of a
// refresh grant, comparable with internal/sqlite's
// BenchmarkRotateRefreshToken.
func BenchmarkRotate(b *testing.B) {
	benchRotate(b, keycard.RotateRequest{})
}

// BenchmarkRotateKeyGeneration measures what reading the key generation
// with the rotation costs: rotations as a refresh grant asks for them,
// with the user, without and with the key generation (one more statement
// in the same round trip).
func BenchmarkRotateKeyGeneration(b *testing.B) {
	b.Run("user", func(b *testing.B) { benchRotate(b, keycard.RotateRequest{WithUser: true}) })
	b.Run("user+keygen", func(b *testing.B) { benchRotate(b, keycard.RotateRequest{WithUser: true, WithKeyGeneration: true}) })
}

// benchRotate runs rotations with the With… options of opts on a fresh
// database.
func benchRotate(b *testing.B, opts keycard.RotateRequest) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.NewDatabase(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := db.Stores()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &keycard.User{ID: "u", Username: "u", NormalizedUsername: "u", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
	if err := s.Users.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	pg := backendCPU(ctx, b, db)
	// Creating and migrating the database is not measured.
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sid, _ := keycard.NewID(rand.Reader)
		_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
		sess := &keycard.Session{ID: sid, UserID: u.ID, CreatedAt: t0, LastUsedAt: t0, IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
		if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
			b.Error(err)
			return
		}
		now := t0
		for pb.Next() {
			_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
			now = now.Add(time.Millisecond)
			var audit *keycard.AuditEvent
			if opts.Audit != nil {
				a := *opts.Audit
				a.Time = now
				audit = &a
			}
			res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
				TokenID: tid, SecretHash: hash, Now: now, Grace: keycard.DefaultRotationGrace,
				Successor:       keycard.RefreshToken{ID: nid, SecretHash: nhash},
				SuccessorSealed: make([]byte, 120),
				WithUser:        opts.WithUser, WithKeyGeneration: opts.WithKeyGeneration, Audit: audit,
			})
			if err != nil || res.Outcome != keycard.Rotated {
				b.Errorf("rotate: %v, %v", res, err)
				return
			}
			tid, hash = nid, nhash
		}
	})
	b.StopTimer()
	pg(b)
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU starts counting the CPU time of this process and of the
// PostgreSQL backends serving db's database, and returns the function
// that reports them per operation as client-µs/op and pg-µs/op; the
// latter is left out when the backends' /proc entries cannot be
// read (a server on another machine). The pool's
// connections are opened first, so that the backends counted are the
// ones that will serve the benchmark.
func backendCPU(ctx context.Context, b *testing.B, db *postgres.DB) func(*testing.B) {
	b.Helper()
	pids := func() []int {
		var pids []int
		rows, err := db.Pool().Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var pid int
			if err := rows.Scan(&pid); err != nil {
				b.Fatal(err)
			}
			pids = append(pids, pid)
		}
		return pids
	}
	// schedstat's first field: nanoseconds on a CPU.
	cpu := func(pid int) (time.Duration, bool) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, false
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		return time.Duration(ns), err == nil
	}
	// Open every connection the pool may use.
	conns := make([]*pgxpool.Conn, 0, db.Pool().Config().MaxConns)
	for range cap(conns) {
		c, err := db.Pool().Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	start := map[int]time.Duration{}
	for _, pid := range pids() {
		if t, ok := cpu(pid); ok {
			start[pid] = t
		}
	}
	self := processCPU()
	return func(b *testing.B) {
		b.ReportMetric(float64((processCPU()-self).Microseconds())/float64(b.N), "client-µs/op")
		if len(start) == 0 {
			return
		}
		var spent time.Duration
		for pid, t0 := range start {
			t, ok := cpu(pid)
			if !ok {
				return // a backend went: the sum would be short
			}
			spent += t - t0
		}
		b.ReportMetric(float64(spent.Microseconds())/float64(b.N), "pg-µs/op")
	}
}

// BenchmarkAuthCodeFlow is internal/sqlite's BenchmarkAuthCodeFlow on
// PostgreSQL: CreateAuthCode, then Redeem, from parallel goroutines.
func BenchmarkAuthCodeFlow(b *testing.B) {
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	storetest.BenchAuthCodeFlow(b, db.Stores())
}

// BenchmarkRotateGrant measures rotations as a refresh grant asks for
// them (the user, the key generation and the audit row), and reports
// beside the client's time the CPU that PostgreSQL's backends spent per
// rotation ("pg-µs/op", read from /proc when the server runs on this
// machine; absent otherwise): PostgreSQL's share of a grant, which on a
// machine shared with the server limits the rate as much as Keycard's.
func BenchmarkRotateGrant(b *testing.B) {
	benchRotate(b, keycard.RotateRequest{WithUser: true, WithKeyGeneration: true,
		Audit: &keycard.AuditEvent{Type: keycard.AuditRefresh, ClientAddr: "192.0.2.1", UserAgent: "bench"}})
}

// BenchmarkSessionWithUser is internal/sqlite's on PostgreSQL (the
// PostgreSQL server's own CPU is not counted: the wall time shows the
// round trip saved).
func BenchmarkSessionWithUser(b *testing.B) {
	db, err := postgres.Open(context.Background(), pgtest.NewDatabase(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	storetest.BenchSessionWithUser(b, db.Stores())
}
