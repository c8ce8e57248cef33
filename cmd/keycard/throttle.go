package main

import (
	"errors"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// Defaults of the login throttle flags. An account gets throttle's
// default burst; an address, which many users may share behind one NAT,
// gets more.
const (
	defaultLoginAttempts        = throttle.DefaultBurst
	defaultLoginAddressAttempts = 20
)

// loginLimits returns the in-memory login throttles the flags ask for:
// --login-attempts failures per account and --login-address-attempts per
// client address before back-off (0 turns one off), one failure forgiven
// every --login-refill, back-off doubling from one second up to
// --login-lockout-max.
func (f *serverFlags) loginLimits() (auth.LoginLimits, error) {
	switch {
	case f.loginAttempts < 0:
		return auth.LoginLimits{}, errors.New("--login-attempts must not be negative")
	case f.loginAddressAttempts < 0:
		return auth.LoginLimits{}, errors.New("--login-address-attempts must not be negative")
	case f.loginLockoutMax < throttle.DefaultBaseDelay:
		return auth.LoginLimits{}, errors.New("--login-lockout-max must be at least 1s")
	case f.loginRefill <= 0:
		return auth.LoginLimits{}, errors.New("--login-refill must be positive")
	}
	p := throttle.Policy{Refill: f.loginRefill, MaxDelay: f.loginLockoutMax}
	var l auth.LoginLimits
	if f.loginAttempts > 0 {
		p.Burst = f.loginAttempts
		l.Account = throttle.NewMemory(p, nil)
	}
	if f.loginAddressAttempts > 0 {
		p.Burst = f.loginAddressAttempts
		l.Address = throttle.NewMemory(p, nil)
	}
	return l, nil
}
