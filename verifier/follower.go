package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Modes of a Follower (FollowerStatus.Mode).
const (
	// ModeStream follows GET /v1/revocations/stream (server-sent events).
	ModeStream = "stream"
	// ModeLongPoll follows GET /v1/revocations?after=N&wait=30s.
	ModeLongPoll = "long-poll"
)

// DefaultMaxOutage is how long a Follower goes without contact with the
// feed before it is stale, unless FollowerOptions.MaxOutage says
// otherwise.
const DefaultMaxOutage = 2 * time.Minute

// Limits and intervals of a Follower.
const (
	// feedPageSize is the most entries a page of the feed holds: a full
	// page means more follow at once.
	feedPageSize = 1000
	// maxPageBytes bounds a page's body; a full page is about 200 KB.
	maxPageBytes = 8 << 20
	// maxErrorBytes bounds what is read of an error response.
	maxErrorBytes = 4 << 10
	// longPollWait is the wait a long-poll asks for.
	longPollWait = 30 * time.Second
	// requestTimeout bounds a request beyond the wait it asks for.
	requestTimeout = 15 * time.Second
	// streamIdleTimeout ends a stream that sends nothing, not even a
	// heartbeat (the server sends one every 15 s): three missed
	// heartbeats. It also catches proxies that buffer the stream.
	streamIdleTimeout = 45 * time.Second
	// streamRetryAfter is how long a follower that fell back to long-poll
	// waits before it tries the stream again.
	streamRetryAfter = 5 * time.Minute
	// streamAttempts is how many streams in a row may end without
	// delivering anything before the follower falls back to long-poll.
	streamAttempts = 3
	// pruneInterval is how often expired entries are dropped.
	pruneInterval = 30 * time.Second
	// Reconnects back off exponentially between these bounds, with
	// jitter.
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
)

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// FeedURL is the revocation feed, GET …/v1/revocations: the
	// follower bootstraps from it page by page and long-polls it
	// (?after=N&wait=30s) when the stream is unavailable. Required.
	FeedURL string
	// StreamURL is the feed as server-sent events,
	// GET …/v1/revocations/stream. Empty: long-poll only.
	StreamURL string
	// ClientID and ClientSecret are the service client's credentials,
	// sent with HTTP Basic (RFC 6749 §2.3.1). The secret is never logged.
	ClientID, ClientSecret string
	// HTTPClient sends the requests; nil means a new http.Client using
	// http.DefaultTransport. Its Timeout is ignored (it would cut every
	// stream short): the follower bounds each request itself.
	HTTPClient *http.Client
	// MaxOutage is how long the follower may go without contact with
	// the feed (a page, an event or a heartbeat) before it is stale; 0
	// means DefaultMaxOutage (2 minutes). It should exceed the 45 s a
	// silent stream is given before it is dropped.
	MaxOutage time.Duration
	// FailOpen makes Healthy report true while the follower is stale.
	// The default, false, fails closed: a verifier refuses every token
	// while it cannot know what was revoked. Failing open accepts revoked
	// tokens during an outage.
	FailOpen bool
	// OnKeyRevoked, if not nil, is called with the kid of each signing
	// key the feed revokes while the follower follows it (not for the
	// keys of the first load, which come with the current key set), so
	// that the key set can be fetched again at once: after an emergency
	// key revocation the auth server signs with another key, which a
	// verifier may not hold yet. A Verifier sets it to its key set's
	// RequestRefresh. It is called from the follower's goroutine and must
	// not block.
	OnKeyRevoked func(kid string)
	// Logger receives connection failures and fallbacks; nil discards.
	Logger *slog.Logger
	// Now is the clock for contact, staleness and pruning; nil means
	// time.Now.
	Now func() time.Time
}

