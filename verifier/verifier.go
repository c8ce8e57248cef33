package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// Defaults of Config.
const (
	// DefaultLeeway is also the largest leeway allowed (MaxLeeway): the
	// auth server keeps a revocation feed entry for the access-token
	// lifetime plus 30 s, so a verifier with more leeway would accept a
	// revoked token again once the entry has gone.
	DefaultLeeway        = 30 * time.Second
	MaxLeeway            = DefaultLeeway
	DefaultType          = "at+jwt"
	DefaultMaxFeedOutage = 2 * time.Minute
	DefaultCacheSize     = 10_000
)

// Config configures a Verifier. Issuer is required; so are ClientID and
// ClientSecret, unless NoRevocationFeed is set.
type Config struct {
	// Issuer is the auth server's issuer URL; tokens must carry it as
	// "iss". Unless JWKSURL is set, the issuer's discovery document
	// (RFC 8414) gives the key set and revocation feed URLs.
	Issuer string
	// Audience, if set, must be among the token's "aud".
	Audience string

	// JWKSURL, FeedURL and StreamURL override what discovery finds.
	// When JWKSURL is set, discovery is skipped, and FeedURL must be set
	// too (StreamURL may stay empty: the feed is then long-polled).
	JWKSURL, FeedURL, StreamURL string

	// ClientID and ClientSecret are the service client credentials the
	// revocation feed is read with (HTTP Basic).
	ClientID, ClientSecret string
	// NoRevocationFeed verifies tokens without following the revocation
	// feed: logout, revoke-all and key revocation then take effect only
	// when tokens expire. For tests and tools; never for a service.
	NoRevocationFeed bool

	// HTTPClient fetches discovery, keys and the feed; nil means a client
	// with a 10 s timeout for the key set and no timeout for the feed
	// (whose long-polls and streams are bounded by their own deadlines).
	HTTPClient *http.Client

	// Algorithms, if not empty, restricts the accepted "alg" values; a
	// key's own algorithm always has to match as well.
	Algorithms []jose.Algorithm
	// Leeway for exp, nbf and iat: DefaultLeeway (30 s) when zero; a
	// negative value means none. At most MaxLeeway (30 s).
	Leeway time.Duration
	// Type is the required "typ" header: DefaultType ("at+jwt") when
	// empty; "-" accepts any.
	Type string

	// MaxFeedOutage is how long the revocation feed may be unreachable
	// before the verifier stops trusting its revocation set:
	// DefaultMaxFeedOutage (2 minutes) when zero.
	MaxFeedOutage time.Duration
	// FailOpen keeps accepting tokens during a longer outage; by default
	// (false) every token is refused with 503 temporarily_unavailable.
	FailOpen bool

	// CacheSize bounds the verification cache, in tokens:
	// DefaultCacheSize when zero; negative disables the cache.
	CacheSize int

	// Keys replaces the remote key set (for tests and for services
	// holding the keys themselves).
	Keys jose.KeyResolver

	// DPoP checks the DPoP proofs of tokens presented as Authorization:
	// DPoP (RFC 9449 section 7); its replay cache remembers this
	// verifier's proofs only. nil means a dpop.Checker with the package's
	// defaults (asymmetric algorithms, a 60 s window) on Now.
	DPoP *dpop.Checker
	// PublicURL is the scheme and host (and any path prefix a proxy in
	// front strips) under which clients reach this service, such as
	// "https://api.example.com": a DPoP proof names the URL the client
	// used (htu), which a service behind a proxy does not see. When
	// empty, the URL is taken from the request: https with TLS, http
	// without, and its Host. A proxy can name the URL of each request
	// with WithPublicURL instead.
	PublicURL string

	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies the access tokens of one issuer locally: signature
// against the issuer's published keys, claims, and revocation against an
// in-memory set that follows the issuer's revocation feed. It is safe
// for concurrent use.
type Verifier struct {
	cfg      Config
	parser   *jwt.Parser
	keySet   *RemoteKeySet // nil when Config.Keys is set
	set      *RevocationSet
	follower *Follower // nil with NoRevocationFeed
	cache    *cache    // nil when disabled
	dpopAlgs string    // the algs of a DPoP challenge
	now      func() time.Time
	log      *slog.Logger

	closeOnce sync.Once
}

// New builds a Verifier: it discovers the issuer's endpoints, loads its
// keys and bootstraps the revocation set, then keeps both up to date in
// the background until Close. ctx bounds discovery only: the background
// work lives until Close, whatever becomes of ctx. If the first fetch of either fails, New
// still returns a working Verifier along with nothing but a logged
// warning: its background loops keep trying, and Ready reports the state.
// It fails only for a bad configuration or a failed discovery.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("verifier: Config.Issuer is required")
	}
	if !cfg.NoRevocationFeed && (cfg.ClientID == "" || cfg.ClientSecret == "") {
		return nil, errors.New("verifier: Config.ClientID and ClientSecret are required to follow the revocation feed (NoRevocationFeed turns it off)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("verifier: Config.Leeway %v exceeds %v: revocation feed entries last only the token lifetime plus %v, so revoked tokens would be accepted again", cfg.Leeway, MaxLeeway, MaxLeeway)
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	if cfg.Type == "" {
		cfg.Type = DefaultType
	}
	if cfg.MaxFeedOutage <= 0 {
		cfg.MaxFeedOutage = DefaultMaxFeedOutage
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	keysClient, feedClient := cfg.HTTPClient, cfg.HTTPClient
	if keysClient == nil {
		keysClient = &http.Client{Timeout: 10 * time.Second}
		feedClient = &http.Client{}
	}
	if cfg.Keys == nil && cfg.JWKSURL == "" || !cfg.NoRevocationFeed && cfg.FeedURL == "" && cfg.StreamURL == "" {
		md, err := Discover(ctx, keysClient, cfg.Issuer)
		if err != nil {
			return nil, err
		}
		if cfg.JWKSURL == "" {
			cfg.JWKSURL = md.JWKSURI
		}
		if cfg.FeedURL == "" && cfg.StreamURL == "" {
			cfg.FeedURL, cfg.StreamURL = md.RevocationFeedEndpoint, md.RevocationStreamEndpoint
		}
	}
	if !cfg.NoRevocationFeed && cfg.FeedURL == "" {
		return nil, fmt.Errorf("verifier: the issuer %s publishes no revocation feed (keycard_revocation_feed_endpoint); set Config.FeedURL", cfg.Issuer)
	}

	if cfg.DPoP == nil {
		cfg.DPoP = &dpop.Checker{Now: cfg.Now}
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	v := &Verifier{cfg: cfg, now: cfg.Now, log: cfg.Logger, set: NewRevocationSet(), dpopAlgs: strings.Join(cfg.DPoP.AlgorithmNames(), " ")}
	keys := cfg.Keys
	if keys == nil {
		v.keySet = NewRemoteKeySet(cfg.JWKSURL, RemoteKeySetOptions{HTTPClient: keysClient, Logger: cfg.Logger, Now: cfg.Now})
		keys = v.keySet
	}
	opts := []jwt.ParserOption{jwt.WithIssuer(cfg.Issuer), jwt.WithLeeway(cfg.Leeway), jwt.WithNow(cfg.Now)}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.Type != "-" {
		opts = append(opts, jwt.WithType(cfg.Type))
	}
	if len(cfg.Algorithms) > 0 {
		opts = append(opts, jwt.WithAlgorithms(cfg.Algorithms...))
	}
	v.parser = jwt.NewParser(requireKID{keys}, opts...)
	if cfg.CacheSize > 0 {
		v.cache = newCache(cfg.CacheSize)
	}
	bg := context.WithoutCancel(ctx) // the background work ends with Close
	if v.keySet != nil {
		_ = v.keySet.Start(bg) // a failure is logged and retried in the background; Ready reports it
	}
	if !cfg.NoRevocationFeed {
		opt := FollowerOptions{
			FeedURL: cfg.FeedURL, StreamURL: cfg.StreamURL,
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
			HTTPClient: feedClient, MaxOutage: cfg.MaxFeedOutage, FailOpen: cfg.FailOpen,
			Logger: cfg.Logger, Now: cfg.Now,
		}
		if v.keySet != nil {
			// An emergency key revocation: the issuer now signs with
			// another key, which the set may not hold yet.
			opt.OnKeyRevoked = func(string) { v.keySet.RequestRefresh() }
		}
		v.follower = NewFollower(v.set, opt)
		_ = v.follower.Start(bg) // likewise
	}
	return v, nil
}

// Close stops the background work. The Verifier must not be used after.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.keySet != nil {
			v.keySet.Close()
		}
		if v.follower != nil {
			v.follower.Close()
		}
	})
}

