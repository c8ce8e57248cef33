package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
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
	// DefaultKeyCacheFor when zero. Signing does not depend on it: a
	// store read that reports a newer key generation (Observe, Sync)
	// makes the next signature wait for a fresh view.
	CacheFor time.Duration
}

// KeyManager keeps the signing keys: it creates, publishes, activates and
// retires them (docs/architecture.md, "Keys"), seals private keys under the master key,
// and serves the active signer, the verification key set and the JWKS from
// memory. It is safe for concurrent use.
//
// Its view of the keys is labelled with the store's key generation
// (keycard.KeyStore.KeyGeneration) it was read at. Operations that mint a
// token tell the manager the generation their own store read found
// (Observe), and the manager never signs from a view older than the
// newest generation it has been told of: a key revoked by another
// process is not used for a token whose request read the store after the
// revocation committed.
type KeyManager struct {
	store  keycard.KeyStore
	sealer *Sealer
	opt    KeyOptions
	now    func() time.Time
	rand   io.Reader

	// view is the current snapshot, replaced whole (Invalidate replaces
	// it with a copy).
	view atomic.Pointer[keyView]
	// observed is the newest key generation a store read has reported
	// (Observe).
	observed atomic.Int64
	// reading lets one read of the store run at a time (a one-slot
	// semaphore that a context can give up waiting for): callers that
	// find the view stale together share one read, and views are stored
	// in the order they were read, so none replaces a newer one.
	reading chan struct{}

	mu          sync.Mutex
	invalidated uint64               // incremented by Invalidate
	unsealed    map[string]*jose.Key // kid → private key, so each is opened once
	typed       sync.Map             // kid "\x00" typ → *jwt.Signer (TypedSigner)
}

// keyView is an immutable snapshot of the published keys.
type keyView struct {
	loaded time.Time
	// gen is the store's key generation, read before the keys: the keys
	// are at least that new.
	gen    int64
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
	return &KeyManager{store: store, sealer: sealer, opt: opt, now: now, rand: rand.Reader,
		reading: make(chan struct{}, 1), unsealed: map[string]*jose.Key{}}, nil
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

// Observe records that a store read made for an operation found the key
// generation gen (keycard.KeyStore.KeyGeneration; a RotateResult's
// KeyGeneration, ClientStore.ClientWithKeyGeneration's,
// CreateSessionOptions.KeyGeneration). From then on the
// manager signs, and verifies, only from a view of the keys at least that
// new, reading the store again first if its view is older. The operation
// that observed the generation then signs with a key that was still
// stored when its read ran. Observe is cheap and safe for concurrent use;
// a generation older than one already observed changes nothing.
func (m *KeyManager) Observe(gen int64) {
	for {
		cur := m.observed.Load()
		if gen <= cur || m.observed.CompareAndSwap(cur, gen) {
			return
		}
	}
}

// Sync reads the store's key generation and observes it (Observe), so
// that the next signature uses a key that was current when Sync began:
// one small read, for operations that make no read it could ride on
// (login, whose password hashing costs far more).
func (m *KeyManager) Sync(ctx context.Context) error {
	gen, err := m.store.KeyGeneration(ctx)
	if err != nil {
		return err
	}
	m.Observe(gen)
	return nil
}

// fresh returns the view if it was read less than maxAge ago and is no
// older than the newest generation observed, and nil otherwise.
func (m *KeyManager) fresh(maxAge time.Duration) *keyView {
	v := m.view.Load()
	if v == nil || v.gen < m.observed.Load() || m.now().Sub(v.loaded) >= maxAge {
		return nil
	}
	return v
}

// current returns a view fresh for maxAge (see fresh), reading the store
// when the one in memory is not.
func (m *KeyManager) current(ctx context.Context, maxAge time.Duration) (*keyView, error) {
	if v := m.fresh(maxAge); v != nil {
		return v, nil
	}
	return m.load(ctx, maxAge)
}

// reload reads the store whatever the view in memory, and returns the
// new view.
func (m *KeyManager) reload(ctx context.Context) (*keyView, error) {
	return m.load(ctx, 0)
}

// load waits for its turn to read the store (m.reading), then reads it,
// unless a read that ended meanwhile left a view fresh for maxAge (0:
// always read).
func (m *KeyManager) load(ctx context.Context, maxAge time.Duration) (*keyView, error) {
	select {
	case m.reading <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.reading }()
	if maxAge > 0 {
		if v := m.fresh(maxAge); v != nil {
			return v, nil
		}
	}
	return m.read(ctx)
}

// Invalidate makes the next use of the keys read the store again, rather
// than trust the in-memory view for up to CacheFor. Call it when another
// instance may have changed the keys (a revocation feed notification:
// an emergency key revocation must stop this instance from accepting
// the revoked key at once; signing is guarded by Observe already).
func (m *KeyManager) Invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.invalidated++
	if v := m.view.Load(); v != nil {
		c := *v
		c.loaded = time.Time{}
		m.view.Store(&c)
	}
}

