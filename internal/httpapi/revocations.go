package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/browser"
)

// Limits and intervals of the revocation feed.
const (
	// MaxFeedWait is the longest long-poll: GET /v1/revocations?wait=…
	// accepts up to this, 60 seconds.
	MaxFeedWait = 60 * time.Second
	// FeedHeartbeat is how often an idle event stream gets a comment line,
	// so that proxies and clients see the connection is alive.
	FeedHeartbeat = 15 * time.Second
	// feedPoll is how often a waiting reader looks at the store even
	// without a wake-up from this process, to see entries appended by
	// other processes (the CLI, other instances).
	feedPoll = time.Second
	// feedWriteSlack is the time allowed for writing a response beyond
	// the wait.
	feedWriteSlack = 10 * time.Second
)

// Kinds of feed readers, the kind label of FeedMetrics.
const (
	FeedPoll     = "poll"      // GET /v1/revocations without a wait (ObserveFeedLag only)
	FeedLongPoll = "long_poll" // GET /v1/revocations with a wait
	FeedStream   = "stream"    // GET /v1/revocations/stream
)

// FeedMetrics observes the readers of the revocation feed. When
// Options.Metrics also implements it (internal/metrics does), the feed
// reports to it; otherwise nothing is reported. Implementations must be
// safe for concurrent use and cheap.
type FeedMetrics interface {
	// FeedSubscribers adds delta (+1 or -1) to the readers of kind
	// (FeedLongPoll, FeedStream) currently connected: a long-poll from
	// when its client is authenticated until it is answered, a stream
	// until it ends.
	FeedSubscribers(kind string, delta int)
	// ObserveFeedLag records, for each delivery of new entries to a
	// reader of kind (FeedLongPoll, FeedStream, or FeedPoll for a read
	// without wait), the age of the oldest entry delivered: how long a
	// revocation waited before that reader got it. Snapshots are not
	// observed (their entries are old by construction).
	ObserveFeedLag(kind string, lag time.Duration)
}

// feedMetrics returns the FeedMetrics of the server, or one that
// reports nothing.
func (s *Server) feedMetrics() FeedMetrics {
	if fm, ok := s.metrics.(FeedMetrics); ok {
		return fm
	}
	return noFeedMetrics{}
}

type noFeedMetrics struct{}

func (noFeedMetrics) FeedSubscribers(string, int)          {}
func (noFeedMetrics) ObserveFeedLag(string, time.Duration) {}

// observeLag reports the lag of a delivery of page to a reader of kind
// (see FeedMetrics.ObserveFeedLag).
func (s *Server) observeLag(fm FeedMetrics, kind string, page *auth.FeedPage) {
	if page.Snapshot || len(page.Entries) == 0 {
		return
	}
	fm.ObserveFeedLag(kind, max(s.now().Sub(page.Entries[0].At), 0))
}

