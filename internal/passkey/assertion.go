package passkey

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// This file is the fast path of FinishLogin: it verifies the common
// assertion — a browser's PublicKeyCredential JSON, authenticator data
// without extensions, an ES256 credential, a ceremony without
// extensions — by WebAuthn Level 3 §7.2 without go-webauthn's
// encoding/json and CBOR decoding, with the credential's public key
// parsed once. It only ever accepts: an answer it does not recognise or
// that does not verify goes to go-webauthn, whose verdict and error are
// final, so the fast path can make no refusal the library would not
// make, and (TestFastPathAgrees, FuzzParseAssertion) it accepts nothing
// the library refuses. docs/decisions/passkeys.md ("Assertions: a fast
// path in front of go-webauthn") says why.

// errNotFast is why the fast path handed an answer over; the reasons are
// for tests, never for clients.
var (
	errNotFast        = errors.New("passkey: not a fast-path answer")
	errFastJSON       = errors.New("passkey: fast path: JSON outside the subset it reads")
	errFastB64        = errors.New("passkey: fast path: base64url outside the subset it reads")
	errFastAuthData   = errors.New("passkey: fast path: authenticator data with attested data or extensions")
	errFastSession    = errors.New("passkey: fast path: ceremony with extensions, expired or with a bad challenge")
	errFastCredential = errors.New("passkey: fast path: credential not found, not allowed or not the user's")
	errFastKey        = errors.New("passkey: fast path: not an ES256 P-256 COSE key")
	errFastCheck      = errors.New("passkey: fast path: a check failed")
)

// assertionJSON is what the fast path reads of an assertion's
// PublicKeyCredential JSON (WebAuthn Level 3 §5.1, §5.2.2), base64url
// decoded.
type assertionJSON struct {
	rawID, clientDataJSON, authData, signature, userHandle []byte
}

// Member names as go-webauthn's encoding/json reads them.
var (
	outerNames      = []string{"id", "rawId", "type", "authenticatorAttachment", "response", "clientExtensionResults"}
	responseNames   = []string{"clientDataJSON", "authenticatorData", "signature", "userHandle"}
	clientDataNames = []string{"type", "challenge", "origin", "topOrigin", "crossOrigin", "tokenBinding", "new_keys_may_be_added_here"}
)

// member returns the index in names of the member name as encoding/json
// matches names to fields (case-insensitively), -1 for a member it
// ignores, or -2 for a name the fast path does not decide on: one that
// is not ASCII, or that matches a field only without its '_' and '-'
// (a newer encoding/json may fold those too). jsonscan's fold option
// has already refused two names equal under case folding.
func member(name []byte, names []string) int {
	for i, n := range names {
		if string(name) == n {
			return i
		}
	}
	for _, c := range name {
		if c >= 0x80 {
			return -2
		}
	}
	for i, n := range names {
		if len(name) == len(n) && bytes.EqualFold(name, []byte(n)) {
			return i
		}
	}
	for _, n := range names {
		if equalLoose(name, n) {
			return -2
		}
	}
	return -1
}

// equalLoose reports whether a and b are equal ignoring ASCII case, '_'
// and '-'.
func equalLoose(a []byte, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && (a[i] == '_' || a[i] == '-') {
			i++
		}
		for j < len(b) && (b[j] == '_' || b[j] == '-') {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		x, y := a[i]|0x20, b[j]|0x20
		if x != y || (x < 'a' || x > 'z') && a[i] != b[j] {
			return false
		}
		i++
		j++
	}
}

// str returns the contents of a JSON string value, unescaped.
func str(value []byte) ([]byte, error) {
	if len(value) == 0 || value[0] != '"' {
		return nil, errFastJSON
	}
	return jsonscan.Unquote(value)
}

// rawStr returns the contents of a JSON string value without escapes.
// Escapes, which no browser writes in base64url, are left to
// go-webauthn, and with them the line breaks its decoder skips.
func rawStr(value []byte) ([]byte, error) {
	if len(value) < 2 || value[0] != '"' || bytes.IndexByte(value, '\\') >= 0 {
		return nil, errFastB64
	}
	return value[1 : len(value)-1], nil
}

// b64 appends to dst the base64url (no padding) decoding of the JSON
// string value. Escapes, padding (an error of the decoder) and null are
// left to go-webauthn.
func b64(dst, value []byte) ([]byte, []byte, error) {
	s, err := rawStr(value)
	if err != nil {
		return dst, nil, err
	}
	start := len(dst)
	n := base64.RawURLEncoding.DecodedLen(len(s))
	if cap(dst)-start < n {
		return dst, nil, errFastB64
	}
	dst = dst[:start+n]
	m, err := base64.RawURLEncoding.Decode(dst[start:], s)
	if err != nil {
		return dst[:start], nil, errFastB64
	}
	return dst[:start+m], dst[start : start+m : start+m], nil
}

