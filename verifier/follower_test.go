package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/authtest"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/password"
)

// feedClock is a settable clock for followers.
type feedClock struct{ ns atomic.Int64 }

func newFeedClock() *feedClock {
	c := &feedClock{}
	c.ns.Store(feedT0.UnixNano())
	return c
}
func (c *feedClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *feedClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// feedLog is a log buffer safe for concurrent writes.
type feedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *feedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *feedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// feedEventually polls cond until it holds, failing the test after a
// generous deadline: it catches hangs, it does not time anything.
func feedEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const (
	feedClientID     = "gateway client"
	feedClientSecret = "s3cret/with:odd+chars"
)

// fakeFeed serves GET /v1/revocations and GET /v1/revocations/stream the
// way the auth server does, and can misbehave on demand.
type fakeFeed struct {
	srv *httptest.Server

	mu      sync.Mutex
	entries []Entry // kept, in seq order
	last    int64   // the highest seq ever
	changed chan struct{}

	// Misbehaviour.
	refuse       int           // when not 0, every request gets this status (an outage)
	wrongSecret  bool          // credentials are refused (401)
	streamStatus int           // when not 0, the stream answers with it
	streamType   string        // the stream's Content-Type, when not ""
	streamRaw    string        // when not "", the stream sends this and ends
	silent       bool          // the stream sends its headers, then nothing
	dropAfter    int           // a stream ends after this many events (0: never)
	heartbeat    time.Duration // between heartbeats of an idle stream
	pageRaw      string        // when not "", every page is this body
	gate         chan struct{} // when not nil, streams wait for it to be closed

	// What happened.
	lastEventIDs []string // the Last-Event-ID of each stream
	sent         []int64  // the seq of every entry streamed, in order
	queries      []string // the query of every page request
	streams      int      // streams started
}

func newFakeFeed(t testing.TB) *fakeFeed {
	f := &fakeFeed{changed: make(chan struct{}), heartbeat: 20 * time.Millisecond}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFeed) feedURL() string   { return f.srv.URL + "/v1/revocations" }
func (f *fakeFeed) streamURL() string { return f.srv.URL + "/v1/revocations/stream" }

// set changes the feed's behaviour under its lock.
func (f *fakeFeed) set(change func(f *fakeFeed)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// add appends entries of the kind with the values.
func (f *fakeFeed) add(kind string, values ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range values {
		f.last++
		f.entries = append(f.entries, entry(f.last, kind, v))
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

// prune drops the entries up to seq.
func (f *fakeFeed) prune(seq int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.entries) > 0 && f.entries[0].Seq <= seq {
		f.entries = f.entries[1:]
	}
}

// replace empties the feed and starts its seqs again, as a new database
// would.
func (f *fakeFeed) replace() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries, f.last = nil, 0
}

// page is auth.Service.Revocations; the caller holds f.mu.
func (f *fakeFeed) page(after int64) (entries []Entry, next int64, snapshot bool) {
	first := int64(0)
	if len(f.entries) > 0 {
		first = f.entries[0].Seq
	}
	compacted := (first > 0 && after < first-1) || (first == 0 && after < f.last)
	snapshot, next, from := compacted || after > f.last, after, after
	if snapshot {
		from, next = 0, f.last
	}
	for _, e := range f.entries {
		if e.Seq > from && len(entries) < feedPageSize {
			entries = append(entries, e)
		}
	}
	if n := len(entries); n > 0 {
		next = entries[n-1].Seq
	}
	return entries, next, snapshot
}

func (f *fakeFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	refuse, wrongSecret := f.refuse, f.wrongSecret
	f.mu.Unlock()
	if refuse != 0 {
		http.Error(w, "down", refuse)
		return
	}
	id, secret, ok := r.BasicAuth()
	id, _ = url.QueryUnescape(id)
	secret, _ = url.QueryUnescape(secret)
	if !ok || wrongSecret || id != feedClientID || secret != feedClientSecret {
		w.Header().Set("WWW-Authenticate", `Basic realm="keycard"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client","error_description":"Client authentication failed."}`)
		return
	}
	switch r.URL.Path {
	case "/v1/revocations":
		f.servePage(w, r)
	case "/v1/revocations/stream":
		f.serveStream(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeFeed) servePage(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	f.mu.Lock()
	f.queries = append(f.queries, r.URL.RawQuery)
	raw := f.pageRaw
	f.mu.Unlock()
	if raw != "" {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, raw)
		return
	}
	for {
		f.mu.Lock()
		entries, next, snapshot := f.page(after)
		changed := f.changed
		f.mu.Unlock()
		if len(entries) > 0 || snapshot || wait == 0 {
			if entries == nil {
				entries = []Entry{}
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"entries": entries, "next": next, "snapshot": snapshot})
			return
		}
		select {
		case <-changed:
		case <-timeout.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeFeed) serveStream(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.streams++
	f.lastEventIDs = append(f.lastEventIDs, r.Header.Get("Last-Event-ID"))
	status, ctype, raw, silent, dropAfter, gate, heartbeat := f.streamStatus, f.streamType, f.streamRaw, f.silent, f.dropAfter, f.gate, f.heartbeat
	f.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if ctype == "" {
		ctype = "text/event-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	if raw != "" {
		io.WriteString(w, raw)
		return
	}
	if silent {
		<-r.Context().Done()
		return
	}
	send := func(s string) bool {
		_, err := io.WriteString(w, s)
		return err == nil && rc.Flush() == nil
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	events := 0
	for {
		f.mu.Lock()
		entries, next, snapshot := f.page(after)
		changed := f.changed
		f.mu.Unlock()
		if snapshot {
			id := ""
			if len(entries) == 0 {
				id = fmt.Sprintf("id: %d\n", next)
			}
			if !send(fmt.Sprintf("%sevent: snapshot\ndata: {\"next\":%d}\n\n", id, next)) {
				return
			}
		}
		for _, e := range entries {
			if dropAfter > 0 && events == dropAfter {
				return
			}
			data, _ := json.Marshal(e)
			if !send(fmt.Sprintf("id: %d\nevent: revocation\ndata: %s\n\n", e.Seq, data)) {
				return
			}
			events++
			f.mu.Lock()
			f.sent = append(f.sent, e.Seq)
			f.mu.Unlock()
		}
		after = next
		if len(entries) == feedPageSize {
			continue
		}
		select {
		case <-changed:
		case <-tick.C:
			if !send(": heartbeat\n\n") {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// testFollower is a Follower of a fakeFeed with short intervals.
type testFollower struct {
	*Follower
	set   *RevocationSet
	clock *feedClock
	log   *feedLog
}

// newTestFollower returns a Follower of feed, not started; stream says
// whether it gets the stream's URL. Closing it is left to the test's
// cleanup.
func newTestFollower(t testing.TB, feed *fakeFeed, stream bool, opt FollowerOptions) *testFollower {
	t.Helper()
	clk, log := newFeedClock(), &feedLog{}
	opt.FeedURL = feed.feedURL()
	if stream {
		opt.StreamURL = feed.streamURL()
	}
	if opt.ClientID == "" {
		opt.ClientID, opt.ClientSecret = feedClientID, feedClientSecret
	}
	opt.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opt.Now = clk.Now
	set := NewRevocationSet()
	f := NewFollower(set, opt)
	f.pollWait = 200 * time.Millisecond
	f.streamIdle = 5 * time.Second
	f.streamRetry = time.Hour // by the test clock
	f.healthEvery = 5 * time.Millisecond
	f.backoff = reconnectBackoff{min: time.Millisecond, max: 20 * time.Millisecond}
	t.Cleanup(f.Close)
	return &testFollower{Follower: f, set: set, clock: clk, log: log}
}

// start starts f and fails the test if the bootstrap fails.
func (f *testFollower) start(t testing.TB) {
	t.Helper()
	if err := f.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// revokedSession reports whether f's set revokes the session id.
func (f *testFollower) revokedSession(sid string) bool {
	return f.set.Revoked("", "", sid, "", feedT0)
}

func TestFollowerBootstrapsPageByPage(t *testing.T) {
	feed := newFakeFeed(t)
	values := make([]string, 2500)
	for i := range values {
		values[i] = fmt.Sprintf("sess-%d", i+1)
	}
	feed.add(KindSession, values...)
	f := newTestFollower(t, feed, false, FollowerOptions{})
	f.set.Apply(entry(99, KindSession, "held before")) // a bootstrap replaces it
	f.start(t)

	st := f.Status()
	if !st.Ready || st.Cursor != 2500 || st.Entries != 2500 || st.Stale {
		t.Errorf("after the bootstrap: Ready %v, Cursor %d, Entries %d, Stale %v; want true, 2500, 2500, false", st.Ready, st.Cursor, st.Entries, st.Stale)
	}
	if !f.Healthy() {
		t.Error("Healthy() = false after the bootstrap")
	}
	for _, sid := range []string{"sess-1", "sess-1000", "sess-1001", "sess-2500"} {
		if !f.revokedSession(sid) {
			t.Errorf("%s is not revoked after the bootstrap", sid)
		}
	}
	if f.revokedSession("held before") {
		t.Error("the bootstrap kept an entry the feed does not hold")
	}
	feed.mu.Lock()
	queries := append([]string(nil), feed.queries[:3]...)
	feed.mu.Unlock()
	if want := []string{"after=0", "after=1000", "after=2000"}; fmt.Sprint(queries) != fmt.Sprint(want) {
		t.Errorf("bootstrap queries %q, want %q", queries, want)
	}
}

func TestFollowerBootstrapsFromASnapshot(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1", "s2", "s3", "s4")
	feed.prune(2) // after=0 is now a snapshot
	f := newTestFollower(t, feed, false, FollowerOptions{})
	f.start(t)
	if f.revokedSession("s2") || !f.revokedSession("s3") || !f.revokedSession("s4") {
		t.Error("the set does not hold exactly the snapshot")
	}
	if got := f.Status().Cursor; got != 4 {
		t.Errorf("Cursor %d, want 4", got)
	}
}

func TestFollowerStreamAppliesEntries(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1")
	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.start(t)
	feed.add(KindSession, "s2")
	feed.add(KindToken, "jti-3")
	feed.add(KindUser, "alice")
	feed.add("device", "phone") // a kind from the future
	feed.add(KindKey, "kid-6")
	feedEventually(t, "the stream delivers seq 6", func() bool { return f.Status().Cursor == 6 })
	if !f.revokedSession("s2") || !f.set.Revoked("", "", "", "jti-3", feedT0) ||
		!f.set.Revoked("", "alice", "", "", feedT0.Add(-time.Second)) || !f.set.Revoked("kid-6", "", "", "", feedT0) {
		t.Error("an entry streamed is not in the set")
	}
	st := f.Status()
	if st.Mode != ModeStream || st.Lag != 0 || st.Stale || st.Skipped != 1 {
		t.Errorf("status %+v: want mode stream, no lag, not stale, 1 skipped", st)
	}
	feed.mu.Lock()
	ids := append([]string(nil), feed.lastEventIDs...)
	feed.mu.Unlock()
	if len(ids) == 0 || ids[0] != "1" {
		t.Errorf("Last-Event-IDs %q, want the first to be the bootstrap's cursor 1", ids)
	}
}

func TestFollowerStreamResumesWithoutGapsOrRepeats(t *testing.T) {
	feed := newFakeFeed(t)
	feed.set(func(f *fakeFeed) { f.dropAfter = 3 })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.start(t)
	var values []string
	for i := 1; i <= 20; i++ {
		values = append(values, fmt.Sprintf("s%d", i))
	}
	feed.add(KindSession, values...)
	feedEventually(t, "the stream delivers seq 20", func() bool { return f.Status().Cursor == 20 })
	for _, v := range values {
		if !f.revokedSession(v) {
			t.Errorf("%s is missing", v)
		}
	}
	feed.mu.Lock()
	sent, ids := append([]int64(nil), feed.sent...), append([]string(nil), feed.lastEventIDs...)
	feed.mu.Unlock()
	for i, seq := range sent {
		if seq != int64(i+1) {
			t.Fatalf("entries streamed %v, want 1 to 20 each once", sent)
		}
	}
	// Streams of 3 events: each reconnection resumes after the last
	// event received.
	want := []string{"0", "3", "6", "9", "12", "15", "18"}
	if len(ids) < len(want) || fmt.Sprint(ids[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("Last-Event-IDs %q, want %q first", ids, want)
	}
	if st := f.Status(); st.Reconnects < 6 {
		t.Errorf("Reconnects %d, want at least 6", st.Reconnects)
	}
}

func TestFollowerStreamSnapshot(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1", "s2", "s3")
	gate := make(chan struct{})
	feed.set(func(f *fakeFeed) { f.gate = gate })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.start(t)
	// While the follower waits for its stream, entries it has not seen
	// are pruned: the stream must start with a snapshot.
	feed.add(KindSession, "s4", "s5", "s6")
	feed.prune(4)
	close(gate)
	// The set is replaced before the cursor moves: wait for both.
	feedEventually(t, "the snapshot is applied", func() bool { return f.revokedSession("s6") && f.Status().Cursor == 6 })
	if f.revokedSession("s1") || f.revokedSession("s3") {
		t.Error("entries held before the snapshot were not dropped")
	}
	if !f.revokedSession("s5") || f.Status().Cursor != 6 || f.Status().Entries != 2 {
		t.Errorf("after the snapshot: status %+v, want s5 and s6 only, cursor 6", f.Status())
	}
	// Entries that follow are ordinary.
	feed.add(KindSession, "s7")
	feedEventually(t, "s7 arrives", func() bool { return f.revokedSession("s7") })
}

func TestFollowerStreamSnapshotOfAnEmptyFeed(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1", "s2", "s3")
	gate := make(chan struct{})
	feed.set(func(f *fakeFeed) { f.gate = gate })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.start(t)
	feed.replace() // another database: the follower's cursor is ahead of it
	close(gate)
	feedEventually(t, "the set is emptied", func() bool { return f.Status().Entries == 0 })
	if got := f.Status().Cursor; got != 0 {
		t.Errorf("Cursor %d, want 0", got)
	}
	feed.add(KindSession, "new-1")
	feedEventually(t, "the new database's first entry arrives", func() bool { return f.revokedSession("new-1") })
}

func TestFollowerLongPollSnapshot(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1")
	f := newTestFollower(t, feed, false, FollowerOptions{})
	f.start(t)
	// Hold the follower's polls on a full page of entries it will then
	// miss: pruning makes its next poll a snapshot.
	var values []string
	for i := range 1500 {
		values = append(values, fmt.Sprintf("x%d", i))
	}
	feed.mu.Lock()
	for _, v := range values {
		feed.last++
		feed.entries = append(feed.entries, entry(feed.last, KindSession, v))
	}
	feed.entries = feed.entries[2:] // drop s1 and x0 unseen
	close(feed.changed)
	feed.changed = make(chan struct{})
	feed.mu.Unlock()
	feedEventually(t, "the follower catches up", func() bool { return f.Status().Cursor == 1501 })
	st := f.Status()
	if f.revokedSession("s1") || !f.revokedSession("x1") || !f.revokedSession("x1499") || st.Entries != 1499 {
		t.Errorf("after a two-page snapshot: %d entries, s1 %v, x1 %v, x1499 %v; want 1499, false, true, true",
			st.Entries, f.revokedSession("s1"), f.revokedSession("x1"), f.revokedSession("x1499"))
	}
	if st.Mode != ModeLongPoll {
		t.Errorf("Mode %q, want %q", st.Mode, ModeLongPoll)
	}
}

func TestFollowerFallsBackToLongPoll(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *fakeFeed)
		idle   time.Duration
	}{
		{"stream not found", func(f *fakeFeed) { f.streamStatus = http.StatusNotFound }, 0},
		{"stream not allowed", func(f *fakeFeed) { f.streamStatus = http.StatusMethodNotAllowed }, 0},
		{"not an event stream", func(f *fakeFeed) { f.streamType = "text/html; charset=utf-8" }, 0},
		{"a proxy that buffers", func(f *fakeFeed) { f.silent = true }, 200 * time.Millisecond},
		{"a stream that fails every time", func(f *fakeFeed) { f.streamStatus = http.StatusBadGateway }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFakeFeed(t)
			feed.set(tt.change)
			f := newTestFollower(t, feed, true, FollowerOptions{})
			if tt.idle > 0 {
				f.streamIdle = tt.idle
			}
			f.start(t)
			feedEventually(t, "the follower long-polls", func() bool { return f.Status().Mode == ModeLongPoll })
			if st := f.Status(); st.LastError == "" {
				t.Error("falling back left no LastError")
			}
			feed.add(KindSession, "s1")
			feedEventually(t, "a long-poll delivers s1", func() bool { return f.revokedSession("s1") })
			if f.Status().Stale {
				t.Error("a follower that long-polls successfully is stale")
			}

			// Later the stream is tried again, and used once it works.
			feed.set(func(f *fakeFeed) { f.streamStatus, f.streamType, f.silent = 0, "", false })
			f.clock.Advance(time.Hour + time.Second)
			feedEventually(t, "the follower streams again", func() bool { return f.Status().Mode == ModeStream && f.connected.Load() })
			feed.add(KindSession, "s2")
			feedEventually(t, "the stream delivers s2", func() bool { return f.revokedSession("s2") })
		})
	}
}

func TestFollowerStaleAfterMaxOutage(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			feed := newFakeFeed(t)
			feed.add(KindSession, "s1")
			f := newTestFollower(t, feed, true, FollowerOptions{MaxOutage: time.Minute, FailOpen: failOpen})
			f.start(t)
			feedEventually(t, "the stream is live", func() bool { return f.connected.Load() })
			if st := f.Status(); st.Stale || !f.Healthy() || st.Lag != 0 {
				t.Fatalf("live: Stale %v, Healthy %v, Lag %v; want false, true, 0", st.Stale, f.Healthy(), st.Lag)
			}

			// The auth server goes away.
			feed.set(func(f *fakeFeed) { f.refuse = http.StatusServiceUnavailable })
			feed.srv.CloseClientConnections()
			reconnects := f.Status().Reconnects
			feedEventually(t, "the follower fails to reconnect", func() bool { return f.Status().Reconnects >= reconnects+2 })
			f.clock.Advance(30 * time.Second)
			if st := f.Status(); st.Stale || st.Lag != 30*time.Second || !f.Healthy() {
				t.Errorf("within MaxOutage: Stale %v, Lag %v, Healthy %v; want false, 30s, true", st.Stale, st.Lag, f.Healthy())
			}
			f.clock.Advance(31 * time.Second)
			st := f.Status()
			if !st.Stale || st.Lag != 61*time.Second || !st.LastContact.Equal(feedT0) {
				t.Errorf("beyond MaxOutage: Stale %v, Lag %v, LastContact %v; want true, 61s, %v", st.Stale, st.Lag, st.LastContact, feedT0)
			}
			if got := f.Healthy(); got != failOpen {
				t.Errorf("beyond MaxOutage: Healthy() = %v, want %v (FailOpen %v)", got, failOpen, failOpen)
			}
			if !strings.Contains(st.LastError, "503") {
				t.Errorf("LastError %q, want the 503", st.LastError)
			}
			if !f.set.Revoked("", "", "s1", "", feedT0) {
				t.Error("an outage emptied the set")
			}

			// It comes back.
			feed.set(func(f *fakeFeed) { f.refuse = 0 })
			feedEventually(t, "the follower is healthy again", func() bool { return !f.Status().Stale && f.Healthy() })
		})
	}
}

func TestFollowerNotReadyUntilBootstrapped(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1")
	feed.set(func(f *fakeFeed) { f.refuse = http.StatusBadGateway })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	err := f.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Start with the feed down: %v, want an error saying 502", err)
	}
	if st := f.Status(); st.Ready || !st.Stale || f.Healthy() {
		t.Errorf("before a bootstrap: Ready %v, Stale %v, Healthy %v; want false, true, false", st.Ready, st.Stale, f.Healthy())
	}
	feed.set(func(f *fakeFeed) { f.refuse = 0 })
	// Ready is set before the contact that makes the follower Healthy:
	// wait for both.
	feedEventually(t, "the follower bootstraps in the background", func() bool { return f.Status().Ready && f.Healthy() })
	if !f.revokedSession("s1") {
		t.Error("after a late bootstrap the set is not loaded")
	}

	// FailOpen tolerates an outage, not an empty set never loaded: until
	// its first bootstrap a FailOpen follower is not Healthy either.
	failOpen := newTestFollower(t, feed, false, FollowerOptions{FailOpen: true})
	if failOpen.Healthy() {
		t.Error("a FailOpen follower that has not bootstrapped is Healthy: it would accept revoked tokens")
	}
}

func TestFollowerBadCredentials(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1")
	feed.set(func(f *fakeFeed) { f.wrongSecret = true })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	err := f.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401 invalid_client") {
		t.Fatalf("Start with refused credentials: %v, want 401 invalid_client", err)
	}
	feedEventually(t, "the follower retries", func() bool { return f.Status().Reconnects >= 2 })
	logs := f.log.String()
	if !strings.Contains(logs, "check the client id and secret") || !strings.Contains(logs, feedClientID) {
		t.Errorf("the log does not say which credentials were refused:\n%s", logs)
	}
	for _, secret := range []string{feedClientSecret, url.QueryEscape(feedClientSecret)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the client secret:\n%s", logs)
		}
	}
	feed.set(func(f *fakeFeed) { f.wrongSecret = false }) // the admin fixes the client
	feedEventually(t, "the follower bootstraps", func() bool { return f.revokedSession("s1") })
}

func TestFollowerMalformedPages(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", "<html>proxy error</html>", "malformed revocation feed page"},
		{"wrong types", `{"entries":"none","next":"x"}`, "malformed revocation feed page"},
		{"bad time", `{"entries":[{"seq":1,"kind":"session","value":"s","at":"yesterday"}],"next":1}`, "malformed revocation feed page"},
		{"out of order", `{"entries":[{"seq":2,"kind":"session","value":"a"},{"seq":1,"kind":"session","value":"b"}],"next":2}`, "out of order"},
		{"seq not after the cursor", `{"entries":[{"seq":0,"kind":"session","value":"a"}],"next":0}`, "out of order"},
		{"next going back", `{"entries":[{"seq":5,"kind":"session","value":"a"}],"next":3}`, "next 3 before seq 5"},
		{"too large", `{"entries":[],"next":0,"x":"` + strings.Repeat("a", maxPageBytes) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFakeFeed(t)
			feed.set(func(f *fakeFeed) { f.pageRaw = tt.body })
			f := newTestFollower(t, feed, false, FollowerOptions{})
			err := f.Start(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start: %v, want an error saying %q", err, tt.want)
			}
			feedEventually(t, "the follower retries", func() bool { return f.Status().Reconnects >= 1 })
			if st := f.Status(); st.Ready || st.Entries != 0 || !strings.Contains(st.LastError, tt.want) {
				t.Errorf("status %+v: want not ready, empty, LastError saying %q", st, tt.want)
			}
		})
	}
}