// feedEntry is one entry of the feed as served.
type feedEntry struct {
	Seq       int64     `json:"seq"`
	Kind      string    `json:"kind"`
	Value     string    `json:"value"`
	At        time.Time `json:"at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// feedResponse is the answer of GET /v1/revocations.
type feedResponse struct {
	Entries  []feedEntry `json:"entries"`
	Next     int64       `json:"next"`
	Snapshot bool        `json:"snapshot"`
}

func toFeedEntry(r *keycard.Revocation) feedEntry {
	return feedEntry{Seq: r.Seq, Kind: string(r.Kind), Value: r.Value, At: r.At.UTC(), ExpiresAt: r.ExpiresAt.UTC()}
}

func toFeedResponse(p *auth.FeedPage) feedResponse {
	out := feedResponse{Entries: make([]feedEntry, 0, len(p.Entries)), Next: p.Next, Snapshot: p.Snapshot}
	for _, r := range p.Entries {
		out.Entries = append(out.Entries, toFeedEntry(r))
	}
	return out
}

// parseCursor parses a feed cursor: a non-negative decimal sequence
// number; empty means 0.
func parseCursor(what, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest(what + " must be a sequence number: a non-negative integer.")
	}
	return n, nil
}

// parseWait parses the wait parameter: a Go duration ("30s", "1m") or a
// whole number of seconds, from 0 to MaxFeedWait.
func parseWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err2 != nil || n > int64(MaxFeedWait/time.Second) {
			return 0, badRequest(fmt.Sprintf("wait must be a duration such as 30s, at most %v.", MaxFeedWait))
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || d > MaxFeedWait {
		return 0, badRequest(fmt.Sprintf("wait must be between 0s and %v.", MaxFeedWait))
	}
	return d, nil
}

// feedReader authenticates the reader of the feed as a service client
// with HTTP Basic (client_secret_basic; a GET has no body for
// client_secret_post). It answers the request itself when that fails.
func (s *Server) feedReader(w http.ResponseWriter, r *http.Request) bool {
	if _, err := s.authenticateClient(w, r, nil); err != nil {
		s.writeError(w, r, err)
		return false
	}
	return true
}

// extendDeadlines gives a long-poll or a stream the time it needs past the
// http.Server's ReadTimeout and WriteTimeout, which would otherwise end
// it. Writers that cannot (httptest recorders) are left alone.
func extendDeadlines(rc *http.ResponseController, d time.Duration) {
	var deadline time.Time // none
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(deadline)
}

// handleRevocations is GET /v1/revocations?after=SEQ[&wait=30s]: the
// entries of the revocation feed after the cursor, and the next cursor. A
// cursor older than what was pruned (or newer than the feed) gets a
// snapshot of every entry still stored and "snapshot": true. With wait
// and nothing new, the answer waits until an entry is appended (waking
// within milliseconds for appends by this process, within feedPoll for
// others), the wait is over, the client goes away or the server shuts
// down.
func (s *Server) handleRevocations(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "after", "wait")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after, err := parseCursor("after", q.get("after"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wait, err := parseWait(q.get("wait"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.feedReader(w, r) {
		return
	}
	ctx := r.Context()
	fm, kind := s.feedMetrics(), FeedPoll
	if wait > 0 {
		kind = FeedLongPoll
		fm.FeedSubscribers(kind, 1)
		defer fm.FeedSubscribers(kind, -1)
		extendDeadlines(http.NewResponseController(w), wait+feedWriteSlack)
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	poll := time.NewTicker(feedPoll)
	defer poll.Stop()
	for {
		changed := s.svc.RevocationsChanged()
		page, err := s.svc.Revocations(ctx, after)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(page.Entries) > 0 || page.Snapshot || wait == 0 {
			s.observeLag(fm, kind, page)
			writeJSON(w, http.StatusOK, toFeedResponse(page))
			return
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-timeout.C:
			wait = 0 // answer what there is: nothing new
		case <-s.feedStop:
			wait = 0
		case <-ctx.Done():
			return // the client went away
		}
	}
}

// handleRevocationStream is GET /v1/revocations/stream: the feed as
// server-sent events (text/event-stream). Each entry is an event
// "revocation" whose id is its seq and whose data is the entry as JSON; a
// snapshot starts with an event "snapshot" (data {"next":N}), after which
// the follower must drop what it holds. The stream resumes after the
// Last-Event-ID header or the after parameter, sends a comment every
// FeedHeartbeat while idle, and ends when the client goes away or the
// server shuts down.
func (s *Server) handleRevocationStream(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "after")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after, err := parseCursor("after", q.get("after"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ids := r.Header.Values("Last-Event-ID"); len(ids) > 1 {
		s.writeError(w, r, badRequest("Send one Last-Event-ID header."))
		return
	} else if len(ids) == 1 && strings.TrimSpace(ids[0]) != "" {
		if after, err = parseCursor("Last-Event-ID", strings.TrimSpace(ids[0])); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !s.feedReader(w, r) {
		return
	}
	ctx := r.Context()
	fm := s.feedMetrics()
	fm.FeedSubscribers(FeedStream, 1)
	defer fm.FeedSubscribers(FeedStream, -1)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	extendDeadlines(rc, FeedHeartbeat+feedWriteSlack)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	// send writes one event (or comment) and flushes it, with a fresh
	// write deadline; false means the stream is over.
	send := func(text string) bool {
		extendDeadlines(rc, FeedHeartbeat+feedWriteSlack)
		if _, err := w.Write([]byte(text)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	heartbeat := time.NewTicker(FeedHeartbeat)
	defer heartbeat.Stop()
	poll := time.NewTicker(feedPoll)
	defer poll.Stop()
	for {
		changed := s.svc.RevocationsChanged()
		page, err := s.svc.Revocations(ctx, after)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "revocation stream", "err", err)
			}
			return // the status is sent; the client reconnects
		}
		if page.Snapshot {
			id := ""
			if len(page.Entries) == 0 {
				id = fmt.Sprintf("id: %d\n", page.Next)
			}
			// "next" is where the snapshot ends, which may be pages
			// away: a follower swaps its set only once it has every
			// entry up to it.
			if !send(fmt.Sprintf("%sevent: snapshot\ndata: {\"next\":%d}\n\n", id, page.Last)) {
				return
			}
		}
		s.observeLag(fm, FeedStream, page)
		for _, e := range page.Entries {
			data, err := json.Marshal(toFeedEntry(e))
			if err != nil {
				return
			}
			if !send(fmt.Sprintf("id: %d\nevent: revocation\ndata: %s\n\n", e.Seq, data)) {
				return
			}
		}
		after = page.Next
		if len(page.Entries) == auth.FeedPageSize {
			continue // more to send at once
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-heartbeat.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case <-s.feedStop:
			return
		case <-ctx.Done():
			return
		}
	}
}

// StopFeeds ends the revocation feed's long-polls (they answer at once
// with what there is) and streams. Register it with
// http.Server.RegisterOnShutdown: Shutdown does not cancel the contexts
// of running requests, so without it a long-poll would hold the shutdown
// up for up to MaxFeedWait and a stream for ever. It is safe to call more
// than once.
func (s *Server) StopFeeds() { s.feedStopOnce.Do(func() { close(s.feedStop) }) }

// handleRevokeAll is POST /admin/v1/revoke-all: every session and refresh
// token dies and a global cut-off enters the feed, in one transaction.
// It answers 200 {"sessions_revoked":N}.
func (s *Server) handleRevokeAll(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	n, err := s.svc.RevokeAll(r.Context(), auth.AdminActor(p, browser.AgentOf(r)))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"sessions_revoked": n})
}

// handleRevokeKey is POST /admin/v1/keys/{kid}/revoke: the emergency
// revocation of a signing key (see auth.Service.RevokeKey). It answers
// 200 {"revoked_kid":…,"active_kid":…}, or 404 for an unknown kid.
func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	p := principal(r.Context())
	kid := r.PathValue("kid")
	active, err := s.svc.RevokeKey(r.Context(), auth.AdminActor(p, browser.AgentOf(r)), kid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"revoked_kid": kid, "active_kid": active.KID})
}
