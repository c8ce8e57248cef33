package auth

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/throttle"
)

// Audit events of passkeys.
const (
	AuditPasskeyRegistered = "passkey.registered"
	AuditPasskeyRenamed    = "passkey.renamed"
	AuditPasskeyRemoved    = "passkey.removed"
	// AuditPasskeyCounterRegressed: a sign-in refused because the
	// authenticator's signature counter did not advance (a possible
	// clone, WebAuthn Level 3 §7.2 step 21).
	AuditPasskeyCounterRegressed = "passkey.counter_regressed"
)

// Authentication methods of a passkey sign-in (RFC 8176 section 2), and
// how Keycard chooses them (docs/decisions/passkeys.md):
//
//   - AMRHardwareKey ("hwk") for a credential that is not backup eligible
//     (BE flag clear): its private key never leaves the authenticator.
//   - AMRSoftwareKey ("swk") for a backup-eligible (synced) credential:
//     its key is copied between devices by a passkey provider.
//   - AMRMFA ("mfa") besides, when the authenticator verified the
//     user (UV flag): possession of the key and a PIN or biometric.
const (
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
)

// PasskeyAMR returns the amr of a sign-in with a passkey whose assertion
// had the flags given.
func PasskeyAMR(backupEligible, userVerified bool) []string {
	amr := []string{AMRHardwareKey}
	if backupEligible {
		amr[0] = AMRSoftwareKey
	}
	if userVerified {
		amr = append(amr, AMRMFA)
	}
	return amr
}

// WebAuthn is the relying party of the passkey ceremonies (WebAuthn Level
// 3 §7): it makes the options a browser passes to navigator.credentials
// and verifies what the authenticator answers. The Service keeps the
// state between the two, the credentials and the policy (counters, who
// may sign in); internal/passkey implements it with go-webauthn.
//
// Finish methods fail with a keycard.Error: EINVALID for a response that
// does not parse, EUNAUTHORIZED for one that does not verify (another
// origin or relying party, another challenge, a bad signature).
type WebAuthn interface {
	// BeginRegistration returns the creation options for a new passkey
	// of u (excluding the credentials it has) and the ceremony's state.
	BeginRegistration(u *keycard.User, exclude []*keycard.Passkey) (options json.RawMessage, state []byte, err error)
	// FinishRegistration verifies a registration response (the
	// PublicKeyCredential as JSON) against the state and returns the new
	// credential, without its ID, Name or CreatedAt.
	FinishRegistration(u *keycard.User, state, response []byte) (*keycard.Passkey, error)
	// BeginLogin returns the request options of a sign-in and the
	// ceremony's state: for any discoverable credential when u is nil,
	// else for u's passkeys allow.
	BeginLogin(u *keycard.User, allow []*keycard.Passkey) (options json.RawMessage, state []byte, err error)
	// FinishLogin verifies an assertion response against the state. It
	// calls lookup with the user handle (the user id the credential was
	// registered with, or the ceremony's user) to get the user and their
	// passkeys.
	FinishLogin(state, response []byte, lookup func(userHandle []byte) (*keycard.User, []*keycard.Passkey, error)) (*PasskeyAssertion, error)
}

// PasskeyAssertion is a verified WebAuthn assertion.
type PasskeyAssertion struct {
	User *keycard.User
	// Passkey is the stored credential that signed, as it was before
	// this sign-in.
	Passkey *keycard.Passkey
	// SignCount and the flags are those of the assertion's
	// authenticator data.
	SignCount                   uint32
	UserVerified                bool
	BackupEligible, BackupState bool
}

// PasskeyCeremony is the start of a WebAuthn ceremony: the options for
// the browser and the id under which the server keeps its state.
type PasskeyCeremony struct {
	ID      string
	Options json.RawMessage
}

// PasskeysEnabled reports whether the Service has a WebAuthn relying
// party.
func (s *Service) PasskeysEnabled() bool { return s.webauthn != nil }

func errPasskeysOff() error {
	return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Passkeys are not enabled on this server."}
}

// errCeremony is the answer to a ceremony whose state is gone (expired,
// answered already, or another browser's).
func errCeremony() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This passkey request has expired or was already answered. Try again."}
}

