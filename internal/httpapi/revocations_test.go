package httpapi

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/metrics"
)

// feed reads GET /v1/revocations?<query> as the reader c.
func (f *fixture) feed(t testing.TB, c serviceClient, query string) feedResponse {
	t.Helper()
	res := f.do(t, request{method: http.MethodGet, path: "/v1/revocations?" + query, header: http.Header{"Authorization": {basic(c.id, c.secret)}}})
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/revocations?%s: status %d, body %s", query, res.status, res.body)
	}
	var out feedResponse
	res.decode(t, &out)
	return out
}

// hasEntry reports whether the page holds an entry of the kind and value.
func hasEntry(p feedResponse, kind keycard.RevocationKind, value string) bool {
	for _, e := range p.Entries {
		if e.Kind == string(kind) && e.Value == value {
			return true
		}
	}
	return false
}

// lastSeq returns the feed's current cursor.
func (f *fixture) lastSeq(t testing.TB, c serviceClient) int64 {
	t.Helper()
	return f.feed(t, c, "after=0").Next
}

// kidOf returns the kid in a JWS header.
func kidOf(t testing.TB, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if err := json.Unmarshal(b, &hdr); err != nil {
		t.Fatal(err)
	}
	return hdr.KID
}

func TestFeedNeedsAServiceClient(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	for _, path := range []string{"/v1/revocations", "/v1/revocations/stream"} {
		tests := []struct {
			name   string
			header http.Header
		}{
			{"no credentials", nil},
			{"wrong secret", http.Header{"Authorization": {basic(c.id, c.secret+"x")}}},
			{"unknown client", http.Header{"Authorization": {basic("nobody", c.secret)}}},
			{"a user's access token", http.Header{"Authorization": {"Bearer " + tok.AccessToken}}},
		}
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				res := f.do(t, request{method: http.MethodGet, path: path, header: tt.header})
				res.wantError(t, http.StatusUnauthorized, codeInvalidClient)
				if got := res.header.Get("WWW-Authenticate"); got != basicChallenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, basicChallenge)
				}
			})
		}
	}
}

func TestFeedBadInput(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	auth := http.Header{"Authorization": {basic(c.id, c.secret)}}
	tests := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"negative after", "/v1/revocations?after=-1", nil},
		{"word after", "/v1/revocations?after=abc", nil},
		{"huge after", "/v1/revocations?after=99999999999999999999999", nil},
		{"after twice", "/v1/revocations?after=1&after=2", nil},
		{"unknown parameter", "/v1/revocations?since=1", nil},
		{"malformed query", "/v1/revocations?after=%zz", nil},
		{"bad wait", "/v1/revocations?wait=soon", nil},
		{"negative wait", "/v1/revocations?wait=-1s", nil},
		{"wait too long", "/v1/revocations?wait=61s", nil},
		{"wait too many seconds", "/v1/revocations?wait=3600", nil},
		{"stream: bad after", "/v1/revocations/stream?after=x", nil},
		{"stream: wait", "/v1/revocations/stream?wait=1s", nil},
		{"stream: bad Last-Event-ID", "/v1/revocations/stream", http.Header{"Last-Event-ID": {"seven"}}},
		{"stream: two Last-Event-IDs", "/v1/revocations/stream", http.Header{"Last-Event-ID": {"1", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := auth.Clone()
			for k, v := range tt.header {
				h[k] = v
			}
			f.do(t, request{method: http.MethodGet, path: tt.path, header: h}).wantError(t, http.StatusBadRequest, codeInvalidRequest)
		})
	}
	// Whole seconds are a wait too.
	if got := f.feed(t, c, "after=0&wait=0"); len(got.Entries) != 0 || got.Next != 0 || got.Snapshot {
		t.Errorf("empty feed: %+v", got)
	}
}

