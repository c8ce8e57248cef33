package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keycard-auth/keycard"
)

// Audit event types of email addresses and password resets.
const (
	AuditEmailChanged          = "user.email_changed"
	AuditEmailVerified         = "user.email_verified"
	AuditPasswordResetRequest  = "password.reset_requested"
	AuditPasswordReset         = "password.reset"
	AuditPasswordResetRefused  = "password.reset_refused"
	AuditPasswordResetThrottle = "password.reset_throttled"
)

// Paths of the pages the links in mails open (internal/web serves them).
const (
	VerifyEmailPath   = "/verify-email"
	ResetPasswordPath = "/reset-password"
)

// maxEmailLocal is the longest local part of an address (RFC 5321
// section 4.5.3.1.1).
const maxEmailLocal = 64

// NormalizeEmail returns the form an email address is stored, compared
// and looked up by: surrounding white space trimmed and the whole address
// lower-cased (docs/decisions/accounts.md). It fails with EINVALID unless
// the result has at most keycard.MaxEmailLen bytes, exactly one "@", a
// local part of 1 to 64 bytes without spaces, control characters or the
// characters that quoting would need ("<>()[]\,;:\"), and a domain of
// dot-separated labels of letters, digits and hyphens. Quoted local parts
// and address literals are not accepted.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	bad := func(msg string) (string, error) {
		return "", &keycard.Error{Code: keycard.EINVALID, Message: msg}
	}
	if s == "" {
		return bad("Email address is required.")
	}
	if len(s) > keycard.MaxEmailLen || !utf8.ValidString(s) {
		return bad("Email address is too long or not valid UTF-8.")
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") {
		return bad("Email address must have exactly one @.")
	}
	if local == "" || len(local) > maxEmailLocal {
		return bad("Email address must have a name of 1 to 64 bytes before the @.")
	}
	for _, r := range local {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar || strings.ContainsRune(`<>()[]\,;:"`, r) {
			return bad("Email address has a character it cannot have.")
		}
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return bad("Email address has a misplaced dot.")
	}
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("Email address has an invalid domain.")
		}
		for _, r := range label {
			if !(r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return bad("Email address has an invalid domain.")
			}
		}
	}
	return s, nil
}

// normalizeOptionalEmail is NormalizeEmail, with "" (or white space) for
// no address.
func normalizeOptionalEmail(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	return NormalizeEmail(s)
}

// msgResetThrottled is the client's message of a throttled reset request
// or reset.
const msgResetThrottled = "Too many password-reset attempts. Try again later."

// errLink is the one answer to a verification or reset link that is not
// honoured: malformed, unknown, used, expired or outdated.
func errLink() error {
	return &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "This link is invalid or has expired."}
}

// link returns the URL of a page of this server with the token.
func (s *Service) link(path, token string) string {
	return strings.TrimSuffix(s.cfg.Issuer, "/") + path + "?" + url.Values{"token": {token}}.Encode()
}

// RegisterWithEmail is Register with an optional email address (empty for
// none): the user gets it unverified, and a verification link by mail.
// ECONFLICT if the username or the address is taken.
func (s *Service) RegisterWithEmail(ctx context.Context, name, pass, email string, roles []string) (*keycard.User, error) {
	email, err := normalizeOptionalEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := s.register(ctx, name, pass, email, roles)
	if err != nil {
		return nil, err
	}
	if email != "" {
		s.sendVerification(ctx, u)
	}
	return u, nil
}

