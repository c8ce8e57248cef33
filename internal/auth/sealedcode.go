package auth

import (
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/keycard-auth/keycard"
)

// Sealed authorization codes (docs/decisions/sealed-codes.md): a code
// carries, sealed, everything its redemption needs, so that
// /oauth/authorize writes nothing; /oauth/token opens it and records its
// single use in the redemption's transaction (keycard.GrantKindSealedCode).
//
// A code carries the browser session's expiry and upstream identity
// provider too (which never change), so that the redemption does not read
// the session before its transaction, which checks that it is active.
//
// A code is base64url (unpadded) of
//
//	version (1 byte) | nonce (24 bytes) | XChaCha20-Poly1305(payload) (16 bytes of tag)
//
// under a key derived from the master key (HKDF-SHA256, info
// codeKeyInfo), with codeAAD as additional data. The version names the
// format and the key's derivation: a new derivation (a master key
// rotation that keeps the old key for a code's minute) takes a new
// version. The nonce is random; its first 16 bytes, base64url, are the
// code's id, under which its use is recorded. XChaCha20's 192-bit nonce
// makes random nonces safe for any number of codes under one key (AES-GCM's
// 96 bits would bound a key to 2^32 codes).
const (
	sealedCodeVersion = 1
	codeKeyInfo       = "keycard authorization code key v1"
	codeAAD           = "keycard authorization code v1"
	sealedCodeIDBytes = 16
)

// sealedCode is what a sealed authorization code carries.
type sealedCode struct {
	ID        string // base64url of the nonce's first 16 bytes
	ExpiresAt time.Time
	AuthTime  time.Time
	ClientID  string
	UserID    string
	SessionID string
	// RedirectHash is the SHA-256 of the redirect_uri, which the token
	// request must repeat exactly: the hash is enough to compare, and
	// keeps a long URI out of the code.
	RedirectHash  []byte
	CodeChallenge string
	Scope         string
	Nonce         string
	DPoPJKT       string
	AMR           []string
	// ParentExpiresAt, IdP, IdPSubject and IdPSessionID are the browser
	// session's, which never change: the redemption takes them from the
	// code instead of reading the session before its transaction (which
	// still checks that the session is active).
	ParentExpiresAt               time.Time
	IdP, IdPSubject, IdPSessionID string
}

// codeSealer seals and opens authorization codes. It is safe for
// concurrent use.
type codeSealer struct {
	aead cipher.AEAD
	rand io.Reader
}

func newCodeSealer(key []byte, rand io.Reader) (*codeSealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return &codeSealer{aead: aead, rand: rand}, nil
}

// seal returns the code for c, and sets c.ID.
func (cs *codeSealer) seal(c *sealedCode) (string, error) {
	var p []byte
	p = binary.AppendUvarint(p, uint64(c.ExpiresAt.UnixMicro()))
	var auth uint64
	if !c.AuthTime.IsZero() {
		auth = uint64(c.AuthTime.UnixMicro())
	}
	p = binary.AppendUvarint(p, auth)
	p = binary.AppendUvarint(p, uint64(c.ParentExpiresAt.UnixMicro()))
	for _, s := range []string{c.ClientID, c.UserID, c.SessionID, string(c.RedirectHash), c.CodeChallenge, c.Scope, c.Nonce, c.DPoPJKT, strings.Join(c.AMR, " "),
		c.IdP, c.IdPSubject, c.IdPSessionID} {
		p = binary.AppendUvarint(p, uint64(len(s)))
		p = append(p, s...)
	}
	ns := cs.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(p)+cs.aead.Overhead())
	out[0] = sealedCodeVersion
	if _, err := io.ReadFull(cs.rand, out[1:]); err != nil {
		return "", err
	}
	out = cs.aead.Seal(out, out[1:1+ns], p, []byte(codeAAD))
	c.ID = base64.RawURLEncoding.EncodeToString(out[1 : 1+sealedCodeIDBytes])
	return base64.RawURLEncoding.EncodeToString(out), nil
}

var errSealedCode = errors.New("auth: not a sealed code of this server")

// open returns what the code carries, or errSealedCode for anything but a
// code this sealer sealed, unchanged.
func (cs *codeSealer) open(code string) (*sealedCode, error) {
	b, err := base64.RawURLEncoding.DecodeString(code)
	ns := cs.aead.NonceSize()
	if err != nil || len(b) < 1+ns+cs.aead.Overhead() || b[0] != sealedCodeVersion {
		return nil, errSealedCode
	}
	p, err := cs.aead.Open(nil, b[1:1+ns], b[1+ns:], []byte(codeAAD))
	if err != nil {
		return nil, errSealedCode
	}
	c := &sealedCode{ID: base64.RawURLEncoding.EncodeToString(b[1 : 1+sealedCodeIDBytes])}
	exp, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, errSealedCode
	}
	p = p[n:]
	auth, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, errSealedCode
	}
	p = p[n:]
	parentExp, n := binary.Uvarint(p)
	if n <= 0 {
		return nil, errSealedCode
	}
	p = p[n:]
	c.ExpiresAt = time.UnixMicro(int64(exp)).UTC()
	c.ParentExpiresAt = time.UnixMicro(int64(parentExp)).UTC()
	if auth != 0 {
		c.AuthTime = time.UnixMicro(int64(auth)).UTC()
	}
	var amr, redirect string
	for _, f := range []*string{&c.ClientID, &c.UserID, &c.SessionID, &redirect, &c.CodeChallenge, &c.Scope, &c.Nonce, &c.DPoPJKT, &amr,
		&c.IdP, &c.IdPSubject, &c.IdPSessionID} {
		l, n := binary.Uvarint(p)
		if n <= 0 || l > uint64(len(p)-n) {
			return nil, errSealedCode
		}
		*f = string(p[n : n+int(l)])
		p = p[n+int(l):]
	}
	if len(p) != 0 {
		return nil, errSealedCode
	}
	c.RedirectHash = []byte(redirect)
	if amr != "" {
		c.AMR = strings.Split(amr, " ")
	}
	return c, nil
}

// redirectHash is the SHA-256 of a redirect URI, as a sealed code keeps it.
func redirectHash(uri string) []byte {
	h := sha256.Sum256([]byte(uri))
	return h[:]
}

// sameRedirect reports whether uri is the one whose hash the code keeps.
func (c *sealedCode) sameRedirect(uri string) bool {
	return subtle.ConstantTimeCompare(c.RedirectHash, redirectHash(uri)) == 1
}

// looksSealed reports whether code has the form of a sealed code rather
// than a stored one ("<id>.<secret>", which has a dot).
func looksSealed(code string) bool {
	return !strings.Contains(code, ".")
}

// sealedRedeem returns the Redeem request of c's single use.
func sealedRedeem(c *sealedCode) keycard.RedeemRequest {
	return keycard.RedeemRequest{Kind: keycard.GrantKindSealedCode, ID: c.ID, ExpiresAt: c.ExpiresAt}
}
