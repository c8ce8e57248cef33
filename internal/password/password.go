// Package password hashes and verifies passwords with argon2id (RFC 9106),
// storing hashes as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64. The default parameters
// (19 MiB of memory, 2 iterations, 1 lane) are OWASP's recommended minimum
// for argon2id.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/argon2"
)

// Length limits for passwords, in bytes.
const (
	MinLength = 8
	MaxLength = 1024
)

// Default parameters.
const (
	DefaultMemory      = 19 * 1024 // KiB
	DefaultIterations  = 2
	DefaultParallelism = 1
	DefaultSaltLength  = 16 // bytes
	DefaultKeyLength   = 32 // bytes
)

// Bounds on the parameters accepted from a stored hash, so that a corrupt
// or hostile hash string cannot make Verify allocate gigabytes or spin.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxIterations = 64
	minSaltLength = 8
	maxSaltLength = 64
	minKeyLength  = 16
	maxKeyLength  = 64
)

// Errors returned by the package.
var (
	// ErrTooShort is returned by Hash for a password under MinLength bytes.
	ErrTooShort = errors.New("password: too short")
	// ErrTooLong is returned by Hash and Verify for a password over
	// MaxLength bytes.
	ErrTooLong = errors.New("password: too long")
	// ErrMalformedHash is returned by Verify for a string that is not an
	// argon2id PHC hash within the accepted parameter bounds.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrIncompatibleVersion is returned by Verify for an argon2 version
	// other than 19 (0x13).
	ErrIncompatibleVersion = errors.New("password: incompatible argon2 version")
)

// Params are argon2id parameters.
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Iterations is the time cost, the number of passes over the memory.
	Iterations uint32
	// Parallelism is the number of lanes.
	Parallelism uint8
	// SaltLength and KeyLength are in bytes.
	SaltLength uint32
	KeyLength  uint32
}

// DefaultParams returns the default parameters: m=19456 KiB, t=2, p=1,
// 16-byte salt, 32-byte hash.
func DefaultParams() Params {
	return Params{
		Memory:      DefaultMemory,
		Iterations:  DefaultIterations,
		Parallelism: DefaultParallelism,
		SaltLength:  DefaultSaltLength,
		KeyLength:   DefaultKeyLength,
	}
}

// Hasher hashes and verifies passwords. The zero value uses DefaultParams
// and crypto/rand. A Hasher is safe for concurrent use once its fields are
// set; each Hash or Verify costs Params.Memory KiB of memory while it runs.
//
// At most MaxConcurrent argon2id computations of one Hasher run at once;
// the others wait their turn. More would not finish sooner on a busy
// machine, and each holds Params.Memory: bounding them keeps memory flat
// under a burst of logins (BENCHMARKS.md: "Why logins fall short of the
// hash rate", "Login, round 3"). Each slot keeps the memory of its last
// computation for the next (internal/argon2), rather than Params.Memory
// KiB allocated, zeroed and collected for every hash; so a Hasher holds
// at most MaxConcurrent × Params.Memory KiB between hashes. A slot's
// memory is let go after a minute without hashes, and at once after a
// hash that needed more than Params.Memory (an old or hostile stored
// hash). A Hasher must not be copied after first use.
type Hasher struct {
	// Params for new hashes; the zero value means DefaultParams.
	Params Params
	// Rand is the source of salts; nil means crypto/rand.Reader.
	Rand io.Reader
	// MaxConcurrent bounds concurrent computations; 0 means
	// runtime.GOMAXPROCS(0).
	MaxConcurrent int

	once sync.Once
	// slots holds a buffer for each computation that may run: a
	// computation takes one, waiting while there is none, and puts it
	// back.
	slots chan *argon2.Buffer
	// idle is how long slots keep their memory without hashes; 0 means
	// idleRelease. trim runs that long after the last hash.
	idle time.Duration
	trim *time.Timer
}

// idleRelease is how long a Hasher keeps its buffers without hashes.
const idleRelease = time.Minute

// idKey is argon2id, run in one of the Hasher's slots with its buffer.
func (h *Hasher) idKey(password, salt []byte, passes, memory uint32, threads uint8, keyLen uint32) []byte {
	h.once.Do(func() {
		n := h.MaxConcurrent
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		h.slots = make(chan *argon2.Buffer, n)
		for range n {
			h.slots <- new(argon2.Buffer)
		}
		if h.idle <= 0 {
			h.idle = idleRelease
		}
		h.trim = time.AfterFunc(h.idle, h.freeIdle)
	})
	buf := <-h.slots
	defer func() {
		if buf.Size() > int(h.params().Memory) {
			buf.Free()
		}
		h.slots <- buf
		h.trim.Reset(h.idle)
	}()
	return argon2.IDKey(buf, password, salt, passes, memory, threads, keyLen)
}

