package verifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keycard-auth/keycard/jose"
)

// MaxKeySetSize is the largest JWK Set document a [RemoteKeySet] reads, in
// bytes: 1 MiB. A larger response is an error and leaves the cached keys in
// place.
const MaxKeySetSize = 1 << 20

// Defaults of [RemoteKeySetOptions].
const (
	DefaultMinRefresh      = time.Minute
	DefaultMaxRefresh      = time.Hour
	DefaultRefresh         = 5 * time.Minute
	DefaultRefetchInterval = 10 * time.Second
	DefaultMaxWait         = time.Second
	DefaultHTTPTimeout     = 10 * time.Second
)

// firstRetry is the delay before the first retry of a failed fetch; it
// doubles with each further failure, up to MinRefresh.
const firstRetry = time.Second

// requestedRefreshEvery is the shortest time between two fetches that
// RequestRefresh asks for: a flood of requests makes one fetch a second.
const requestedRefreshEvery = time.Second

// RemoteKeySetOptions configures a [RemoteKeySet]. The zero value gives the
// documented defaults.
type RemoteKeySetOptions struct {
	// HTTPClient fetches the key set. When nil, a client with a
	// DefaultHTTPTimeout (10 s) timeout is used.
	HTTPClient *http.Client
	// MinRefresh is the shortest interval between background refreshes,
	// whatever the response's Cache-Control says, and the longest delay
	// between retries after a failed fetch. Default 1 min.
	MinRefresh time.Duration
	// MaxRefresh is the longest interval between background refreshes.
	// Default 1 h. A response without a Cache-Control max-age is
	// refreshed after DefaultRefresh (5 min), clamped to
	// [MinRefresh, MaxRefresh].
	MaxRefresh time.Duration
	// RefetchInterval is the shortest time between two fetches triggered
	// by a token whose kid is not in the set. Default 10 s.
	RefetchInterval time.Duration
	// MaxWait is the longest time ResolveKey waits for such a fetch before
	// it gives up with jose.ErrKeyNotFound. Default 1 s.
	MaxWait time.Duration
	// Logger receives fetch failures, skipped keys and key changes, never
	// key material. Default: slog.Default().
	Logger *slog.Logger
	// Now returns the current time; time.Now when nil. It decides the
	// refetch rate limit and the times reported by Status; the waits
	// themselves use real timers.
	Now func() time.Time
}

// KeySetStatus describes the state of a [RemoteKeySet], for health checks
// and metrics.
type KeySetStatus struct {
	// Ready reports whether a key set has been loaded at least once.
	Ready bool
	// Keys is the number of usable keys in the current set.
	Keys int
	// Skipped is the number of keys of the current set's document that
	// were left out as malformed or unsupported.
	Skipped int
	// Fetches counts fetch attempts, successful or not.
	Fetches uint64
	// Failures counts failed fetch attempts since the last success.
	Failures int
	// LastFetch is the time of the last successful fetch.
	LastFetch time.Time
	// LastError describes the last failed fetch, or is empty if the most
	// recent fetch succeeded. LastErrorAt is when it failed.
	LastError   string
	LastErrorAt time.Time
	// NextRefresh is when the background refresh runs next.
	NextRefresh time.Time
}

