// Package passkey is the WebAuthn relying party of the auth server: it
// implements auth.WebAuthn with github.com/go-webauthn/webauthn, turning
// Keycard's users and passkeys into that library's types and its errors
// into keycard errors (a response that does not parse is EINVALID, one
// that does not verify EUNAUTHORIZED).
//
// It makes the options and checks the answers (WebAuthn Level 3 §7.1 and
// §7.2: the challenge, the origin, the relying party id hash, the flags,
// the signature); auth.Service keeps the ceremonies' state, the
// credentials and the policy (signature counters, disabled users).
package passkey

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
)

// Config configures a RelyingParty.
type Config struct {
	// RPID is the relying party id (WebAuthn Level 3 §5.1.2): a
	// registrable domain suffix of every origin's host, such as
	// "example.com" for https://auth.example.com. Credentials are bound
	// to it: changing it makes every registered passkey useless.
	RPID string
	// Origins are the origins whose pages may run the ceremonies
	// ("https://auth.example.com"); an answer from any other is refused.
	Origins []string
	// Name is the relying party's name shown by some authenticators;
	// "Keycard" when empty.
	Name string
	// Timeout is how long the browser gives the user; the server keeps
	// a ceremony for keycard.PasskeyChallengeLifetime. Default: that.
	Timeout time.Duration
}

// Defaults returns the relying party id and origin of a server whose
// public URL is issuer: its host (without port) and its origin.
func Defaults(issuer string) (rpID string, origin string, err error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("passkey: issuer %q is not an http(s) URL", issuer)
	}
	return u.Hostname(), u.Scheme + "://" + u.Host, nil
}

// RelyingParty implements auth.WebAuthn. It is safe for concurrent use.
type RelyingParty struct {
	w *webauthn.WebAuthn
	// rpID, origins and rpIDHash are the configuration as the fast
	// path of FinishLogin (assertion.go) reads it; keys caches the
	// credentials' parsed public keys.
	rpID     string
	origins  []string
	rpIDHash [32]byte
	keys     keyCache
}

var _ auth.WebAuthn = (*RelyingParty)(nil)

