package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// The MFA step (docs/accounts.md, "Second factors"). A password sign-in
// of a user who has a second factor does not start a session: Login and
// Reauthenticate fail with an *MFARequiredError holding an MFA token, a
// short-lived, single-use, sealed statement that the password was right.
// The client then proves a second factor with CompleteMFA, which starts
// (or renews) the session with the AMR of both factors. The JSON API
// answers mfa_required with the token; the sign-in page keeps it in a
// cookie and asks for the code; the OAuth authorization endpoint signs
// users in through that page, so single sign-on goes through the same
// step.
//
// Factors plug in as SecondFactor values (Service.factors): each says
// whether a user has it and checks a proof. TOTP and recovery codes are
// built in; another factor (a passkey) is one more entry, with its proof
// in MFAProof.Response.

// AMROTP is the AMR value (RFC 8176) of a one-time password: a TOTP code
// or a recovery code. AMRMFA, with the other AMR values, is in oidc.go.
const AMROTP = "otp"

// Names of the second factors (MFAProof.Factor, MFARequiredError.Factors).
const (
	FactorTOTP         = "totp"
	FactorRecoveryCode = "recovery_code"
)

// MFA audit event types.
const (
	AuditMFAEnrolled                = "mfa.enrolled" // a second factor became active; webhook mfa.enrolled
	AuditMFARemoved                 = "mfa.removed"  // by the user, an admin or the operator
	AuditMFAFailed                  = "mfa.failed"   // a wrong second factor at sign-in
	AuditMFAThrottled               = "mfa.throttled"
	AuditRecoveryCodeUsed           = "mfa.recovery_code_used"
	AuditRecoveryCodesRegenerated   = "mfa.recovery_codes_regenerated"
	AuditMFAEnrollmentRequiredLogin = "mfa.enrollment_required" // the policy sent a user to enrol at sign-in
)

// Mail templates of the second factors.
const (
	MailMFAEnrolled              = "mfa-enrolled"
	MailMFARemoved               = "mfa-removed"
	MailRecoveryCodeUsed         = "recovery-code-used"
	MailRecoveryCodesRegenerated = "recovery-codes-regenerated"
)

// MFATokenLifetime is how long an MFA token is good for.
const MFATokenLifetime = 5 * time.Minute

// maxMFATokenLen bounds the MFA token a client presents, and one made:
// it lives in a cookie (4096 bytes with its name and attributes); a
// federated sign-in's subject and session id make it longer than a
// password's.
const maxMFATokenLen = 3072

// mfaTokenPrefix starts every MFA token, so that one is told from other
// tokens in a log line or a bug report.
const mfaTokenPrefix = "mfa1."

// MFARequiredError is the answer to a correct password of a user who must
// prove a second factor before getting tokens. It wraps a *keycard.Error
// with code EFORBIDDEN, so that a caller that knows nothing of the MFA
// step refuses the sign-in.
type MFARequiredError struct {
	// Token is the MFA token to give back to CompleteMFA: a secret.
	Token string
	// Factors are the second factors the user can prove (Factor…).
	Factors []string
	// ExpiresIn is the token's lifetime.
	ExpiresIn time.Duration
	// Enroll is set when the user has no second factor but the policy
	// (Config.RequireMFAForRoles) requires one: the user must enrol one
	// (BeginTOTPWithMFAToken) and confirm it with CompleteMFA.
	Enroll bool
}

func (e *MFARequiredError) Error() string {
	if e.Enroll {
		return "auth: the user must enrol a second factor"
	}
	return "auth: a second factor is required"
}

func (e *MFARequiredError) Unwrap() error {
	if e.Enroll {
		return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Your account must set up a second factor before signing in."}
	}
	return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "A second factor is required."}
}

// InvalidMFAProofError is CompleteMFA's answer to a wrong or malformed
// proof (Err: EUNAUTHORIZED "Invalid code.", or EINVALID, or ENOTFOUND
// for an enrolment not begun). The token presented is used up; Token is
// a new one of the same sign-in, expiring when the first did, for the
// next attempt.
type InvalidMFAProofError struct {
	Err       error
	Token     string
	ExpiresIn time.Duration
}