// FollowerStatus describes a Follower's connection to the feed.
type FollowerStatus struct {
	// Ready is true once the follower has bootstrapped from the feed.
	Ready bool
	// Mode is ModeStream or ModeLongPoll: how the follower is following
	// the feed (or trying to).
	Mode string
	// Cursor is the seq of the last entry applied.
	Cursor int64
	// LastContact is the last time the feed answered: a page, an event
	// or a heartbeat. Zero before the first.
	LastContact time.Time
	// Lag is how long the follower has been without contact: 0 while a
	// stream is live or the last long-poll succeeded, otherwise the time
	// since LastContact (or since Start, before any contact).
	Lag time.Duration
	// Stale is true before the follower is Ready, whenever it has had
	// no contact for longer than MaxOutage, and once it has stopped
	// (Close, or the end of Start's context).
	Stale bool
	// Reconnects counts the connections made again after a failure or
	// after a stream ended.
	Reconnects uint64
	// Entries is the number of entries in the set (RevocationSet.Len).
	Entries int
	// Skipped is the number of entries the set ignored
	// (RevocationSet.Skipped): kinds this version does not know.
	Skipped uint64
	// LastError describes the most recent failure, at LastErrorAt; empty
	// if there was none. It holds no secrets.
	LastError   string
	LastErrorAt time.Time
}

// Follower keeps a RevocationSet up to date from the auth server's
// revocation feed: it bootstraps from the feed's pages, then follows the
// stream (server-sent events, resumed with Last-Event-ID), falling back to
// long-polls when the stream is unavailable and trying the stream again
// later. Failed connections are retried with exponential back-off and
// jitter, from 100 ms to 10 s. Expired entries are pruned every 30
// seconds.
//
// A Follower is safe for concurrent use. Healthy is cheap enough to call
// on every request.
type Follower struct {
	set    *RevocationSet
	opt    FollowerOptions
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	// Intervals, from the constants above; tests shorten them.
	pollWait    time.Duration
	streamIdle  time.Duration
	streamRetry time.Duration
	pruneEvery  time.Duration
	healthEvery time.Duration
	backoff     reconnectBackoff

	ready       atomic.Bool
	stopped     atomic.Bool  // the background work has ended
	connected   atomic.Bool  // a stream is open, or the last long-poll succeeded
	healthy     atomic.Bool  // !stale || FailOpen
	streaming   atomic.Bool  // mode
	cursor      atomic.Int64 // seq of the last entry applied
	lastContact atomic.Int64 // Unix nanoseconds by now(); 0: never
	startedAt   atomic.Int64 // Unix nanoseconds by now()
	reconnects  atomic.Uint64

	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	cancel    context.CancelFunc // set by Start
	closed    bool
	wg        sync.WaitGroup
	feedURL   *url.URL
	streamURL *url.URL
}

