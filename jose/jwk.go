package jose

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/keycard-auth/keycard/internal/jsonscan"
)

// b64 is the base64url alphabet without padding, rejecting non-zero
// trailing bits (RFC 7515 section 2). It is never modified.
var b64 = base64.RawURLEncoding.Strict()

// jwk holds the members of a JSON Web Key that this package reads
// (RFC 7517 section 4, RFC 7518 section 6, RFC 8037 section 2).
type jwk struct {
	kty, use, alg, kid, crv string
	keyOps                  []string
	hasKeyOps               bool
	x, y, d, n, e, k        string
	p, q, dp, dq, qi        string
	oth                     bool
}

// ParseJWK parses one JSON Web Key (RFC 7517). The key is bound to the
// algorithm in its "alg" member; without one, EC and OKP keys take the
// algorithm their curve implies, RSA keys are bound to RS256, and
// symmetric keys are refused. Keys whose "use" is not "sig", or whose
// "key_ops" does not include "verify", are refused ([ErrInvalidKey]), as
// are keys that fail the checks of [NewKey]. Unknown key types and curves
// give [ErrUnsupportedKey].
func ParseJWK(data []byte) (*Key, error) {
	var j jwk
	err := jsonscan.ScanObject(data, false, func(name, value []byte) error {
		switch string(name) {
		case "kty", "use", "alg", "kid", "crv", "x", "y", "d", "n", "e", "k", "p", "q", "dp", "dq", "qi":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: JWK member %q must be a string", ErrMalformed, name)
			}
			*j.field(string(name)) = string(s)
		case "key_ops":
			j.hasKeyOps = true
			if err := json.Unmarshal(value, &j.keyOps); err != nil {
				return fmt.Errorf("%w: JWK key_ops must be an array of strings", ErrMalformed)
			}
		case "oth":
			j.oth = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return j.key()
}

func (j *jwk) field(name string) *string {
	switch name {
	case "kty":
		return &j.kty
	case "use":
		return &j.use
	case "alg":
		return &j.alg
	case "kid":
		return &j.kid
	case "crv":
		return &j.crv
	case "x":
		return &j.x
	case "y":
		return &j.y
	case "d":
		return &j.d
	case "n":
		return &j.n
	case "e":
		return &j.e
	case "k":
		return &j.k
	case "p":
		return &j.p
	case "q":
		return &j.q
	case "dp":
		return &j.dp
	case "dq":
		return &j.dq
	}
	return &j.qi
}

// bytes decodes a base64url member; want > 0 demands an exact length.
func jwkBytes(name, v string, want int) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("%w: JWK member %q missing", ErrMalformed, name)
	}
	b, err := b64.DecodeString(v)
	if err != nil || len(v) != b64.EncodedLen(len(b)) {
		return nil, fmt.Errorf("%w: JWK member %q is not canonical base64url", ErrMalformed, name)
	}
	if want > 0 && len(b) != want {
		return nil, fmt.Errorf("%w: JWK member %q has %d bytes, want %d", ErrInvalidKey, name, len(b), want)
	}
	return b, nil
}

func jwkInt(name, v string) (*big.Int, error) {
	b, err := jwkBytes(name, v, 0)
	if err != nil {
		return nil, err
	}
	if len(b) > 1 && b[0] == 0 {
		return nil, fmt.Errorf("%w: JWK member %q has leading zero bytes", ErrMalformed, name)
	}
	return new(big.Int).SetBytes(b), nil
}

func (j *jwk) key() (*Key, error) {
	if j.use != "" && j.use != "sig" {
		return nil, fmt.Errorf("%w: JWK use %q is not \"sig\"", ErrInvalidKey, j.use)
	}
	if j.hasKeyOps && !slices.Contains(j.keyOps, "verify") {
		return nil, fmt.Errorf("%w: JWK key_ops %q does not allow verify", ErrInvalidKey, j.keyOps)
	}
	alg := Algorithm(j.alg)
	if j.alg != "" && !alg.Valid() {
		return nil, fmt.Errorf("%w: JWK alg %q", ErrUnsupportedKey, j.alg)
	}
	var k *Key
	var err error
	switch j.kty {
	case "oct":
		if alg == "" {
			return nil, fmt.Errorf("%w: symmetric JWK without alg", ErrInvalidKey)
		}
		var secret []byte
		if secret, err = jwkBytes("k", j.k, 0); err != nil {
			return nil, err
		}
		k, err = NewKey(alg, secret)
	case "RSA":
		if alg == "" {
			alg = RS256
		}
		if f := alg.info().family; f != famRSA && f != famPSS {
			return nil, fmt.Errorf("%w: RSA JWK with alg %s", ErrInvalidKey, alg)
		}
		k, err = j.rsaKey(alg)
	case "EC":
		k, err = j.ecKey(alg)
	case "OKP":
		k, err = j.okpKey(alg)
	case "":
		return nil, fmt.Errorf("%w: JWK without kty", ErrMalformed)
	default:
		return nil, fmt.Errorf("%w: kty %q", ErrUnsupportedKey, j.kty)
	}
	if err != nil {
		return nil, err
	}
	if j.kid != "" {
		return k.WithKeyID(j.kid)
	}
	return k, nil
}