func (e *InvalidMFAProofError) Error() string { return "auth: second factor refused: " + e.Err.Error() }
func (e *InvalidMFAProofError) Unwrap() error { return e.Err }

// MFAProof is a second factor presented to CompleteMFA.
type MFAProof struct {
	// Factor names the factor; empty: a 6-digit Code is a TOTP code,
	// anything else a recovery code.
	Factor string
	// Code is a TOTP code or a recovery code.
	Code string
	// Response is the proof of a factor that is not a code (a passkey's
	// assertion), for the factor's Verify to read.
	Response []byte

	// agent is the client of the attempt, set by CompleteMFA for the
	// audit events a factor's Verify records.
	agent Agent
}

// MFAPending is the state an MFA token carries: a password sign-in
// waiting for its second factor.
type MFAPending struct {
	// ID identifies this sign-in attempt; a factor with a challenge (a
	// passkey) binds its challenge to it.
	ID     string `json:"id"`
	UserID string `json:"sub"`
	// SessionID is the browser session being signed in to again
	// (Reauthenticate); empty for a new session.
	SessionID string `json:"sid,omitempty"`
	// PasswordChangedAt binds the token to the password it proved.
	PasswordChangedAt int64 `json:"pwd"`
	ExpiresAt         int64 `json:"exp"` // Unix seconds
	// Enroll: the policy requires the user to enrol first.
	Enroll bool `json:"enroll,omitempty"`
	// Upstream is the provider's sign-in that stands for the password
	// when the first step was a federated sign-in (FederatedSignIn): the
	// session it starts is that provider's (amr "fed", idp, back-channel
	// logout).
	Upstream *PendingUpstream `json:"up,omitempty"`
}

// PendingUpstream is what an MFA token keeps of a federated sign-in.
type PendingUpstream struct {
	Provider  string `json:"p"`
	Subject   string `json:"s"`
	SessionID string `json:"sid,omitempty"`
}

// SecondFactor is one kind of second factor the MFA step accepts.
type SecondFactor struct {
	// Name is the factor's name (MFAProof.Factor).
	Name string
	// AMR are the methods (RFC 8176) a sign-in with it records besides
	// "pwd"; "mfa" is added to them.
	AMR []string
	// Enrolled reports whether the user has the factor, from the
	// second factors the store says the user has (MFAStore.Factors: one
	// read for every factor of a sign-in).
	Enrolled func(u *keycard.User, has keycard.MFAFactors) bool
	// Verify checks the proof for the user of pending. A wrong proof is
	// an EUNAUTHORIZED error (counted by the MFA throttle); a proof must
	// work at most once.
	Verify func(ctx context.Context, u *keycard.User, pending *MFAPending, p MFAProof) error
	// VerifyAMR, when not nil, is used instead of Verify by a factor
	// whose methods depend on the proof (a passkey: "hwk" or "swk"): it
	// returns them in place of AMR.
	VerifyAMR func(ctx context.Context, u *keycard.User, pending *MFAPending, p MFAProof) ([]string, error)
}

// MFAResult is the outcome of CompleteMFA.
type MFAResult struct {
	Tokens *Tokens
	// Reauthenticated: the tokens are a new access token of the browser
	// session signed in to again, without a refresh token.
	Reauthenticated bool
	// Factor is the factor that was proved.
	Factor string
	// RecoveryCodes are the new recovery codes of an enrolment the
	// policy required; shown once.
	RecoveryCodes []string
	// RecoveryCodesLeft is how many unused recovery codes the user has
	// after a recovery code was used; -1 otherwise.
	RecoveryCodesLeft int
}

// builtinFactors returns TOTP and recovery codes.
func (s *Service) builtinFactors() []SecondFactor {
	return []SecondFactor{
		{Name: FactorTOTP, AMR: []string{AMROTP}, Verify: s.verifyTOTP,
			Enrolled: func(_ *keycard.User, has keycard.MFAFactors) bool { return has.TOTP }},
		{Name: FactorRecoveryCode, AMR: []string{AMROTP}, Verify: s.verifyRecoveryCode,
			Enrolled: func(_ *keycard.User, has keycard.MFAFactors) bool { return has.RecoveryCodesLeft > 0 }},
	}
}