// Every revocation is in the feed before the request that caused it is
// answered: the feed is read right after each response.
func TestRevocationsReachTheFeedInTheSameRequest(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	aliceID := f.register(t, "alice", testPassword)

	tok := f.login(t, "alice", testPassword)
	if res := f.send(t, http.MethodPost, "/v1/logout", tok.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("logout: status %d", res.status)
	}
	if page := f.feed(t, c, "after=0"); !hasEntry(page, keycard.RevokeSession, tok.SessionID) {
		t.Errorf("feed after logout: %+v, want session %s", page, tok.SessionID)
	}

	a, b := f.login(t, "alice", testPassword), f.login(t, "alice", testPassword)
	after := f.lastSeq(t, c)
	if res := f.send(t, http.MethodDelete, "/v1/sessions/"+b.SessionID, a.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("DELETE session: status %d", res.status)
	}
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeSession, b.SessionID) {
		t.Errorf("feed after DELETE /v1/sessions/{id}: %+v, want session %s", page, b.SessionID)
	}

	after = f.lastSeq(t, c)
	if res := f.send(t, http.MethodPost, "/v1/logout/all", a.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("logout/all: status %d", res.status)
	}
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeSession, a.SessionID) {
		t.Errorf("feed after logout/all: %+v, want session %s", page, a.SessionID)
	}

	// Theft: a rotated refresh token presented after the grace window.
	d := f.login(t, "alice", testPassword)
	if res := f.refresh(t, d.RefreshToken); res.status != http.StatusOK {
		t.Fatalf("refresh: status %d", res.status)
	}
	f.clock.Advance(time.Minute)
	after = f.lastSeq(t, c)
	f.refresh(t, d.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeSession, d.SessionID) {
		t.Errorf("feed after refresh-token reuse: %+v, want session %s", page, d.SessionID)
	}

	// Password change: the other sessions and the user's cut-off.
	e, g := f.login(t, "alice", testPassword), f.login(t, "alice", testPassword)
	after = f.lastSeq(t, c)
	res := f.postJSON(t, "/v1/password", e.AccessToken, `{"current_password":"`+testPassword+`","new_password":"tr0ub4dor & 3 staples"}`)
	if res.status != http.StatusNoContent {
		t.Fatalf("password change: status %d", res.status)
	}
	page := f.feed(t, c, "after="+strconv.FormatInt(after, 10))
	if !hasEntry(page, keycard.RevokeSession, g.SessionID) || !hasEntry(page, keycard.RevokeUser, aliceID) {
		t.Errorf("feed after password change: %+v, want session %s and user %s", page, g.SessionID, aliceID)
	}
	for _, e := range page.Entries {
		if e.Kind == string(keycard.RevokeUser) && !e.ExpiresAt.Equal(e.At.Add(keycard.DefaultRevocationTTL)) {
			t.Errorf("cut-off %+v: expires_at want at + %v", e, keycard.DefaultRevocationTTL)
		}
	}

	// RFC 7009 revocation of a refresh token.
	h := f.login(t, "alice", "tr0ub4dor & 3 staples")
	after = f.lastSeq(t, c)
	if res := f.postClient(t, "/oauth/revoke", c, "token="+h.RefreshToken); res.status != http.StatusOK {
		t.Fatalf("/oauth/revoke: status %d", res.status)
	}
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeSession, h.SessionID) {
		t.Errorf("feed after /oauth/revoke: %+v, want session %s", page, h.SessionID)
	}
}

func TestFeedLongPollWakesOnRevocation(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	tok := f.login(t, "alice", testPassword)
	after := f.lastSeq(t, c)

	type result struct {
		page feedResponse
		at   time.Time
	}
	done := make(chan result, 1)
	started := time.Now()
	go func() {
		req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/revocations?wait=30s&after="+strconv.FormatInt(after, 10), nil)
		req.Header.Set("Authorization", basic(c.id, c.secret))
		res, err := f.client.Do(req)
		if err != nil {
			done <- result{}
			return
		}
		defer res.Body.Close()
		var page feedResponse
		json.NewDecoder(res.Body).Decode(&page)
		done <- result{page, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // let the poll start waiting
	select {
	case r := <-done:
		t.Fatalf("long-poll answered before any revocation: %+v", r.page)
	default:
	}
	if res := f.send(t, http.MethodPost, "/v1/logout", tok.AccessToken); res.status != http.StatusNoContent {
		t.Fatalf("logout: status %d", res.status)
	}
	revoked := time.Now()
	select {
	case r := <-done:
		if !hasEntry(r.page, keycard.RevokeSession, tok.SessionID) {
			t.Errorf("long-poll answer %+v, want session %s", r.page, tok.SessionID)
		}
		// The feed promises well under 100 ms, but a loaded machine can
		// take longer: reported, not asserted. A poll that was not woken
		// would answer after its 30 s wait, past the 10 s below.
		t.Logf("long-poll woke %v after the logout answered", r.at.Sub(revoked))
	case <-time.After(10 * time.Second):
		t.Fatalf("long-poll did not wake within 10s of the logout (started %v ago)", time.Since(started))
	}
}

func TestFeedLongPollTimesOutEmpty(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	start := time.Now()
	page := f.feed(t, c, "after=0&wait=1")
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("wait=1 answered after %v, want about 1s", d)
	}
	if len(page.Entries) != 0 || page.Next != 0 || page.Snapshot {
		t.Errorf("timed-out poll: %+v, want empty with next 0", page)
	}
}

// The http.Server's read and write timeouts do not cut a long-poll or a
// stream short: the handlers extend their own deadlines.
func TestFeedOutlivesServerTimeouts(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	ts := httptest.NewUnstartedServer(f.server)
	ts.Config.ReadTimeout = 200 * time.Millisecond
	ts.Config.WriteTimeout = 200 * time.Millisecond
	ts.Start()
	defer ts.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1/revocations?after=0&wait=1s", nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("long-poll past the server's timeouts: %v", err)
	}
	defer res.Body.Close()
	var page feedResponse
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("long-poll past the server's timeouts: status %d, %v", res.StatusCode, err)
	}
}