func (j *jwk) rsaKey(alg Algorithm) (*Key, error) {
	n, err := jwkInt("n", j.n)
	if err != nil {
		return nil, err
	}
	e, err := jwkInt("e", j.e)
	if err != nil {
		return nil, err
	}
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("%w: RSA exponent too large", ErrInvalidKey)
	}
	pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
	if j.d == "" {
		return NewKey(alg, pub)
	}
	if j.oth {
		return nil, fmt.Errorf("%w: multi-prime RSA keys", ErrUnsupportedKey)
	}
	priv := &rsa.PrivateKey{PublicKey: *pub}
	if priv.D, err = jwkInt("d", j.d); err != nil {
		return nil, err
	}
	var p, q *big.Int
	if p, err = jwkInt("p", j.p); err != nil {
		return nil, err
	}
	if q, err = jwkInt("q", j.q); err != nil {
		return nil, err
	}
	priv.Primes = []*big.Int{p, q}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	priv.Precompute()
	return NewKey(alg, priv)
}

func curveAlg(crv string) Algorithm {
	switch crv {
	case "P-256":
		return ES256
	case "P-384":
		return ES384
	case "P-521":
		return ES512
	case "Ed25519":
		return EdDSA
	}
	return ""
}

func (j *jwk) ecKey(alg Algorithm) (*Key, error) {
	implied := curveAlg(j.crv)
	if implied == "" || implied == EdDSA {
		return nil, fmt.Errorf("%w: EC curve %q", ErrUnsupportedKey, j.crv)
	}
	if alg == "" {
		alg = implied
	}
	if alg != implied {
		return nil, fmt.Errorf("%w: crv %s does not match alg %s", ErrInvalidKey, j.crv, alg)
	}
	info := alg.info()
	x, err := jwkBytes("x", j.x, info.size)
	if err != nil {
		return nil, err
	}
	y, err := jwkBytes("y", j.y, info.size)
	if err != nil {
		return nil, err
	}
	raw := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(info.curve, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: EC point not on curve %s", ErrInvalidKey, j.crv)
	}
	if j.d == "" {
		return NewKey(alg, pub)
	}
	d, err := jwkBytes("d", j.d, info.size)
	if err != nil {
		return nil, err
	}
	priv, err := ecdsa.ParseRawPrivateKey(info.curve, d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if !priv.PublicKey.Equal(pub) {
		return nil, fmt.Errorf("%w: EC private key does not match x and y", ErrInvalidKey)
	}
	return NewKey(alg, priv)
}

func (j *jwk) okpKey(alg Algorithm) (*Key, error) {
	if j.crv != "Ed25519" {
		return nil, fmt.Errorf("%w: OKP curve %q", ErrUnsupportedKey, j.crv)
	}
	if alg == "" {
		alg = EdDSA
	}
	if alg != EdDSA {
		return nil, fmt.Errorf("%w: Ed25519 key with alg %s", ErrInvalidKey, alg)
	}
	x, err := jwkBytes("x", j.x, ed25519.PublicKeySize)
	if err != nil {
		return nil, err
	}
	if j.d == "" {
		return NewKey(alg, ed25519.PublicKey(x))
	}
	seed, err := jwkBytes("d", j.d, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(x)) {
		return nil, fmt.Errorf("%w: Ed25519 private key does not match x", ErrInvalidKey)
	}
	return NewKey(alg, priv)
}

// members returns the JWK members of the public half (or the secret for
// HMAC keys) in lexicographic order, as RFC 7638 requires for thumbprints.
func (k *Key) members() [][2]string {
	enc := b64.EncodeToString
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		return [][2]string{{"e", enc(big.NewInt(int64(pub.E)).Bytes())}, {"kty", "RSA"}, {"n", enc(pub.N.Bytes())}}
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes() // checked valid at construction
		n := k.info.size
		return [][2]string{{"crv", k.info.crv}, {"kty", "EC"}, {"x", enc(raw[1 : 1+n])}, {"y", enc(raw[1+n:])}}
	case ed25519.PublicKey:
		return [][2]string{{"crv", "Ed25519"}, {"kty", "OKP"}, {"x", enc(pub)}}
	}
	return [][2]string{{"k", enc(k.secret)}, {"kty", "oct"}}
}

