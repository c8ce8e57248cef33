package sqlite_test

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/sqlite"
)

var walDetail = flag.Bool("walpages", false, "BenchmarkRotateGrant: print the WAL's frames per commit by b-tree")

// BenchmarkRotateGrant measures rotations as the refresh grant asks for
// them under wrk's load (bench/wrk/refresh.lua through wrkbench): 16
// goroutines, two sessions each of 16 users, with the user, the key
// generation and the audit row. It reports the process's CPU time per
// rotation (cpu-µs/op, the batcher's goroutine included) and the WAL's
// growth per rotation in pages (wal-pages/op: each is written whole at
// commit), in two runs: "checkpoints" as the server runs, and "wal" with
// automatic checkpoints off, so that every frame written stays counted
// (-walpages says which b-trees the frames were of).
func BenchmarkRotateGrant(b *testing.B) {
	b.Run("checkpoints", func(b *testing.B) { benchRotateGrant(b, false) })
	b.Run("wal", func(b *testing.B) { benchRotateGrant(b, true) })
}

func benchRotateGrant(b *testing.B, countWAL bool) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "keycard.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := db.Stores()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 16 {
		id := fmt.Sprint("user", i)
		u := &keycard.User{ID: id, Username: id, NormalizedUsername: id, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", Roles: []string{"user"}, CreatedAt: t0, UpdatedAt: t0, PasswordChangedAt: t0}
		if err := s.Users.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	if countWAL {
		if err := db.SetAutoCheckpoint(ctx, 0); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	walBefore := walSize(b, path)
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		type chain struct{ tid, hash string }
		var chains []chain
		g := n.Add(1)
		for range 2 {
			sid, _ := keycard.NewID(rand.Reader)
			_, tid, hash, _ := keycard.NewRefreshToken(rand.Reader)
			sess := &keycard.Session{ID: sid, UserID: fmt.Sprint("user", g%16), ClientID: "", Scope: "openid offline_access", AMR: []string{"pwd"}, AuthTime: t0, CreatedAt: t0, LastUsedAt: t0, IdleTimeout: keycard.DefaultIdleTimeout, ExpiresAt: t0.Add(keycard.DefaultSessionLifetime)}
			if err := s.Sessions.CreateSession(ctx, sess, &keycard.RefreshToken{ID: tid, SecretHash: hash, CreatedAt: t0}, nil); err != nil {
				b.Error(err)
				return
			}
			chains = append(chains, chain{tid, string(hash)})
		}
		now := t0
		for i := 0; pb.Next(); i++ {
			c := &chains[i%len(chains)]
			_, nid, nhash, _ := keycard.NewRefreshToken(rand.Reader)
			now = now.Add(time.Millisecond)
			res, err := s.Sessions.RotateRefreshToken(ctx, keycard.RotateRequest{
				TokenID: c.tid, SecretHash: []byte(c.hash), Now: now, Grace: keycard.DefaultRotationGrace,
				Successor:       keycard.RefreshToken{ID: nid, SecretHash: nhash},
				SuccessorSealed: make([]byte, 120),
				Audit:           &keycard.AuditEvent{Time: now, Type: keycard.AuditRefresh, ClientAddr: "127.0.0.1", UserAgent: "wrk"},
				WithUser:        true, WithKeyGeneration: true,
			})
			if err != nil || res.Outcome != keycard.Rotated {
				b.Errorf("rotate: %v, %v", res, err)
				return
			}
			c.tid, c.hash = nid, string(nhash)
		}
	})
	b.StopTimer()
	var ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	if !countWAL {
		return
	}
	if *walDetail {
		cp := filepath.Join(b.TempDir(), "copy.db")
		for _, suf := range []string{"", "-wal"} {
			data, err := os.ReadFile(path + suf)
			if err != nil {
				b.Fatal(err)
			}
			os.WriteFile(cp+suf, data, 0o600)
		}
		walPages(b, cp)
	}
	b.ReportMetric(float64(walSize(b, path)-walBefore)/4120/float64(b.N), "wal-pages/op")
}

func walSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