func TestFollowerMalformedStreams(t *testing.T) {
	long := strings.Repeat("x", maxSSELine+1)
	tests := []struct {
		name, stream, want string
	}{
		{"event data not JSON", "event: revocation\ndata: {oops\n\n", "malformed revocation event"},
		{"event without seq", "event: revocation\ndata: {\"kind\":\"session\",\"value\":\"x\"}\n\n", "malformed revocation event"},
		{"id not the seq", "id: 9\nevent: revocation\ndata: {\"seq\":2,\"kind\":\"session\",\"value\":\"x\"}\n\n", "malformed revocation event"},
		{"snapshot without next", "event: snapshot\ndata: {}\n\n", "malformed snapshot event"},
		{"snapshot with a negative next", "event: snapshot\ndata: {\"next\":-4}\n\n", "malformed snapshot event"},
		{"snapshot out of order", "event: snapshot\ndata: {\"next\":9}\n\nevent: revocation\ndata: {\"seq\":3,\"kind\":\"session\",\"value\":\"x\"}\n\n" +
			"event: revocation\ndata: {\"seq\":2,\"kind\":\"session\",\"value\":\"y\"}\n\n", "out of order"},
		{"a line too long", "data: " + long + "\n\n", "line longer than"},
		{"the stream ends", "\n", "stream ended"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := newFakeFeed(t)
			feed.add(KindSession, "s1")
			feed.set(func(f *fakeFeed) { f.streamRaw = tt.stream })
			f := newTestFollower(t, feed, true, FollowerOptions{})
			f.start(t)
			// A stream that keeps failing is given up for long-polls,
			// which work.
			feedEventually(t, "the follower long-polls", func() bool { return f.Status().Mode == ModeLongPoll })
			if st := f.Status(); !strings.Contains(st.LastError, tt.want) {
				t.Errorf("LastError %q, want it to say %q", st.LastError, tt.want)
			}
			if f.revokedSession("x") || f.revokedSession("y") || !f.revokedSession("s1") {
				t.Error("a malformed stream changed the set")
			}
			feed.add(KindSession, "s2")
			feedEventually(t, "a long-poll delivers s2", func() bool { return f.revokedSession("s2") })
		})
	}
}