// Ready reports whether the verifier can verify: the keys are loaded, the
// revocation set is bootstrapped and the feed has not been unreachable
// for longer than MaxFeedOutage (unless FailOpen). It is what a
// service's readiness probe should ask.
func (v *Verifier) Ready() error {
	if v.keySet != nil && !v.keySet.Status().Ready {
		return errors.New("verifier: signing keys not loaded yet")
	}
	if v.follower != nil {
		st := v.follower.Status()
		if !st.Ready {
			return errors.New("verifier: revocation feed not loaded yet")
		}
		if st.Stale && !v.cfg.FailOpen {
			return fmt.Errorf("verifier: revocation feed unreachable for %v (failing closed)", st.Lag.Round(time.Second))
		}
	}
	return nil
}

// requireKID refuses tokens without a "kid". Keycard always sets one, and
// revocation of a key is by kid: a token without one that a key set
// resolved anyway (as the only key of its algorithm) would escape a key
// revocation.
type requireKID struct{ jose.KeyResolver }

func (r requireKID) ResolveKey(h *jose.Header) (*jose.Key, error) {
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: the token has no kid", jose.ErrKeyNotFound)
	}
	return r.KeyResolver.ResolveKey(h)
}

// KeySet returns the remote key set, or nil when Config.Keys was given.
func (v *Verifier) KeySet() *RemoteKeySet { return v.keySet }