// NewFollower returns a Follower that keeps set up to date; Start starts
// it.
func NewFollower(set *RevocationSet, opt FollowerOptions) *Follower {
	if opt.MaxOutage <= 0 {
		opt.MaxOutage = DefaultMaxOutage
	}
	f := &Follower{
		set:         set,
		opt:         opt,
		log:         opt.Logger,
		now:         opt.Now,
		pollWait:    longPollWait,
		streamIdle:  streamIdleTimeout,
		streamRetry: streamRetryAfter,
		pruneEvery:  pruneInterval,
		healthEvery: min(time.Second, max(opt.MaxOutage/4, 10*time.Millisecond)),
		backoff:     reconnectBackoff{min: backoffMin, max: backoffMax},
	}
	if opt.HTTPClient != nil {
		c := *opt.HTTPClient
		c.Timeout = 0 // each request has a deadline of its own
		f.client = &c
	} else {
		f.client = &http.Client{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.streaming.Store(opt.StreamURL != "")
	f.healthy.Store(false) // not bootstrapped yet, whatever FailOpen says
	return f
}

// Start bootstraps the set from the feed: it reads every page from the
// start and replaces what the set holds with them. Then it follows the
// feed in the background until ctx is done or Close is called. When the
// bootstrap fails Start returns its error, but the follower keeps trying
// in the background; until it succeeds the follower is stale. Start
// fails without starting anything when FeedURL or StreamURL is not an
// http or https URL, and when called a second time.
func (f *Follower) Start(ctx context.Context) error {
	feedURL, err := parseFeedURL("FeedURL", f.opt.FeedURL)
	if err != nil {
		return err
	}
	var streamURL *url.URL
	if f.opt.StreamURL != "" {
		if streamURL, err = parseFeedURL("StreamURL", f.opt.StreamURL); err != nil {
			return err
		}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errors.New("verifier: Follower is closed")
	}
	if f.cancel != nil {
		f.mu.Unlock()
		return errors.New("verifier: Follower already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	f.cancel = cancel
	f.feedURL, f.streamURL = feedURL, streamURL
	f.startedAt.Store(f.now().UnixNano())
	f.wg.Add(1) // until the goroutines are started, so that Close waits for them
	f.mu.Unlock()
	defer f.wg.Done()

	err = f.bootstrap(ctx)
	if err != nil {
		f.failed(err)
	}
	f.wg.Add(2)
	go f.follow(ctx)
	go f.maintain(ctx)
	return err
}

// parseFeedURL parses an absolute http or https URL.
func parseFeedURL(name, s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("verifier: FollowerOptions.%s must be an http or https URL", name)
	}
	return u, nil
}

// Close stops the follower and waits for its goroutines to end. The set
// keeps what it holds, but the follower is stale from then on, so
// Healthy reports false unless FailOpen is set. Close may be called more
// than once, and before Start.
func (f *Follower) Close() {
	f.mu.Lock()
	f.closed = true
	cancel := f.cancel
	f.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	f.wg.Wait()
}

// Healthy reports whether a verifier may rely on the set: the follower is
// not stale, or FailOpen is set. It is one atomic load.
func (f *Follower) Healthy() bool { return f.healthy.Load() }

// Status returns the follower's state.
func (f *Follower) Status() FollowerStatus {
	now := f.now()
	lc, stale := f.updateHealth()
	st := FollowerStatus{
		Ready:      f.ready.Load(),
		Mode:       ModeLongPoll,
		Cursor:     f.cursor.Load(),
		Stale:      stale,
		Reconnects: f.reconnects.Load(),
		Entries:    f.set.Len(),
		Skipped:    f.set.Skipped(),
	}
	if f.streaming.Load() {
		st.Mode = ModeStream
	}
	if lc != 0 {
		st.LastContact = time.Unix(0, lc).UTC()
	}
	if !f.connected.Load() {
		switch start := f.startedAt.Load(); {
		case lc != 0:
			st.Lag = max(now.Sub(st.LastContact), 0)
		case start != 0:
			st.Lag = max(now.Sub(time.Unix(0, start)), 0)
		}
	}
	f.mu.Lock()
	st.LastError, st.LastErrorAt = f.lastErr, f.lastErrAt
	f.mu.Unlock()
	return st
}

// contact records that the feed answered.
func (f *Follower) contact() {
	f.lastContact.Store(f.now().UnixNano())
	f.updateHealth()
}

// updateHealth recomputes staleness and Healthy from the last contact
// and the follower's state, and returns both. When any of them changes
// while it computes, it computes again, so that of two concurrent calls
// the one that stores last stores the verdict on the latest state: a
// stale verdict never outlives a fresh contact, nor a healthy one the
// follower's stop.
func (f *Follower) updateHealth() (lastContact int64, stale bool) {
	for {
		lc, ready, stopped := f.lastContact.Load(), f.ready.Load(), f.stopped.Load()
		stale = !ready || stopped || lc == 0 || f.now().UnixNano()-lc > int64(f.opt.MaxOutage)
		// FailOpen tolerates an outage, never an empty set that was not
		// loaded yet: until the first bootstrap every token is refused.
		f.healthy.Store(ready && (!stale || f.opt.FailOpen))
		if f.lastContact.Load() == lc && f.ready.Load() == ready && f.stopped.Load() == stopped {
			return lc, stale
		}
	}
}

// recordError records err as the last error (FollowerStatus.LastError).
func (f *Follower) recordError(err error) {
	now := f.now()
	f.mu.Lock()
	f.lastErr, f.lastErrAt = err.Error(), now
	f.mu.Unlock()
}

// failed records err as the last error and logs it.
func (f *Follower) failed(err error) {
	f.recordError(err)
	var se *feedStatusError
	if errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden) {
		// The secret is never logged; the client id says which
		// credentials to check.
		f.log.Error("revocation feed refused the client credentials; check the client id and secret",
			"client_id", f.opt.ClientID, "status", se.status, "error", se.code)
		return
	}
	f.log.Warn("revocation feed", "err", err)
}

// keysRevoked logs the signing keys the feed has just revoked and tells
// OnKeyRevoked of each.
func (f *Follower) keysRevoked(kids []string) {
	for _, kid := range kids {
		f.log.Warn("revocation feed: signing key revoked", "kid", kid)
		if f.opt.OnKeyRevoked != nil {
			f.opt.OnKeyRevoked(kid)
		}
	}
}

// maintain keeps Healthy current between contacts and prunes the set.
func (f *Follower) maintain(ctx context.Context) {
	defer f.wg.Done()
	health := time.NewTicker(f.healthEvery)
	defer health.Stop()
	prune := time.NewTicker(f.pruneEvery)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-health.C:
			f.updateHealth()
		case <-prune.C:
			if n := f.set.Prune(f.now()); n > 0 {
				f.log.Debug("revocation set pruned", "entries", n)
			}
		}
	}
}