// errPasskeyLogin is the answer to every refused passkey sign-in.
// errPasskeyNeedsUV refuses a passkey sign-in without user verification
// for an account that needs two factors.
func errPasskeyNeedsUV() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This account signs in with two factors: use a passkey that asks for your PIN, fingerprint or face, or sign in with your password and your second factor."}
}

func errPasskeyLogin() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This passkey could not sign you in."}
}

// newCeremony stores the state of a ceremony and returns its id.
func (s *Service) newCeremony(ctx context.Context, purpose keycard.PasskeyPurpose, userID, binding string, state []byte) (string, error) {
	id, err := keycard.NewID(s.rand)
	if err != nil {
		return "", err
	}
	now := s.now()
	c := &keycard.PasskeyChallenge{ID: id, Purpose: purpose, UserID: userID, Binding: binding, State: state,
		CreatedAt: now, ExpiresAt: now.Add(keycard.PasskeyChallengeLifetime)}
	if err := s.stores.Passkeys.CreatePasskeyChallenge(ctx, c); err != nil {
		return "", err
	}
	return id, nil
}

// takeCeremony takes the state of ceremony id, once, and checks that it
// is of the purpose, user and binding given.
func (s *Service) takeCeremony(ctx context.Context, id string, purpose keycard.PasskeyPurpose, userID, binding string) (*keycard.PasskeyChallenge, error) {
	if id == "" || len(id) > 64 {
		return nil, errCeremony()
	}
	c, err := s.stores.Passkeys.TakePasskeyChallenge(ctx, id, s.now())
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, errCeremony()
	} else if err != nil {
		return nil, err
	}
	if c.Purpose != purpose || c.UserID != userID || c.Binding != binding {
		return nil, errCeremony()
	}
	return c, nil
}

// BeginPasskeyRegistration starts the registration of a passkey for the
// signed-in user p, from p's session: the ceremony can be finished only
// by that session, once, within keycard.PasskeyChallengeLifetime.
// Adding a way to sign in needs a recent sign-in (Config.ReauthWithin),
// like a password change.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *Principal) (*PasskeyCeremony, error) {
	if s.webauthn == nil {
		return nil, errPasskeysOff()
	}
	if err := s.CheckRecentAuth(p); err != nil {
		return nil, err
	}
	have, err := s.stores.Passkeys.ListPasskeys(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	if len(have) >= keycard.MaxPasskeysPerUser {
		return nil, keycard.Errorf(keycard.ECONFLICT, "You have %d passkeys, the most an account may have. Remove one first.", len(have))
	}
	opts, state, err := s.webauthn.BeginRegistration(p.User, have)
	if err != nil {
		return nil, err
	}
	id, err := s.newCeremony(ctx, keycard.PasskeyRegister, p.User.ID, p.Claims.SessionID, state)
	if err != nil {
		return nil, err
	}
	return &PasskeyCeremony{ID: id, Options: opts}, nil
}

// cleanPasskeyName checks and trims a passkey's name; empty gives def.
func cleanPasskeyName(name, def string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" {
		name = def
	}
	if !utf8.ValidString(name) || len(name) > keycard.MaxPasskeyNameLen || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", keycard.Errorf(keycard.EINVALID, "A passkey's name is at most %d bytes of text.", keycard.MaxPasskeyNameLen)
	}
	return name, nil
}

// FinishPasskeyRegistration verifies the answer to the registration
// ceremony id of p's session and stores the new passkey under name
// ("Passkey" when empty). The registration is audited and the user told
// by email.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *Principal, id, name string, response []byte, c Agent) (*keycard.Passkey, error) {
	if s.webauthn == nil {
		return nil, errPasskeysOff()
	}
	name, err := cleanPasskeyName(name, "Passkey")
	if err != nil {
		return nil, err
	}
	cer, err := s.takeCeremony(ctx, id, keycard.PasskeyRegister, p.User.ID, p.Claims.SessionID)
	if err != nil {
		return nil, err
	}
	pk, err := s.webauthn.FinishRegistration(p.User, cer.State, response)
	if err != nil {
		return nil, err
	}
	if pk.ID, err = keycard.NewID(s.rand); err != nil {
		return nil, err
	}
	pk.UserID, pk.Name, pk.CreatedAt = p.User.ID, name, s.now()
	if err := s.stores.Passkeys.CreatePasskey(ctx, pk); err != nil {
		if keycard.ErrorCode(err) == keycard.ECONFLICT {
			return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "This passkey is already registered."}
		}
		return nil, err
	}
	by := UserActor(p.User.ID, c)
	s.audit(ctx, AuditPasskeyRegistered, by, p.User.ID, map[string]any{"passkey": pk.ID, "name": pk.Name,
		"backup_eligible": pk.BackupEligible, "user_verified": pk.UserVerified})
	s.mailPasskey(ctx, p.User, MailPasskeyAdded, pk)
	return pk, nil
}

