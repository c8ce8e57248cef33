package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keycard-auth/keycard"
)

// FeedPageSize is the most entries one page of the revocation feed holds.
const FeedPageSize = keycard.MaxPageSize

// FeedPage is one answer of the revocation feed (GET /v1/revocations).
type FeedPage struct {
	// Entries follow the cursor in Seq order; never nil.
	Entries []*keycard.Revocation
	// Next is the cursor for the next request: the Seq of the last entry,
	// or the cursor asked for when there are none.
	Next int64
	// Snapshot is true when the cursor was older than what pruning has
	// kept (or newer than the feed, which means another database): the
	// entries are then every entry still stored, from the oldest, and a
	// follower must replace its set with them (and with the pages that
	// follow, up to the first one shorter than FeedPageSize) instead of
	// adding them.
	Snapshot bool
	// Last is the highest Seq in the feed when the page was read: for a
	// snapshot, where it ends (its later pages run up to Last).
	Last int64
}

// Revocations returns the page of the revocation feed that follows the
// cursor after (0 for the start). It fails with EINVALID for a negative
// cursor.
func (s *Service) Revocations(ctx context.Context, after int64) (*FeedPage, error) {
	if after < 0 {
		return nil, keycard.Errorf(keycard.EINVALID, "The cursor must not be negative.")
	}
	store := s.stores.Revocations
	// Last before first: an append between the two reads then makes
	// first newer than last, never a feed that looks pruned ("nothing
	// stored, last 1") when it was merely empty a moment before. Last
	// never goes down.
	last, err := store.LastRevocationSeq(ctx)
	if err != nil {
		return nil, err
	}
	first, err := store.FirstRevocationSeq(ctx)
	if err != nil {
		return nil, err
	}
	// Sequence numbers start at 1, so entries (after, first) were pruned
	// when first > after+1; with nothing stored, every entry up to last
	// was.
	compacted := (first > 0 && after < first-1) || (first == 0 && after < last)
	page := &FeedPage{Next: after, Snapshot: compacted || after > last, Last: last}
	from := after
	if page.Snapshot {
		from, page.Next = 0, last
	}
	if page.Entries, err = store.Revocations(ctx, from, FeedPageSize); err != nil {
		return nil, err
	}
	if n := len(page.Entries); n > 0 {
		page.Next = page.Entries[n-1].Seq
	}
	return page, nil
}

// RevocationsChanged returns a channel that is closed when this Service
// next appends to the revocation feed. Take it before reading the feed,
// so that an append between the read and the wait is not missed. Appends
// made by other processes (the CLI, other instances) do not close it:
// waiters must also look at the feed now and then.
func (s *Service) RevocationsChanged() <-chan struct{} { return s.feed.changed() }

// RevocationsAppended wakes the revocation feed's waiters, as this
// Service's own appends do. It is for appends made by other processes,
// such as other instances on a shared database, signalled by LISTEN/NOTIFY.
// The append may be an emergency key revocation, so the signing keys are
// read again too: this instance must stop accepting a revoked key at once
// rather than after its key cache expires (it stops signing with it
// without this: see RevokeKey). It is safe for concurrent use.
func (s *Service) RevocationsAppended() {
	if s.keys != nil {
		s.keys.Invalidate()
	}
	s.feed.notify()
}

// RevokeAll forces every user to re-authenticate: it revokes every session
// (so every refresh token) and puts a global cut-off in the revocation
// feed, in one transaction, so every access token issued before now is
// dead at every verifier. It returns the number of sessions revoked.
func (s *Service) RevokeAll(ctx context.Context, by Actor) (int64, error) {
	n, err := s.stores.Sessions.RevokeAllSessions(ctx, s.now(), keycard.RevokeAll)
	if err != nil {
		return 0, err
	}
	s.stats.SessionsRevoked(keycard.RevokeAll, int(n))
	s.audit(ctx, keycard.AuditRevokeAll, by, "", map[string]any{"sessions_revoked": n})
	return n, nil
}

