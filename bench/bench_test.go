package bench

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system) this process has used: the
// benchmarks report it per operation as cpu-ns/op beside ns/op, because
// on a shared machine wall time includes the waits for a core and CPU
// time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time used since start per operation.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

// TestLibraries checks, for every library and algorithm, what the benchmarks
// take for granted: verify accepts the reference token and decodes its
// claims, verify rejects the token with one signature byte flipped, and sign
// produces a token that the standard library and Keycard both accept. A
// benchmark that measured a failure path would fail here first.
func TestLibraries(t *testing.T) {
	fx := fixtures(t)
	want := decoded{Subject: subject, SessionID: sessionID, Scope: scope, Roles: roles}
	for _, l := range libs() {
		for _, alg := range algs {
			f := fx[alg]
			t.Run(l.name+"/"+alg+"/verify", func(t *testing.T) {
				v := l.newVerifier(t, f, f.token)
				// Twice: the second call runs on reused state, as in the loop.
				for range 2 {
					if err := v.verify(); err != nil {
						t.Fatalf("verify(reference token) = %v, want nil", err)
					}
				}
				if v.claims != nil {
					if got := v.claims(); !equalDecoded(got, want) {
						t.Errorf("claims after verify = %+v, want %+v", got, want)
					}
				}
				bad := l.newVerifier(t, f, f.tampered)
				if err := bad.verify(); err == nil {
					t.Errorf("verify(token with flipped signature byte) = nil, want an error")
				}
			})
			t.Run(l.name+"/"+alg+"/sign", func(t *testing.T) {
				sign := l.newSigner(t, f)
				out, err := sign()
				if err != nil {
					t.Fatalf("sign() error = %v", err)
				}
				tok := out.String()
				if err := floorVerifier(t, f, tok).verify(); err != nil {
					t.Fatalf("standard library rejects signed token %s: %v", tok, err)
				}
				got, err := keycardCheck(t, f, tok, l.signType)
				if err != nil {
					t.Fatalf("keycard rejects signed token %s: %v", tok, err)
				}
				if !equalDecoded(got, want) {
					t.Errorf("keycard decoded %+v from signed token, want %+v", got, want)
				}
			})
		}
	}
}

func equalDecoded(a, b decoded) bool {
	return a.Subject == b.Subject && a.SessionID == b.SessionID &&
		a.Scope == b.Scope && slices.Equal(a.Roles, b.Roles)
}

// BenchmarkVerify measures parse + signature check + claims validation +
// decoding into each library's claims type, for one fixed token per
// algorithm. Sub-benchmarks are named <lib>/<alg>.
func BenchmarkVerify(b *testing.B) {
	fx := fixtures(b)
	for _, l := range libs() {
		b.Run(l.name, func(b *testing.B) {
			for _, alg := range algs {
				b.Run(alg, func(b *testing.B) {
					f := fx[alg]
					v := l.newVerifier(b, f, f.token)
					b.ReportAllocs()
					start := cpuTime()
					for b.Loop() {
						if err := v.verify(); err != nil {
							b.Fatal(err)
						}
					}
					reportCPU(b, start)
				})
			}
		})
	}
}

// BenchmarkSign measures producing a compact token from claims already held
// in each library's claims type, with the key and any signer built once.
func BenchmarkSign(b *testing.B) {
	fx := fixtures(b)
	for _, l := range libs() {
		b.Run(l.name, func(b *testing.B) {
			for _, alg := range algs {
				b.Run(alg, func(b *testing.B) {
					sign := l.newSigner(b, fx[alg])
					b.ReportAllocs()
					start := cpuTime()
					for b.Loop() {
						if _, err := sign(); err != nil {
							b.Fatal(err)
						}
					}
					reportCPU(b, start)
				})
			}
		})
	}
}