// Follower returns the revocation follower, or nil with NoRevocationFeed.
func (v *Verifier) Follower() *Follower { return v.follower }

// Revocations returns the in-memory revocation set.
func (v *Verifier) Revocations() *RevocationSet { return v.set }

// Claims are the verified claims of an access token. A *Claims handed
// out by the Verifier may be shared between requests (the verification
// cache keeps it): treat it as read-only.
type Claims struct {
	jwt.AccessClaims
	// KeyID is the "kid" of the key that signed the token.
	KeyID string

	scopes []string // scope split on spaces, then scp, then scopes
	actors []string // the act chain, most recent first
}

// Actors returns the chain of actors of a token obtained by token
// exchange (RFC 8693 section 4.1): the sub of its act claim, then of
// each act nested in it, most recent first — the service that exchanged
// the token last comes first. It is empty when the subject acts for
// itself (no act claim). The slice is shared: do not modify it. The
// chain is what the issuer recorded; only the first entry is the party
// that presented the token to the issuer last.
func (c *Claims) Actors() []string { return c.actors }

// ScopeList returns the token's scopes: "scope" split on spaces, then the
// arrays "scp" and "scopes", in that order, without duplicates. The
// slice is shared: do not modify it.
func (c *Claims) ScopeList() []string { return c.scopes }

// HasScope reports whether the token carries scope s.
func (c *Claims) HasScope(s string) bool { return slices.Contains(c.scopes, s) }

// HasRole reports whether the token carries role r.
func (c *Claims) HasRole(r string) bool { return slices.Contains(c.Roles, r) }

// finish computes the derived fields once the claims are parsed.
func (c *Claims) finish(kid string) {
	c.KeyID = kid
	c.scopes = c.scopes[:0]
	add := func(s string) {
		if s != "" && !slices.Contains(c.scopes, s) {
			c.scopes = append(c.scopes, s)
		}
	}
	for s := range strings.FieldsSeq(c.Scope) {
		add(s)
	}
	for _, s := range c.Scp {
		add(s)
	}
	for _, s := range c.Scopes {
		add(s)
	}
	c.actors = c.Act.Chain()
}

// Verify verifies an access token: its signature against the issuer's
// keys, its claims (issuer, audience, type, expiry with leeway), and that
// it is not revoked. A token verified before is found in the
// verification cache, which skips the signature and claims parsing;
// expiry and revocation are checked on every call. The error is an
// *Error.
func (v *Verifier) Verify(token string) (*Claims, error) {
	now := v.now()
	if v.follower != nil && !v.follower.Healthy() {
		return nil, unavailable()
	}
	if v.cache != nil {
		if c, ok := v.cache.get(token); ok {
			if !now.Before(c.ExpiresAt.Add(v.cfg.Leeway)) {
				v.cache.remove(token)
				return nil, invalidToken("The access token expired.", fmt.Errorf("%w: %w", ErrInvalidToken, jwt.ErrTokenExpired))
			}
			if v.set.Revoked(c.KeyID, c.Subject, c.SessionID, c.ID, c.IssuedAt.Time) {
				return nil, invalidToken("The access token was revoked.", ErrRevoked)
			}
			return c, nil
		}
	}
	// A new value per verified token: the cache keeps it and hands it
	// out, shared and read-only.
	c := new(Claims)
	h, err := v.parser.ParseWithHeader(token, &c.AccessClaims)
	if err != nil {
		return nil, invalidToken(describe(err), fmt.Errorf("%w: %w", ErrInvalidToken, err))
	}
	c.finish(h.KeyID)
	if v.set.Revoked(c.KeyID, c.Subject, c.SessionID, c.ID, c.IssuedAt.Time) {
		return nil, invalidToken("The access token was revoked.", ErrRevoked)
	}
	if v.cache != nil {
		v.cache.put(token, c, c.ExpiresAt.Add(v.cfg.Leeway), now)
	}
	return c, nil
}

// describe is the client-facing description of a token error: what kind
// of problem, never the details that help forge a token.
func describe(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "The access token expired."
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "The access token is not valid yet."
	default:
		return "The access token is invalid."
	}
}