// mailPasskey tells the user, at a verified address, that a passkey was
// added or removed.
func (s *Service) mailPasskey(ctx context.Context, u *keycard.User, template string, pk *keycard.Passkey) {
	if u.Email == "" || !u.EmailVerified {
		return
	}
	s.send(ctx, Mail{To: u.Email, Template: template, Data: MailData{
		Username: u.Username, Email: u.Email, Issuer: s.cfg.Issuer, At: s.now(), Passkey: pk.Name,
	}})
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, userID string) ([]*keycard.Passkey, error) {
	if s.stores.Passkeys == nil {
		return nil, nil
	}
	return s.stores.Passkeys.ListPasskeys(ctx, userID)
}

// RenamePasskey renames the user's passkey id (by the user or an admin).
func (s *Service) RenamePasskey(ctx context.Context, by Actor, userID, id, name string) error {
	name, err := cleanPasskeyName(name, "")
	if err != nil {
		return err
	}
	if name == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "Give the passkey a name."}
	}
	if err := s.stores.Passkeys.RenamePasskey(ctx, userID, id, name); err != nil {
		return err
	}
	s.audit(ctx, AuditPasskeyRenamed, by, userID, map[string]any{"passkey": id, "name": name})
	return nil
}

// RemovePasskey deletes the user's passkey id (by the user or an admin):
// it can sign in no more. The removal is audited and the user told by
// email. Sessions signed in with it stay; "sign out everywhere" ends
// them. An admin needs the step-up of destructive actions (checkStepUp;
// a *ReauthRequiredError otherwise).
func (s *Service) RemovePasskey(ctx context.Context, by Actor, userID, id string) error {
	if err := s.checkStepUp(ctx, by); err != nil {
		return err
	}
	u, err := s.stores.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	pk, err := s.stores.Passkeys.DeletePasskey(ctx, userID, id)
	if err != nil {
		return err
	}
	s.audit(ctx, AuditPasskeyRemoved, by, userID, map[string]any{"passkey": pk.ID, "name": pk.Name})
	s.mailPasskey(ctx, u, MailPasskeyRemoved, pk)
	return nil
}

// BeginPasskeyLogin starts a sign-in with a discoverable credential: the
// browser offers the passkeys it has for this relying party (with
// conditional mediation, in the username field's autofill). The ceremony
// id must come back with the answer; the web pages keep it in a cookie,
// so only this browser can finish it.
//
// Anyone may begin one, and each is a stored challenge, so ceremonies are
// throttled per client address (c.Addr) by the address limiter
// (LoginLimits.Address) under keys of their own: every ceremony begun
// takes one of the address's Burst, one comes back every Refill, and an
// address that has none left gets a *ThrottledError. A throttled call is
// not audited (the flood would go to the audit log instead).
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Agent) (*PasskeyCeremony, error) {
	if s.webauthn == nil {
		return nil, errPasskeysOff()
	}
	if err := s.passkeyBeginAllowed(ctx, c.clean()); err != nil {
		return nil, err
	}
	opts, state, err := s.webauthn.BeginLogin(nil, nil)
	if err != nil {
		return nil, err
	}
	id, err := s.newCeremony(ctx, keycard.PasskeyLogin, "", "", state)
	if err != nil {
		return nil, err
	}
	return &PasskeyCeremony{ID: id, Options: opts}, nil
}

const msgPasskeyThrottled = "Too many passkey sign-ins from your network. Try again later, or use your password."

// passkeyBeginKey is the address throttle's key of the passkey sign-in
// ceremonies begun from addr (an IPv6 address by its /64, as for
// logins); "" when addr is empty.
func passkeyBeginKey(addr string) string {
	_, address := loginKeys("", addr)
	if address == "" {
		return ""
	}
	return "passkey-begin:" + address
}

