package jose

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sync"
	"unicode/utf8"
)

// MaxKeyIDLength is the longest "kid" accepted, in bytes. A "kid" is an
// opaque string; it is only ever compared, never interpreted.
const MaxKeyIDLength = 256

// Key is a signing or verification key bound to exactly one [Algorithm].
//
// A Key holds either an HMAC secret, or a public key and optionally a
// [crypto.Signer] for its private half (which may live in a KMS or HSM).
// Keys are immutable and safe for concurrent use.
type Key struct {
	alg  Algorithm
	info algInfo
	kid  string

	secret []byte           // HMAC only
	pub    crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	signer crypto.Signer    // private half, or nil for a public key

	hmacPool *sync.Pool      // of hash.Hash keyed with secret
	pss      *rsa.PSSOptions // PS* only
	thumb    func() string   // RFC 7638 thumbprint, computed once
	ecdsaN   *big.Int        // ES* only: the curve order
	rsaSize  int             // RS*/PS*: signature length in bytes
	rand     io.Reader       // crypto/rand.Reader
}

// NewHMACKey returns an HMAC key for alg (HS256, HS384 or HS512). The
// secret must be at least as long as the hash output (RFC 7518 section
// 3.2); it is copied.
func NewHMACKey(alg Algorithm, secret []byte) (*Key, error) {
	info := alg.info()
	if info.family != famHMAC {
		return nil, fmt.Errorf("%w: %s is not an HMAC algorithm", ErrInvalidKey, alg)
	}
	if len(secret) < info.size {
		return nil, fmt.Errorf("%w: %s secret must be at least %d bytes, got %d", ErrInvalidKey, alg, info.size, len(secret))
	}
	s := append([]byte(nil), secret...)
	k := &Key{alg: alg, info: info, secret: s}
	k.hmacPool = &sync.Pool{New: func() any { return &macState{h: hmac.New(info.hash.New, s)} }}
	return k.finish(), nil
}

// NewKey returns a key for alg from a Go key value: for HMAC a []byte
// secret; otherwise *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey,
// any other [crypto.Signer] whose public key fits alg, or the public keys
// *rsa.PublicKey, *ecdsa.PublicKey and ed25519.PublicKey.
//
// The key is checked: RSA moduli of at least 2048 bits with an odd public
// exponent between 3 and 2^31-1, EC keys on the curve alg names, Ed25519
// keys of the right length.
func NewKey(alg Algorithm, key any) (*Key, error) {
	info := alg.info()
	if info.family == famNone {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
	}
	if info.family == famHMAC {
		secret, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("%w: %s needs a []byte secret, got %T", ErrInvalidKey, alg, key)
		}
		return NewHMACKey(alg, secret)
	}
	var pub crypto.PublicKey
	var signer crypto.Signer
	switch k := key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		pub = k
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: Ed25519 private key of %d bytes", ErrInvalidKey, len(k))
		}
		signer, pub = k, k.Public()
	case crypto.Signer:
		signer, pub = k, k.Public()
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrInvalidKey, key)
	}
	k := &Key{alg: alg, info: info, pub: pub, signer: signer}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k.finish(), nil
}

// check validates the public half against the algorithm.
func (k *Key) check() error {
	switch k.info.family {
	case famRSA, famPSS:
		pub, ok := k.pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: %s needs an RSA key, got %T", ErrInvalidKey, k.alg, k.pub)
		}
		if pub.N == nil || pub.N.BitLen() < 2048 {
			return fmt.Errorf("%w: RSA modulus must be at least 2048 bits", ErrInvalidKey)
		}
		if pub.E < 3 || pub.E > 1<<31-1 || pub.E%2 == 0 {
			return fmt.Errorf("%w: RSA public exponent %d is not an odd number in [3, 2^31-1]", ErrInvalidKey, pub.E)
		}
		if priv, ok := k.signer.(*rsa.PrivateKey); ok {
			if err := priv.Validate(); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalidKey, err)
			}
		}
		k.rsaSize = (pub.N.BitLen() + 7) / 8
		if k.info.family == famPSS {
			k.pss = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: k.info.hash}
		}
	case famECDSA:
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%w: %s needs an EC key, got %T", ErrInvalidKey, k.alg, k.pub)
		}
		if pub.Curve == nil || pub.Curve.Params().Name != k.info.curve.Params().Name {
			return fmt.Errorf("%w: %s needs curve %s", ErrInvalidKey, k.alg, k.info.crv)
		}
		raw, err := pub.Bytes()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		checked, err := ecdsa.ParseUncompressedPublicKey(k.info.curve, raw)
		if err != nil {
			return fmt.Errorf("%w: EC point not on curve %s", ErrInvalidKey, k.info.crv)
		}
		k.pub = checked
		k.ecdsaN = k.info.curve.Params().N
	case famEdDSA:
		pub, ok := k.pub.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: EdDSA needs an Ed25519 key, got %T", ErrInvalidKey, k.pub)
		}
	}
	return nil
}

func (k *Key) finish() *Key {
	k.rand = rand.Reader
	k.thumb = sync.OnceValue(k.computeThumbprint)
	return k
}