// RemoteKeySet is a [jose.KeyResolver] backed by the JWK Set (RFC 7517
// section 5) at a URL, typically the auth server's
// /.well-known/jwks.json.
//
// The set is fetched by [RemoteKeySet.Start] and refreshed in the
// background at the interval the response's Cache-Control max-age asks
// for, within [MinRefresh, MaxRefresh]. A failed fetch (network error,
// non-200 status, a document that is too large, not JSON, or holds no
// usable key) never replaces the keys already held: they keep serving and
// the failure is reported by [RemoteKeySet.Status] and logged. Keys in the
// document that are malformed or unsupported are skipped, not fatal, and
// so are symmetric ("oct") keys: a secret published at a URL is no secret
// ([jose.ParsePublicKeySet]).
//
// A token whose kid is not in the set triggers one refetch, shared by all
// callers waiting for it and made at most once per RefetchInterval;
// callers wait at most MaxWait. Tokens with made-up kids therefore cannot
// make the verifier hammer the auth server or stall requests.
// [RemoteKeySet.RequestRefresh] fetches at once, outside that limit, at
// most once a second: a Verifier calls it when its revocation feed
// revokes a signing key.
//
// All methods are safe for concurrent use.
type RemoteKeySet struct {
	url             string
	client          *http.Client
	minRefresh      time.Duration
	maxRefresh      time.Duration
	refetchInterval time.Duration
	maxWait         time.Duration
	log             *slog.Logger
	now             func() time.Time

	set     atomic.Pointer[jose.KeySet] // nil until the first successful fetch
	running atomic.Bool                 // the background goroutine runs
	fetches atomic.Uint64

	// fetchMu serializes fetches, so that a slow old response cannot
	// overwrite a newer one.
	fetchMu sync.Mutex

	mu          sync.Mutex
	status      KeySetStatus
	pending     chan struct{} // closed when the asked-for fetch completes; nil if none is asked for
	lastRefetch time.Time     // when an unknown kid last triggered a fetch
	interval    time.Duration // the refresh interval the last good response asked for
	started     bool
	closed      bool
	cancel      context.CancelFunc
	kick        chan struct{} // asks the background goroutine to fetch now
	done        chan struct{} // closed when the background goroutine ends

	// requested carries RequestRefresh's requests to the background
	// goroutine, at most one at a time; requestEvery spaces the fetches
	// they make (requestedRefreshEvery; tests shorten it).
	requested    chan struct{}
	requestEvery time.Duration
}

var _ jose.KeyResolver = (*RemoteKeySet)(nil)