func TestFollowerPrunes(t *testing.T) {
	feed := newFakeFeed(t)
	feed.add(KindSession, "s1", "s2")
	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.pruneEvery = 5 * time.Millisecond
	f.start(t)
	f.clock.Advance(feedTTL + time.Second)
	feedEventually(t, "expired entries are pruned", func() bool { return f.Status().Entries == 0 })
}

func TestFollowerStartAndClose(t *testing.T) {
	feed := newFakeFeed(t)
	tests := []struct {
		name string
		opt  FollowerOptions
	}{
		{"no feed URL", FollowerOptions{}},
		{"a relative feed URL", FollowerOptions{FeedURL: "/v1/revocations"}},
		{"a feed URL of another scheme", FollowerOptions{FeedURL: "ftp://auth.example/v1/revocations"}},
		{"a bad stream URL", FollowerOptions{FeedURL: feed.feedURL(), StreamURL: "::"}},
	}
	for _, tt := range tests {
		f := NewFollower(NewRevocationSet(), tt.opt)
		if err := f.Start(context.Background()); err == nil {
			t.Errorf("%s: Start succeeded", tt.name)
		}
		f.Close()
	}

	f := newTestFollower(t, feed, true, FollowerOptions{})
	f.start(t)
	if err := f.Start(context.Background()); err == nil {
		t.Error("a second Start succeeded")
	}
	if !f.Healthy() {
		t.Error("a started follower is not Healthy")
	}
	f.Close()
	f.Close()
	if st := f.Status(); f.Healthy() || !st.Stale {
		t.Errorf("after Close: Healthy %v, Stale %v; want false, true", f.Healthy(), st.Stale)
	}
	if err := f.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}
	never := NewFollower(NewRevocationSet(), FollowerOptions{FeedURL: feed.feedURL()})
	never.Close() // before Start
}