// read reads the key generation and, when it differs from the view's,
// the keys, and stores and returns the new view. The caller holds
// m.reading.
func (m *KeyManager) read(ctx context.Context) (*keyView, error) {
	m.mu.Lock()
	invalidated := m.invalidated
	m.mu.Unlock()
	// The generation before the keys: the keys read are then at least
	// that new, and a change between the two reads makes the next read
	// read them again.
	gen, err := m.store.KeyGeneration(ctx)
	if err != nil {
		return nil, err
	}
	if seen := m.observed.Load(); gen < seen {
		// The store went back (a restored backup, a failover to a
		// replica that had not seen the newest change): what it says
		// now is all there is, and waiting for a generation it may
		// never reach would read it before every signature.
		m.observed.CompareAndSwap(seen, gen)
	}
	var v *keyView
	if old := m.view.Load(); old != nil && old.gen == gen {
		// Nothing changed since the view was read.
		c := *old
		v = &c
	} else {
		keys, err := m.store.ListKeys(ctx)
		if err != nil {
			return nil, err
		}
		if v, err = m.build(keys); err != nil {
			return nil, err
		}
		v.gen = gen
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v.loaded = m.now()
	if m.invalidated != invalidated {
		// Invalidated while the store was read: what was read may
		// predate the change, so the next use reads again.
		v.loaded = time.Time{}
	}
	m.view.Store(v)
	return v, nil
}

// build makes a view of the stored keys, opening the private keys it has
// not opened before.
func (m *KeyManager) build(keys []*keycard.SigningKey) (*keyView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := &keyView{records: keys}
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
	var err error
	if v.verify, err = jose.NewKeySet(verify...); err != nil {
		return nil, err
	}
	if v.jwks, err = v.verify.MarshalJSON(); err != nil {
		return nil, err
	}
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

// Signer returns the signer of the active key and its kid, from a view
// of the keys read less than CacheFor ago and no older than the newest
// key generation observed (Observe, Sync).
func (m *KeyManager) Signer(ctx context.Context) (*jwt.Signer, string, error) {
	v, err := m.current(ctx, m.opt.CacheFor)
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
	v, err := m.current(ctx, m.opt.CacheFor)
	if err != nil {
		return nil, err
	}
	return v.verify, nil
}

// JWKS returns the public JWK Set document. HMAC keys never appear in it.
//
// It reads the store's key generation first (Sync), and the keys when
// they changed: a verifier asks for the JWKS when it meets a kid it does
// not know, typically one another process (the CLI, another instance)
// has just made active, and then not again for a while (10 s by
// default), so the answer must already have it. The cost is one small
// read per request, less than any other anonymous request causes.
func (m *KeyManager) JWKS(ctx context.Context) ([]byte, error) {
	if err := m.Sync(ctx); err != nil {
		return nil, err
	}
	v, err := m.current(ctx, m.opt.CacheFor)
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
	v, err := m.current(ctx, m.opt.CacheFor)
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