// NewRemoteKeySet returns a key set that fetches the JWK Set at url. It
// does nothing until [RemoteKeySet.Start] is called.
func NewRemoteKeySet(url string, opt RemoteKeySetOptions) *RemoteKeySet {
	s := &RemoteKeySet{
		url:             url,
		client:          opt.HTTPClient,
		minRefresh:      opt.MinRefresh,
		maxRefresh:      opt.MaxRefresh,
		refetchInterval: opt.RefetchInterval,
		maxWait:         opt.MaxWait,
		log:             opt.Logger,
		now:             opt.Now,
		kick:            make(chan struct{}, 1),
		done:            make(chan struct{}),
		requested:       make(chan struct{}, 1),
		requestEvery:    requestedRefreshEvery,
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if s.minRefresh <= 0 {
		s.minRefresh = DefaultMinRefresh
	}
	if s.maxRefresh <= 0 {
		s.maxRefresh = DefaultMaxRefresh
	}
	if s.maxRefresh < s.minRefresh {
		s.maxRefresh = s.minRefresh
	}
	if s.refetchInterval <= 0 {
		s.refetchInterval = DefaultRefetchInterval
	}
	if s.maxWait <= 0 {
		s.maxWait = DefaultMaxWait
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Start fetches the key set once, synchronously, and then keeps it fresh
// in a background goroutine until ctx ends or [RemoteKeySet.Close] is
// called; ctx should therefore live as long as the key set is used, not
// carry a deadline for the first fetch (the HTTP client's timeout bounds
// each fetch). Start returns the first fetch's error, if any; the
// background goroutine is started regardless and keeps retrying, so a
// verifier can start before its auth server. Start may be called only
// once.
func (s *RemoteKeySet) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("verifier: RemoteKeySet already started or closed")
	}
	s.started = true
	// The first fetch and the background goroutine end with ctx, or
	// with Close.
	runCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.mu.Unlock()

	err := s.Refresh(runCtx)
	s.running.Store(true)
	go func() {
		defer close(s.done)
		defer s.running.Store(false)
		s.run(runCtx, err)
	}()
	return err
}

// Close stops the background refresh and waits for its goroutine to end.
// The keys already loaded keep resolving, but unknown kids no longer
// trigger a fetch. Close may be called more than once.
func (s *RemoteKeySet) Close() {
	s.mu.Lock()
	started := s.started
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	if !started {
		return
	}
	cancel()
	<-s.done
}

// run is the background goroutine: it refreshes the set when its
// interval has passed, retries failures with back-off, fetches at once
// when an unknown kid asks for it (kick), and when RequestRefresh does,
// at most once per requestEvery.
func (s *RemoteKeySet) run(ctx context.Context, lastErr error) {
	timer := time.NewTimer(s.nextDelay(lastErr))
	defer timer.Stop()
	var (
		lastRequested time.Time        // by s.now: when a requested fetch last started
		deferred      *time.Timer      // a requested fetch waiting for its turn
		deferredC     <-chan time.Time // deferred.C, nil when none waits
	)
	defer func() {
		if deferred != nil {
			deferred.Stop()
		}
	}()
	for {
		requested := false
		select {
		case <-ctx.Done():
			s.release()
			return
		case <-timer.C:
		case <-s.kick:
		case <-s.requested:
			if wait := lastRequested.Add(s.requestEvery).Sub(s.now()); !lastRequested.IsZero() && wait > 0 {
				if deferredC == nil { // else one waits already, and serves this request too
					deferred = time.NewTimer(wait)
					deferredC = deferred.C
				}
				continue
			}
			requested = true
		case <-deferredC:
			deferredC = nil
			requested = true
		}
		if !requested {
			// A request that came meanwhile is served by this fetch.
			select {
			case <-s.requested:
				requested = true
			default:
			}
		}
		if requested {
			lastRequested = s.now()
		}
		err := s.Refresh(ctx)
		if ctx.Err() != nil {
			s.release()
			return
		}
		if requested {
			// The fetch may have come before the issuer's new key was
			// published everywhere: the next unknown kid may refetch
			// at once.
			s.mu.Lock()
			s.lastRefetch = time.Time{}
			s.mu.Unlock()
		}
		timer.Reset(s.nextDelay(err))
	}
}

// RequestRefresh asks for the key set to be fetched again now, in the
// background, without waiting for the refresh interval or for the rate
// limit of unknown kids (RefetchInterval), and returns at once. A
// Verifier calls it when its revocation feed revokes a signing key: the
// auth server then signs with another key, which tokens may name before
// the set holds it.
//
// Requests are folded: the first is served by a fetch at once; those
// that come within a second of it are served together by one fetch a
// second after it, so a flood of requests costs the auth server one
// fetch a second. A request that comes while a fetch is under way is
// served by the next one, since the running one may have read the keys
// too early. After a requested fetch, the next token with an unknown kid
// may refetch at once, whatever RefetchInterval says: the requested fetch
// may itself have come too early (an issuer instance that had not yet
// seen the new key). Before Start and after Close, RequestRefresh does
// nothing.
func (s *RemoteKeySet) RequestRefresh() {
	if !s.running.Load() {
		return
	}
	select {
	case s.requested <- struct{}{}:
	default: // a request is queued already, and will serve this one
	}
}

// release marks the goroutine stopped and wakes callers still waiting
// for a fetch that will not come.
func (s *RemoteKeySet) release() {
	s.mu.Lock()
	s.running.Store(false)
	if s.pending != nil {
		close(s.pending)
		s.pending = nil
	}
	s.mu.Unlock()
}

// nextDelay returns the delay until the next background fetch after one
// that ended with err, and records it in the status.
func (s *RemoteKeySet) nextDelay(err error) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d time.Duration
	if err != nil {
		// Back-off: firstRetry, doubling, never beyond MinRefresh.
		d = min(firstRetry, s.minRefresh)
		for i := 1; i < s.status.Failures && d < s.minRefresh; i++ {
			d *= 2
		}
		d = min(d, s.minRefresh)
	} else {
		d = s.interval
	}
	d = jitter(d)
	s.status.NextRefresh = s.now().Add(d)
	return d
}