// AddSecondFactor makes f available at the MFA step. It must be called
// before the Service is used (it is not safe for concurrent use with
// sign-ins). A factor of the same name is replaced.
func (s *Service) AddSecondFactor(f SecondFactor) {
	s.factors = slices.DeleteFunc(s.factors, func(g SecondFactor) bool { return g.Name == f.Name })
	s.factors = append(s.factors, f)
}

func (s *Service) factor(name string) *SecondFactor {
	for i := range s.factors {
		if s.factors[i].Name == name {
			return &s.factors[i]
		}
	}
	return nil
}

// userFactors returns the names of the factors u has.
func (s *Service) userFactors(ctx context.Context, u *keycard.User) ([]string, error) {
	has, err := s.factorsOf(ctx, u)
	if err != nil {
		return nil, err
	}
	return s.enrolledFactors(u, has), nil
}

// enrolledFactors returns the names of the factors u has, of what the
// store says u has.
func (s *Service) enrolledFactors(u *keycard.User, has keycard.MFAFactors) []string {
	var out []string
	for _, f := range s.factors {
		if f.Enrolled(u, has) {
			out = append(out, f.Name)
		}
	}
	return out
}

// factorsOf returns the second factors u has: none without an MFA store.
func (s *Service) factorsOf(ctx context.Context, u *keycard.User) (keycard.MFAFactors, error) {
	if s.stores.MFA == nil {
		return keycard.MFAFactors{}, nil
	}
	return s.stores.MFA.Factors(ctx, u.ID)
}

// requiresMFA reports whether the policy requires u to have a second
// factor (Config.RequireMFAForRoles).
func (c *Config) requiresMFA(u *keycard.User) bool {
	for _, r := range c.RequireMFAForRoles {
		if u.HasRole(r) {
			return true
		}
	}
	return false
}

// mfaGate returns an *MFARequiredError when u, who has the second factors
// has (read with the user: UserStore.SignInUser), must prove one (or
// enrol one) before a session is started or renewed (sessionID), and nil
// when the password is enough.
func (s *Service) mfaGate(ctx context.Context, u *keycard.User, has keycard.MFAFactors, sessionID string, c Agent) error {
	return s.mfaGateFrom(ctx, u, &has, sessionID, nil, c)
}

// mfaGateFrom is mfaGate for a first step that was the password (up nil)
// or a federated sign-in: a provider's word does not stand for the
// second factor the user set up at Keycard, nor for the one the policy
// requires of the user's roles. With has nil it reads u's factors.
func (s *Service) mfaGateFrom(ctx context.Context, u *keycard.User, has *keycard.MFAFactors, sessionID string, up *UpstreamIdentity, c Agent) error {
	if has == nil {
		read, err := s.factorsOf(ctx, u)
		if err != nil {
			return err
		}
		has = &read
	}
	factors := s.enrolledFactors(u, *has)
	enroll := false
	if len(factors) == 0 {
		if !s.cfg.requiresMFA(u) {
			return nil
		}
		enroll, factors = true, []string{FactorTOTP}
		s.audit(ctx, AuditMFAEnrollmentRequiredLogin, UserActor(u.ID, c), u.ID, nil)
	}
	id, err := keycard.NewID(s.rand)
	if err != nil {
		return err
	}
	p := MFAPending{ID: id, UserID: u.ID, SessionID: sessionID, PasswordChangedAt: u.PasswordChangedAt.UnixMicro(),
		ExpiresAt: s.now().Add(MFATokenLifetime).Unix(), Enroll: enroll}
	if up != nil {
		p.Upstream = &PendingUpstream{Provider: up.Provider, Subject: up.Subject, SessionID: up.SessionID}
	}
	tok, err := s.sealMFAToken(&p)
	if err != nil {
		return err
	}
	return &MFARequiredError{Token: tok, Factors: factors, ExpiresIn: MFATokenLifetime, Enroll: enroll}
}

