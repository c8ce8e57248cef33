package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/username"
)

// LoginLimits are the login throttles (docs/architecture.md "Bad input and
// failure"): one limiter keyed by account, one by client address. A nil
// limiter throttles nothing. They also slow down the guessing of device
// user codes (LookupDevice), under keys of their own: the browser
// session's in Account, the address's in Address.
type LoginLimits struct {
	// Account is keyed by the normalized username, whether or not such a
	// user exists, so that an enumerating client meets the same
	// throttling for every name.
	Account throttle.Limiter
	// Address is keyed by the client address (Agent.Addr; an IPv6
	// address by its /64 network, which one client usually holds whole).
	// Logins without an address are not limited by it.
	Address throttle.Limiter
}

// ThrottledError is the error of a login refused by a login throttle
// before its password was checked. It wraps a *keycard.Error with code
// ETHROTTLED.
type ThrottledError struct {
	// RetryAfter is how long the client must wait: whole seconds, at
	// least one.
	RetryAfter time.Duration
	// Message, when set, replaces the client's message about logins
	// (for the throttles of password-reset requests).
	Message string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: login throttled; retry after %v", e.RetryAfter)
}

// Unwrap returns the keycard error the client is told about; it is the
// same whichever limit was hit and whether or not the account exists.
func (e *ThrottledError) Unwrap() error {
	if e.Message != "" {
		return &keycard.Error{Code: keycard.ETHROTTLED, Message: e.Message}
	}
	return &keycard.Error{Code: keycard.ETHROTTLED, Message: "Too many login attempts. Try again later."}
}

// LoginError is the outcome of a login that failed inside the server (an
// unavailable store), reported to Metrics.LoginOutcome.
const LoginError = "error"

// Login checks a username and password and starts a session. Every
// failure (unknown user, wrong password, disabled user, malformed input)
// gives the same EUNAUTHORIZED error after the same argon2id work, so the
// answer reveals nothing about which accounts exist.
//
// First, the login throttles (Deps.LoginLimits) must allow an attempt for
// the account and for the client address. If either refuses, Login fails
// with a *ThrottledError (code ETHROTTLED) without checking the password,
// and records a login.throttled audit event. A refused login counts as a
// failure of both keys; a successful one forgets the account's failures
// but not the address's, which other clients may share. A throttle that
// fails (an unreachable store) is logged and lets the login through.
func (s *Service) Login(ctx context.Context, name, pass string, c Agent) (*Tokens, error) {
	c = c.clean()
	return s.throttled(ctx, name, c, func() (*Tokens, error) { return s.login(ctx, name, pass, c) })
}

// Reauthenticate is Login into the browser session sessionID, whose user
// signs in again (an application's prompt=login or max_age, a step-up):
// the same throttles and the same answer to every failure, but instead of
// a new session the session's authentication time and methods are
// renewed (so the applications signed in through it stay signed in), and
// the tokens are a new access token of it (no refresh token: the
// session's own goes on). A name that is not the session's user's is
// the same EUNAUTHORIZED error as a wrong password.
func (s *Service) Reauthenticate(ctx context.Context, sessionID, name, pass string, c Agent) (*Tokens, error) {
	c = c.clean()
	return s.throttled(ctx, name, c, func() (*Tokens, error) { return s.reauthenticate(ctx, sessionID, name, pass, c) })
}

// throttled runs a sign-in attempt behind the login throttles.
func (s *Service) throttled(ctx context.Context, name string, c Agent, attempt func() (*Tokens, error)) (*Tokens, error) {
	account, address := loginKeys(name, c.Addr)
	if retry, limits := s.loginAllowed(ctx, account, address); retry > 0 {
		s.stats.LoginOutcome(LoginThrottled)
		s.audit(ctx, keycard.AuditLoginThrottled, anonymous(c), "", map[string]any{
			"limits": limits, "retry_after": int64(retry / time.Second),
		})
		return nil, &ThrottledError{RetryAfter: retry}
	}
	t, err := attempt()
	var mfa *MFARequiredError
	switch {
	case errors.As(err, &mfa):
		// The password was right; the sign-in waits for its second
		// factor, whose attempts have a throttle of their own
		// (CompleteMFA). Counted as neither success nor failure.
	case err == nil:
		s.stats.LoginOutcome(LoginSucceeded)
		if l := s.limits.Account; l != nil {
			if err := l.Success(ctx, account); err != nil {
				s.log.ErrorContext(ctx, "login throttle: recording a success", "err", err)
			}
		}
	case keycard.ErrorCode(err) == keycard.EUNAUTHORIZED:
		s.stats.LoginOutcome(LoginFailed)
		s.loginFailed(ctx, account, address)
	default:
		s.stats.LoginOutcome(LoginError)
	}
	return t, err
}

// loginKeys returns the throttle keys of a login: the account's, a hash
// of the normalized username (of the name as given if it does not
// normalize), so that keys are bounded and a shared store holds no
// usernames; and the address's, "" when addr is empty.
func loginKeys(name, addr string) (account, address string) {
	if _, normalized, err := username.Normalize(name); err == nil {
		name = normalized
	}
	sum := sha256.Sum256([]byte(name))
	account = "account:" + hex.EncodeToString(sum[:16])
	if addr == "" {
		return account, ""
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		ip = ip.Unmap()
		if ip.Is6() {
			p, _ := ip.Prefix(64)
			return account, "address:" + p.String()
		}
		return account, "address:" + ip.String()
	}
	return account, "address:" + addr
}

// loginAllowed asks both throttles for an attempt. It returns 0 if both
// allow one, else the longest wait and the names of the limits hit.
func (s *Service) loginAllowed(ctx context.Context, account, address string) (retry time.Duration, limits string) {
	var hit []string
	check := func(name string, l throttle.Limiter, key string) {
		if l == nil || key == "" {
			return
		}
		ok, wait, err := l.Allow(ctx, key)
		if err != nil {
			s.log.ErrorContext(ctx, "login throttle unavailable; allowing the attempt", "limit", name, "err", err)
			return
		}
		if !ok {
			hit = append(hit, name)
			retry = max(retry, throttle.RetryAfter(wait))
		}
	}
	check("account", s.limits.Account, account)
	check("address", s.limits.Address, address)
	return retry, strings.Join(hit, ",")
}

// loginFailed records a refused login with both throttles (with the
// address's only when account is "").
func (s *Service) loginFailed(ctx context.Context, account, address string) {
	if l := s.limits.Account; l != nil && account != "" {
		if err := l.Failure(ctx, account); err != nil {
			s.log.ErrorContext(ctx, "login throttle: recording a failure", "limit", "account", "err", err)
		}
	}
	if l := s.limits.Address; l != nil && address != "" {
		if err := l.Failure(ctx, address); err != nil {
			s.log.ErrorContext(ctx, "login throttle: recording a failure", "limit", "address", "err", err)
		}
	}
}