// passkeyBeginAllowed takes one ceremony of c's address from the address
// throttle, or returns a *ThrottledError when it has none left.
func (s *Service) passkeyBeginAllowed(ctx context.Context, c Agent) error {
	l, key := s.limits.Address, passkeyBeginKey(c.Addr)
	if l == nil || key == "" {
		return nil
	}
	ok, wait, err := l.Allow(ctx, key)
	if err != nil {
		s.log.ErrorContext(ctx, "passkey throttle unavailable; allowing the ceremony", "err", err)
		return nil
	}
	if !ok {
		return &ThrottledError{RetryAfter: throttle.RetryAfter(wait), Message: msgPasskeyThrottled}
	}
	// Every ceremony counts: a begun one is not known to be answered,
	// and a success must not forget an address shared with others.
	if err := l.Failure(ctx, key); err != nil {
		s.log.ErrorContext(ctx, "passkey throttle: recording a ceremony", "err", err)
	}
	return nil
}

// PasskeyLogin finishes the sign-in ceremony id with the browser's
// answer. The user is the one the credential belongs to; a disabled user,
// an unknown credential, a bad signature or a signature counter that did
// not advance is refused, all alike to the browser and each audited with
// its reason. When keepSession is a sign-in session of that same user
// (signing in again in the browser that has it), that session records
// the new sign-in instead of a new one being started.
//
// Refused answers count as failed logins of the client's address (the
// address limiter of LoginLimits, the key password logins use): an
// address that keeps sending them is throttled, for passkeys and
// passwords alike, with a *ThrottledError before the answer is looked at.
// They are not counted against the user the answer names: a signature
// cannot be guessed, and anyone may name any user
// (docs/decisions/passkeys.md).
//
// The session's amr is PasskeyAMR of the assertion's flags.
func (s *Service) PasskeyLogin(ctx context.Context, id string, response []byte, keepSession string, c Agent) (*Tokens, error) {
	if s.webauthn == nil {
		return nil, errPasskeysOff()
	}
	c = c.clean()
	_, address := loginKeys("", c.Addr)
	if retry, limits := s.loginAllowed(ctx, "", address); retry > 0 {
		s.stats.LoginOutcome(LoginThrottled)
		s.audit(ctx, keycard.AuditLoginThrottled, anonymous(c), "", map[string]any{
			"limits": limits, "retry_after": int64(retry / time.Second), "method": "passkey",
		})
		return nil, &ThrottledError{RetryAfter: retry}
	}
	t, err := s.passkeyLogin(ctx, id, response, keepSession, c)
	switch code := keycard.ErrorCode(err); {
	case err == nil:
		s.stats.LoginOutcome(LoginSucceeded)
	case code == keycard.EUNAUTHORIZED || code == keycard.EINVALID:
		s.stats.LoginOutcome(LoginFailed)
		s.loginFailed(ctx, "", address)
	default:
		s.stats.LoginOutcome(LoginError)
	}
	return t, err
}

func (s *Service) passkeyLogin(ctx context.Context, id string, response []byte, keepSession string, c Agent) (*Tokens, error) {
	cer, err := s.takeCeremony(ctx, id, keycard.PasskeyLogin, "", "")
	if err != nil {
		return nil, err
	}
	a, err := s.checkAssertion(ctx, cer, response, c)
	if err != nil {
		return nil, err
	}
	if !a.UserVerified {
		// Without user verification a passkey is one factor, possession:
		// it cannot stand for an account that has a second factor, nor for
		// one whose role requires two (docs/decisions/passkeys.md).
		factors, err := s.userFactors(ctx, a.User)
		if err != nil {
			return nil, err
		}
		if len(factors) > 0 || s.cfg.requiresMFA(a.User) {
			s.audit(ctx, keycard.AuditLoginFailed, UserActor(a.User.ID, c), a.User.ID, map[string]string{"reason": "user_verification_required", "method": "passkey"})
			return nil, errPasskeyNeedsUV()
		}
	}
	amr := PasskeyAMR(a.BackupEligible, a.UserVerified)
	if keepSession != "" {
		if sess, err := s.stores.Sessions.Session(ctx, keepSession); err == nil && sess.UserID == a.User.ID && sess.ParentID == "" {
			t, err := s.renewSession(ctx, a.User, keepSession, amr, c)
			if err != nil {
				return nil, err
			}
			s.audit(ctx, keycard.AuditLoginSucceeded, UserActor(a.User.ID, c), a.User.ID, map[string]any{"session": t.SessionID,
				"reauthenticated": true, "amr": amr, "passkey": a.Passkey.ID})
			return t, nil
		}
	}
	return s.startSession(ctx, a.User, c, amr, map[string]any{"amr": amr, "passkey": a.Passkey.ID})
}