// follow follows the feed until ctx is done: by stream when there is one
// and it works, by long-poll otherwise, bootstrapping again first while
// the follower is not ready.
func (f *Follower) follow(ctx context.Context) {
	defer f.wg.Done()
	defer func() {
		// A follower that has stopped no longer knows what is revoked.
		f.stopped.Store(true)
		f.connected.Store(false)
		f.updateHealth()
	}()
	b := f.backoff
	failures := 0          // streams in a row that delivered nothing
	var streamAt time.Time // when to try the stream again, by f.now
	for ctx.Err() == nil {
		var (
			progress bool
			err      error
		)
		switch {
		case !f.ready.Load():
			err = f.bootstrap(ctx)
			progress = err == nil
		case f.streamURL != nil && !f.now().Before(streamAt):
			f.streaming.Store(true)
			progress, err = f.stream(ctx)
			if ctx.Err() != nil {
				return
			}
			if _, ok := errors.AsType[*malformedError](err); ok {
				progress = false // a broken stream, however much it said first
			}
			if progress {
				failures = 0
			} else if !isAuthError(err) {
				failures++
			}
			var ue *streamUnavailableError
			if errors.As(err, &ue) || failures >= streamAttempts {
				f.recordError(err)
				f.log.Warn("revocation stream unavailable; following the feed by long-poll",
					"reason", err, "retry_stream_in", f.streamRetry)
				f.streaming.Store(false)
				streamAt = f.now().Add(f.streamRetry)
				failures = 0
				f.reconnects.Add(1)
				continue // long-poll at once
			}
		default:
			f.streaming.Store(false)
			progress, err = f.poll(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if progress {
			b.reset()
		}
		if err == nil {
			continue
		}
		f.failed(err)
		f.reconnects.Add(1)
		if !sleepContext(ctx, b.next()) {
			return
		}
	}
}

// isAuthError reports whether err is the feed refusing the credentials.
func isAuthError(err error) bool {
	var se *feedStatusError
	return errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden)
}

// sleepContext waits for d or until ctx is done, and reports whether ctx is
// still live.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// reconnectBackoff computes reconnection delays: doubling from min to max, each
// drawn at random from its upper half ("equal jitter").
type reconnectBackoff struct {
	min, max, cur time.Duration
}

func (b *reconnectBackoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *reconnectBackoff) reset() { b.cur = 0 }

// bootstrap reads the feed from the start, page by page, and replaces the
// set with its entries in one step, so that checks never see it half
// loaded.
func (f *Follower) bootstrap(ctx context.Context) error {
	first, err := f.fetch(ctx, 0, 0)
	if err != nil {
		return err
	}
	entries, next, err := f.rest(ctx, first)
	if err != nil {
		return err
	}
	f.set.Reset(entries)
	f.cursor.Store(next)
	f.ready.Store(true)
	f.contact()
	f.log.Info("revocation feed bootstrapped", "entries", len(entries), "cursor", next)
	return nil
}

// rest reads the pages that follow first at once while pages are full,
// and returns all their entries and the cursor after them. A snapshot
// among them (the server pruned or was replaced meanwhile) starts the
// collection again.
func (f *Follower) rest(ctx context.Context, first *feedPage) ([]Entry, int64, error) {
	entries, next, full := first.Entries, first.Next, len(first.Entries) >= feedPageSize
	for full {
		p, err := f.fetch(ctx, next, 0)
		if err != nil {
			return nil, 0, err
		}
		if p.Snapshot {
			entries = entries[:0]
		}
		entries = append(entries, p.Entries...)
		next, full = p.Next, len(p.Entries) >= feedPageSize
	}
	return entries, next, nil
}

// poll makes one long-poll and applies what it returns. progress is true
// when the feed answered.
func (f *Follower) poll(ctx context.Context) (progress bool, err error) {
	p, err := f.fetch(ctx, f.cursor.Load(), f.pollWait)
	if err != nil {
		f.connected.Store(false)
		return false, err
	}
	f.connected.Store(true)
	f.contact()
	if p.Snapshot {
		entries, next, err := f.rest(ctx, p)
		if err != nil {
			f.connected.Store(false)
			return true, err
		}
		f.keysRevoked(f.set.reset(entries))
		f.cursor.Store(next)
		f.log.Info("revocation feed snapshot", "entries", len(entries), "cursor", next)
		return true, nil
	}
	f.keysRevoked(f.set.applyAll(p.Entries))
	f.cursor.Store(p.Next)
	return true, nil
}

// feedPage is an answer of GET /v1/revocations.
type feedPage struct {
	Entries  []Entry `json:"entries"`
	Next     int64   `json:"next"`
	Snapshot bool    `json:"snapshot"`
}

// feedStatusError is an answer of the feed other than 200.
type feedStatusError struct {
	status int
	code   string // the body's "error", when it has a plausible one
}

func (e *feedStatusError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("verifier: revocation feed answered %d %s", e.status, e.code)
	}
	return fmt.Sprintf("verifier: revocation feed answered %d", e.status)
}