func appendMembers(dst []byte, m [][2]string) []byte {
	for _, kv := range m {
		if len(dst) > 1 {
			dst = append(dst, ',')
		}
		dst = jsonscan.AppendQuote(dst, kv[0])
		dst = append(dst, ':')
		dst = jsonscan.AppendQuote(dst, kv[1])
	}
	return dst
}

func (k *Key) computeThumbprint() string {
	sum := sha256.Sum256(append(appendMembers([]byte{'{'}, k.members()), '}'))
	return b64.EncodeToString(sum[:])
}

// MarshalJSON returns the public JWK of k with "kty", "use":"sig", "alg",
// "kid" (when set) and the public members. It never includes private
// members; an HMAC key, which has no public half, is an error.
func (k *Key) MarshalJSON() ([]byte, error) {
	if k.secret != nil {
		return nil, fmt.Errorf("%w: an HMAC key has no public JWK", ErrInvalidKey)
	}
	return k.marshal(nil), nil
}

func (k *Key) marshal(private [][2]string) []byte {
	m := append(k.members(), [2]string{"alg", string(k.alg)}, [2]string{"use", "sig"})
	if k.kid != "" {
		m = append(m, [2]string{"kid", k.kid})
	}
	m = append(m, private...)
	out := appendMembers([]byte{'{'}, m)
	return append(out, '}')
}

// MarshalPrivateJWK returns the JWK of k including its private members
// ("d" and the CRT values for RSA, "k" for HMAC). It fails for keys whose
// private half is not held in memory (a KMS or HSM signer). The result is
// a secret: store it accordingly.
func (k *Key) MarshalPrivateJWK() ([]byte, error) {
	enc := b64.EncodeToString
	switch priv := k.signer.(type) {
	case nil:
		if k.secret != nil {
			return k.marshal(nil), nil // members already include "k"
		}
		return nil, fmt.Errorf("%w: public key", ErrInvalidKey)
	case *rsa.PrivateKey:
		if len(priv.Primes) != 2 {
			return nil, fmt.Errorf("%w: multi-prime RSA keys", ErrUnsupportedKey)
		}
		priv.Precompute()
		return k.marshal([][2]string{
			{"d", enc(priv.D.Bytes())}, {"p", enc(priv.Primes[0].Bytes())}, {"q", enc(priv.Primes[1].Bytes())},
			{"dp", enc(priv.Precomputed.Dp.Bytes())}, {"dq", enc(priv.Precomputed.Dq.Bytes())}, {"qi", enc(priv.Precomputed.Qinv.Bytes())},
		}), nil
	case *ecdsa.PrivateKey:
		d, err := priv.Bytes()
		if err != nil {
			return nil, err
		}
		return k.marshal([][2]string{{"d", enc(d)}}), nil
	case ed25519.PrivateKey:
		return k.marshal([][2]string{{"d", enc(priv.Seed())}}), nil
	}
	return nil, fmt.Errorf("%w: private half of type %T cannot be exported", ErrUnsupportedKey, k.signer)
}

// KeySet is a JSON Web Key Set (RFC 7517 section 5): keys looked up by
// "kid". It is immutable and safe for concurrent use.
type KeySet struct {
	keys    []*Key
	byKID   map[string]*Key
	skipped []error
}

