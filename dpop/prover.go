package dpop

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/keycard-auth/keycard/internal/jsonscan"
	"github.com/keycard-auth/keycard/jose"
)

// Prover makes DPoP proofs with one private key, as a client does
// (RFC 9449 section 4.2). It is safe for concurrent use.
type Prover struct {
	key    *jose.Key
	header []byte
	// Now returns the current time; time.Now if nil.
	Now func() time.Time
	// Rand makes proof ids; crypto/rand.Reader if nil.
	Rand io.Reader
}

// NewProver returns a Prover for key, which must be an asymmetric private
// key.
func NewProver(key *jose.Key) (*Prover, error) {
	if key == nil || !key.IsPrivate() || key.PublicKey() == nil {
		return nil, fmt.Errorf("%w: a DPoP key must be an asymmetric private key", jose.ErrInvalidKey)
	}
	pub, err := key.Public().MarshalJSON()
	if err != nil {
		return nil, err
	}
	h := []byte(`{"typ":"dpop+jwt","alg":`)
	h = jsonscan.AppendQuote(h, string(key.Algorithm()))
	h = append(append(append(h, `,"jwk":`...), pub...), '}')
	return &Prover{key: key, header: h}, nil
}

// GenerateProver returns a Prover with a new private key for alg (ES256
// is the usual choice), made with random (crypto/rand.Reader when nil).
// Keep its key, Key, for as long as the tokens bound to it.
func GenerateProver(alg jose.Algorithm, random io.Reader) (*Prover, error) {
	key, err := jose.GenerateKey(alg, random)
	if err != nil {
		return nil, err
	}
	return NewProver(key)
}

// Key returns the prover's private key.
func (p *Prover) Key() *jose.Key { return p.key }

// Thumbprint returns the RFC 7638 thumbprint of the prover's key: the
// jkt of the tokens bound to it, and the dpop_jkt of an authorization
// request.
func (p *Prover) Thumbprint() string { return p.key.Thumbprint() }

// Proof returns a proof for a request with method to url (its query and
// fragment are dropped). accessToken, if not empty, is hashed into ath;
// nonce, if not empty, is the server's DPoP-Nonce.
func (p *Prover) Proof(method, url, accessToken, nonce string) (string, error) {
	htu, err := NormalizeURL(url)
	if err != nil {
		return "", err
	}
	var id [16]byte
	r := p.Rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return "", err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	c := struct {
		JTI   string `json:"jti"`
		HTM   string `json:"htm"`
		HTU   string `json:"htu"`
		IAT   int64  `json:"iat"`
		ATH   string `json:"ath,omitempty"`
		Nonce string `json:"nonce,omitempty"`
	}{base64.RawURLEncoding.EncodeToString(id[:]), method, htu, now().Unix(), "", nonce}
	if accessToken != "" {
		c.ATH = AccessTokenHash(accessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return jose.SignWithHeader(p.key, p.header, payload)
}