// noFollowerGoroutines fails the test unless the goroutines running a
// Follower's code all end (those that Close has waited for may still be
// returning).
func noFollowerGoroutines(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g := followerGoroutines(); g != ""; g = followerGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: goroutines left:\n%s", what, g)
		}
		time.Sleep(time.Millisecond)
	}
}

// followerGoroutines returns the stacks of the goroutines running a
// Follower's code.
func followerGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "verifier.(*Follower)") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func TestFollowerCloseLeavesNoGoroutines(t *testing.T) {
	for _, stream := range []bool{true, false} {
		feed := newFakeFeed(t)
		feed.add(KindSession, "s1")
		f := newTestFollower(t, feed, stream, FollowerOptions{})
		f.start(t)
		feedEventually(t, "a stream or a long-poll is waiting", func() bool { return f.connected.Load() })
		f.Close()
		noFollowerGoroutines(t, fmt.Sprintf("stream %v: after Close", stream))
	}

	// Close while Start is still bootstrapping.
	feed := newFakeFeed(t)
	feed.set(func(f *fakeFeed) { f.refuse = http.StatusServiceUnavailable })
	f := newTestFollower(t, feed, true, FollowerOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Start(context.Background())
	}()
	f.Close()
	<-done
	f.Close()
	noFollowerGoroutines(t, "after Close during Start")

	// Cancelling Start's context stops the follower too.
	feed2 := newFakeFeed(t)
	f2 := newTestFollower(t, feed2, true, FollowerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	if err := f2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	noFollowerGoroutines(t, "after its context is cancelled")
}

func TestBackoff(t *testing.T) {
	b := reconnectBackoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for i, upper := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		if d := b.next(); d < upper/2 || d > upper {
			t.Errorf("delay %d: %v, want within [%v, %v]", i, d, upper/2, upper)
		}
	}
	for range 20 {
		b.next()
	}
	if d := b.next(); d < 5*time.Second || d > 10*time.Second {
		t.Errorf("capped delay %v, want within [5s, 10s]", d)
	}
	b.reset()
	if d := b.next(); d > 100*time.Millisecond {
		t.Errorf("delay after reset %v, want at most 100ms", d)
	}
}