// New returns a RelyingParty. It fails if the RP id is not a valid
// domain or an origin is not a URL.
func New(cfg Config) (*RelyingParty, error) {
	if cfg.RPID == "" || len(cfg.Origins) == 0 {
		return nil, errors.New("passkey: a relying party id and at least one origin are required")
	}
	if err := protocol.ValidateRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("passkey: relying party id %q: %w", cfg.RPID, err)
	}
	for _, o := range cfg.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != "" || u.RawQuery != "" {
			return nil, fmt.Errorf("passkey: origin %q is not scheme://host[:port]", o)
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = keycard.PasskeyChallengeLifetime
	}
	name := cfg.Name
	if name == "" {
		name = "Keycard"
	}
	residentKey := true
	w, err := webauthn.New(&webauthn.Config{
		RPID:          cfg.RPID,
		RPDisplayName: name,
		RPOrigins:     cfg.Origins,
		// Passkeys: a discoverable credential (so that a sign-in needs
		// no username), user verification preferred (a PIN or
		// biometric makes it two factors; its absence is allowed and
		// said in amr), no attestation asked for (Keycard trusts no
		// particular maker).
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: &residentKey,
			UserVerification:   protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &RelyingParty{
		w:        w,
		rpID:     cfg.RPID,
		origins:  slices.Clone(cfg.Origins),
		rpIDHash: sha256.Sum256([]byte(cfg.RPID)),
	}, nil
}

// user adapts a keycard.User and its passkeys to webauthn.User. The user
// handle is the user's id: random, opaque, and no personal data
// (WebAuthn Level 3 §14.6.1).
type user struct {
	u     *keycard.User
	src   []*keycard.Passkey
	creds []webauthn.Credential
}

func (u user) WebAuthnID() []byte                         { return []byte(u.u.ID) }
func (u user) WebAuthnName() string                       { return u.u.Username }
func (u user) WebAuthnDisplayName() string                { return u.u.Username }
func (u user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newUser(u *keycard.User, pks []*keycard.Passkey) user {
	creds := make([]webauthn.Credential, len(pks))
	for i, p := range pks {
		creds[i] = credential(p)
	}
	return user{u: u, src: pks, creds: creds}
}

// credential returns the library's credential record of a passkey.
func credential(p *keycard.Passkey) webauthn.Credential {
	flags := protocol.FlagUserPresent
	if p.UserVerified {
		flags |= protocol.FlagUserVerified
	}
	if p.BackupEligible {
		flags |= protocol.FlagBackupEligible
	}
	if p.BackupState {
		flags |= protocol.FlagBackupState
	}
	c := webauthn.Credential{
		ID:                p.CredentialID,
		PublicKey:         p.PublicKey,
		AttestationFormat: p.AttestationFormat,
		Flags:             webauthn.NewCredentialFlags(flags),
		Authenticator:     webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	return c
}

// BeginRegistration implements auth.WebAuthn.
func (rp *RelyingParty) BeginRegistration(u *keycard.User, exclude []*keycard.Passkey) (json.RawMessage, []byte, error) {
	wu := newUser(u, exclude)
	creation, session, err := rp.w.BeginRegistration(wu, webauthn.WithExclusions(webauthn.Credentials(wu.creds).CredentialDescriptors()))
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return encode(creation, session)
}

// FinishRegistration implements auth.WebAuthn.
func (rp *RelyingParty) FinishRegistration(u *keycard.User, state, response []byte) (*keycard.Passkey, error) {
	session, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, malformed(err)
	}
	if len(parsed.RawID) > keycard.MaxCredentialIDLen {
		return nil, &keycard.Error{Code: keycard.EINVALID, Message: "The passkey's credential id is too long."}
	}
	cred, err := rp.w.CreateCredential(newUser(u, nil), *session, parsed)
	if err != nil {
		return nil, refused(err)
	}
	p := &keycard.Passkey{
		CredentialID:      cred.ID,
		PublicKey:         cred.PublicKey,
		AAGUID:            cred.Authenticator.AAGUID,
		SignCount:         cred.Authenticator.SignCount,
		AttestationFormat: cred.AttestationFormat,
		BackupEligible:    cred.Flags.BackupEligible,
		BackupState:       cred.Flags.BackupState,
		UserVerified:      cred.Flags.UserVerified,
	}
	for _, t := range cred.Transport {
		if len(p.Transports) < 8 && len(t) <= 32 {
			p.Transports = append(p.Transports, string(t))
		}
	}
	return p, nil
}

// BeginLogin implements auth.WebAuthn.
func (rp *RelyingParty) BeginLogin(u *keycard.User, allow []*keycard.Passkey) (json.RawMessage, []byte, error) {
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if u == nil {
		assertion, session, err = rp.w.BeginDiscoverableLogin()
	} else {
		assertion, session, err = rp.w.BeginLogin(newUser(u, allow))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	return encode(assertion, session)
}

// FinishLogin implements auth.WebAuthn.
func (rp *RelyingParty) FinishLogin(state, response []byte, lookup func(userHandle []byte) (*keycard.User, []*keycard.Passkey, error)) (*auth.PasskeyAssertion, error) {
	session, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	// The fast path (assertion.go) decides the common answers; the
	// others, including every answer it would refuse, are decided by
	// go-webauthn below. The lookup is remembered so that a fallback
	// does not ask the store twice.
	lookup = (&lastLookup{fn: lookup}).lookup
	if a, err := rp.fastLogin(session, response, lookup); err == nil {
		return a, nil
	}
	return rp.libraryLogin(session, response, lookup)
}

// libraryLogin is FinishLogin by go-webauthn alone: the reference the
// fast path is tested against, and the path of every answer it does not
// accept.
func (rp *RelyingParty) libraryLogin(session *webauthn.SessionData, response []byte, lookup func(userHandle []byte) (*keycard.User, []*keycard.Passkey, error)) (*auth.PasskeyAssertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, malformed(err)
	}
	var owner user
	var lookupErr error
	find := func(handle []byte) (user, error) {
		u, pks, err := lookup(handle)
		if err != nil {
			lookupErr = err
			return user{}, err
		}
		owner = newUser(u, pks)
		return owner, nil
	}
	var cred *webauthn.Credential
	if len(session.UserID) == 0 {
		cred, err = rp.w.ValidateDiscoverableLogin(func(_, handle []byte) (webauthn.User, error) { return find(handle) }, *session, parsed)
	} else {
		var u user
		if u, err = find(session.UserID); err == nil {
			cred, err = rp.w.ValidateLogin(u, *session, parsed)
		}
	}
	if lookupErr != nil {
		return nil, lookupErr
	}
	if err != nil {
		return nil, refused(err)
	}
	var stored *keycard.Passkey
	pks := owner.creds
	for i := range pks {
		if string(pks[i].ID) == string(cred.ID) {
			stored = passkeyOf(owner, i)
		}
	}
	if stored == nil {
		return nil, refused(errors.New("credential not among the user's"))
	}
	flags := parsed.Response.AuthenticatorData.Flags
	return &auth.PasskeyAssertion{
		User:           owner.u,
		Passkey:        stored,
		SignCount:      parsed.Response.AuthenticatorData.Counter,
		UserVerified:   flags.HasUserVerified(),
		BackupEligible: flags.HasBackupEligible(),
		BackupState:    flags.HasBackupState(),
	}, nil
}

// lastLookup remembers the last answer of a FinishLogin lookup.
type lastLookup struct {
	fn     func(userHandle []byte) (*keycard.User, []*keycard.Passkey, error)
	done   bool
	handle string
	u      *keycard.User
	pks    []*keycard.Passkey
	err    error
}

func (l *lastLookup) lookup(handle []byte) (*keycard.User, []*keycard.Passkey, error) {
	if !l.done || l.handle != string(handle) {
		l.u, l.pks, l.err = l.fn(handle)
		l.done, l.handle = true, string(handle)
	}
	return l.u, l.pks, l.err
}

// passkeyOf returns the stored passkey behind the owner's i-th credential.
func passkeyOf(owner user, i int) *keycard.Passkey { return owner.src[i] }

// encode returns the options for the browser and the state to keep.
func encode(options any, session *webauthn.SessionData) (json.RawMessage, []byte, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: %w", err)
	}
	// The state is kept in go-webauthn's MessagePack form: it is read
	// back by this package only, and decodes without reflection.
	state, err := session.MarshalMsg(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: %w", err)
	}
	return opts, state, nil
}

func decodeState(state []byte) (*webauthn.SessionData, error) {
	var s webauthn.SessionData
	if _, err := s.UnmarshalMsg(state); err != nil {
		return nil, fmt.Errorf("passkey: stored ceremony state unreadable: %w", err)
	}
	return &s, nil
}

// malformed is the error of a response that does not parse.
func malformed(err error) error {
	return fmt.Errorf("%w (%w)", &keycard.Error{Code: keycard.EINVALID, Message: "The passkey response is malformed."}, err)
}

// refused is the error of a response that does not verify; the
// library's reason stays in the chain for the log, never for the client.
func refused(err error) error {
	return fmt.Errorf("%w (%w)", &keycard.Error{Code: keycard.EUNAUTHORIZED, Message: "The passkey response could not be verified."}, err)
}