// RevokeKey is the emergency revocation of a signing key: if kid is the
// active key, a fresh key is made active first (KeyManager.Rotate with
// immediate), then kid is deleted, so it leaves the JWKS and this server
// stops accepting its tokens at once, and a RevokeKey entry in the feed
// kills its tokens at every verifier. It returns the active key after the revocation, and
// fails with ENOTFOUND for an unknown kid.
//
// Other instances of the server (and a server running while the CLI
// revokes) never sign with kid once RevokeKey has returned: every token
// they mint reads the store's key generation first (KeyManager.Observe,
// Sync), and one that moved makes them read the keys before signing.
// They stop accepting its tokens at once where a feed notification
// reaches them (PostgreSQL's LISTEN/NOTIFY, SQLite's poll of the feed),
// at the next token they mint or introspect, and otherwise within
// DefaultKeyCacheFor.
func (s *Service) RevokeKey(ctx context.Context, by Actor, kid string) (*keycard.SigningKey, error) {
	if s.keys == nil {
		return nil, errors.New("auth: revoking a key needs the signing keys")
	}
	rec, err := s.stores.Keys.Key(ctx, kid)
	if err != nil {
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, keycard.Errorf(keycard.ENOTFOUND, "Key not found.")
		}
		return nil, err
	}
	var rotated string
	if rec.State == keycard.KeyActive {
		fresh, err := s.keys.Rotate(ctx, true)
		if err != nil {
			return nil, err
		}
		rotated = fresh.KID
		s.audit(ctx, keycard.AuditKeyRotated, by, fresh.KID, map[string]any{"alg": fresh.Alg, "immediate": true, "state": fresh.State, "reason": "key_revoked"})
	}
	if err := s.stores.Keys.RevokeKey(ctx, kid, s.now()); err != nil {
		if keycard.ErrorCode(err) == keycard.ENOTFOUND {
			return nil, keycard.Errorf(keycard.ENOTFOUND, "Key not found.")
		}
		return nil, err
	}
	// The revoked key must leave the verification set now, not when the
	// cache would next be refreshed.
	if _, err := s.keys.reload(ctx); err != nil {
		return nil, err
	}
	s.audit(ctx, keycard.AuditKeyRevoked, by, kid, map[string]any{"alg": rec.Alg, "state": rec.State, "new_active_kid": rotated})
	_, active, err := s.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	return active, nil
}

// activeKey returns the kid and record of the active key.
func (s *Service) activeKey(ctx context.Context) (string, *keycard.SigningKey, error) {
	_, kid, err := s.keys.Signer(ctx)
	if err != nil {
		return "", nil, err
	}
	rec, err := s.stores.Keys.Key(ctx, kid)
	return kid, rec, err
}

// feedNotifier wakes the waiters of the revocation feed: changed returns a
// channel that notify closes and replaces. Every notify, and every
// changed call of the stores that changes no feed but what an
// introspection answers or a client authenticates with, also bumps
// epochs, which ends the answers cached before (introCache,
// clientCache). It is safe for concurrent use.
type feedNotifier struct {
	mu     sync.Mutex
	ch     chan struct{}
	epochs epochs
}

func newFeedNotifier() *feedNotifier { return &feedNotifier{ch: make(chan struct{})} }

func (n *feedNotifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *feedNotifier) notify() {
	n.epochs.bump()
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.ch)
	n.ch = make(chan struct{})
}

// notifyingStores wraps the stores whose methods append to the revocation
// feed so that each such call, once it has returned (and so committed),
// wakes the feed's waiters. A spurious wake-up (after a call that failed or
// revoked nothing) costs a waiter one read of the feed.
func notifyingStores(st keycard.Stores, n *feedNotifier) keycard.Stores {
	st.Sessions = notifySessions{st.Sessions, n}
	st.Users = notifyUsers{st.Users, n}
	st.Keys = notifyKeys{st.Keys, n}
	st.Revocations = notifyRevocations{st.Revocations, n}
	st.Clients = notifyClients{st.Clients, n}
	st.Grants = notifyGrants{st.Grants, n}
	if st.Emails != nil {
		st.Emails = notifyEmails{st.Emails, n}
	}
	return st
}

type notifyEmails struct {
	keycard.EmailStore
	n *feedNotifier
}

func (s notifyEmails) ResetPassword(ctx context.Context, id, hash string, at time.Time) (*keycard.User, []string, error) {
	defer s.n.notify()
	return s.EmailStore.ResetPassword(ctx, id, hash, at)
}

type notifySessions struct {
	keycard.SessionStore
	n *feedNotifier
}