// NewKeySet returns a set of the given keys. Two keys with the same
// non-empty kid give [ErrDuplicateKeyID].
func NewKeySet(keys ...*Key) (*KeySet, error) {
	s := &KeySet{byKID: make(map[string]*Key, len(keys))}
	for _, k := range keys {
		if k == nil {
			continue
		}
		if k.kid != "" {
			if _, dup := s.byKID[k.kid]; dup {
				return nil, fmt.Errorf("%w: %q", ErrDuplicateKeyID, k.kid)
			}
			s.byKID[k.kid] = k
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// SkippedKeyError describes a key of a JWK Set that [ParseKeySet] left out.
type SkippedKeyError struct {
	Index int    // position in the "keys" array
	KeyID string // its "kid", if it could be read
	Err   error  // why it was skipped
}

func (e *SkippedKeyError) Error() string {
	return fmt.Sprintf("jose: JWK Set key %d (kid %q) skipped: %v", e.Index, e.KeyID, e.Err)
}

func (e *SkippedKeyError) Unwrap() error { return e.Err }

// ParseKeySet parses a JWK Set document ({"keys":[…]}). A key that is
// malformed, of an unsupported type, or refused by the checks of
// [ParseJWK] is skipped and reported by [KeySet.Skipped]; it never makes
// the whole set unusable. Two usable keys with the same kid are an error
// ([ErrDuplicateKeyID]), as is a document that is not a strict JSON object
// with a "keys" array.
func ParseKeySet(data []byte) (*KeySet, error) { return parseKeySet(data, false) }

// ParsePublicKeySet is [ParseKeySet] for a key set fetched from a URL,
// such as an auth server's jwks_uri: a symmetric ("oct") key is skipped
// too ([ErrInvalidKey]), since a secret published at a URL is no secret
// and anyone who read it could sign tokens with it.
func ParsePublicKeySet(data []byte) (*KeySet, error) { return parseKeySet(data, true) }

func parseKeySet(data []byte, publicOnly bool) (*KeySet, error) {
	// The document is split with encoding/json, which tolerates what the
	// strict reader refuses (a duplicate member, invalid UTF-8) so that
	// such a flaw inside one key costs only that key: each key is then
	// read strictly by ParseJWK.
	members, err := topLevelMembers(data)
	if err != nil {
		return nil, err
	}
	var entries []json.RawMessage
	raw := bytes.TrimSpace(members["keys"])
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &entries) != nil {
		return nil, fmt.Errorf("%w: JWK Set needs a \"keys\" array", ErrMalformed)
	}
	var keys []*Key
	var skipped []error
	for i, e := range entries {
		k, err := ParseJWK(e)
		if err == nil && publicOnly && k.alg.info().family == famHMAC {
			err = fmt.Errorf("%w: symmetric JWK in a published key set", ErrInvalidKey)
		}
		if err != nil {
			var kid struct {
				Kid string `json:"kid"`
			}
			_ = json.Unmarshal(e, &kid) // best effort, for the report only
			skipped = append(skipped, &SkippedKeyError{Index: i, KeyID: kid.Kid, Err: err})
			continue
		}
		keys = append(keys, k)
	}
	s, err := NewKeySet(keys...)
	if err != nil {
		return nil, err
	}
	s.skipped = skipped
	return s, nil
}

// topLevelMembers splits a JSON object into its members, refusing
// duplicate names at the top level but leaving the members' insides to
// be judged on their own.
func topLevelMembers(data []byte) (map[string]json.RawMessage, error) {
	bad := func(what string) error { return fmt.Errorf("%w: JWK Set: %s", ErrMalformed, what) }
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad("not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad(err.Error())
		}
		name, _ := t.(string)
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad(err.Error())
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("trailing data")
	}
	return out, nil
}

// Keys returns the usable keys in document order.
func (s *KeySet) Keys() []*Key { return slices.Clone(s.keys) }

// Skipped returns one [*SkippedKeyError] for each key ParseKeySet left out.
func (s *KeySet) Skipped() []error { return slices.Clone(s.skipped) }

// Lookup returns the key with the given kid, or nil.
func (s *KeySet) Lookup(kid string) *Key { return s.byKID[kid] }

// ResolveKey implements [KeyResolver]. A token with a "kid" gets exactly
// the key with that kid, or [ErrKeyNotFound]: there is never a fallback to
// another key. A token without a "kid" gets the set's only key for its
// algorithm, or ErrKeyNotFound when there is none or more than one. The
// key's algorithm must equal the header's "alg" ([ErrAlgorithmMismatch]).
func (s *KeySet) ResolveKey(h *Header) (*Key, error) {
	if h.KeyID != "" {
		k := s.byKID[h.KeyID]
		if k == nil {
			return nil, ErrKeyNotFound
		}
		return k.ResolveKey(h)
	}
	var found *Key
	for _, k := range s.keys {
		if k.alg == h.Algorithm {
			if found != nil {
				return nil, fmt.Errorf("%w: token has no kid and several keys match %s", ErrKeyNotFound, h.Algorithm)
			}
			found = k
		}
	}
	if found == nil {
		return nil, ErrKeyNotFound
	}
	return found, nil
}

// MarshalJSON returns the public JWK Set; HMAC keys are left out, as they
// must never be published.
func (s *KeySet) MarshalJSON() ([]byte, error) {
	out := []byte(`{"keys":[`)
	first := true
	for _, k := range s.keys {
		if k.secret != nil {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, k.marshal(nil)...)
	}
	return append(out, "]}"...), nil
}
