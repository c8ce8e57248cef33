//go:build unix

package password_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/password"
)

// BenchmarkVerifyParallel is the raw argon2id rate a server's logins are
// held to: one verification with the default parameters on each of
// GOMAXPROCS goroutines at once, as many as a Hasher's slots let run,
// through the Hasher (its reused buffers). Beside ns/op (wall time per
// verification, all goroutines together) it reports cpu-ms/op, the
// process's user and system CPU time per verification, to compare with a
// server's CPU per login (bench/login-server.sh).
func BenchmarkVerifyParallel(b *testing.B) {
	var h password.Hasher
	stored, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	before := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify("correct horse battery staple", stored); !ok || err != nil {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-before)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
