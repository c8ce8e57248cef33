package auth

import (
	"context"
	"encoding/base32"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/totp"
	"github.com/keycard-auth/keycard/jose"
)

// cpuTime returns the CPU time the process has used (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSignIn compares, in one run, a password sign-in with a
// sign-in with password and TOTP code (the password step, then
// CompleteMFA), both on SQLite with the default argon2id parameters and
// the login throttles on, as a server runs them. The clock moves one
// TOTP step per sign-in so that every code is fresh. Besides ns/op it
// reports the process's CPU time per sign-in (cpu-ns/op), steadier on a
// busy machine. Issue 15 asks that the second be at most 1.05 times the
// first: BENCHMARKS.md has the figures.
func BenchmarkSignIn(b *testing.B) {
	f := newFixture(b, jose.ES256)
	ctx := context.Background()
	svc, err := NewService(Deps{
		Stores: f.db.Stores(), Keys: f.svc.keys, Sealer: f.svc.sealer, Hasher: &password.Hasher{}, Now: f.clock.Now,
		LoginLimits: LoginLimits{
			Account: throttle.NewMemory(throttle.Policy{Burst: 1000}, f.clock.Now),
			Address: throttle.NewMemory(throttle.Policy{Burst: 1000}, f.clock.Now),
		},
	}, f.svc.cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"alice", "bob"} {
		if _, err := svc.Register(ctx, name, "correct horse battery", []string{"user"}); err != nil {
			b.Fatal(err)
		}
	}
	e, err := enrolForBench(svc, f.clock)
	if err != nil {
		b.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, signIn func() error) {
		cpu0 := cpuTime()
		b.ResetTimer()
		for range b.N {
			f.clock.Advance(totp.Period)
			if err := signIn(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	}
	b.Run("factors=password", func(b *testing.B) {
		run(b, func() error {
			_, err := svc.Login(ctx, "alice", "correct horse battery", Agent{Addr: "192.0.2.1"})
			return err
		})
	})
	b.Run("factors=password+totp", func(b *testing.B) {
		run(b, func() error {
			_, err := svc.Login(ctx, "bob", "correct horse battery", Agent{Addr: "192.0.2.1"})
			var mfa *MFARequiredError
			if !errors.As(err, &mfa) {
				return err
			}
			_, err = svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: totp.Code(secret, totp.Step(f.clock.Now()))}, Agent{Addr: "192.0.2.1"})
			return err
		})
	})
	// The second step alone (CompleteMFA: the token, the code, the
	// session and its tokens), the password step untimed: what the
	// second factor adds is at most this, an upper bound that does not
	// drown in the noise of argon2id.
	b.Run("factors=totp-step-only", func(b *testing.B) {
		var cpu time.Duration
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			f.clock.Advance(totp.Period)
			_, err := svc.Login(ctx, "bob", "correct horse battery", Agent{Addr: "192.0.2.1"})
			var mfa *MFARequiredError
			if !errors.As(err, &mfa) {
				b.Fatal(err)
			}
			code := totp.Code(secret, totp.Step(f.clock.Now()))
			c0 := cpuTime()
			b.StartTimer()
			if _, err := svc.CompleteMFA(ctx, mfa.Token, MFAProof{Code: code}, Agent{Addr: "192.0.2.1"}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu += cpuTime() - c0
		}
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	})
}

// enrolForBench sets up bob's authenticator app.
func enrolForBench(svc *Service, clk *clock) (*TOTPEnrollment, error) {
	ctx := context.Background()
	tok, err := svc.Login(ctx, "bob", "correct horse battery", Agent{})
	if err != nil {
		return nil, err
	}
	p, err := svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		return nil, err
	}
	e, err := svc.BeginTOTP(ctx, p)
	if err != nil {
		return nil, err
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil {
		return nil, err
	}
	_, err = svc.ConfirmTOTP(ctx, p, totp.Code(secret, totp.Step(clk.Now())), Agent{})
	return e, err
}