// streamUnavailableError says the stream is not served here: the follower
// long-polls instead.
type streamUnavailableError struct{ reason string }

func (e *streamUnavailableError) Error() string {
	return "verifier: revocation stream unavailable: " + e.reason
}

// feedError turns a response other than 200 into a feedStatusError, with the
// error code of an RFC 6749 error body when there is one.
func feedError(res *http.Response) error {
	e := &feedStatusError{status: res.StatusCode}
	var body struct {
		Error string `json:"error"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBytes))
	if json.Unmarshal(b, &body) == nil && isOAuthErrorCode(body.Error) {
		e.code = body.Error
	}
	return e
}

// isOAuthErrorCode reports whether s looks like an OAuth error code, so that
// nothing else from a response reaches the log.
func isOAuthErrorCode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// newRequest returns a GET of u with the client's credentials.
func (f *Follower) newRequest(ctx context.Context, u *url.URL) *http.Request {
	req := (&http.Request{Method: http.MethodGet, URL: u, Header: make(http.Header), Host: u.Host}).WithContext(ctx)
	if f.opt.ClientID != "" || f.opt.ClientSecret != "" {
		// RFC 6749 §2.3.1: both form-urlencoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(f.opt.ClientID), url.QueryEscape(f.opt.ClientSecret))
	}
	return req
}

// fetch reads the page of the feed after the cursor, waiting up to wait
// for entries when there are none, and checks that it is consistent.
func (f *Follower) fetch(ctx context.Context, after int64, wait time.Duration) (*feedPage, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+requestTimeout)
	defer cancel()
	u := *f.feedURL
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	u.RawQuery = q.Encode()
	req := f.newRequest(ctx, &u)
	req.Header.Set("Accept", "application/json")
	res, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("verifier: reading the revocation feed: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, feedError(res)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("verifier: reading the revocation feed: %w", err)
	}
	if len(body) > maxPageBytes {
		return nil, fmt.Errorf("verifier: revocation feed page larger than %d bytes", maxPageBytes)
	}
	var p feedPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("verifier: malformed revocation feed page: %w", err)
	}
	if err := p.check(after); err != nil {
		return nil, err
	}
	return &p, nil
}

// check verifies that a page read after the cursor is in order: entries
// in increasing seq order, after the cursor unless the page is a
// snapshot, and a next cursor that does not go back.
func (p *feedPage) check(after int64) error {
	last := int64(0)
	if !p.Snapshot {
		last = after
	}
	for _, e := range p.Entries {
		if e.Seq <= last {
			return fmt.Errorf("verifier: revocation feed page out of order: seq %d after %d", e.Seq, last)
		}
		last = e.Seq
	}
	if p.Next < last {
		return fmt.Errorf("verifier: revocation feed page: next %d before seq %d", p.Next, last)
	}
	return nil
}

// stream follows the event stream from the cursor until it ends, and
// reports whether it delivered anything (an event or a heartbeat). It
// always ends with an error: why the stream ended.
func (f *Follower) stream(ctx context.Context) (progress bool, err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Nothing for streamIdle — not even the response headers — ends
	// the stream.
	idle := time.AfterFunc(f.streamIdle, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	f.connected.Store(false)
	defer f.connected.Store(false)
	// cause prefers why the context ended to what it made fail.
	cause := func(err error) error {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return err
	}

	req := f.newRequest(ctx, f.streamURL)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Last-Event-ID", strconv.FormatInt(f.cursor.Load(), 10))
	res, err := f.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("verifier: opening the revocation stream: %w", cause(err))
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable, http.StatusGone, http.StatusNotImplemented:
		return false, &streamUnavailableError{reason: res.Status}
	default:
		return false, feedError(res)
	}
	if mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, &streamUnavailableError{reason: fmt.Sprintf("Content-Type %q", res.Header.Get("Content-Type"))}
	}
	f.connected.Store(true)
	events := newSSEReader(res.Body, func() { idle.Reset(f.streamIdle) })
	var snap *streamSnapshot
	for {
		ev, err := events.next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = errStreamEnded
			case errors.Is(err, errSSELineTooLong) || errors.Is(err, errSSEEventTooLong):
				err = &malformedError{err}
			}
			return progress, cause(err)
		}
		switch {
		case ev.comment: // a heartbeat
		case ev.event == "revocation":
			var e Entry
			if err := json.Unmarshal(ev.data, &e); err != nil {
				return progress, malformed("malformed revocation event: %w", err)
			}
			if e.Seq <= 0 || (ev.hasID && ev.id != strconv.FormatInt(e.Seq, 10)) {
				return progress, malformed("malformed revocation event: seq %d, id %q", e.Seq, ev.id)
			}
			switch {
			case snap != nil:
				if n := len(snap.entries); n > 0 && e.Seq <= snap.entries[n-1].Seq {
					return progress, malformed("revocation stream out of order: seq %d after %d", e.Seq, snap.entries[n-1].Seq)
				}
				snap.entries = append(snap.entries, e)
				if e.Seq >= snap.next {
					f.keysRevoked(f.set.reset(snap.entries))
					f.cursor.Store(e.Seq)
					f.log.Info("revocation feed snapshot", "entries", len(snap.entries), "cursor", e.Seq)
					snap = nil
				}
			case e.Seq <= f.cursor.Load():
				// Already applied.
			default:
				if f.set.apply(&e) {
					f.keysRevoked([]string{e.Value})
				}
				f.cursor.Store(e.Seq)
			}
		case ev.event == "snapshot":
			var s struct {
				Next *int64 `json:"next"`
			}
			if err := json.Unmarshal(ev.data, &s); err != nil || s.Next == nil || *s.Next < 0 {
				return progress, malformed("malformed snapshot event %q", truncateForError(ev.data))
			}
			if ev.hasID {
				// No entries follow: the feed is empty.
				f.set.Reset(nil)
				f.cursor.Store(*s.Next)
				snap = nil
			} else {
				// Drop what the set holds once the entries up to next
				// have arrived, and replace it with them in one step.
				snap = &streamSnapshot{next: *s.Next}
			}
		default:
			// An event this version does not know.
		}
		progress = true
		f.contact()
	}
}

// streamSnapshot collects the entries that follow a snapshot event, up to the
// seq it names.
type streamSnapshot struct {
	next    int64
	entries []Entry
}

var (
	errStreamIdle  = errors.New("verifier: revocation stream silent for too long")
	errStreamEnded = errors.New("verifier: revocation stream ended")
)

// malformedError is a stream that breaks the protocol: it counts as a
// failed stream even after good events, so that a stream that keeps
// breaking is given up for long-polls.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

// malformed returns a malformedError with a formatted message.
func malformed(format string, args ...any) error {
	return &malformedError{fmt.Errorf("verifier: "+format, args...)}
}

// truncateForError shortens b for an error message.
func truncateForError(b []byte) string {
	const n = 64
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