func TestFeedLongPollEndsOnShutdown(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	done := make(chan feedResponse, 1)
	go func() { done <- f.feed(t, c, "after=0&wait=30s") }()
	time.Sleep(200 * time.Millisecond)
	f.server.StopFeeds()
	f.server.StopFeeds() // twice is fine
	select {
	case page := <-done:
		if len(page.Entries) != 0 {
			t.Errorf("page at shutdown: %+v, want empty", page)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll still running 10s after StopFeeds")
	}
}

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

// readEvents reads events (skipping comments) from a stream into a channel
// until it ends.
func readEvents(body *bufio.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		var ev sseEvent
		for {
			line, err := body.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			default:
				name, value, _ := strings.Cut(line, ": ")
				switch name {
				case "id":
					ev.id = value
				case "event":
					ev.event = value
				case "data":
					ev.data = value
				}
			}
		}
	}()
	return ch
}

func TestFeedStream(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	first, tok := f.login(t, "alice", testPassword), f.login(t, "alice", testPassword)
	if res := f.send(t, http.MethodPost, "/v1/logout", first.AccessToken); res.status != http.StatusNoContent {
		t.Fatal("logout failed")
	}
	seq := f.lastSeq(t, c)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/v1/revocations/stream", nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	req.Header.Set("Last-Event-ID", strconv.FormatInt(seq, 10)) // resume after the first logout
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: status %d, Content-Type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := readEvents(bufio.NewReader(res.Body))
	if res := f.send(t, http.MethodPost, "/v1/logout", tok.AccessToken); res.status != http.StatusNoContent {
		t.Fatal("logout failed")
	}
	select {
	case ev := <-events:
		var e feedEntry
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatalf("event data %q: %v", ev.data, err)
		}
		if ev.event != "revocation" || ev.id != strconv.FormatInt(seq+1, 10) || e.Kind != string(keycard.RevokeSession) || e.Value != tok.SessionID || e.Seq != seq+1 {
			t.Errorf("event %+v, want revocation %d of session %s", ev, seq+1, tok.SessionID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s of the logout")
	}
	// The stream ends when the server shuts down.
	f.server.StopFeeds()
	select {
	case _, open := <-events:
		if open {
			t.Error("unexpected event after StopFeeds")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open 10s after StopFeeds")
	}
}

func TestFeedSnapshotAfterCompaction(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	store := f.stores.Revocations
	now := f.clock.Now()
	add := func(value string, expires time.Time) *keycard.Revocation {
		r := &keycard.Revocation{Kind: keycard.RevokeToken, Value: value, At: now, ExpiresAt: expires}
		if err := store.AddRevocation(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	add("old-1", now.Add(time.Minute))
	old2 := add("old-2", now.Add(time.Minute))
	live := add("live", now.Add(time.Hour))
	if n, err := store.PruneRevocations(context.Background(), now.Add(2*time.Minute)); err != nil || n != 2 {
		t.Fatalf("PruneRevocations = %d, %v", n, err)
	}
	page := f.feed(t, c, "after=0")
	if !page.Snapshot || len(page.Entries) != 1 || page.Entries[0].Value != "live" || page.Next != live.Seq {
		t.Errorf("feed from a compacted cursor: %+v, want a snapshot of %q", page, "live")
	}
	// A cursor right before the oldest entry kept missed nothing.
	page = f.feed(t, c, "after="+strconv.FormatInt(old2.Seq, 10))
	if page.Snapshot || len(page.Entries) != 1 {
		t.Errorf("feed from the last pruned seq: %+v, want the entry, no snapshot", page)
	}
	// A stream from a compacted cursor starts with a snapshot event.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/v1/revocations/stream?after=1", nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	events := readEvents(bufio.NewReader(res.Body))
	for i, want := range []string{"snapshot", "revocation"} {
		select {
		case ev := <-events:
			if ev.event != want {
				t.Errorf("event %d: %+v, want %s", i, ev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d: none within 10s", i)
		}
	}
}

// newAdmin creates a user with the admin role and logs it in.
func (f *fixture) newAdmin(t testing.TB) tokenResponse {
	t.Helper()
	if _, err := f.svc.Register(context.Background(), "root", testPassword, []string{auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	return f.login(t, "root", testPassword)
}

func TestRevokeAll(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	admin := f.newAdmin(t)
	f.register(t, "alice", testPassword)
	f.register(t, "bob", testPassword)
	sessions := []tokenResponse{f.login(t, "alice", testPassword), f.login(t, "alice", testPassword), f.login(t, "bob", testPassword)}

	f.send(t, http.MethodPost, "/admin/v1/revoke-all", sessions[0].AccessToken).wantError(t, http.StatusForbidden, codeInsufficientRole)
	f.send(t, http.MethodPost, "/admin/v1/revoke-all", "").wantError(t, http.StatusUnauthorized, codeUnauthorized)

	after := f.lastSeq(t, c)
	res := f.send(t, http.MethodPost, "/admin/v1/revoke-all", admin.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("revoke-all: status %d, body %s", res.status, res.body)
	}
	var out struct {
		SessionsRevoked int64 `json:"sessions_revoked"`
	}
	res.decode(t, &out)
	if out.SessionsRevoked != 4 { // three users' sessions and the admin's own
		t.Errorf("sessions_revoked %d, want 4", out.SessionsRevoked)
	}
	page := f.feed(t, c, "after="+strconv.FormatInt(after, 10))
	if !hasEntry(page, keycard.RevokeAllUsers, "") {
		t.Errorf("feed after revoke-all: %+v, want a global cut-off", page)
	}
	for _, s := range append(sessions, admin) {
		f.refresh(t, s.RefreshToken).wantError(t, http.StatusBadRequest, codeInvalidGrant)
		f.send(t, http.MethodGet, "/v1/me", s.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	}
	// Logging in again works.
	f.login(t, "alice", testPassword)
}

func TestRevokeKey(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	admin := f.newAdmin(t)
	f.register(t, "alice", testPassword)
	alice := f.login(t, "alice", testPassword)
	oldKID := kidOf(t, alice.AccessToken)

	f.send(t, http.MethodPost, "/admin/v1/keys/"+oldKID+"/revoke", alice.AccessToken).wantError(t, http.StatusForbidden, codeInsufficientRole)
	f.send(t, http.MethodPost, "/admin/v1/keys/no-such-kid/revoke", admin.AccessToken).wantError(t, http.StatusNotFound, codeNotFound)

	after := f.lastSeq(t, c)
	res := f.send(t, http.MethodPost, "/admin/v1/keys/"+oldKID+"/revoke", admin.AccessToken)
	if res.status != http.StatusOK {
		t.Fatalf("key revoke: status %d, body %s", res.status, res.body)
	}
	var out struct {
		RevokedKID string `json:"revoked_kid"`
		ActiveKID  string `json:"active_kid"`
	}
	res.decode(t, &out)
	if out.RevokedKID != oldKID || out.ActiveKID == "" || out.ActiveKID == oldKID {
		t.Errorf("key revoke answered %+v, want a new active kid", out)
	}
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeKey, oldKID) {
		t.Errorf("feed after key revoke: %+v, want kid %s", page, oldKID)
	}
	jwks := f.send(t, http.MethodGet, "/.well-known/jwks.json", "")
	if strings.Contains(string(jwks.body), oldKID) || !strings.Contains(string(jwks.body), out.ActiveKID) {
		t.Errorf("JWKS after key revoke: %s, want %s gone and %s in", jwks.body, oldKID, out.ActiveKID)
	}
	// The old key's tokens are refused at once, the admin's own included.
	f.send(t, http.MethodGet, "/v1/me", alice.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	f.send(t, http.MethodGet, "/v1/me", admin.AccessToken).wantError(t, http.StatusUnauthorized, codeInvalidToken)
	// New tokens are signed by the new key and accepted.
	again := f.login(t, "alice", testPassword)
	if kid := kidOf(t, again.AccessToken); kid != out.ActiveKID {
		t.Errorf("new token kid %s, want %s", kid, out.ActiveKID)
	}
	if res := f.send(t, http.MethodGet, "/v1/me", again.AccessToken); res.status != http.StatusOK {
		t.Errorf("/v1/me with a new token: status %d", res.status)
	}
}

// The admin API's revocations are in the feed before their answers.
func TestAdminRevocationsReachTheFeed(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	admin := f.newAdmin(t)
	aliceID := f.register(t, "alice", testPassword)
	a, b := f.login(t, "alice", testPassword), f.login(t, "alice", testPassword)

	after := f.lastSeq(t, c)
	if res := f.send(t, http.MethodDelete, "/admin/v1/users/"+aliceID+"/sessions/"+a.SessionID, admin.AccessToken); res.status/100 != 2 {
		t.Fatalf("admin session revoke: status %d, body %s", res.status, res.body)
	}
	if page := f.feed(t, c, "after="+strconv.FormatInt(after, 10)); !hasEntry(page, keycard.RevokeSession, a.SessionID) {
		t.Errorf("feed after admin session revoke: %+v, want session %s", page, a.SessionID)
	}

	after = f.lastSeq(t, c)
	if res := f.send(t, http.MethodPost, "/admin/v1/users/"+aliceID+"/disable", admin.AccessToken); res.status/100 != 2 {
		t.Fatalf("admin disable: status %d, body %s", res.status, res.body)
	}
	page := f.feed(t, c, "after="+strconv.FormatInt(after, 10))
	if !hasEntry(page, keycard.RevokeSession, b.SessionID) || !hasEntry(page, keycard.RevokeUser, aliceID) {
		t.Errorf("feed after disabling the user: %+v, want session %s and the cut-off of %s", page, b.SessionID, aliceID)
	}
}

// A long-poll whose client goes away stops waiting.
func TestFeedLongPollEndsWhenTheClientLeaves(t *testing.T) {
	m := metrics.New(metrics.Options{})
	f := newFixture(t, fixtureOptions{metrics: m})
	c := f.newClient(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/revocations?after=0&wait=60s", nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		f.server.ServeHTTP(rec, req)
		close(done)
	}()
	// Leave once the poll is counted as waiting, which is after its
	// client is authenticated: a client gone before that gets the
	// failed authentication's answer. (A fixed sleep here lost that
	// race on a busy machine.)
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="long_poll"} 1`)
	cancel()
	select {
	case <-done:
		if rec.Body.Len() != 0 {
			t.Errorf("answer to a departed client: %q, want nothing", rec.Body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll still waiting 10s after its client left")
	}
}

// TestStreamSnapshotSpansPages: a snapshot larger than a page announces
// where it ends ("next" is the feed's last seq, not the first page's), so
// a follower swaps its set only once it holds every page.
func TestStreamSnapshotSpansPages(t *testing.T) {
	f := newFixture(t)
	c := f.newClient(t, nil, nil)
	store := f.stores.Revocations
	now := f.clock.Now()
	var last int64
	for i := range auth.FeedPageSize + 5 {
		expires := now.Add(time.Hour)
		if i == 0 {
			expires = now.Add(time.Minute) // pruned below, so after=0 is a snapshot
		}
		r := &keycard.Revocation{Kind: keycard.RevokeToken, Value: "t" + strconv.Itoa(i), At: now, ExpiresAt: expires}
		if err := store.AddRevocation(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		last = r.Seq
	}
	if _, err := store.PruneRevocations(context.Background(), now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/v1/revocations/stream?after=0", nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	select {
	case ev := <-readEvents(bufio.NewReader(res.Body)):
		if ev.event != "snapshot" || ev.data != fmt.Sprintf(`{"next":%d}`, last) {
			t.Errorf("first event %+v, want a snapshot ending at %d", ev, last)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
}