const mfaTokenLabel = "mfa-token"

func (s *Service) sealMFAToken(p *MFAPending) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	sealed, err := s.sealer.Seal(b, mfaTokenLabel)
	if err != nil {
		return "", err
	}
	tok := mfaTokenPrefix + base64.RawURLEncoding.EncodeToString(sealed)
	if len(tok) > maxMFATokenLen {
		return "", &keycard.Error{Code: keycard.EINVALID, Message: "The provider's identifiers are too long for a sign-in with a second factor."}
	}
	return tok, nil
}

// errMFAToken is the answer to an MFA token that is malformed, forged,
// expired, used, or whose password has changed since.
func errMFAToken() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This sign-in has expired. Sign in again."}
}

// openMFAToken returns the pending sign-in of an MFA token that is
// authentic and unexpired (whether it was used is UseOnce's to say).
func (s *Service) openMFAToken(tok string) (*MFAPending, error) {
	if len(tok) > maxMFATokenLen || !strings.HasPrefix(tok, mfaTokenPrefix) {
		return nil, errMFAToken()
	}
	sealed, err := base64.RawURLEncoding.DecodeString(tok[len(mfaTokenPrefix):])
	if err != nil {
		return nil, errMFAToken()
	}
	b, err := s.sealer.Open(sealed, mfaTokenLabel)
	if err != nil {
		return nil, errMFAToken()
	}
	var p MFAPending
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" || p.UserID == "" {
		return nil, errMFAToken()
	}
	if s.now().Unix() >= p.ExpiresAt {
		return nil, errMFAToken()
	}
	return &p, nil
}

// pendingUser returns the user of a pending sign-in, if it may still
// finish: the user exists, is enabled, and has the password it proved.
func (s *Service) pendingUser(ctx context.Context, p *MFAPending) (*keycard.User, error) {
	u, err := s.stores.Users.UserByID(ctx, p.UserID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errMFAToken()
	} else if err != nil {
		return nil, err
	}
	if u.Disabled || u.PasswordChangedAt.UnixMicro() != p.PasswordChangedAt {
		return nil, errMFAToken()
	}
	return u, nil
}

// mfaKey is the MFA throttle's key of a user: a hash of its id, under a
// prefix of its own so that it never meets a login key.
func mfaKey(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	return "mfa:" + hex.EncodeToString(sum[:16])
}

const msgMFAThrottled = "Too many second-factor attempts. Try again later."

// mfaAllowed asks the account throttle (LoginLimits.Account) for a
// second-factor attempt of the user; it returns the wait when refused.
func (s *Service) mfaAllowed(ctx context.Context, userID string, c Agent) error {
	l := s.limits.Account
	if l == nil {
		return nil
	}
	ok, wait, err := l.Allow(ctx, mfaKey(userID))
	if err != nil {
		s.log.ErrorContext(ctx, "MFA throttle unavailable; allowing the attempt", "err", err)
		return nil
	}
	if ok {
		return nil
	}
	retry := throttle.RetryAfter(wait)
	s.audit(ctx, AuditMFAThrottled, UserActor(userID, c), userID, map[string]any{"retry_after": int64(retry / time.Second)})
	return &ThrottledError{RetryAfter: retry, Message: msgMFAThrottled}
}

func (s *Service) mfaOutcome(ctx context.Context, userID string, ok bool) {
	l := s.limits.Account
	if l == nil {
		return
	}
	var err error
	if ok {
		err = l.Success(ctx, mfaKey(userID))
	} else {
		err = l.Failure(ctx, mfaKey(userID))
	}
	if err != nil {
		s.log.ErrorContext(ctx, "MFA throttle: recording an attempt", "err", err)
	}
}

// errMFACode is the answer to a wrong second factor, whatever is wrong.
func errMFACode() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "Invalid code."}
}