// parseAssertion reads the PublicKeyCredential JSON of an assertion. It
// accepts a subset of what go-webauthn's
// protocol.ParseCredentialRequestResponseBytes accepts, with the same
// meaning: strict JSON (jsonscan: no duplicate names, valid UTF-8, no
// trailing data), every member of the right JSON type, base64url without
// padding, id equal to rawId, type "public-key", and
// clientExtensionResults absent or empty. Anything else is an error
// wrapping errNotFast.
func parseAssertion(data []byte) (a assertionJSON, err error) {
	// Every decoded value fits in one buffer the size of the input.
	buf := make([]byte, 0, len(data))
	var id []byte
	var seen [6]bool
	err = jsonscan.ScanObject(data, true, func(name, value []byte) error {
		i := member(name, outerNames)
		if i == -2 {
			return errFastJSON
		}
		if i < 0 {
			return nil
		}
		seen[i] = true
		var err error
		switch i {
		case 0: // id: a plain string, base64url by §5.1.
			if id, err = rawStr(value); err != nil {
				return err
			}
		case 1:
			buf, a.rawID, err = b64(buf, value)
		case 2:
			var t []byte
			if t, err = str(value); err == nil && string(t) != string(protocol.PublicKeyCredentialType) {
				err = errFastCheck
			}
		case 3: // authenticatorAttachment: any string or null, not used.
			if string(value) != "null" {
				_, err = str(value)
			}
		case 4:
			err = jsonscan.ScanObject(value, true, func(name, value []byte) error {
				j := member(name, responseNames)
				if j == -2 {
					return errFastJSON
				}
				var err error
				switch j {
				case 0:
					buf, a.clientDataJSON, err = b64(buf, value)
				case 1:
					buf, a.authData, err = b64(buf, value)
				case 2:
					buf, a.signature, err = b64(buf, value)
				case 3: // null: none, as go-webauthn reads it
					if string(value) != "null" {
						buf, a.userHandle, err = b64(buf, value)
					}
				}
				return err
			})
		case 5:
			err = jsonscan.ScanObject(value, true, func(_, _ []byte) error { return errFastJSON })
		}
		return err
	})
	if err != nil {
		return assertionJSON{}, errors.Join(errNotFast, err)
	}
	if !seen[0] || !seen[1] || !seen[2] || !seen[4] || a.clientDataJSON == nil || a.authData == nil || a.signature == nil {
		return assertionJSON{}, errors.Join(errNotFast, errFastJSON)
	}
	// id is the base64url of rawId (go-webauthn decodes it without
	// trimming padding).
	if len(id) == 0 || len(a.rawID) == 0 || base64.RawURLEncoding.DecodedLen(len(id)) != len(a.rawID) {
		return assertionJSON{}, errors.Join(errNotFast, errFastCheck)
	}
	var idBuf [keycard.MaxCredentialIDLen]byte
	if len(a.rawID) > len(idBuf) {
		return assertionJSON{}, errors.Join(errNotFast, errFastCheck)
	}
	if n, err := base64.RawURLEncoding.Decode(idBuf[:], id); err != nil || !bytes.Equal(idBuf[:n], a.rawID) {
		return assertionJSON{}, errors.Join(errNotFast, errFastCheck)
	}
	return a, nil
}

// clientData is what the fast path reads of the client data
// (WebAuthn Level 3 §5.8.1).
type clientData struct {
	typ, challenge, origin []byte
}

// parseClientData reads clientDataJSON as go-webauthn's json.Unmarshal
// into protocol.CollectedClientData would, for the subset it accepts:
// strict JSON, type, challenge and origin strings, crossOrigin absent or
// false, topOrigin absent or empty, no tokenBinding, other members
// ignored (as browsers add them). Anything else wraps errNotFast.
func parseClientData(data []byte) (c clientData, err error) {
	err = jsonscan.ScanObject(data, true, func(name, value []byte) error {
		var err error
		switch member(name, clientDataNames) {
		case -1:
			return nil
		case 0:
			c.typ, err = str(value)
		case 1:
			c.challenge, err = str(value)
		case 2:
			c.origin, err = str(value)
		case 3:
			var s []byte
			if s, err = str(value); err == nil && len(s) != 0 {
				err = errFastCheck
			}
		case 4:
			if string(value) != "false" {
				err = errFastCheck
			}
		default: // tokenBinding, new_keys_may_be_added_here, unsure
			err = errFastJSON
		}
		return err
	})
	if err != nil {
		return clientData{}, errors.Join(errNotFast, err)
	}
	return c, nil
}

