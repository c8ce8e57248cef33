package auth

import (
	"context"
	"crypto/sha256"
	"strings"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/totp"
)

// TOTP second factor: an authenticator app (RFC 6238, internal/totp).
// Its secret is sealed under the master key (Sealer) with the user's id
// in the label, so a sealed secret moved to another user does not open.

func totpLabel(userID string) string { return "totp-secret:" + userID }

// TOTPEnrollment is an authenticator app being set up: what the user
// scans or types. Both fields are secrets: show them to the user only.
type TOTPEnrollment struct {
	// Secret is the shared secret in base32, for manual entry.
	Secret string
	// URI is the otpauth URI a QR code carries.
	URI string
}

func (s *Service) hasTOTP(ctx context.Context, u *keycard.User) (bool, error) {
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return c.Confirmed(), nil
}

// checkTOTPCode checks code against the user's credential c and returns
// the step it matched, later than c.LastStep.
func (s *Service) checkTOTPCode(c *keycard.TOTPCredential, code string) (int64, error) {
	secret, err := s.sealer.Open(c.SecretSealed, totpLabel(c.UserID))
	if err != nil {
		return 0, err
	}
	step, ok := totp.Check(secret, strings.TrimSpace(code), s.now(), c.LastStep)
	if !ok {
		return 0, errMFACode()
	}
	return step, nil
}

// verifyTOTP is the TOTP factor's Verify: a code of the user's confirmed
// credential, of a step later than the last accepted one (a replayed
// code is refused, here and by UseTOTPStep for concurrent uses).
func (s *Service) verifyTOTP(ctx context.Context, u *keycard.User, _ *MFAPending, p MFAProof) error {
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return errMFACode()
	} else if err != nil {
		return err
	}
	if !c.Confirmed() {
		return errMFACode()
	}
	step, err := s.checkTOTPCode(c, p.Code)
	if err != nil {
		return err
	}
	if err := s.stores.MFA.UseTOTPStep(ctx, u.ID, step); err != nil {
		if code := keycard.ErrorCode(err); code == keycard.EUNAUTHORIZED || code == keycard.ENOTFOUND {
			return errMFACode()
		}
		return err
	}
	return nil
}

// beginTOTP returns the user's pending enrolment, making one when there
// is none. It fails with ECONFLICT when an app is already set up.
func (s *Service) beginTOTP(ctx context.Context, u *keycard.User) (*TOTPEnrollment, error) {
	if s.stores.MFA == nil {
		return nil, errNoMFAStore
	}
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	switch {
	case err == nil && c.Confirmed():
		return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "An authenticator app is already set up."}
	case err == nil:
		secret, err := s.sealer.Open(c.SecretSealed, totpLabel(u.ID))
		if err != nil {
			return nil, err
		}
		return s.enrollment(u, secret), nil
	case keycard.ErrorCode(err) != keycard.ENOTFOUND:
		return nil, err
	}
	secret, err := totp.NewSecret(s.rand)
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealer.Seal(secret, totpLabel(u.ID))
	if err != nil {
		return nil, err
	}
	if err := s.stores.MFA.PutPendingTOTP(ctx, &keycard.TOTPCredential{UserID: u.ID, SecretSealed: sealed, CreatedAt: s.now()}); err != nil {
		return nil, err
	}
	return s.enrollment(u, secret), nil
}

func (s *Service) enrollment(u *keycard.User, secret []byte) *TOTPEnrollment {
	issuer := s.cfg.Issuer
	if _, rest, ok := strings.Cut(issuer, "://"); ok {
		issuer = rest
	}
	issuer = strings.TrimSuffix(issuer, "/")
	if issuer == "" {
		issuer = "Keycard"
	}
	return &TOTPEnrollment{Secret: totp.EncodeSecret(secret), URI: totp.URI(issuer, u.Username, secret)}
}

