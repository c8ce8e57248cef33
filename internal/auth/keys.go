package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// JWKSMaxAge is the Cache-Control max-age served with the JWKS: how long
// a verifier may keep a copy without asking again.
const JWKSMaxAge = 5 * time.Minute

// Key lifecycle defaults.
const (
	DefaultRotateEvery  = 30 * 24 * time.Hour
	DefaultPublishAhead = 2 * JWKSMaxAge
	DefaultKeyCacheFor  = 5 * time.Second
)

// KeyOptions configure a KeyManager.
type KeyOptions struct {
	// Algorithm of new keys; ES256 when empty.
	Algorithm jose.Algorithm
	// RotateEvery is how long a key signs before the next one takes over;
	// DefaultRotateEvery when zero, never when negative.
	RotateEvery time.Duration
	// PublishAhead is how long a next key is in the JWKS before it signs:
	// at least JWKSMaxAge, so every verifier's cached JWKS has it in time.
	// DefaultPublishAhead when zero.
	PublishAhead time.Duration
	// RetainFor is how long a retired key stays published: the access
	// token lifetime plus the verifiers' leeway.
	RetainFor time.Duration
	// CacheFor is how long the manager trusts its in-memory view of the
	// keys before reading the store again (other instances may rotate);
	// DefaultKeyCacheFor when zero.
	CacheFor time.Duration
}

// KeyManager keeps the signing keys: it creates, publishes, activates and
// retires them (docs/architecture.md, "Keys"), seals private keys under the master key,
// and serves the active signer, the verification key set and the JWKS from
// memory. It is safe for concurrent use.
type KeyManager struct {
	store  keycard.KeyStore
	sealer *Sealer
	opt    KeyOptions
	now    func() time.Time
	rand   io.Reader

	mu       sync.Mutex
	gen      uint64 // incremented by Invalidate
	view     *keyView
	unsealed map[string]*jose.Key // kid → private key, so each is opened once
	typed    sync.Map             // kid "\x00" typ → *jwt.Signer (TypedSigner)
}

// keyView is an immutable snapshot of the published keys.
type keyView struct {
	loaded time.Time
	kid    string      // active key
	signer *jwt.Signer // signs with the active key
	// The next key takes over signing at nextAt, even before some
	// instance's Maintain has marked it active in the store: every
	// instance switches at the same moment, whoever activates it.
	nextKID    string
	nextSigner *jwt.Signer
	nextAt     time.Time
	verify     *jose.KeySet
	jwks       []byte
	records    []*keycard.SigningKey
}

// NewKeyManager returns a manager over store. now may be nil (time.Now).
func NewKeyManager(store keycard.KeyStore, sealer *Sealer, opt KeyOptions, now func() time.Time) (*KeyManager, error) {
	if opt.Algorithm == "" {
		opt.Algorithm = jose.ES256
	}
	if !opt.Algorithm.Valid() {
		return nil, fmt.Errorf("auth: unsupported signing algorithm %q", opt.Algorithm)
	}
	if opt.RotateEvery == 0 {
		opt.RotateEvery = DefaultRotateEvery
	}
	if opt.PublishAhead == 0 {
		opt.PublishAhead = DefaultPublishAhead
	}
	if opt.PublishAhead < JWKSMaxAge {
		return nil, fmt.Errorf("auth: keys must be published at least %v (the JWKS cache lifetime) before they sign", JWKSMaxAge)
	}
	if opt.RotateEvery > 0 && opt.RotateEvery <= opt.PublishAhead {
		return nil, fmt.Errorf("auth: rotation interval %v must exceed the publication lead %v", opt.RotateEvery, opt.PublishAhead)
	}
	if opt.CacheFor == 0 {
		opt.CacheFor = DefaultKeyCacheFor
	}
	if now == nil {
		now = time.Now
	}
	return &KeyManager{store: store, sealer: sealer, opt: opt, now: now, rand: rand.Reader, unsealed: map[string]*jose.Key{}}, nil
}

func sealLabel(kid string) string { return "signing-key:" + kid }