// checkAssertion checks an assertion against the ceremony's state and
// the stored credential, then records its use (counter, backup state).
func (s *Service) checkAssertion(ctx context.Context, cer *keycard.PasskeyChallenge, response []byte, c Agent) (*PasskeyAssertion, error) {
	failed := func(reason, userID string) {
		by := anonymous(c)
		if userID != "" {
			by = UserActor(userID, c)
		}
		s.audit(ctx, keycard.AuditLoginFailed, by, userID, map[string]string{"reason": reason, "method": "passkey"})
	}
	var lookupErr error
	a, err := s.webauthn.FinishLogin(cer.State, response, func(handle []byte) (*keycard.User, []*keycard.Passkey, error) {
		u, pks, err := s.passkeyOwner(ctx, string(handle))
		lookupErr = err
		return u, pks, err
	})
	switch {
	case lookupErr != nil && keycard.ErrorCode(lookupErr) == keycard.EINTERNAL:
		return nil, lookupErr
	case lookupErr != nil:
		failed("unknown_credential", "")
		return nil, errPasskeyLogin()
	case keycard.ErrorCode(err) == keycard.EINVALID:
		failed("malformed", "")
		return nil, err
	case err != nil && keycard.ErrorCode(err) != keycard.EINTERNAL:
		failed("not_verified", "")
		return nil, errPasskeyLogin()
	case err != nil:
		return nil, err
	}
	if a.User.Disabled {
		failed("disabled", a.User.ID)
		return nil, errPasskeyLogin()
	}
	pk := a.Passkey
	// WebAuthn Level 3 §7.2 step 21: a counter that did not advance,
	// when either is non-zero, may mean a cloned authenticator. The
	// specification leaves the answer to the relying party; Keycard
	// refuses the sign-in and keeps the stored counter, so the genuine
	// authenticator (whose counter is ahead) still works.
	if (a.SignCount != 0 || pk.SignCount != 0) && a.SignCount <= pk.SignCount {
		s.log.WarnContext(ctx, "passkey signature counter did not advance: sign-in refused", "user", a.User.ID, "passkey", pk.ID,
			"stored", pk.SignCount, "received", a.SignCount)
		s.audit(ctx, AuditPasskeyCounterRegressed, UserActor(a.User.ID, c), a.User.ID, map[string]any{"passkey": pk.ID,
			"stored": pk.SignCount, "received": a.SignCount})
		failed("counter_regressed", a.User.ID)
		return nil, errPasskeyLogin()
	}
	if err := s.stores.Passkeys.UsePasskey(ctx, pk.ID, pk.SignCount, a.SignCount, a.BackupState, s.now()); err != nil {
		if code := keycard.ErrorCode(err); code == keycard.ECONFLICT || code == keycard.ENOTFOUND {
			// Another sign-in used the counter first, or the passkey
			// was removed meanwhile.
			failed("counter_raced", a.User.ID)
			return nil, errPasskeyLogin()
		}
		return nil, err
	}
	return a, nil
}

// passkeyOwner returns the user with this id (a user handle) and their
// passkeys: ENOTFOUND when there is no such user.
func (s *Service) passkeyOwner(ctx context.Context, userID string) (*keycard.User, []*keycard.Passkey, error) {
	if userID == "" || len(userID) > 64 || !utf8.ValidString(userID) {
		return nil, nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Unknown passkey."}
	}
	u, err := s.stores.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	pks, err := s.stores.Passkeys.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(pks) == 0 {
		return nil, nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Unknown passkey."}
	}
	return u, pks, nil
}

// FactorPasskey is the passkey as a second factor (MFAProof.Factor).
const FactorPasskey = "passkey"

// passkeyFactor is the passkey as a second factor of the MFA step: the
// proof is an assertion (MFAProof.Response) to a ceremony begun with
// BeginPasskeySecondFactor, whose id is MFAProof.Code.
func (s *Service) passkeyFactor() SecondFactor {
	return SecondFactor{Name: FactorPasskey, Enrolled: s.offersPasskeys, VerifyAMR: s.verifyPasskeyFactor}
}