// jitter shortens d by up to a tenth at random, so that many verifiers
// started together do not refresh in step.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - rand.N(d/10)
}

// ResolveKey implements [jose.KeyResolver] with the rules of
// [jose.KeySet.ResolveKey]: a token with a kid gets exactly the key with
// that kid; a token without one gets the set's only key for its
// algorithm. For a known kid it takes no lock and does not allocate.
// Before Start, while its first fetch is under way, and after Close, it
// does not wait for a fetch.
//
// When no key matches, ResolveKey asks for a refetch (at most one per
// RefetchInterval, shared by all callers) and waits for it at most
// MaxWait; if the key is still missing it returns an error wrapping
// [jose.ErrKeyNotFound].
func (s *RemoteKeySet) ResolveKey(h *jose.Header) (*jose.Key, error) {
	set := s.set.Load()
	if set != nil {
		k, err := set.ResolveKey(h)
		if !errors.Is(err, jose.ErrKeyNotFound) {
			return k, err
		}
	}
	if wait := s.requestRefetch(); wait != nil {
		t := time.NewTimer(s.maxWait)
		select {
		case <-wait:
		case <-t.C:
		}
		t.Stop()
	}
	// Reload in any case: a fetch may have completed since the first
	// look, even when this caller was too late to join it.
	set = s.set.Load()
	if set == nil {
		return nil, fmt.Errorf("%w: the key set from %s is not loaded", jose.ErrKeyNotFound, s.url)
	}
	k, err := set.ResolveKey(h)
	if errors.Is(err, jose.ErrKeyNotFound) && h.KeyID != "" {
		return nil, fmt.Errorf("%w: kid %q is not in the key set from %s", jose.ErrKeyNotFound, h.KeyID, s.url)
	}
	return k, err
}

// requestRefetch asks the background goroutine for a fetch on behalf of
// an unknown kid and returns a channel closed when it completes, or nil
// when no fetch will come (rate-limited, not started, or closed). A
// caller that comes while a requested fetch is pending or under way
// joins it.
func (s *RemoteKeySet) requestRefetch() <-chan struct{} {
	if !s.running.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running.Load() { // stopped meanwhile
		return nil
	}
	if s.pending != nil {
		return s.pending // join the refetch already asked for
	}
	now := s.now()
	if !s.lastRefetch.IsZero() && now.Sub(s.lastRefetch) < s.refetchInterval {
		return nil
	}
	s.lastRefetch = now
	s.pending = make(chan struct{})
	select {
	case s.kick <- struct{}{}:
	default: // a kick is already queued
	}
	return s.pending
}

// Refresh fetches the key set now and, if the document holds at least
// one usable key, makes it the current set. On failure the current set is
// kept and the error is returned, recorded in Status and logged.
func (s *RemoteKeySet) Refresh(ctx context.Context) error {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	// Callers waiting for a refetch are served by this fetch, and so are
	// those who join them while it is under way: the channel is cleared
	// and closed only once the new set is in place.
	s.mu.Lock()
	waiting := s.pending
	s.mu.Unlock()
	if waiting != nil {
		select {
		case <-s.kick: // the kick that asked for this fetch
		default:
		}
		defer func() {
			s.mu.Lock()
			if s.pending == waiting { // not already released by a closing run
				s.pending = nil
				close(waiting)
			}
			s.mu.Unlock()
		}()
	}

	s.fetches.Add(1)
	set, interval, err := s.fetch(ctx)
	now := s.now()
	s.mu.Lock()
	if err != nil {
		s.status.Failures++
		s.status.LastError = err.Error()
		s.status.LastErrorAt = now
		failures, keys := s.status.Failures, s.status.Keys
		s.mu.Unlock()
		// err never holds key material: it describes the transport, the
		// status, or where the document's structure is wrong.
		s.log.WarnContext(ctx, "verifier: JWKS fetch failed, keeping the previous keys",
			"url", s.url, "err", err, "failures", failures, "keys", keys)
		return err
	}
	old := s.set.Swap(set)
	s.status.Ready = true
	s.status.Keys = len(set.Keys())
	s.status.Skipped = len(set.Skipped())
	s.status.Failures = 0
	s.status.LastFetch = now
	s.status.LastError = ""
	s.interval = interval
	s.mu.Unlock()
	for _, e := range set.Skipped() {
		s.log.WarnContext(ctx, "verifier: JWKS key skipped", "url", s.url, "err", e)
	}
	if before, after := keyIDs(old), keyIDs(set); !slices.Equal(before, after) {
		s.log.InfoContext(ctx, "verifier: JWKS keys changed", "url", s.url, "kids", after, "previous", before)
	} else {
		s.log.DebugContext(ctx, "verifier: JWKS refreshed", "url", s.url, "keys", len(after))
	}
	return nil
}

