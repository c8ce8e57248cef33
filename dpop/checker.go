package dpop

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// Type is the "typ" header of a DPoP proof (RFC 9449 section 4.2).
const Type = "dpop+jwt"

// DefaultWindow is how far a proof's iat may be from the checker's clock
// when a [Checker] sets no Window: 60 seconds either way.
const DefaultWindow = 60 * time.Second

// DefaultMaxSize is the largest proof accepted when a [Checker] sets no
// MaxSize: 4 KiB, room for an RSA-4096 key and signature.
const DefaultMaxSize = 4 << 10

// maxJTI is the longest jti accepted, in bytes.
const maxJTI = 256

// DefaultAlgorithms returns the algorithms a [Checker] accepts when it
// names none: every asymmetric algorithm of package jose. HMAC is never
// accepted — a proof must be verifiable with the public key it carries —
// and "none" does not exist in jose.
func DefaultAlgorithms() []jose.Algorithm {
	return []jose.Algorithm{jose.ES256, jose.ES384, jose.ES512, jose.EdDSA, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512}
}

// Checker checks DPoP proofs (RFC 9449 section 4.3). Set its fields before
// first use and do not change them after; it is then safe for concurrent
// use. The zero value checks with the defaults and its own replay cache.
type Checker struct {
	// Algorithms are the accepted "alg" values; DefaultAlgorithms() when
	// empty. HMAC algorithms are refused even if listed.
	Algorithms []jose.Algorithm
	// Window is how far iat may be before or after Now; DefaultWindow
	// when zero. A proof id is remembered for as long as its proof could
	// be accepted.
	Window time.Duration
	// MaxSize is the largest proof accepted, in bytes; DefaultMaxSize
	// when zero. It is checked before anything is decoded.
	MaxSize int
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Replay remembers proof ids. If nil, the Checker makes a
	// ReplayCache of DefaultReplayCapacity on first use. Share one
	// between checkers that guard the same URLs; a Replayer shared by
	// several processes (Keycard's Redis one) closes the window each
	// instance otherwise leaves open to the others.
	Replay Replayer
	// Nonces, if set, makes a server nonce mandatory: a proof without a
	// valid one fails with ErrUseNonce (RFC 9449 section 8).
	Nonces *Nonces

	once sync.Once
	algs []jose.Algorithm // the accepted algorithms, set once by init
	// keys memoizes the keys of recent proofs, direct-mapped by a hash
	// of their JWK: a client signs all its proofs with one key, so
	// parsing its JWK, checking its point and hashing its thumbprint can
	// be skipped when the bytes repeat. An entry is used only if its JWK
	// is byte for byte the proof's.
	seed maphash.Seed
	keys [keyCacheSize]atomic.Pointer[proofKey]
}

// keyCacheSize is the number of recent proof keys a Checker memoizes.
const keyCacheSize = 256

// proofKey is a JWK parsed from a proof header, with what is derived
// from it.
type proofKey struct {
	raw        string // the JWK's JSON, byte for byte
	alg        jose.Algorithm
	key        *jose.Key
	thumbprint string
	jws        *jose.JWSVerifier
}

// Request is what a proof must match: the HTTP request it came with.
type Request struct {
	// Method is the request's method, compared with htm exactly.
	Method string
	// URL is the URL the client used, with or without query; it is
	// compared with htu after both go through NormalizeURL. Behind a
	// proxy this is the public URL, never the internal one.
	URL string
	// AccessToken, if not empty, is the access token sent with the
	// proof; the proof's ath must be its hash (RFC 9449 section 4.3,
	// step 11). Leave it empty at the token endpoint.
	AccessToken string
}

// Proof is what a verified proof says.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key:
	// the "jkt" of the tokens bound to it.
	Thumbprint string
	// Key is the public key the proof was signed with.
	Key *jose.Key
	// ID is the proof's jti.
	ID string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
}

func (c *Checker) init() {
	c.once.Do(func() {
		if c.Replay == nil {
			c.Replay = NewReplayCache(0)
		}
		c.algs = c.algorithms()
		c.seed = maphash.MakeSeed()
	})
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) window() time.Duration {
	if c.Window > 0 {
		return c.Window
	}
	return DefaultWindow
}

// AlgorithmNames returns the accepted algorithms as a space-separated
// list, for the algs parameter of a WWW-Authenticate: DPoP challenge and
// for dpop_signing_alg_values_supported.
func (c *Checker) AlgorithmNames() []string {
	var out []string
	for _, a := range c.algorithms() {
		out = append(out, string(a))
	}
	return out
}

func (c *Checker) algorithms() []jose.Algorithm {
	if len(c.Algorithms) == 0 {
		return DefaultAlgorithms()
	}
	return slices.DeleteFunc(slices.Clone(c.Algorithms), func(a jose.Algorithm) bool { return isHMAC(a) })
}