// newKey generates, seals and stores a key in the given state.
func (m *KeyManager) newKey(ctx context.Context, state keycard.KeyState, activatesAt time.Time) (*keycard.SigningKey, error) {
	k, err := jose.GenerateKey(m.opt.Algorithm, m.rand)
	if err != nil {
		return nil, err
	}
	if k, err = k.WithKeyID(k.Thumbprint()); err != nil {
		return nil, err
	}
	priv, err := k.MarshalPrivateJWK()
	if err != nil {
		return nil, err
	}
	sealed, err := m.sealer.Seal(priv, sealLabel(k.KeyID()))
	if err != nil {
		return nil, err
	}
	var pub []byte
	if k.Public() != nil {
		if pub, err = k.Public().MarshalJSON(); err != nil {
			return nil, err
		}
	}
	rec := &keycard.SigningKey{
		KID: k.KeyID(), Alg: string(k.Algorithm()), State: state,
		PrivateSealed: sealed, PublicJWK: pub,
		CreatedAt: m.now(), ActivatesAt: activatesAt,
	}
	if err := m.store.CreateKey(ctx, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// Maintain moves the key lifecycle forward: it creates the first key,
// publishes the next key PublishAhead before the active one is due to be
// replaced, activates a next key whose time has come (retiring the old one
// for RetainFor), and deletes keys past their retention. Run it at start-up
// and periodically. Concurrent calls on several instances are safe: the
// store lets only one activation or first key win.
func (m *KeyManager) Maintain(ctx context.Context) error {
	now := m.now()
	keys, err := m.store.ListKeys(ctx)
	if err != nil {
		return err
	}
	active, next := pick(keys)
	switch {
	case active == nil && next != nil:
		err = m.activate(ctx, next.KID, now)
	case active == nil:
		_, err = m.newKey(ctx, keycard.KeyActive, now)
	case next != nil && !now.Before(next.ActivatesAt):
		err = m.activate(ctx, next.KID, now)
	case next == nil && m.opt.RotateEvery > 0 && !now.Before(active.ActivatesAt.Add(m.opt.RotateEvery-m.opt.PublishAhead)):
		due := active.ActivatesAt.Add(m.opt.RotateEvery)
		if earliest := now.Add(m.opt.PublishAhead); due.Before(earliest) {
			due = earliest
		}
		_, err = m.newKey(ctx, keycard.KeyNext, due)
	}
	if err != nil && keycard.ErrorCode(err) != keycard.ECONFLICT { // another instance won the race
		return err
	}
	if _, err := m.store.DeleteRemovedKeys(ctx, now); err != nil {
		return err
	}
	_, err = m.reload(ctx)
	return err
}

func (m *KeyManager) activate(ctx context.Context, kid string, now time.Time) error {
	return m.store.ActivateKey(ctx, kid, now, now.Add(m.opt.RetainFor))
}

// pick returns the active key and the newest next key.
func pick(keys []*keycard.SigningKey) (active, next *keycard.SigningKey) {
	for _, k := range keys {
		switch k.State {
		case keycard.KeyActive:
			active = k
		case keycard.KeyNext:
			if next == nil || k.ActivatesAt.After(next.ActivatesAt) {
				next = k
			}
		}
	}
	return active, next
}

// Rotate publishes a new next key that starts signing after PublishAhead,
// or, with immediate, makes a new key active at once (verifiers meet its
// kid before their JWKS has it and refetch). It returns the new key.
func (m *KeyManager) Rotate(ctx context.Context, immediate bool) (*keycard.SigningKey, error) {
	now := m.now()
	at := now.Add(m.opt.PublishAhead)
	if immediate {
		at = now
	}
	rec, err := m.newKey(ctx, keycard.KeyNext, at)
	if err != nil {
		return nil, err
	}
	if immediate {
		if err := m.activate(ctx, rec.KID, now); err != nil {
			return nil, err
		}
		rec.State = keycard.KeyActive
	}
	if _, err := m.reload(ctx); err != nil {
		return nil, err
	}
	return rec, nil
}

// current returns the cached view, reloading it when older than CacheFor.
func (m *KeyManager) current(ctx context.Context) (*keyView, error) {
	m.mu.Lock()
	v := m.view
	m.mu.Unlock()
	if v != nil && m.now().Sub(v.loaded) < m.opt.CacheFor {
		return v, nil
	}
	return m.reload(ctx)
}

// Invalidate makes the next use of the keys read the store again, rather
// than trust the in-memory view for up to CacheFor. Call it when another
// instance may have changed the keys (a revocation feed notification:
// an emergency key revocation must stop this instance from signing with,
// and accepting, the revoked key at once).
func (m *KeyManager) Invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if m.view != nil {
		v := *m.view
		v.loaded = time.Time{}
		m.view = &v
	}
}

// reload reads the keys from the store and builds a new view.
func (m *KeyManager) reload(ctx context.Context) (*keyView, error) {
	m.mu.Lock()
	gen := m.gen
	m.mu.Unlock()
	keys, err := m.store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v := &keyView{loaded: m.now(), records: keys}
	if m.gen != gen {
		// Invalidated while the store was read: what was read may
		// predate the change, so the next use reads again.
		v.loaded = time.Time{}
	}
	var verify []*jose.Key
	seen := map[string]bool{}
	for _, rec := range keys {
		seen[rec.KID] = true
		k, err := m.privateKey(rec)
		if err != nil {
			return nil, err
		}
		switch rec.State {
		case keycard.KeyActive:
			if v.signer, err = jwt.NewSigner(k, jwt.WithHeaderType("at+jwt")); err != nil {
				return nil, err
			}
			v.kid = rec.KID
		case keycard.KeyNext:
			if v.nextSigner == nil || rec.ActivatesAt.After(v.nextAt) {
				if v.nextSigner, err = jwt.NewSigner(k, jwt.WithHeaderType("at+jwt")); err != nil {
					return nil, err
				}
				v.nextKID, v.nextAt = rec.KID, rec.ActivatesAt
			}
		}
		if pub := k.Public(); pub != nil {
			verify = append(verify, pub)
		} else {
			verify = append(verify, k) // HMAC: the secret verifies, and is never published
		}
	}
	for kid := range m.unsealed {
		if !seen[kid] {
			delete(m.unsealed, kid)
		}
	}
	if v.verify, err = jose.NewKeySet(verify...); err != nil {
		return nil, err
	}
	if v.jwks, err = v.verify.MarshalJSON(); err != nil {
		return nil, err
	}
	m.view = v
	return v, nil
}

// privateKey opens a stored key once and caches it. m.mu is held.
func (m *KeyManager) privateKey(rec *keycard.SigningKey) (*jose.Key, error) {
	if k := m.unsealed[rec.KID]; k != nil {
		return k, nil
	}
	raw, err := m.sealer.Open(rec.PrivateSealed, sealLabel(rec.KID))
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", rec.KID, err)
	}
	k, err := jose.ParseJWK(raw)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", rec.KID, err)
	}
	if k.KeyID() != rec.KID || string(k.Algorithm()) != rec.Alg {
		return nil, fmt.Errorf("auth: signing key %s does not match its record", rec.KID)
	}
	m.unsealed[rec.KID] = k
	return k, nil
}