// CompleteMFA finishes the sign-in of an MFA token (MFARequiredError)
// with a second factor: it starts the session (or renews the browser
// session signed in to again) with the AMR ["pwd", the factor's…, "mfa"],
// and records login.succeeded with the factor. For a token of an
// enrolment the policy required, the proof must be the first code of the
// pending authenticator app (BeginTOTPWithMFAToken): it is confirmed, and
// the result carries the new recovery codes.
//
// Attempts are throttled per account (LoginLimits.Account, under a key of
// their own): a refused attempt is a *ThrottledError (the token is not
// used up). Every token works once: a wrong code is an
// *InvalidMFAProofError (EUNAUTHORIZED "Invalid code.") carrying the
// next token; a malformed, expired or used token, or one whose password
// changed since, is EUNAUTHORIZED "This sign-in has expired".
func (s *Service) CompleteMFA(ctx context.Context, token string, proof MFAProof, c Agent) (*MFAResult, error) {
	c = c.clean()
	p, err := s.openMFAToken(token)
	if err != nil {
		return nil, err
	}
	if err := s.mfaAllowed(ctx, p.UserID, c); err != nil {
		s.stats.LoginOutcome(LoginThrottled)
		return nil, err
	}
	u, err := s.pendingUser(ctx, p)
	if err != nil {
		return nil, err
	}
	// The token is used up by this attempt, whatever its outcome; a
	// wrong proof is answered with a new token of the same sign-in
	// (InvalidMFAProofError), so that a mistyped code can be corrected
	// while every token works once, and a proof is never checked against
	// a used token (which would burn a code for nothing).
	fresh, err := s.stores.Grants.UseOnce(ctx, "mfa-token:"+p.ID, s.now(), time.Unix(p.ExpiresAt, 0).Add(time.Second))
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, errMFAToken()
	}
	proof.agent = c
	res := &MFAResult{RecoveryCodesLeft: -1}
	var f *SecondFactor
	var factorAMR []string // the methods of the factor proved
	if p.Enroll {
		f = s.factor(FactorTOTP)
		factorAMR = f.AMR
		if proof.Factor != "" && proof.Factor != FactorTOTP {
			err = keycard.Errorf(keycard.EINVALID, "Set up an authenticator app: give its first code.")
		} else {
			res.RecoveryCodes, err = s.confirmTOTP(ctx, u, proof.Code, UserActor(u.ID, c))
		}
	} else {
		name := proof.Factor
		if name == "" {
			name = FactorRecoveryCode
			if len(proof.Code) == 6 {
				name = FactorTOTP
			}
		}
		if f = s.factor(name); f == nil {
			err = keycard.Errorf(keycard.EINVALID, "Unknown second factor %q.", name)
		} else {
			var has keycard.MFAFactors
			if has, err = s.factorsOf(ctx, u); err == nil && !f.Enrolled(u, has) {
				err = errMFACode()
			}
			if err == nil {
				if f.VerifyAMR != nil {
					factorAMR, err = f.VerifyAMR(ctx, u, p, proof)
				} else {
					factorAMR, err = f.AMR, f.Verify(ctx, u, p, proof)
				}
			}
		}
	}
	if err != nil {
		code := keycard.ErrorCode(err)
		if code != keycard.EUNAUTHORIZED && code != keycard.EINVALID && code != keycard.ENOTFOUND {
			return nil, err
		}
		if code == keycard.EUNAUTHORIZED {
			s.mfaOutcome(ctx, u.ID, false)
			s.stats.LoginOutcome(LoginFailed)
			method := ""
			if f != nil {
				method = f.Name
			}
			s.audit(ctx, AuditMFAFailed, UserActor(u.ID, c), u.ID, map[string]string{"method": method})
		}
		next := *p
		if next.ID, err = keycard.NewID(s.rand); err != nil {
			return nil, err
		}
		tok, serr := s.sealMFAToken(&next)
		if serr != nil {
			return nil, serr
		}
		return nil, &InvalidMFAProofError{Err: &keycard.Error{Code: code, Message: keycard.ErrorMessage(err)}, Token: tok,
			ExpiresIn: time.Unix(p.ExpiresAt, 0).Sub(s.now()).Truncate(time.Second)}
	}
	s.mfaOutcome(ctx, u.ID, true)
	first := AMRPassword
	if p.Upstream != nil {
		first = AMRFederated
	}
	amr := append(append([]string{first}, factorAMR...), AMRMFA)
	res.Factor = f.Name
	detail := map[string]any{"method": f.Name}
	if p.Upstream != nil {
		up := &UpstreamIdentity{Provider: p.Upstream.Provider, Subject: p.Upstream.Subject, SessionID: p.Upstream.SessionID}
		res.Tokens, err = s.startSessionFrom(ctx, u, c, amr, up, detail)
	} else if p.SessionID != "" {
		res.Tokens, err = s.renewSession(ctx, u, p.SessionID, amr, c)
		res.Reauthenticated = true
	} else {
		res.Tokens, err = s.startSession(ctx, u, c, amr, detail)
	}
	if err != nil {
		if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
			return nil, errMFAToken()
		}
		return nil, err
	}
	s.stats.LoginOutcome(LoginSucceeded)
	if res.Reauthenticated {
		// A new session's event was written with it (startSession).
		s.audit(ctx, keycard.AuditLoginSucceeded, UserActor(u.ID, c), u.ID,
			map[string]any{"session": res.Tokens.SessionID, "method": f.Name, "reauthenticated": true})
	}
	if f.Name == FactorRecoveryCode {
		if res.RecoveryCodesLeft, err = s.stores.MFA.RecoveryCodesLeft(ctx, u.ID); err != nil {
			// The session is made: answer it rather than lose it.
			s.log.ErrorContext(ctx, "counting recovery codes", "user", u.ID, "err", err)
			res.RecoveryCodesLeft = -1
		}
		s.audit(ctx, AuditRecoveryCodeUsed, UserActor(u.ID, c), u.ID, map[string]any{"remaining": res.RecoveryCodesLeft})
		s.notify(ctx, u, MailRecoveryCodeUsed)
	}
	return res, nil
}