// TestFollowerEndToEnd follows the real auth server's feed: a logout and
// a revoke-all made through the auth service reach the follower's set.
func TestFollowerEndToEnd(t *testing.T) {
	ctx := context.Background()
	env := authtest.New(t, time.Now)
	stores, sealer, keys := env.Stores, env.Sealer, env.Keys
	hasher := &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	svc, err := auth.NewService(auth.Deps{Stores: stores, Keys: keys, Sealer: sealer, Hasher: hasher}, auth.Config{Issuer: "https://auth.test", Registration: true})
	if err != nil {
		t.Fatal(err)
	}
	server := httpapi.New(svc, httpapi.Options{})
	ts := httptest.NewServer(server)
	t.Cleanup(func() { server.StopFeeds(); ts.Close() })

	const pass = "correct horse battery"
	if _, err := svc.Register(ctx, "alice", pass, nil); err != nil {
		t.Fatal(err)
	}
	tokens, err := svc.Login(ctx, "alice", pass, auth.Agent{})
	if err != nil {
		t.Fatal(err)
	}
	client, secret, err := svc.CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "gateway", Scopes: nil, Audiences: nil})
	if err != nil {
		t.Fatal(err)
	}

	set := NewRevocationSet()
	f := NewFollower(set, FollowerOptions{
		FeedURL:   ts.URL + "/v1/revocations",
		StreamURL: ts.URL + "/v1/revocations/stream",
		ClientID:  client.ID, ClientSecret: secret,
		HTTPClient: ts.Client(),
	})
	t.Cleanup(f.Close)
	if err := f.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if set.Revoked("", "", tokens.SessionID, "", time.Now()) {
		t.Fatal("the session is revoked before the logout")
	}
	feedEventually(t, "the stream is open", func() bool { return f.connected.Load() })

	p, err := svc.Authenticate(ctx, tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(ctx, p, auth.Agent{}); err != nil {
		t.Fatal(err)
	}
	feedEventually(t, "the logout reaches the follower", func() bool { return set.Revoked("", "", tokens.SessionID, "", time.Now()) })

	before := time.Now().Add(-time.Second).Truncate(time.Second)
	if set.Revoked("", "bob", "", "", before) {
		t.Fatal("a token of another user is revoked before the revoke-all")
	}
	if _, err := svc.RevokeAll(ctx, auth.Operator()); err != nil {
		t.Fatal(err)
	}
	// An entry is applied to the set before the cursor moves past it:
	// wait for both.
	feedEventually(t, "the revoke-all reaches the follower", func() bool {
		return set.Revoked("", "bob", "", "", before) && f.Status().Cursor >= 2
	})
	if st := f.Status(); st.Mode != ModeStream || !st.Ready || st.Stale || st.Cursor < 2 {
		t.Errorf("status %+v: want streaming, ready, not stale, cursor at least 2", st)
	}
}