// parseFast reads an assertion response (parseAssertion), its client
// data (parseClientData) and checks that its authenticator data has no
// attested credential data and no extensions: what go-webauthn's
// protocol.ParseCredentialRequestResponseBytes does, for the answers the
// fast path takes.
func parseFast(response []byte) (assertionJSON, clientData, error) {
	a, err := parseAssertion(response)
	if err != nil {
		return assertionJSON{}, clientData{}, err
	}
	cd, err := parseClientData(a.clientDataJSON)
	if err != nil {
		return assertionJSON{}, clientData{}, err
	}
	if len(a.authData) != authDataLen || a.authData[32]&(flagAT|flagED) != 0 {
		return assertionJSON{}, clientData{}, errors.Join(errNotFast, errFastAuthData)
	}
	return a, cd, nil
}

// Authenticator data (WebAuthn Level 3 §6.1).
const (
	authDataLen = 37 // rpIdHash, flags, signCount
	flagUP      = 0x01
	flagUV      = 0x04
	flagBE      = 0x08
	flagBS      = 0x10
	flagAT      = 0x40
	flagED      = 0x80
)

// keyCache holds the credentials' public keys parsed from their COSE
// form, so that a sign-in with a known passkey does not parse it again.
// It is bounded: when full it is emptied. It is safe for concurrent use.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]*ecdsa.PublicKey
}

// maxCachedKeys bounds keyCache: 4,096 keys of about 300 bytes each.
const maxCachedKeys = 4096

// get returns the ES256 public key of a COSE_Key, parsing and caching it
// on first use.
func (c *keyCache) get(cose []byte) (*ecdsa.PublicKey, error) {
	c.mu.Lock()
	k, ok := c.keys[string(cose)]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := parseES256(cose)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[string]*ecdsa.PublicKey)
	}
	c.keys[string(cose)] = k
	c.mu.Unlock()
	return k, nil
}