// GenerateKey returns a new private key for alg: a random secret as long as
// the hash output for HMAC, a 2048-bit RSA key, an EC key on alg's curve or
// an Ed25519 key. random is the source of randomness (crypto/rand.Reader
// when nil); some standard-library generators ignore it.
func GenerateKey(alg Algorithm, random io.Reader) (*Key, error) {
	if random == nil {
		random = rand.Reader
	}
	info := alg.info()
	switch info.family {
	case famHMAC:
		secret := make([]byte, info.size)
		if _, err := io.ReadFull(random, secret); err != nil {
			return nil, err
		}
		return NewHMACKey(alg, secret)
	case famRSA, famPSS:
		priv, err := rsa.GenerateKey(random, 2048)
		if err != nil {
			return nil, err
		}
		return NewKey(alg, priv)
	case famECDSA:
		priv, err := ecdsa.GenerateKey(info.curve, random)
		if err != nil {
			return nil, err
		}
		return NewKey(alg, priv)
	case famEdDSA:
		_, priv, err := ed25519.GenerateKey(random)
		if err != nil {
			return nil, err
		}
		return NewKey(alg, priv)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedAlgorithm, alg)
}

// Algorithm returns the one algorithm the key is bound to.
func (k *Key) Algorithm() Algorithm { return k.alg }

// KeyID returns the key's "kid", or "" if it has none.
func (k *Key) KeyID() string { return k.kid }

// WithKeyID returns a copy of k with the given "kid". The kid must be valid
// UTF-8 of at most [MaxKeyIDLength] bytes.
func (k *Key) WithKeyID(kid string) (*Key, error) {
	if err := checkKeyID(kid); err != nil {
		return nil, err
	}
	c := *k
	c.kid = kid
	return &c, nil
}

func checkKeyID(kid string) error {
	if len(kid) > MaxKeyIDLength || !utf8.ValidString(kid) {
		return fmt.Errorf("%w: kid must be valid UTF-8 of at most %d bytes", ErrMalformed, MaxKeyIDLength)
	}
	return nil
}

// IsPrivate reports whether k can sign: an HMAC key or a key with a
// private half.
func (k *Key) IsPrivate() bool { return k.secret != nil || k.signer != nil }

// Public returns the public half of k, with the same algorithm and kid.
// For an HMAC key, which has no public half, it returns nil.
func (k *Key) Public() *Key {
	if k.secret != nil {
		return nil
	}
	if k.signer == nil {
		return k
	}
	c := *k
	c.signer = nil
	return &c
}

// PublicKey returns the Go public key (*rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey), or nil for an HMAC key.
func (k *Key) PublicKey() crypto.PublicKey { return k.pub }

// Signer returns the private half, or nil for public and HMAC keys.
func (k *Key) Signer() crypto.Signer { return k.signer }

// Thumbprint returns the key's RFC 7638 JWK thumbprint: the base64url
// SHA-256 of its required members. For an HMAC key the thumbprint is a
// hash of the secret; do not publish it.
func (k *Key) Thumbprint() string { return k.thumb() }

// ResolveKey implements [KeyResolver] for a single key: it returns k when
// the header's "alg" equals k's algorithm and the header's "kid", if any,
// equals k's kid (a key without a kid accepts any kid).
func (k *Key) ResolveKey(h *Header) (*Key, error) {
	if h.KeyID != "" && k.kid != "" && h.KeyID != k.kid {
		return nil, ErrKeyNotFound
	}
	if h.Algorithm != k.alg {
		return nil, fmt.Errorf("%w: token alg %s, key alg %s", ErrAlgorithmMismatch, h.Algorithm, k.alg)
	}
	return k, nil
}

// digest hashes msg with h into buf without allocating.
func digest(h crypto.Hash, msg []byte, buf *[64]byte) []byte {
	switch h {
	case crypto.SHA256:
		*(*[32]byte)(buf[:32]) = sha256.Sum256(msg)
		return buf[:32]
	case crypto.SHA384:
		*(*[48]byte)(buf[:48]) = sha512.Sum384(msg)
		return buf[:48]
	default:
		*buf = sha512.Sum512(msg)
		return buf[:64]
	}
}

// sigSize is the length in bytes of the key's raw JWS signatures.
func (k *Key) sigSize() int {
	switch k.info.family {
	case famRSA, famPSS:
		return k.rsaSize
	case famECDSA:
		return 2 * k.info.size // r || s (RFC 7518 section 3.4)
	default:
		return k.info.size // HMAC: the hash's output; Ed25519: 64
	}
}

// macState is a keyed HMAC with room for its output, pooled per key so
// that computing a MAC does not allocate.
type macState struct {
	h   hash.Hash
	sum [64]byte
}

// mac appends the HMAC of msg to dst. If want is not nil, it
// instead reports (through ok) whether want equals the HMAC, in constant
// time.
func (k *Key) mac(dst, msg, want []byte) (out []byte, ok bool) {
	st := k.hmacPool.Get().(*macState)
	st.h.Reset()
	st.h.Write(msg)
	sum := st.h.Sum(st.sum[:0])
	if want != nil {
		ok = hmac.Equal(sum, want)
	} else {
		dst = append(dst, sum...)
	}
	k.hmacPool.Put(st)
	return dst, ok
}