func ExampleFollower() {
	set := NewRevocationSet()
	f := NewFollower(set, FollowerOptions{
		FeedURL:      "https://auth.example.com/v1/revocations",
		StreamURL:    "https://auth.example.com/v1/revocations/stream",
		ClientID:     "gateway",
		ClientSecret: os.Getenv("GATEWAY_CLIENT_SECRET"),
	})
	if err := f.Start(context.Background()); err != nil {
		slog.Warn("revocation feed not loaded; retrying in the background", "err", err)
	}
	defer f.Close()

	// On every request, after the token's signature and claims are verified:
	handler := func(w http.ResponseWriter, kid, sub, sid, jti string, iat time.Time) {
		if !f.Healthy() { // the feed has been out of reach too long: fail closed
			http.Error(w, "revocation feed unavailable", http.StatusServiceUnavailable)
			return
		}
		if set.Revoked(kid, sub, sid, jti, iat) {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		// Serve.
	}
	_ = handler
}

// keyLog records the kids a follower reports to OnKeyRevoked.
type keyLog struct {
	mu   sync.Mutex
	kids []string
}

func (l *keyLog) revoked(kid string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kids = append(l.kids, kid)
}

// sorted returns the kids reported so far, sorted.
func (l *keyLog) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(slices.Values(l.kids))
}