// errNoActiveKey means Maintain has not run or failed.
var errNoActiveKey = errors.New("auth: no active signing key")

// Signer returns the signer of the active key and its kid.
func (m *KeyManager) Signer(ctx context.Context) (*jwt.Signer, string, error) {
	v, err := m.current(ctx)
	if err != nil {
		return nil, "", err
	}
	if v.nextSigner != nil && !m.now().Before(v.nextAt) {
		return v.nextSigner, v.nextKID, nil
	}
	if v.signer == nil {
		return nil, "", errNoActiveKey
	}
	return v.signer, v.kid, nil
}

// TypedSigner returns a signer of the same key as Signer whose header typ
// is typ — "JWT" for ID tokens, "logout+jwt" for logout tokens — with the
// key's algorithm. Each is made once per key.
func (m *KeyManager) TypedSigner(ctx context.Context, typ string) (*jwt.Signer, jose.Algorithm, error) {
	_, kid, err := m.Signer(ctx)
	if err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	key := m.unsealed[kid]
	m.mu.Unlock()
	if key == nil {
		return nil, "", fmt.Errorf("auth: signing key %s is not open", kid)
	}
	cacheKey := kid + "\x00" + typ
	if sg, ok := m.typed.Load(cacheKey); ok {
		return sg.(*jwt.Signer), key.Algorithm(), nil
	}
	sg, err := jwt.NewSigner(key, jwt.WithHeaderType(typ))
	if err != nil {
		return nil, "", err
	}
	actual, _ := m.typed.LoadOrStore(cacheKey, sg)
	return actual.(*jwt.Signer), key.Algorithm(), nil
}

// VerificationKeys returns every published key (next, active, retired),
// for verifying the server's own tokens.
func (m *KeyManager) VerificationKeys(ctx context.Context) (*jose.KeySet, error) {
	v, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	return v.verify, nil
}

// jwksFresh is how old a view JWKS may serve: much less than CacheFor,
// because a verifier that meets an unknown kid asks the JWKS once and
// then not again for a while (10 s by default); a key made active at
// once by another process (the CLI, another instance without
// notifications) must be there by then. It still bounds the reads an
// anonymous client can cause.
const jwksFresh = 250 * time.Millisecond

// JWKS returns the public JWK Set document. HMAC keys never appear in it.
func (m *KeyManager) JWKS(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	v := m.view
	m.mu.Unlock()
	if v != nil && m.now().Sub(v.loaded) < jwksFresh {
		return v.jwks, nil
	}
	v, err := m.reload(ctx)
	if err != nil {
		return nil, err
	}
	return v.jwks, nil
}

// Keys returns the stored key records (without opening them), oldest first.
func (m *KeyManager) Keys(ctx context.Context) ([]*keycard.SigningKey, error) {
	v, err := m.reload(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.records), nil
}

// Algorithms returns the algorithms of the published keys, the active
// key's first: what a verifier of this server's tokens must accept.
func (m *KeyManager) Algorithms(ctx context.Context) ([]jose.Algorithm, error) {
	v, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	var out []jose.Algorithm
	for _, rec := range v.records {
		if rec.KID == v.kid {
			out = append(out, jose.Algorithm(rec.Alg))
		}
	}
	for _, rec := range v.records {
		if a := jose.Algorithm(rec.Alg); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