// SetEmail sets a user's email address (empty removes it). With verified
// false the address is unverified until the user follows the link mailed
// to it; verified true (for an operator or admin who vouches for it)
// marks it verified and mails nothing. ECONFLICT if another user has it.
func (s *Service) SetEmail(ctx context.Context, by Actor, userID, email string, verified bool) (*keycard.User, error) {
	email, err := normalizeOptionalEmail(email)
	if err != nil {
		return nil, err
	}
	before, err := s.stores.Users.UserByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if email == before.Email && (before.EmailVerified || !verified) {
		if email != "" && !before.EmailVerified {
			s.sendVerification(ctx, before) // asked again: a new link
		}
		return before, nil
	}
	u, err := s.stores.Emails.SetEmail(ctx, userID, email, verified, s.now())
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditEmailChanged, by, userID, map[string]any{"had_email": before.Email != "", "has_email": email != "", "verified": u.EmailVerified})
	if email != "" && !u.EmailVerified {
		s.sendVerification(ctx, u)
	}
	return u, nil
}

// sendVerification makes a verification link for u's address and mails
// it. A failure is logged: the user can ask for another link.
func (s *Service) sendVerification(ctx context.Context, u *keycard.User) {
	if s.mailer == nil || u.Email == "" {
		return
	}
	token, err := s.newEmailToken(ctx, u, keycard.PurposeVerifyEmail, keycard.EmailVerifyLifetime)
	if err != nil {
		s.log.ErrorContext(ctx, "making a verification link failed", "user", u.ID, "err", err)
		return
	}
	s.send(ctx, Mail{To: u.Email, Template: MailVerifyEmail, Data: MailData{
		Username: u.Username, Email: u.Email, Link: s.link(VerifyEmailPath, token),
		ValidFor: keycard.EmailVerifyLifetime, Issuer: s.cfg.Issuer, At: s.now(),
	}})
}