// TestFollowerReportsRevokedKeys: OnKeyRevoked hears of each key the
// feed revokes while it is followed, once, by stream and by long-poll;
// not of the keys of the first load, nor of a key revoked again.
func TestFollowerReportsRevokedKeys(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: ModeLongPoll, true: ModeStream}[stream], func(t *testing.T) {
			feed := newFakeFeed(t)
			feed.add(KindKey, "k0") // loaded at the start, with the key set
			var keys keyLog
			f := newTestFollower(t, feed, stream, FollowerOptions{OnKeyRevoked: keys.revoked})
			f.start(t)
			feed.add(KindSession, "s1")
			feed.add(KindKey, "k1")
			feed.add(KindKey, "k1", "k0") // again: held already
			feed.add(KindKey, "k2")
			feedEventually(t, "the follower catches up", func() bool { return f.Status().Cursor == 6 })
			if got, want := keys.sorted(), []string{"k1", "k2"}; !slices.Equal(got, want) {
				t.Errorf("OnKeyRevoked got %q, want %q", got, want)
			}
			if !f.set.Revoked("k0", "", "", "", feedT0) || !f.set.Revoked("k2", "", "", "", feedT0) {
				t.Error("the revoked keys are not in the set")
			}
			if !strings.Contains(f.log.String(), "signing key revoked") {
				t.Errorf("no log line for the revoked keys:\n%s", f.log)
			}
		})
	}
}