// hasPasskeyFactor reports whether the MFA step offers u its passkeys:
// when u has one and a second factor is wanted anyway — u has an
// authenticator app, or the policy requires a second factor
// (Config.RequireMFAForRoles). A passkey alone does not turn the MFA
// step on: it is a way to sign in without the password
// (docs/decisions/passkeys.md).
func (s *Service) hasPasskeyFactor(ctx context.Context, u *keycard.User) (bool, error) {
	has, err := s.factorsOf(ctx, u)
	return err == nil && s.offersPasskeys(u, has), err
}

// offersPasskeys is hasPasskeyFactor of what the store says u has: the
// passkey factor's Enrolled.
func (s *Service) offersPasskeys(u *keycard.User, has keycard.MFAFactors) bool {
	if s.webauthn == nil || s.stores.Passkeys == nil || has.Passkeys == 0 {
		return false
	}
	return s.cfg.requiresMFA(u) || has.TOTP
}

// BeginPasskeySecondFactor begins the passkey ceremony of the MFA step of
// the MFA token tok (an *MFARequiredError's): the request options for
// the user's passkeys. The ceremony is bound to that sign-in attempt:
// the proof goes to CompleteMFA with the same token, as MFAProof{Factor:
// FactorPasskey, Code: the ceremony's id, Response: the assertion}.
// Each ceremony begun counts against c's address like those of
// BeginPasskeyLogin (a *ThrottledError when it has none left).
func (s *Service) BeginPasskeySecondFactor(ctx context.Context, tok string, c Agent) (*PasskeyCeremony, error) {
	if s.webauthn == nil {
		return nil, errPasskeysOff()
	}
	p, u, err := s.pendingMFA(ctx, tok)
	if err != nil {
		return nil, err
	}
	if err := s.passkeyBeginAllowed(ctx, c.clean()); err != nil {
		return nil, err
	}
	if p.Enroll {
		return nil, &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Set up an authenticator app first."}
	}
	if ok, err := s.hasPasskeyFactor(ctx, u); err != nil {
		return nil, err
	} else if !ok {
		return nil, &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Your account has no passkey to use here."}
	}
	pks, err := s.stores.Passkeys.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	opts, state, err := s.webauthn.BeginLogin(u, pks)
	if err != nil {
		return nil, err
	}
	id, err := s.newCeremony(ctx, keycard.PasskeySecondFactor, u.ID, p.ID, state)
	if err != nil {
		return nil, err
	}
	return &PasskeyCeremony{ID: id, Options: opts}, nil
}

// verifyPasskeyFactor checks a passkey proof of the MFA step and returns
// its methods ("hwk" or "swk"; CompleteMFA adds "pwd" and "mfa").
func (s *Service) verifyPasskeyFactor(ctx context.Context, u *keycard.User, p *MFAPending, proof MFAProof) ([]string, error) {
	if len(proof.Response) == 0 {
		return nil, &keycard.Error{Code: keycard.EINVALID, Message: "The passkey's answer is missing."}
	}
	cer, err := s.takeCeremony(ctx, proof.Code, keycard.PasskeySecondFactor, u.ID, p.ID)
	if err != nil {
		return nil, err
	}
	a, err := s.checkAssertion(ctx, cer, proof.Response, proof.agent)
	if err != nil {
		return nil, err
	}
	if a.User.ID != u.ID {
		return nil, errPasskeyLogin()
	}
	return PasskeyAMR(a.BackupEligible, false), nil
}

// MFAFactors returns the second factors the MFA token's user can prove
// (Factor… names); an expired or forged token is EUNAUTHORIZED.
func (s *Service) MFAFactors(ctx context.Context, tok string) ([]string, error) {
	p, u, err := s.pendingMFA(ctx, tok)
	if err != nil {
		return nil, err
	}
	if p.Enroll {
		return []string{FactorTOTP}, nil
	}
	return s.userFactors(ctx, u)
}

// pendingMFA returns the pending sign-in of an MFA token and its user, if
// it may still finish (openMFAToken, pendingUser); it does not use the
// token up.
func (s *Service) pendingMFA(ctx context.Context, tok string) (*MFAPending, *keycard.User, error) {
	p, err := s.openMFAToken(tok)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.pendingUser(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	return p, u, nil
}
