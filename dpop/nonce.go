package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// DefaultNoncePeriod is how long a server nonce is handed out before the
// next one replaces it when [Nonces] sets no Period: 5 minutes. A nonce
// is accepted for that period and the next one.
const DefaultNoncePeriod = 5 * time.Minute

// Nonces issues and checks server-provided DPoP nonces (RFC 9449 section
// 8) without keeping state: a nonce is the number of the current period
// with an HMAC-SHA-256 of it under Secret, so every instance that shares
// the secret accepts the nonces of the others. Nonces rotate each Period;
// one is accepted during its period and the next. Nonces is safe for
// concurrent use once set up.
type Nonces struct {
	// Secret keys the nonces; at least 32 random bytes. Required.
	Secret []byte
	// Period is how often the nonce changes; DefaultNoncePeriod if zero.
	Period time.Duration
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
}

var nonceEncoding = base64.RawURLEncoding

func (n *Nonces) period() int64 {
	p := n.Period
	if p <= 0 {
		p = DefaultNoncePeriod
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	return now().UnixNano() / int64(p)
}

func (n *Nonces) make(period int64) string {
	var buf [8 + 16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(period))
	m := hmac.New(sha256.New, n.Secret)
	m.Write(buf[:8])
	copy(buf[8:], m.Sum(nil))
	return nonceEncoding.EncodeToString(buf[:])
}

// Issue returns the nonce of the current period, for a DPoP-Nonce
// response header.
func (n *Nonces) Issue() string { return n.make(n.period()) }

// Valid reports whether nonce is the nonce of the current period or of
// the one before.
func (n *Nonces) Valid(nonce string) bool {
	var buf [8 + 16]byte
	if len(nonce) != nonceEncoding.EncodedLen(len(buf)) {
		return false
	}
	if _, err := nonceEncoding.Decode(buf[:], []byte(nonce)); err != nil {
		return false
	}
	p := int64(binary.BigEndian.Uint64(buf[:8]))
	cur := n.period()
	if p != cur && p != cur-1 {
		return false
	}
	return hmac.Equal([]byte(n.make(p)), []byte(nonce))
}