// TestFollowerReportsKeysRevokedInASnapshot: a snapshot that replaces
// the set reports the keys it revokes that the set did not hold.
func TestFollowerReportsKeysRevokedInASnapshot(t *testing.T) {
	t.Run(ModeStream, func(t *testing.T) {
		feed := newFakeFeed(t)
		feed.add(KindKey, "k0")
		feed.add(KindSession, "s1")
		gate := make(chan struct{})
		feed.set(func(f *fakeFeed) { f.gate = gate })
		var keys keyLog
		f := newTestFollower(t, feed, true, FollowerOptions{OnKeyRevoked: keys.revoked})
		f.start(t)
		// Pruned before the stream starts: it must begin with a
		// snapshot of k0, k1 and k2.
		feed.add(KindSession, "s2")
		feed.add(KindKey, "k1", "k2")
		feed.add(KindKey, "k0")
		feed.prune(3)
		close(gate)
		feedEventually(t, "the snapshot is applied", func() bool { return f.Status().Cursor == 6 })
		if got, want := keys.sorted(), []string{"k1", "k2"}; !slices.Equal(got, want) {
			t.Errorf("OnKeyRevoked got %q, want %q", got, want)
		}
	})
	t.Run(ModeLongPoll, func(t *testing.T) {
		feed := newFakeFeed(t)
		feed.add(KindKey, "k0")
		var keys keyLog
		f := newTestFollower(t, feed, false, FollowerOptions{OnKeyRevoked: keys.revoked})
		f.start(t)
		// Entries the follower misses (pruned before it polls): its next
		// poll is a snapshot.
		feed.mu.Lock()
		feed.entries = append(feed.entries, entry(2, KindSession, "s1"), entry(3, KindKey, "k1"), entry(4, KindKey, "k0"))
		feed.last = 4
		feed.entries = feed.entries[2:] // k0 and s1, unseen
		close(feed.changed)
		feed.changed = make(chan struct{})
		feed.mu.Unlock()
		feedEventually(t, "the snapshot is applied", func() bool { return f.Status().Cursor == 4 })
		if got, want := keys.sorted(), []string{"k1"}; !slices.Equal(got, want) {
			t.Errorf("OnKeyRevoked got %q, want %q", got, want)
		}
	})
}