func isHMAC(a jose.Algorithm) bool { return a == jose.HS256 || a == jose.HS384 || a == jose.HS512 }

// Check verifies proof, the value of a request's DPoP header, against r
// and, once every other check has passed, records its jti so that it is
// not accepted again within the window. Errors wrap ErrInvalidProof, or
// are ErrUseNonce when a server nonce is required and missing or stale.
func (c *Checker) Check(proof string, r Request) (Proof, error) {
	c.init()
	maxSize := c.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if proof == "" {
		return Proof{}, fmt.Errorf("%w: empty proof", ErrInvalidProof)
	}
	if len(proof) > maxSize {
		return Proof{}, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidProof, len(proof), maxSize)
	}
	dot := strings.IndexByte(proof, '.')
	if dot <= 0 {
		return Proof{}, fmt.Errorf("%w: not a compact JWS", ErrInvalidProof)
	}
	header, err := base64.RawURLEncoding.Strict().DecodeString(proof[:dot])
	if err != nil {
		return Proof{}, fmt.Errorf("%w: header is not base64url", ErrInvalidProof)
	}
	pk, err := c.headerKey(header)
	if err != nil {
		return Proof{}, err
	}
	var h jose.Header
	payload, err := pk.jws.VerifyAppend(nil, proof, &h)
	if err != nil {
		return Proof{}, fmt.Errorf("%w: %w", ErrInvalidProof, err)
	}
	var cl claims
	if err := cl.parse(payload); err != nil {
		return Proof{}, err
	}
	if cl.htm != r.Method {
		return Proof{}, fmt.Errorf("%w: htm %q, request method %q", ErrInvalidProof, cl.htm, r.Method)
	}
	if err := matchURL(cl.htu, r.URL); err != nil {
		return Proof{}, err
	}
	now, window := c.now(), c.window()
	if cl.iat.Before(now.Add(-window)) || cl.iat.After(now.Add(window)) {
		return Proof{}, fmt.Errorf("%w: iat %s is outside %s of now", ErrInvalidProof, cl.iat.UTC().Format(time.RFC3339), window)
	}
	if r.AccessToken != "" {
		if !cl.hasAth {
			return Proof{}, fmt.Errorf("%w: no ath with an access token", ErrInvalidProof)
		}
		var want [43]byte
		sum := sha256.Sum256([]byte(r.AccessToken))
		base64.RawURLEncoding.Encode(want[:], sum[:])
		if subtle.ConstantTimeCompare(want[:], []byte(cl.ath)) != 1 {
			return Proof{}, fmt.Errorf("%w: ath does not match the access token", ErrInvalidProof)
		}
	}
	if c.Nonces != nil && (!cl.hasNonce || !c.Nonces.Valid(cl.nonce)) {
		return Proof{}, ErrUseNonce
	}
	// The proof is valid: only now is its id spent, so that invalid
	// proofs cannot fill the cache. It is remembered until its iat
	// leaves the window (plus a second: iat has whole seconds).
	if !c.Replay.Use(cl.jti, now, cl.iat.Add(window+time.Second)) {
		return Proof{}, ErrReplayed
	}
	return Proof{Thumbprint: pk.thumbprint, Key: pk.key, ID: cl.jti, IssuedAt: cl.iat}, nil
}

// matchURL checks a proof's htu against the request's URL (RFC 9449
// section 4.3, step 9). A client usually sends exactly the request's URL
// without its query: the same string is the same URL, and needs no
// parsing. Anything else is compared after NormalizeURL.
func matchURL(htu, requestURL string) error {
	base := requestURL
	if i := strings.IndexAny(base, "?#"); i >= 0 {
		base = base[:i]
	}
	if htu == base {
		return nil // the same URL, whatever its spelling
	}
	want, err := NormalizeURL(requestURL)
	if err != nil {
		return fmt.Errorf("%w: request URL: %w", ErrInvalidProof, err)
	}
	got, err := NormalizeURL(htu)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: htu %q, request URL %q", ErrInvalidProof, got, want)
	}
	return nil
}

