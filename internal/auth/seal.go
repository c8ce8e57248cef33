package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// MasterKeySize is the length of the master key in bytes (AES-256).
const MasterKeySize = 32

// sealVersion prefixes every sealed blob so the format can change later.
const sealVersion = 1

// Sealer encrypts secrets at rest (private signing keys, refresh-token
// successors during the grace window) under the operator's master key with
// AES-256-GCM. Each blob is bound to a label (its purpose and owner) as
// additional data, so a blob cannot be moved to another row or purpose. It
// is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	rand io.Reader
	// master is kept to derive the keys of other purposes (Derive).
	master []byte
}

// NewSealer returns a Sealer for a MasterKeySize-byte master key.
func NewSealer(masterKey []byte) (*Sealer, error) {
	if len(masterKey) != MasterKeySize {
		return nil, fmt.Errorf("auth: master key must be %d bytes, got %d", MasterKeySize, len(masterKey))
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, rand: rand.Reader, master: bytes.Clone(masterKey)}, nil
}

// Derive returns a 32-byte key for the purpose info, derived from the
// master key with HKDF-SHA256: the same on every instance that has the
// master key, and independent of the keys of other purposes.
func (s *Sealer) Derive(info string) ([]byte, error) {
	return hkdf.Key(sha256.New, s.master, nil, info, 32)
}

// Seal encrypts plaintext for label.
func (s *Sealer) Seal(plaintext []byte, label string) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := io.ReadFull(s.rand, out[1:]); err != nil {
		return nil, fmt.Errorf("auth: reading nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], plaintext, []byte(label)), nil
}

// errUnseal is deliberately vague: a wrong master key and a tampered blob
// look the same.
var errUnseal = errors.New("auth: cannot open sealed data (wrong master key or corrupted data)")

// Open decrypts a blob made by Seal with the same label.
func (s *Sealer) Open(sealed []byte, label string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errUnseal
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(label))
	if err != nil {
		return nil, errUnseal
	}
	return pt, nil
}

// GenerateMasterKey returns a new master key in its text form: base64url
// of MasterKeySize random bytes.
func GenerateMasterKey(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, MasterKeySize)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ParseMasterKey decodes a master key's text form (base64url or standard
// base64, padded or not, surrounding whitespace ignored).
func ParseMasterKey(text []byte) ([]byte, error) {
	t := bytes.TrimSpace(text)
	t = bytes.TrimRight(t, "=")
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(string(t)); err == nil && len(b) == MasterKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("auth: master key must be %d bytes in base64", MasterKeySize)
}
