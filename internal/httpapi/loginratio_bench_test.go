package httpapi_test

// Steadier measures of a login against the raw argon2id rate than
// BenchmarkLogin and BenchmarkArgon2idHash run one after the other, whose
// pass-by-pass ratio swung 0.78–1.27 on the shared 2-core machine (other
// work and its memory traffic change between the two benchmarks).
// bench/login.sh runs them; BENCHMARKS.md ("Login and HS256, steadier")
// has the method, its limits and the figures.
//
//   - BenchmarkLoginHashPairs alternates short rounds of logins and of
//     argon2id verifications in one process, at the same parallelism as
//     BenchmarkLogin, and reports the median of the per-pair ratios, so
//     that a burst of other work lands on one pair, not on one side.
//   - BenchmarkLoginSerial and BenchmarkArgon2idSerial do one operation at
//     a time, for valgrind's callgrind: the instructions of N logins less
//     those of M, over the same for hashes, is a login's instructions over
//     a hash's, a figure that does not move with the machine's load.

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/password"
)

// pairRoundOps is how many operations each round of a pair runs, spread
// over benchWorkers() goroutines: four each, about 1–3 s a round on the
// 2-core machine, long enough that the last operations of a round (when
// fewer than GOMAXPROCS are left to run) are a small part of it.
const pairRoundOps = 4 * benchParallelism

// BenchmarkLoginHashPairs measures b.N pairs of rounds: one of logins
// (POST /v1/login over loopback HTTP, as BenchmarkLogin) and one of
// password.Hasher.Verify with the same parameters (as
// BenchmarkArgon2idHash), each of pairRoundOps×GOMAXPROCS operations on
// benchWorkers() goroutines; the order alternates from pair to pair. It
// reports the medians, over the pairs, of
//
//   - login/hash-rate: the login rate over the hash rate in the same pair
//     (wall time; the target is ≥ 0.95),
//   - login/hash-cpu: a hash's CPU time over a login's (the process's user
//     and system CPU per operation), the rate ratio the two cores would
//     give if nothing else ran on them,
//   - login/hash-user: the same of user CPU time alone, and
//   - login-sys-ms/op, hash-sys-ms/op: the system CPU time per operation
//     (the kernel's work: sockets, file writes, page faults),
//
// and the smallest and largest of each. Each pair's figures go to
// standard error (b.Log would keep only the first ten).
// Run it with -benchtime Nx: N pairs.
func BenchmarkLoginHashPairs(b *testing.B) {
	s := newBenchServer(b)
	n := benchWorkers()
	bodies := s.loginUsers(b, "pair")
	h := &password.Hasher{Params: password.DefaultParams()}
	stored, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}

	ops := pairRoundOps * n / benchParallelism
	login := func(worker int) error {
		_, err := s.post("/v1/login", "application/json", bodies[worker])
		return err
	}
	hash := func(int) error {
		if ok, _, err := h.Verify(benchPassword, stored); !ok || err != nil {
			return fmt.Errorf("Verify = %v, %v", ok, err)
		}
		return nil
	}
	var rate, cpu, user, loginSys, hashSys []float64
	b.ResetTimer()
	for i := range b.N {
		var l, hs roundResult
		if i%2 == 0 {
			l, hs = runRound(b, n, ops, login), runRound(b, n, ops, hash)
		} else {
			hs, l = runRound(b, n, ops, hash), runRound(b, n, ops, login)
		}
		if b.Failed() {
			b.FailNow()
		}
		r := hs.wall.Seconds() / l.wall.Seconds() // (ops/l) / (ops/hs)
		rate = append(rate, r)
		c := 0.0
		if l.user+l.sys > 0 {
			c = float64(hs.user+hs.sys) / float64(l.user+l.sys)
			cpu = append(cpu, c)
			if l.user > 0 {
				user = append(user, float64(hs.user)/float64(l.user))
			}
			loginSys = append(loginSys, ms(l.sys)/float64(ops))
			hashSys = append(hashSys, ms(hs.sys)/float64(ops))
		}
		fmt.Fprintf(os.Stderr, "pair %d of %d: login %.1f/s %.1f+%.1f cpu-ms/op, hash %.1f/s %.1f+%.1f cpu-ms/op (user+system): rate ratio %.3f, cpu ratio %.3f\n",
			i+1, b.N, float64(ops)/l.wall.Seconds(), ms(l.user)/float64(ops), ms(l.sys)/float64(ops),
			float64(ops)/hs.wall.Seconds(), ms(hs.user)/float64(ops), ms(hs.sys)/float64(ops), r, c)
	}
	b.StopTimer()
	reportSpread(b, rate, "login/hash-rate")
	reportSpread(b, cpu, "login/hash-cpu")
	reportSpread(b, user, "login/hash-user")
	reportSpread(b, loginSys, "login-sys-ms/op")
	reportSpread(b, hashSys, "hash-sys-ms/op")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// roundResult is the wall time and the process's user and system CPU
// time of one round; user and sys are 0 where they cannot be read.
type roundResult struct{ wall, user, sys time.Duration }

// runRound runs op ops times on workers goroutines (op is given the
// goroutine's number) and returns the round's wall and CPU time. A
// failed op fails b.
func runRound(b *testing.B, workers, ops int, op func(worker int) error) roundResult {
	var left atomic.Int64
	left.Store(int64(ops))
	u0, s0, cok := processTimes()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := op(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	r := roundResult{wall: time.Since(start)}
	if u1, s1, ok := processTimes(); ok && cok {
		r.user, r.sys = u1-u0, s1-s0
	}
	return r
}

// reportSpread reports the median of xs as unit, and its smallest and
// largest as unit-min and unit-max.
func reportSpread(b *testing.B, xs []float64, unit string) {
	if len(xs) == 0 {
		return
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	med := xs[len(xs)/2]
	if len(xs)%2 == 0 {
		med = (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
	}
	b.ReportMetric(med, unit)
	b.ReportMetric(xs[0], unit+"-min")
	b.ReportMetric(xs[len(xs)-1], unit+"-max")
}

// BenchmarkLoginSerial is BenchmarkLogin one login at a time, by one
// user: the unit that bench/login.sh counts the instructions of.
func BenchmarkLoginSerial(b *testing.B) {
	s := newBenchServer(b)
	if err := s.register("serial"); err != nil {
		b.Fatal(err)
	}
	body := loginBody("serial")
	b.ResetTimer()
	for range b.N {
		if _, err := s.post("/v1/login", "application/json", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idSerial is BenchmarkArgon2idHash one verification at a
// time.
func BenchmarkArgon2idSerial(b *testing.B) {
	h := &password.Hasher{Params: password.DefaultParams()}
	stored, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if ok, _, err := h.Verify(benchPassword, stored); !ok || err != nil {
			b.Fatalf("Verify = %v, %v", ok, err)
		}
	}
}