// parseES256 parses a COSE_Key (RFC 9052 §7, RFC 9053 §2.1 and §7.1.1)
// that is exactly an EC2 P-256 key for ES256: a CBOR map of the five
// members kty 2, alg -7, crv 1, x and y (32-byte byte strings), in any
// order, minimally encoded, with nothing after it, whose point is on the
// curve. go-webauthn's webauthncose.ParsePublicKey accepts every such
// key as the same key; other keys (other algorithms, other encodings)
// are errFastKey and left to it.
func parseES256(cose []byte) (*ecdsa.PublicKey, error) {
	if len(cose) != 77 || cose[0] != 0xa5 {
		return nil, errFastKey
	}
	var point [65]byte
	point[0] = 4
	var seen [5]bool
	rest := cose[1:]
	for range 5 {
		k, v := rest[0], rest[1:]
		if len(v) < 1 {
			return nil, errFastKey
		}
		var i int
		switch k {
		case 0x01: // kty: EC2
			i, rest = 0, v[1:]
			if v[0] != 0x02 {
				return nil, errFastKey
			}
		case 0x03: // alg: ES256 (-7)
			i, rest = 1, v[1:]
			if v[0] != 0x26 {
				return nil, errFastKey
			}
		case 0x20: // crv (-1): P-256
			i, rest = 2, v[1:]
			if v[0] != 0x01 {
				return nil, errFastKey
			}
		case 0x21, 0x22: // x (-2), y (-3)
			i = 3 + int(k-0x21)
			if len(v) < 34 || v[0] != 0x58 || v[1] != 32 {
				return nil, errFastKey
			}
			copy(point[1+32*(i-3):], v[2:34])
			rest = v[34:]
		default:
			return nil, errFastKey
		}
		if seen[i] {
			return nil, errFastKey
		}
		seen[i] = true
		if len(rest) == 0 {
			break
		}
	}
	if len(rest) != 0 || seen != [5]bool{true, true, true, true, true} {
		return nil, errFastKey
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
	if err != nil {
		return nil, errFastKey
	}
	return k, nil
}

// fastLogin verifies the assertion response against the ceremony
// session (WebAuthn Level 3 §7.2) for the answers it recognises, with
// the checks go-webauthn's ValidateLogin and ValidateDiscoverableLogin
// make under this package's configuration: no metadata service, no
// opaque or top origins, cross-origin refused, no extensions. It
// returns the verified assertion, or an error wrapping errNotFast when
// the answer is to go to go-webauthn instead: then nothing is decided.
// lookup is called at most once, as the library path would call it.
func (rp *RelyingParty) fastLogin(session *webauthn.SessionData, response []byte, lookup func([]byte) (*keycard.User, []*keycard.Passkey, error)) (*auth.PasskeyAssertion, error) {
	a, cd, err := parseFast(response)
	if err != nil {
		return nil, err
	}
	ad := a.authData
	if !session.Extensions.IsZero() || !session.Expires.IsZero() && session.Expires.Before(time.Now()) || !validChallenge(session.Challenge) {
		return nil, errors.Join(errNotFast, errFastSession)
	}

	// §7.2 steps 5–6: the user and the credential.
	handle := session.UserID
	if len(handle) == 0 { // discoverable
		if len(a.userHandle) == 0 {
			return nil, errors.Join(errNotFast, errFastCredential)
		}
		handle = a.userHandle
	}
	u, pks, err := lookup(handle)
	if err != nil || u == nil {
		return nil, errors.Join(errNotFast, errFastCredential)
	}
	if u.ID != string(handle) || len(a.userHandle) != 0 && string(a.userHandle) != u.ID {
		return nil, errors.Join(errNotFast, errFastCredential)
	}
	var stored *keycard.Passkey
	for _, p := range pks {
		if string(p.CredentialID) == string(a.rawID) {
			stored = p
			break
		}
	}
	if stored == nil {
		return nil, errors.Join(errNotFast, errFastCredential)
	}
	if len(session.AllowedCredentialIDs) > 0 {
		// go-webauthn also wants every allowed credential to be the user's.
		found := false
		for _, id := range session.AllowedCredentialIDs {
			found = found || string(id) == string(a.rawID)
			owned := false
			for _, p := range pks {
				owned = owned || string(p.CredentialID) == string(id)
			}
			if !owned {
				return nil, errors.Join(errNotFast, errFastCredential)
			}
		}
		if !found {
			return nil, errors.Join(errNotFast, errFastCredential)
		}
	}

	// Steps 11–14: the client data.
	origins := rp.origins
	if session.Origin != "" {
		origins = []string{session.Origin}
	}
	originOK := false
	for _, o := range origins {
		originOK = originOK || string(cd.origin) == o
	}
	if string(cd.typ) != string(protocol.AssertCeremony) ||
		subtle.ConstantTimeCompare([]byte(session.Challenge), cd.challenge) != 1 ||
		!originOK {
		return nil, errors.Join(errNotFast, errFastCheck)
	}

	// Steps 15–17 and the backup flags (§6.1.3): the authenticator data.
	rpIDHash := rp.rpIDHash
	if session.RelyingPartyID != "" && session.RelyingPartyID != rp.rpID {
		rpIDHash = sha256.Sum256([]byte(session.RelyingPartyID))
	}
	flags := ad[32]
	uvRequired := session.UserVerification == protocol.VerificationRequired
	if subtle.ConstantTimeCompare(ad[:32], rpIDHash[:]) != 1 ||
		flags&flagUP == 0 ||
		uvRequired && flags&flagUV == 0 ||
		stored.BackupEligible != (flags&flagBE != 0) ||
		flags&flagBE == 0 && flags&flagBS != 0 {
		return nil, errors.Join(errNotFast, errFastCheck)
	}

	// Steps 19–21: the signature over authData || SHA-256(clientDataJSON).
	key, err := rp.keys.get(stored.PublicKey)
	if err != nil {
		return nil, errors.Join(errNotFast, err)
	}
	var signed [authDataLen + sha256.Size]byte
	copy(signed[:], ad)
	cdHash := sha256.Sum256(a.clientDataJSON)
	copy(signed[authDataLen:], cdHash[:])
	digest := sha256.Sum256(signed[:])
	if !ecdsa.VerifyASN1(key, digest[:], a.signature) {
		return nil, errors.Join(errNotFast, errFastCheck)
	}
	return &auth.PasskeyAssertion{
		User:           u,
		Passkey:        stored,
		SignCount:      binary.BigEndian.Uint32(ad[33:37]),
		UserVerified:   flags&flagUV != 0,
		BackupEligible: flags&flagBE != 0,
		BackupState:    flags&flagBS != 0,
	}, nil
}

// validChallenge reports whether the session's challenge is base64url
// of at least protocol.MinimumChallengeLength bytes, as go-webauthn
// checks before it verifies.
func validChallenge(c string) bool {
	var buf [96]byte
	if base64.RawURLEncoding.DecodedLen(len(c)) > len(buf) {
		return false
	}
	n, err := base64.RawURLEncoding.Decode(buf[:], []byte(c))
	return err == nil && n >= protocol.MinimumChallengeLength
}