// BeginTOTP starts setting up an authenticator app for the caller: it
// returns the pending enrolment (the same one until it is confirmed or
// removed). It needs a recent sign-in (Config.ReauthWithin) and fails
// with ECONFLICT when an app is already set up.
func (s *Service) BeginTOTP(ctx context.Context, p *Principal) (*TOTPEnrollment, error) {
	if err := s.CheckRecentAuth(p); err != nil {
		return nil, err
	}
	return s.beginTOTP(ctx, p.User)
}

// BeginTOTPWithMFAToken is BeginTOTP for a user whose sign-in the policy
// stopped until a second factor is enrolled (MFARequiredError.Enroll).
func (s *Service) BeginTOTPWithMFAToken(ctx context.Context, token string) (*TOTPEnrollment, error) {
	p, err := s.openMFAToken(token)
	if err != nil {
		return nil, err
	}
	if !p.Enroll {
		return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "A second factor is already set up."}
	}
	u, err := s.pendingUser(ctx, p)
	if err != nil {
		return nil, err
	}
	return s.beginTOTP(ctx, u)
}

// confirmTOTP confirms u's pending enrolment with its first code and
// returns the user's new recovery codes; audited as mfa.enrolled (and
// its webhook) and mailed to the user.
func (s *Service) confirmTOTP(ctx context.Context, u *keycard.User, code string, by Actor) ([]string, error) {
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "No authenticator app is being set up."}
	} else if err != nil {
		return nil, err
	}
	if c.Confirmed() {
		return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "An authenticator app is already set up."}
	}
	step, err := s.checkTOTPCode(c, code)
	if err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes(u.ID)
	if err != nil {
		return nil, err
	}
	if err := s.stores.MFA.ConfirmTOTP(ctx, u.ID, step, hashes, s.now()); err != nil {
		if keycard.ErrorCode(err) == keycard.ENOTFOUND { // confirmed or removed meanwhile
			return nil, &keycard.Error{Code: keycard.ECONFLICT, Message: "The authenticator app changed meanwhile. Start again."}
		}
		return nil, err
	}
	s.audit(ctx, AuditMFAEnrolled, by, u.ID, mfaDetail(FactorTOTP))
	s.notify(ctx, u, MailMFAEnrolled)
	return codes, nil
}

// ConfirmTOTP activates the caller's pending authenticator app with a
// code from it, and returns ten new recovery codes (shown once; any
// earlier ones stop working). A wrong code is EUNAUTHORIZED and counts
// against the MFA throttle.
func (s *Service) ConfirmTOTP(ctx context.Context, p *Principal, code string, c Agent) ([]string, error) {
	c = c.clean()
	if err := s.CheckRecentAuth(p); err != nil {
		return nil, err
	}
	if err := s.mfaAllowed(ctx, p.User.ID, c); err != nil {
		return nil, err
	}
	codes, err := s.confirmTOTP(ctx, p.User, code, UserActor(p.User.ID, c))
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		s.mfaOutcome(ctx, p.User.ID, false)
	}
	return codes, err
}

// RemoveTOTP removes the caller's authenticator app and recovery codes.
// It needs a recent sign-in, and is refused (EFORBIDDEN) when the policy
// requires the caller to have a second factor; an admin can still remove
// it (RemoveSecondFactors), and the user then enrols again at sign-in.
func (s *Service) RemoveTOTP(ctx context.Context, p *Principal, c Agent) error {
	if err := s.CheckRecentAuth(p); err != nil {
		return err
	}
	if s.cfg.requiresMFA(p.User) {
		if st, err := s.MFAStatus(ctx, p.User); err != nil {
			return err
		} else if st.TOTP {
			return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Your role requires a second factor: it cannot be removed."}
		}
	}
	return s.removeTOTP(ctx, UserActor(p.User.ID, c.clean()), p.User)
}