// notify mails u a notification about its second factors, when u has a
// verified address (an unverified one may not be the user's).
func (s *Service) notify(ctx context.Context, u *keycard.User, template string) {
	if u.Email == "" || !u.EmailVerified {
		return
	}
	s.send(ctx, Mail{To: u.Email, Template: template, Data: MailData{
		Username: u.Username, Email: u.Email, Issuer: s.cfg.Issuer, At: s.now(),
	}})
}

// errNoMFAStore is the error of MFA operations on a Service without an
// MFA store.
var errNoMFAStore = errors.New("auth: no MFA store")

// MFAStatus is what a user has of second factors.
type MFAStatus struct {
	// TOTP: an authenticator app is set up and confirmed.
	TOTP bool
	// TOTPPending: an enrolment waits for its first code.
	TOTPPending bool
	// RecoveryCodesLeft is the number of unused recovery codes.
	RecoveryCodesLeft int
	// Required: the policy requires the user to have a second factor.
	Required bool
}

// MFAStatus returns the second factors of the user.
func (s *Service) MFAStatus(ctx context.Context, u *keycard.User) (*MFAStatus, error) {
	if s.stores.MFA == nil {
		return nil, errNoMFAStore
	}
	st := &MFAStatus{Required: s.cfg.requiresMFA(u)}
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	switch keycard.ErrorCode(err) {
	case "":
		st.TOTP, st.TOTPPending = c.Confirmed(), !c.Confirmed()
	case keycard.ENOTFOUND:
	default:
		return nil, err
	}
	if st.RecoveryCodesLeft, err = s.stores.MFA.RecoveryCodesLeft(ctx, u.ID); err != nil {
		return nil, err
	}
	return st, nil
}

// mfaDetail is the audit detail of an MFA event.
func mfaDetail(method string) map[string]string { return map[string]string{"method": method} }

// String returns the factors a status shows, for logs and tests.
func (st *MFAStatus) String() string {
	return fmt.Sprintf("totp=%v pending=%v codes=%d required=%v", st.TOTP, st.TOTPPending, st.RecoveryCodesLeft, st.Required)
}