// headerKey reads the proof's JOSE header — typ, alg and a public jwk —
// and returns the key with a verifier bound to it.
func (c *Checker) headerKey(header []byte) (*proofKey, error) {
	var typ, alg, rawJWK []byte
	var hasTyp bool
	err := jsonscan.ScanObject(header, true, func(name, value []byte) error {
		switch string(name) {
		case "typ":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: typ must be a string", ErrInvalidProof)
			}
			typ, hasTyp = s, true
		case "alg":
			s, err := jsonscan.Unquote(value)
			if err != nil {
				return fmt.Errorf("%w: alg must be a string", ErrInvalidProof)
			}
			alg = s
		case "jwk":
			rawJWK = value
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrInvalidProof, err)
	}
	if !hasTyp || string(typ) != Type {
		return nil, fmt.Errorf("%w: typ %q, want %q", ErrInvalidProof, typ, Type)
	}
	a := jose.Algorithm(alg)
	if isHMAC(a) || !slices.Contains(c.algs, a) {
		return nil, fmt.Errorf("%w: alg %q is not an accepted asymmetric algorithm", ErrInvalidProof, alg)
	}
	if rawJWK == nil {
		return nil, fmt.Errorf("%w: no jwk in the header", ErrInvalidProof)
	}
	slot := &c.keys[maphash.Bytes(c.seed, rawJWK)%keyCacheSize]
	if last := slot.Load(); last != nil && last.alg == a && last.raw == string(rawJWK) {
		return last, nil
	}
	key, err := publicJWK(rawJWK, a)
	if err != nil {
		return nil, err
	}
	pk := &proofKey{
		raw: string(rawJWK), alg: a, key: key, thumbprint: key.Thumbprint(),
		jws: &jose.JWSVerifier{Keys: key, Algorithms: []jose.Algorithm{a}, MaxSize: max(c.MaxSize, DefaultMaxSize)},
	}
	slot.Store(pk)
	return pk, nil
}

// privateMembers are the JWK members that carry private or symmetric key
// material (RFC 7518 section 6); a proof's jwk must have none.
var privateMembers = [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// publicJWK parses the jwk of a proof header: a public key, for alg.
func publicJWK(raw []byte, alg jose.Algorithm) (*jose.Key, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%w: jwk must be an object", ErrInvalidProof)
	}
	var jwkAlg []byte
	err := jsonscan.ScanObject(raw, false, func(name, value []byte) error {
		if slices.Contains(privateMembers[:], string(name)) {
			return fmt.Errorf("%w: jwk has the private member %q", ErrInvalidProof, name)
		}
		if string(name) == "alg" {
			jwkAlg, _ = jsonscan.Unquote(value)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if jwkAlg != nil && jose.Algorithm(jwkAlg) != alg {
		return nil, fmt.Errorf("%w: jwk alg %q, header alg %s", ErrInvalidProof, jwkAlg, alg)
	}
	parsed, err := jose.ParseJWK(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: jwk: %w", ErrInvalidProof, err)
	}
	if parsed.IsPrivate() || parsed.PublicKey() == nil {
		return nil, fmt.Errorf("%w: jwk is not a public key", ErrInvalidProof)
	}
	if parsed.Algorithm() == alg {
		return parsed, nil
	}
	// An RSA JWK without "alg" is read as RS256; bind it to the header's
	// algorithm instead (NewKey refuses a key of the wrong type).
	key, err := jose.NewKey(alg, parsed.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("%w: jwk does not fit alg %s: %w", ErrInvalidProof, alg, err)
	}
	return key, nil
}

// claims are the claims of a proof (RFC 9449 section 4.2).
type claims struct {
	jti, htm, htu, ath, nonce string
	hasAth, hasNonce          bool
	iat                       time.Time
}

func (cl *claims) parse(payload []byte) error {
	var iat jwt.NumericDate
	var hasIat bool
	str := func(dst *string, name, value []byte) error {
		s, err := jsonscan.Unquote(value)
		if err != nil {
			return fmt.Errorf("%w: %s must be a string", ErrInvalidProof, name)
		}
		*dst = string(s)
		return nil
	}
	err := jsonscan.ScanObject(payload, true, func(name, value []byte) error {
		switch string(name) {
		case "jti":
			return str(&cl.jti, name, value)
		case "htm":
			return str(&cl.htm, name, value)
		case "htu":
			return str(&cl.htu, name, value)
		case "ath":
			cl.hasAth = true
			return str(&cl.ath, name, value)
		case "nonce":
			cl.hasNonce = true
			return str(&cl.nonce, name, value)
		case "iat":
			hasIat = true
			if err := iat.UnmarshalJSON(value); err != nil {
				return fmt.Errorf("%w: iat: %w", ErrInvalidProof, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: claims: %w", ErrInvalidProof, err)
	}
	switch {
	case cl.jti == "" || len(cl.jti) > maxJTI:
		return fmt.Errorf("%w: jti must be 1 to %d bytes", ErrInvalidProof, maxJTI)
	case cl.htm == "":
		return fmt.Errorf("%w: no htm", ErrInvalidProof)
	case cl.htu == "":
		return fmt.Errorf("%w: no htu", ErrInvalidProof)
	case !hasIat:
		return fmt.Errorf("%w: no iat", ErrInvalidProof)
	}
	cl.iat = iat.Time
	return nil
}

// AccessTokenHash returns the ath of a proof sent with accessToken: the
// base64url SHA-256 of the token (RFC 9449 section 4.2).
func AccessTokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
