package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/metrics"
)

var _ FeedMetrics = (*metrics.Metrics)(nil)

// scrapeMetrics returns m's exposition text.
func scrapeMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(w.Body)
	return string(b)
}

// waitForLine waits up to 30 s (for a busy machine) for m's exposition to
// hold the line.
func waitForLine(t *testing.T, m *metrics.Metrics, line string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		text := scrapeMetrics(t, m)
		if strings.Contains(text, "\n"+line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q; last scrape:\n%s", line, grepLines(text, "keycard_revocation_feed"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for l := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestFeedMetrics(t *testing.T) {
	m := metrics.New(metrics.Options{})
	f := newFixture(t, fixtureOptions{metrics: m})
	c := f.newClient(t, nil, nil)
	f.register(t, "alice", testPassword)
	tok1 := f.login(t, "alice", testPassword)
	tok2 := f.login(t, "alice", testPassword)
	after := f.lastSeq(t, c)
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="long_poll"} 0`)

	// A long-poll is a subscriber while it waits; woken at once, its
	// delivery has no lag.
	done := make(chan feedResponse, 1)
	go func() { done <- f.feed(t, c, "wait=30s&after="+strconv.FormatInt(after, 10)) }()
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="long_poll"} 1`)
	f.send(t, http.MethodPost, "/v1/logout", tok1.AccessToken)
	select {
	case page := <-done:
		if len(page.Entries) == 0 {
			t.Fatalf("long-poll answered %+v, want the logout", page)
		}
		after = page.Next
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not wake")
	}
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="long_poll"} 0`)
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_count{kind="long_poll"} 1`)
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_bucket{kind="long_poll",le="0.005"} 1`)

	// A reader polling 20 s after a revocation gets it 20 s late.
	f.send(t, http.MethodPost, "/v1/logout", tok2.AccessToken)
	f.clock.Advance(20 * time.Second)
	page := f.feed(t, c, "after="+strconv.FormatInt(after, 10))
	if len(page.Entries) == 0 {
		t.Fatalf("poll answered %+v, want the second logout", page)
	}
	after = page.Next
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_sum{kind="poll"} 20`)
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_bucket{kind="poll",le="15"} 0`)
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_bucket{kind="poll",le="30"} 1`)
	// An empty answer is no delivery.
	f.feed(t, c, "after="+strconv.FormatInt(after, 10))
	f.feed(t, c, "after=999999") // a snapshot: not observed either
	waitForLine(t, m, `keycard_revocation_feed_lag_seconds_count{kind="poll"} 1`)

	// A stream is a subscriber until it ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"/v1/revocations/stream?after="+strconv.FormatInt(after, 10), nil)
	req.Header.Set("Authorization", basic(c.id, c.secret))
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="stream"} 1`)
	f.server.StopFeeds()
	waitForLine(t, m, `keycard_revocation_feed_subscribers{kind="stream"} 0`)
}