// RemoveSecondFactors removes a user's second factors (authenticator app
// and recovery codes): for an admin or the operator, when a user lost
// them. It fails with ENOTFOUND when the user has none. An admin needs
// the step-up of destructive actions (checkStepUp: a recent sign-in, with
// their own second factor if they have one).
func (s *Service) RemoveSecondFactors(ctx context.Context, by Actor, userID string) error {
	if err := s.checkStepUp(ctx, by); err != nil {
		return err
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	return s.removeTOTP(ctx, by, u)
}

func (s *Service) removeTOTP(ctx context.Context, by Actor, u *keycard.User) error {
	if s.stores.MFA == nil {
		return errNoMFAStore
	}
	c, err := s.stores.MFA.TOTP(ctx, u.ID)
	if err != nil {
		return err
	}
	if err := s.stores.MFA.DeleteTOTP(ctx, u.ID); err != nil {
		return err
	}
	if c.Confirmed() {
		s.audit(ctx, AuditMFARemoved, by, u.ID, mfaDetail(FactorTOTP))
		s.notify(ctx, u, MailMFARemoved)
	}
	return nil
}

// RegenerateRecoveryCodes gives the caller ten new recovery codes (shown
// once) and invalidates the old ones. It needs a recent sign-in and a
// second factor set up (ENOTFOUND otherwise).
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, p *Principal, c Agent) ([]string, error) {
	if err := s.CheckRecentAuth(p); err != nil {
		return nil, err
	}
	if s.stores.MFA == nil {
		return nil, errNoMFAStore
	}
	if ok, err := s.hasTOTP(ctx, p.User); err != nil {
		return nil, err
	} else if !ok {
		return nil, &keycard.Error{Code: keycard.ENOTFOUND, Message: "Set up an authenticator app first."}
	}
	codes, hashes, err := s.newRecoveryCodes(p.User.ID)
	if err != nil {
		return nil, err
	}
	if err := s.stores.MFA.ReplaceRecoveryCodes(ctx, p.User.ID, hashes, s.now()); err != nil {
		return nil, err
	}
	s.audit(ctx, AuditRecoveryCodesRegenerated, UserActor(p.User.ID, c.clean()), p.User.ID, nil)
	s.notify(ctx, p.User, MailRecoveryCodesRegenerated)
	return codes, nil
}

// Recovery codes: RecoveryCodeCount codes of 16 characters from the
// base32 alphabet (80 random bits each), shown as four groups of four
// ("abcd-efgh-ijkm-nopq"). Only the SHA-256 of the user id and the
// normalized code is stored: with 80 bits of entropy a fast hash is
// enough, as for refresh tokens (docs/decisions/mfa.md).

const recoveryAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// newRecoveryCodes returns new codes and their hashes.
func (s *Service) newRecoveryCodes(userID string) (codes []string, hashes [][]byte, err error) {
	for range keycard.RecoveryCodeCount {
		b := make([]byte, 16)
		if _, err := s.rand.Read(b); err != nil {
			return nil, nil, err
		}
		var sb strings.Builder
		for i, v := range b {
			if i > 0 && i%4 == 0 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[v&31])
		}
		code := sb.String()
		codes = append(codes, code)
		hashes = append(hashes, recoveryHash(userID, code))
	}
	return codes, hashes, nil
}

// normalizeRecoveryCode lower-cases a code and drops the spaces and
// hyphens people type or copy with it.
func normalizeRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, code)
}

func recoveryHash(userID, code string) []byte {
	h := sha256.New()
	h.Write([]byte("keycard-recovery-code\x00" + userID + "\x00" + normalizeRecoveryCode(code)))
	return h.Sum(nil)
}

// verifyRecoveryCode is the recovery-code factor's Verify: an unused
// code of the user, used up by this.
func (s *Service) verifyRecoveryCode(ctx context.Context, u *keycard.User, _ *MFAPending, p MFAProof) error {
	code := normalizeRecoveryCode(p.Code)
	if len(code) != 16 || strings.Trim(code, recoveryAlphabet) != "" {
		return errMFACode()
	}
	if err := s.stores.MFA.UseRecoveryCode(ctx, u.ID, recoveryHash(u.ID, code), s.now()); err != nil {
		if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
			return errMFACode()
		}
		return err
	}
	return nil
}