// newEmailToken stores a link token of the purpose for u's address and
// returns it ("<id>.<secret>"; only the secret's hash is stored).
func (s *Service) newEmailToken(ctx context.Context, u *keycard.User, purpose keycard.EmailTokenPurpose, ttl time.Duration) (string, error) {
	token, id, hash, err := keycard.NewOpaqueToken(s.rand)
	if err != nil {
		return "", err
	}
	now := s.now()
	t := &keycard.EmailToken{ID: id, SecretHash: hash, Purpose: purpose, UserID: u.ID, Email: u.Email,
		CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if purpose == keycard.PurposeResetPassword {
		t.PasswordChangedAt = u.PasswordChangedAt
	}
	if err := s.stores.Emails.CreateEmailToken(ctx, t); err != nil {
		return "", err
	}
	return token, nil
}

// emailToken returns the id of the stored token that token ("<id>.<secret>")
// names, after checking its secret and purpose; errLink otherwise.
func (s *Service) emailToken(ctx context.Context, token string, purpose keycard.EmailTokenPurpose) (string, error) {
	id, hash, ok := keycard.ParseOpaqueToken(token)
	if !ok {
		return "", errLink()
	}
	t, err := s.stores.Emails.EmailToken(ctx, id)
	if keycard.ErrorCode(err) == keycard.ENOTFOUND {
		return "", errLink()
	} else if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(t.SecretHash, hash) != 1 || t.Purpose != purpose {
		return "", errLink()
	}
	return id, nil
}

// linkRefused maps a store's refusal of a link to errLink.
func linkRefused(err error) error {
	switch keycard.ErrorCode(err) {
	case keycard.ENOTFOUND, keycard.EUNAUTHORIZED:
		return errLink()
	}
	return err
}

// VerifyEmail follows a verification link: the user's address becomes
// verified if the link is good (single use, 24 hours, and the address is
// still the one it was sent to). Any other link is the same EUNAUTHORIZED
// error.
func (s *Service) VerifyEmail(ctx context.Context, token string, c Agent) (*keycard.User, error) {
	id, err := s.emailToken(ctx, token, keycard.PurposeVerifyEmail)
	if err != nil {
		return nil, err
	}
	u, err := s.stores.Emails.VerifyEmail(ctx, id, s.now())
	if err != nil {
		return nil, linkRefused(err)
	}
	s.audit(ctx, AuditEmailVerified, UserActor(u.ID, c.clean()), u.ID, nil)
	return u, nil
}

// resetKeys returns the throttle keys of a password-reset request: the
// address's (hashed, like a login's account key) and the client's. They
// are apart from the login keys, so that asking for links does not lock
// anyone out of signing in.
func resetKeys(email, addr string) (account, address string) {
	_, address = loginKeys("", addr)
	sum := sha256.Sum256([]byte(email))
	account = "reset:email:" + hex.EncodeToString(sum[:16])
	if address != "" {
		address = "reset:" + address
	}
	return account, address
}

// RequestPasswordReset mails a password-reset link to the address, if a
// user who is not disabled has it. The answer is the same — nil, after
// the same work — whether or not one does: the address is normalized and
// the request counted by the throttles here, and the lookup, the link and
// the mail are left to the mail worker, so neither the answer nor its
// time depends on the address being known. Every request counts against
// the throttles (per address asked for and per client, like a failed
// login): past their limit it fails with a *ThrottledError. Without a
// mailer it fails with EFORBIDDEN; with a malformed address, EINVALID.
func (s *Service) RequestPasswordReset(ctx context.Context, email string, c Agent) error {
	c = c.clean()
	if s.mailer == nil {
		return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Password reset by email is not available on this server."}
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	account, address := resetKeys(email, c.Addr)
	if retry, limits := s.loginAllowed(ctx, account, address); retry > 0 {
		s.audit(ctx, AuditPasswordResetThrottle, anonymous(c), "", map[string]any{"limits": limits, "retry_after": int64(retry / time.Second)})
		return &ThrottledError{RetryAfter: retry, Message: msgResetThrottled}
	}
	s.loginFailed(ctx, account, address)
	s.enqueue(ctx, MailPasswordReset, func(ctx context.Context) { s.mailResetLink(ctx, email, c) })
	return nil
}

// mailResetLink is the mail worker's half of RequestPasswordReset.
func (s *Service) mailResetLink(ctx context.Context, email string, c Agent) {
	u, err := s.stores.Emails.UserByEmail(ctx, email)
	if err != nil || u.Disabled {
		if err != nil && keycard.ErrorCode(err) != keycard.ENOTFOUND {
			s.log.ErrorContext(ctx, "password reset: looking up the address failed", "err", err)
		}
		s.audit(ctx, AuditPasswordResetRequest, anonymous(c), "", map[string]any{"sent": false})
		return
	}
	token, err := s.newEmailToken(ctx, u, keycard.PurposeResetPassword, keycard.PasswordResetLifetime)
	if err != nil {
		s.log.ErrorContext(ctx, "password reset: making a link failed", "user", u.ID, "err", err)
		return
	}
	s.audit(ctx, AuditPasswordResetRequest, anonymous(c), u.ID, map[string]any{"sent": true})
	m := s.resetMail(u, token)
	if err := s.mailer.Send(ctx, m); err != nil {
		s.log.ErrorContext(ctx, "sending mail failed", "mail", m.Template, "err", err)
	}
}

// CheckResetLink reports whether a password-reset link can still be
// used, for the page that asks for the new password: nil, or the
// EUNAUTHORIZED error of a bad link. It changes nothing.
func (s *Service) CheckResetLink(ctx context.Context, token string) error {
	id, err := s.emailToken(ctx, token, keycard.PurposeResetPassword)
	if err != nil {
		return err
	}
	t, err := s.stores.Emails.EmailToken(ctx, id)
	if err != nil {
		return linkRefused(err)
	}
	if !t.UsedAt.IsZero() || !s.now().Before(t.ExpiresAt) {
		return errLink()
	}
	u, err := s.stores.Users.UserByID(ctx, t.UserID)
	if err != nil {
		return linkRefused(err)
	}
	if !u.PasswordChangedAt.Equal(t.PasswordChangedAt) {
		return errLink()
	}
	return nil
}

// ResetPassword follows a password-reset link: it sets the new password,
// ends every session of the user (the revocation feed carries them, as
// for a password change) and mails the user that the password changed.
// The link works once, for 30 minutes, and only while the password is
// the one it was made under; any other link is the same EUNAUTHORIZED
// error. Attempts are throttled per client like logins.
func (s *Service) ResetPassword(ctx context.Context, token, next string, c Agent) error {
	c = c.clean()
	_, address := resetKeys("", c.Addr)
	if retry, limits := s.loginAllowed(ctx, "", address); retry > 0 {
		s.audit(ctx, AuditPasswordResetThrottle, anonymous(c), "", map[string]any{"limits": limits, "retry_after": int64(retry / time.Second)})
		return &ThrottledError{RetryAfter: retry, Message: msgResetThrottled}
	}
	id, err := s.emailToken(ctx, token, keycard.PurposeResetPassword)
	if err == nil {
		if err = checkPassword(next); err != nil {
			return err
		}
		var hash string
		if hash, err = s.hashPassword(ctx, next); err != nil {
			return err
		}
		var u *keycard.User
		var revoked []string
		u, revoked, err = s.stores.Emails.ResetPassword(ctx, id, hash, s.now())
		if err == nil {
			s.stats.SessionsRevoked(keycard.RevokePasswordChanged, len(revoked))
			s.audit(ctx, AuditPasswordReset, UserActor(u.ID, c), u.ID, map[string]any{"sessions_revoked": len(revoked)})
			s.send(ctx, Mail{To: u.Email, Template: MailPasswordChanged, Data: MailData{
				Username: u.Username, Email: u.Email, Issuer: s.cfg.Issuer, At: s.now(),
			}})
			return nil
		}
		err = linkRefused(err)
	}
	if keycard.ErrorCode(err) == keycard.EUNAUTHORIZED {
		s.loginFailed(ctx, "", address)
		s.audit(ctx, AuditPasswordResetRefused, anonymous(c), "", nil)
	}
	return err
}

// ChangeEmail sets the caller's own email address (empty removes it): a
// sensitive change, since password resets go to it, so it needs a recent
// sign-in like ChangePassword. The new address is unverified until the
// user follows the link mailed to it; giving the current unverified
// address again mails a new link.
func (s *Service) ChangeEmail(ctx context.Context, p *Principal, email string, c Agent) (*keycard.User, error) {
	if err := s.CheckRecentAuth(p); err != nil {
		return nil, err
	}
	return s.SetEmail(ctx, UserActor(p.User.ID, c.clean()), p.User.ID, email, false)
}

// SendPasswordReset mails a password-reset link to a user's address on an
// admin's or operator's behalf (the console's "send a reset link"). It
// fails with EINVALID if the user has no address, and EFORBIDDEN without a
// mailer.
func (s *Service) SendPasswordReset(ctx context.Context, by Actor, userID string) error {
	if s.mailer == nil {
		return &keycard.Error{Code: keycard.EFORBIDDEN, Message: "Password reset by email is not available on this server."}
	}
	u, err := s.stores.Users.UserByID(ctx, userID)
	if err != nil {
		return err
	}
	if u.Email == "" {
		return &keycard.Error{Code: keycard.EINVALID, Message: "The user has no email address."}
	}
	if u.Disabled {
		return &keycard.Error{Code: keycard.EINVALID, Message: "The user is disabled."}
	}
	token, err := s.newEmailToken(ctx, u, keycard.PurposeResetPassword, keycard.PasswordResetLifetime)
	if err != nil {
		return err
	}
	s.audit(ctx, AuditPasswordResetRequest, by, u.ID, map[string]any{"sent": true})
	s.send(ctx, s.resetMail(u, token))
	return nil
}

// resetMail is the mail of a password-reset link to u.
func (s *Service) resetMail(u *keycard.User, token string) Mail {
	return Mail{To: u.Email, Template: MailPasswordReset, Data: MailData{
		Username: u.Username, Email: u.Email, Link: s.link(ResetPasswordPath, token),
		ValidFor: keycard.PasswordResetLifetime, Issuer: s.cfg.Issuer, At: s.now(),
	}}
}