func (s notifySessions) RevokeSession(ctx context.Context, id string, at time.Time, reason string) (*keycard.Session, error) {
	defer s.n.notify()
	return s.SessionStore.RevokeSession(ctx, id, at, reason)
}

func (s notifySessions) RevokeUserSessions(ctx context.Context, userID, exceptID string, at time.Time, reason string) ([]string, error) {
	defer s.n.notify()
	return s.SessionStore.RevokeUserSessions(ctx, userID, exceptID, at, reason)
}

func (s notifySessions) RevokeAllSessions(ctx context.Context, at time.Time, reason string) (int64, error) {
	defer s.n.notify()
	return s.SessionStore.RevokeAllSessions(ctx, at, reason)
}

func (s notifySessions) RotateRefreshToken(ctx context.Context, req keycard.RotateRequest) (*keycard.RotateResult, error) {
	res, err := s.SessionStore.RotateRefreshToken(ctx, req)
	if err == nil && res.Outcome == keycard.TheftDetected {
		s.n.notify()
	}
	return res, err
}

func (s notifySessions) RevokeClientSessions(ctx context.Context, userID, clientID string, at time.Time, reason string) ([]string, error) {
	defer s.n.notify()
	return s.SessionStore.RevokeClientSessions(ctx, userID, clientID, at, reason)
}

type notifyClients struct {
	keycard.ClientStore
	n *feedNotifier
}

func (s notifyClients) DeleteClient(ctx context.Context, id string, at time.Time) error {
	defer s.n.notify()
	return s.ClientStore.DeleteClient(ctx, id, at)
}

// The changes below append nothing to the feed; they end the cached
// client authentications (clientCache) at once.

func (s notifyClients) CreateClient(ctx context.Context, c *keycard.Client) error {
	defer s.n.epochs.bump()
	return s.ClientStore.CreateClient(ctx, c)
}

func (s notifyClients) UpdateClient(ctx context.Context, c *keycard.Client) (*keycard.Client, error) {
	defer s.n.epochs.bump()
	return s.ClientStore.UpdateClient(ctx, c)
}

func (s notifyClients) SetClientSecret(ctx context.Context, id string, hash []byte, at time.Time) error {
	defer s.n.epochs.bump()
	return s.ClientStore.SetClientSecret(ctx, id, hash, at)
}

type notifyGrants struct {
	keycard.GrantStore
	n *feedNotifier
}

// Redeem revokes the grant session of a code or device code redeemed
// twice (keycard.Reused), which puts its sid in the feed.
func (s notifyGrants) Redeem(ctx context.Context, req keycard.RedeemRequest) (keycard.RedeemOutcome, error) {
	out, err := s.GrantStore.Redeem(ctx, req)
	if err == nil && out == keycard.Reused {
		s.n.notify()
	}
	return out, err
}

func (s notifyGrants) RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) ([]string, error) {
	defer s.n.notify()
	return s.GrantStore.RevokeConsent(ctx, userID, clientID, at)
}

type notifyUsers struct {
	keycard.UserStore
	n *feedNotifier
}

func (s notifyUsers) UpdateUser(ctx context.Context, id string, upd keycard.UserUpdate, at time.Time) (*keycard.User, error) {
	defer s.n.notify()
	return s.UserStore.UpdateUser(ctx, id, upd, at)
}

func (s notifyUsers) ChangePassword(ctx context.Context, id, hash, keepSessionID string, at time.Time) ([]string, error) {
	defer s.n.notify()
	return s.UserStore.ChangePassword(ctx, id, hash, keepSessionID, at)
}

func (s notifyUsers) DeleteUser(ctx context.Context, id string, at time.Time) ([]string, error) {
	defer s.n.notify()
	return s.UserStore.DeleteUser(ctx, id, at)
}

type notifyKeys struct {
	keycard.KeyStore
	n *feedNotifier
}

func (s notifyKeys) RevokeKey(ctx context.Context, kid string, at time.Time) error {
	defer s.n.notify()
	return s.KeyStore.RevokeKey(ctx, kid, at)
}

type notifyRevocations struct {
	keycard.RevocationStore
	n *feedNotifier
}

func (s notifyRevocations) AddRevocation(ctx context.Context, r *keycard.Revocation) error {
	defer s.n.notify()
	return s.RevocationStore.AddRevocation(ctx, r)
}