// signAppend appends the raw JWS signature of signingInput to dst.
func (k *Key) signAppend(dst, signingInput []byte) ([]byte, error) {
	if !k.IsPrivate() {
		return dst, fmt.Errorf("%w: key %q has no private half", ErrInvalidKey, k.kid)
	}
	if k.info.family == famHMAC {
		out, _ := k.mac(dst, signingInput, nil)
		return out, nil
	}
	var buf [64]byte
	switch k.info.family {
	case famRSA:
		sig, err := k.signer.Sign(k.rand, digest(k.info.hash, signingInput, &buf), k.info.hash)
		if err != nil {
			return dst, err
		}
		return append(dst, sig...), nil
	case famPSS:
		sig, err := k.signer.Sign(k.rand, digest(k.info.hash, signingInput, &buf), k.pss)
		if err != nil {
			return dst, err
		}
		return append(dst, sig...), nil
	case famECDSA:
		d := digest(k.info.hash, signingInput, &buf)
		var r, s *big.Int
		if priv, ok := k.signer.(*ecdsa.PrivateKey); ok {
			var err error
			if r, s, err = ecdsa.Sign(k.rand, priv, d); err != nil {
				return dst, err
			}
		} else {
			der, err := k.signer.Sign(k.rand, d, k.info.hash)
			if err != nil {
				return dst, err
			}
			var sig struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
				return dst, errors.New("jose: signer returned a malformed ECDSA signature")
			}
			r, s = sig.R, sig.S
		}
		n := len(dst)
		dst = append(dst, make([]byte, 2*k.info.size)...)
		r.FillBytes(dst[n : n+k.info.size])
		s.FillBytes(dst[n+k.info.size:])
		return dst, nil
	case famEdDSA:
		sig, err := k.signer.Sign(k.rand, signingInput, crypto.Hash(0))
		if err != nil {
			return dst, err
		}
		return append(dst, sig...), nil
	}
	return dst, ErrUnsupportedAlgorithm
}

// verify checks a raw JWS signature over signingInput. The signature
// length must be exact for the algorithm and key.
func (k *Key) verify(signingInput, sig []byte) error {
	if k.info.family == famHMAC {
		if len(sig) != k.info.size {
			return fmt.Errorf("%w: HMAC tag of %d bytes, want %d", ErrSignatureInvalid, len(sig), k.info.size)
		}
		if _, ok := k.mac(nil, signingInput, sig); !ok {
			return ErrSignatureInvalid
		}
		return nil
	}
	return k.verifyAsymmetric(signingInput, sig)
}

// verifyAsymmetric is verify for public-key algorithms. It is separate so
// that its digest buffer, which escapes into crypto/rsa and crypto/ecdsa,
// does not cost the HMAC path an allocation.
func (k *Key) verifyAsymmetric(signingInput, sig []byte) error {
	if k.info.family == famEdDSA {
		if len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: Ed25519 signature of %d bytes, want %d", ErrSignatureInvalid, len(sig), ed25519.SignatureSize)
		}
		if !ed25519.Verify(k.pub.(ed25519.PublicKey), signingInput, sig) {
			return ErrSignatureInvalid
		}
		return nil
	}
	var buf [64]byte
	switch k.info.family {
	case famRSA:
		if len(sig) != k.rsaSize {
			return fmt.Errorf("%w: RSA signature of %d bytes, want %d", ErrSignatureInvalid, len(sig), k.rsaSize)
		}
		if rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), k.info.hash, digest(k.info.hash, signingInput, &buf), sig) != nil {
			return ErrSignatureInvalid
		}
		return nil
	case famPSS:
		if len(sig) != k.rsaSize {
			return fmt.Errorf("%w: RSA signature of %d bytes, want %d", ErrSignatureInvalid, len(sig), k.rsaSize)
		}
		if rsa.VerifyPSS(k.pub.(*rsa.PublicKey), k.info.hash, digest(k.info.hash, signingInput, &buf), sig, k.pss) != nil {
			return ErrSignatureInvalid
		}
		return nil
	case famECDSA:
		n := k.info.size
		if len(sig) != 2*n {
			return fmt.Errorf("%w: ECDSA signature of %d bytes, want %d", ErrSignatureInvalid, len(sig), 2*n)
		}
		var r, s big.Int
		r.SetBytes(sig[:n])
		s.SetBytes(sig[n:])
		if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(k.ecdsaN) >= 0 || s.Cmp(k.ecdsaN) >= 0 {
			return fmt.Errorf("%w: ECDSA r or s out of range", ErrSignatureInvalid)
		}
		if !ecdsa.Verify(k.pub.(*ecdsa.PublicKey), digest(k.info.hash, signingInput, &buf), &r, &s) {
			return ErrSignatureInvalid
		}
		return nil
	}
	return ErrUnsupportedAlgorithm
}