// freeIdle frees the memory of every slot not in use: it runs once the
// Hasher has made no hash for its idle time.
func (h *Hasher) freeIdle() {
	for range cap(h.slots) {
		select {
		case buf := <-h.slots:
			buf.Free()
			h.slots <- buf
		default:
			return // the others are in use
		}
	}
}

func (h *Hasher) params() Params {
	if h.Params == (Params{}) {
		return DefaultParams()
	}
	return h.Params
}

func (h *Hasher) rand() io.Reader {
	if h.Rand == nil {
		return rand.Reader
	}
	return h.Rand
}

// CheckLength returns ErrTooShort or ErrTooLong if the password breaks the
// length limits, else nil.
func CheckLength(password string) error {
	switch {
	case len(password) < MinLength:
		return ErrTooShort
	case len(password) > MaxLength:
		return ErrTooLong
	}
	return nil
}

// Hash returns the PHC string of a new argon2id hash of password with a new
// random salt. It fails with ErrTooShort or ErrTooLong outside the length
// limits.
func (h *Hasher) Hash(password string) (string, error) {
	if err := CheckLength(password); err != nil {
		return "", err
	}
	p := h.params()
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLength)
	if _, err := io.ReadFull(h.rand(), salt); err != nil {
		return "", fmt.Errorf("password: reading salt: %w", err)
	}
	key := h.idKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	return encode(p, salt, key), nil
}

// Verify reports whether password matches the encoded hash, comparing in
// constant time, and whether the hash should be replaced by a new one made
// with h's parameters (needsRehash, meaningful only when ok). It returns
// ErrMalformedHash or ErrIncompatibleVersion for a hash it cannot use, and
// ErrTooLong for a password over MaxLength bytes; it never panics. The
// minimum length is not checked, so that passwords set under an older
// policy still work.
func (h *Hasher) Verify(password, encoded string) (ok, needsRehash bool, err error) {
	if len(password) > MaxLength {
		return false, false, ErrTooLong
	}
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got := h.idKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	return true, p != h.params(), nil
}

// dummySalt is the salt of the dummy verification; its value is irrelevant.
const dummySalt = "keycard-dummy-salt-for-timing-eq"

// VerifyDummy does the work of verifying password against a hash made with
// h's parameters, and always reports false. Call it when the user is
// unknown, so that the answer takes about as long as for a wrong password.
func (h *Hasher) VerifyDummy(password string) bool {
	if len(password) > MaxLength {
		return false
	}
	p := h.params()
	if p.check() != nil {
		p = DefaultParams()
	}
	salt := []byte(dummySalt)[:min(len(dummySalt), int(p.SaltLength))]
	got := h.idKey([]byte(password), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	want := make([]byte, len(got))
	subtle.ConstantTimeCompare(got, want) // the same compare as Verify
	return false
}

func (p Params) check() error {
	if p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory ||
		p.Iterations < 1 || p.Iterations > maxIterations ||
		p.Parallelism < 1 ||
		p.SaltLength < minSaltLength || p.SaltLength > maxSaltLength ||
		p.KeyLength < minKeyLength || p.KeyLength > maxKeyLength {
		return fmt.Errorf("%w: parameters out of range", ErrMalformedHash)
	}
	return nil
}

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// decode parses a PHC argon2id string strictly: the fields in order, no
// optional parameters, decimal numbers without signs or leading zeros.
func decode(s string) (p Params, salt, key []byte, err error) {
	fields := strings.Split(s, "$")
	if len(fields) != 6 || fields[0] != "" || fields[1] != "argon2id" {
		return p, nil, nil, ErrMalformedHash
	}
	v, ok := strings.CutPrefix(fields[2], "v=")
	if !ok {
		return p, nil, nil, ErrMalformedHash
	}
	version, ok := parseUint(v, 32)
	if !ok {
		return p, nil, nil, ErrMalformedHash
	}
	if version != argon2.Version {
		return p, nil, nil, ErrIncompatibleVersion
	}
	params := strings.Split(fields[3], ",")
	if len(params) != 3 {
		return p, nil, nil, ErrMalformedHash
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return p, nil, nil, ErrMalformedHash
		}
		if vals[i], ok = parseUint(s, 32); !ok {
			return p, nil, nil, ErrMalformedHash
		}
	}
	if vals[2] > 255 {
		return p, nil, nil, ErrMalformedHash
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(fields[4]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(fields[5]); err != nil {
		return p, nil, nil, ErrMalformedHash
	}
	p = Params{
		Memory:      uint32(vals[0]),
		Iterations:  uint32(vals[1]),
		Parallelism: uint8(vals[2]),
		SaltLength:  uint32(len(salt)),
		KeyLength:   uint32(len(key)),
	}
	if err := p.check(); err != nil {
		return Params{}, nil, nil, err
	}
	return p, salt, key, nil
}

func parseUint(s string, bits int) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}