// keyIDs lists the kids of set, for logs.
func keyIDs(set *jose.KeySet) []string {
	if set == nil {
		return nil
	}
	var ids []string
	for _, k := range set.Keys() {
		ids = append(ids, k.KeyID())
	}
	return ids
}

// Status returns the current state of the key set.
func (s *RemoteKeySet) Status() KeySetStatus {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.Fetches = s.fetches.Load()
	return st
}

// fetch GETs and parses the key set and returns it with the refresh
// interval its Cache-Control asks for.
func (s *RemoteKeySet) fetch(ctx context.Context) (*jose.KeySet, time.Duration, error) {
	body, header, err := get(ctx, s.client, s.url, "application/jwk-set+json, application/json", MaxKeySetSize)
	if err != nil {
		return nil, 0, err
	}
	set, err := jose.ParsePublicKeySet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("verifier: JWKS from %s: %w", s.url, err)
	}
	if len(set.Keys()) == 0 {
		return nil, 0, fmt.Errorf("verifier: JWKS from %s has no usable key (%d skipped)", s.url, len(set.Skipped()))
	}
	return set, s.refreshInterval(header.Values("Cache-Control")), nil
}

// refreshInterval returns the interval a response's Cache-Control asks
// for (RFC 9111 section 5.2.2), clamped to [MinRefresh, MaxRefresh]:
// max-age when present, MinRefresh for no-store or no-cache, and
// DefaultRefresh otherwise.
func (s *RemoteKeySet) refreshInterval(cacheControl []string) time.Duration {
	d := DefaultRefresh
	for _, line := range cacheControl {
		for dir := range strings.SplitSeq(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return s.minRefresh
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
				if errors.Is(err, strconv.ErrRange) && n > 0 {
					n = math.MaxInt64 // RFC 9111 section 1.2.2: as good as infinity
				} else if err != nil || n < 0 {
					continue
				}
				d = time.Duration(min(n, int64(s.maxRefresh/time.Second)+1)) * time.Second
			}
		}
	}
	return min(max(d, s.minRefresh), s.maxRefresh)
}

// get GETs url and returns its body, which must come with status 200, a
// JSON media type and at most limit bytes.
func get(ctx context.Context, client *http.Client, url, accept string, limit int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier: bad URL %q: %w", url, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the connection be reused
		return nil, nil, &statusError{url: url, code: resp.StatusCode}
	}
	if ct := resp.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, nil, fmt.Errorf("verifier: GET %s: Content-Type %q is not JSON", url, ct)
	}
	if resp.ContentLength > limit {
		return nil, nil, fmt.Errorf("verifier: GET %s: response of %d bytes exceeds the limit of %d", url, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("verifier: GET %s: reading the response: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("verifier: GET %s: response exceeds the limit of %d bytes", url, limit)
	}
	return body, resp.Header, nil
}

// statusError is a response with a status other than 200.
type statusError struct {
	url  string
	code int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("verifier: GET %s: HTTP status %d %s, want 200", e.url, e.code, http.StatusText(e.code))
}

// isJSON reports whether a Content-Type is application/json or another
// JSON media type (application/jwk-set+json and other "+json" types).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}
