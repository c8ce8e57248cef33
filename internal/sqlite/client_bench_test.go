package sqlite_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/sqlite"
)

// BenchmarkClientWithKeyGeneration measures the client's lookup of a
// client credentials grant (a service client with scopes and an
// audience), from one goroutine, with a request's context (one that can
// end, as an HTTP request's can). Besides ns/op it reports the process's
// CPU time per lookup (cpu-ns/op: user and system, every thread, the
// steadier figure on a loaded machine).
func BenchmarkClientWithKeyGeneration(b *testing.B) {
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keycard.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	clients := db.Stores().Clients
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	c := &keycard.Client{ID: "svc_benchmark", Name: "benchmark", SecretHash: keycard.HashClientSecret("secret"),
		Scopes: []string{"orders:read", "orders:write"}, Audiences: []string{"https://api.example.com"}, CreatedAt: t0, UpdatedAt: t0}
	if err := clients.CreateClient(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, _, err := clients.ClientWithKeyGeneration(ctx, c.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
