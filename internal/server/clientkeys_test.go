package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
	"github.com/keycard-auth/keycard/jwt"
)

// testClock is a settable clock.
type testClock struct{ t atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.t.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *testClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// jwksServer serves the public JWK Set of keys, which the test may
// change, counting the requests; cacheControl, when set, is sent.
type jwksServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []*jose.Key
	cacheControl string
	hits         atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...*jose.Key) *jwksServer {
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		var pubs []*jose.Key
		for _, k := range s.keys {
			pubs = append(pubs, k.Public())
		}
		cc := s.cacheControl
		s.mu.Unlock()
		set, _ := jose.NewKeySet(pubs...)
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...*jose.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func newKey(t *testing.T, kid string) *jose.Key {
	t.Helper()
	k, err := jose.GenerateKey(jose.ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if k, err = k.WithKeyID(kid); err != nil {
		t.Fatal(err)
	}
	return k
}

func testKeySets(clk *testClock) *clientKeySets {
	c := newClientKeySets(slog.New(slog.DiscardHandler))
	c.now = clk.Now
	return c
}

// TestClientKeySetsCache: a set is fetched once and then served from the
// cache for its Cache-Control lifetime; a refresh fetches again at most
// once per clientKeysMinInterval; a failed fetch keeps the set before.
func TestClientKeySetsCache(t *testing.T) {
	ctx := context.Background()
	clk := newTestClock()
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	srv := newJWKSServer(t, k1)
	srv.cacheControl = "public, max-age=120"
	c := testKeySets(clk)

	set, err := c.KeySet(ctx, srv.URL, false)
	if err != nil || set.Lookup("k1") == nil {
		t.Fatalf("first KeySet: %v, %v", set, err)
	}
	if _, err := c.KeySet(ctx, srv.URL, false); err != nil || srv.hits.Load() != 1 {
		t.Errorf("a second KeySet: %v, %d fetches; want the cached set, 1 fetch", err, srv.hits.Load())
	}
	// A refresh right after a fetch is refused: unknown kids cannot make
	// the server fetch at will.
	srv.set(k1, k2)
	for range 5 {
		if set, _ := c.KeySet(ctx, srv.URL, true); set.Lookup("k2") != nil || srv.hits.Load() != 1 {
			t.Fatalf("a refresh within the minimum interval fetched (%d fetches)", srv.hits.Load())
		}
	}
	clk.Advance(clientKeysMinInterval)
	if set, err := c.KeySet(ctx, srv.URL, true); err != nil || set.Lookup("k2") == nil || srv.hits.Load() != 2 {
		t.Errorf("a refresh after the minimum interval: %v, %d fetches; want the new key, 2 fetches", err, srv.hits.Load())
	}
	// Fresh for max-age=120 from the last fetch, then fetched again.
	clk.Advance(119 * time.Second)
	c.KeySet(ctx, srv.URL, false)
	if srv.hits.Load() != 2 {
		t.Errorf("within max-age: %d fetches, want 2", srv.hits.Load())
	}
	clk.Advance(time.Second)
	c.KeySet(ctx, srv.URL, false)
	if srv.hits.Load() != 3 {
		t.Errorf("at max-age: %d fetches, want 3", srv.hits.Load())
	}
	// The server goes away: the set fetched before is kept.
	srv.Close()
	clk.Advance(clientKeysMaxTTL)
	if set, err := c.KeySet(ctx, srv.URL, false); err != nil || set.Lookup("k2") == nil {
		t.Errorf("keys unreachable: %v, %v; want the set fetched before", set, err)
	}
}

// TestClientKeySetsConcurrent: requests for one URI at once share one
// fetch.
func TestClientKeySetsConcurrent(t *testing.T) {
	clk := newTestClock()
	k1 := newKey(t, "k1")
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		set, _ := jose.NewKeySet(k1.Public())
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	c := testKeySets(clk)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			set, err := c.KeySet(context.Background(), srv.URL, true)
			if err == nil && set.Lookup("k1") == nil {
				err = fmt.Errorf("no k1 in %v", set)
			}
			errs <- err
		})
	}
	// Let the first fetch reach the server before it answers.
	deadline := time.Now().Add(30 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := hits.Load(); got != 1 {
		t.Errorf("%d concurrent requests made %d fetches, want 1", n, got)
	}
}

// TestClientKeySetsRefusals: what the fetcher refuses — a URI it must not
// fetch, a redirect, a huge body, a slow server, an error status, no
// usable key — each an error, with no set.
func TestClientKeySetsRefusals(t *testing.T) {
	var redirected atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		set, _ := jose.NewKeySet(newKey(t, "k1").Public())
		json.NewEncoder(w).Encode(set)
	}))
	defer target.Close()
	stop := make(chan struct{})
	defer close(stop)
	huge := `{"keys":[` + strings.Repeat(" ", clientKeysMaxBytes) + `]}`
	mux := http.NewServeMux()
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, huge) })
	mux.HandleFunc("/huge-chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Transfer-Encoding", "chunked")
		for i := 0; i < len(huge); i += 4096 {
			io.WriteString(w, huge[i:min(i+4096, len(huge))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select { // answers after the client gave up, or never
		case <-r.Context().Done():
		case <-stop:
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"keys":[`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	mux.HandleFunc("/hmac", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"keys":[{"kty":"oct","alg":"HS256","kid":"k1","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}`)
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>") })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tt := range []struct {
		name, uri string
	}{
		{"http on another host", "http://jwks.example/keys"},
		{"another scheme", "ftp://127.0.0.1/keys"},
		{"not absolute", "/keys"},
		{"user info", "https://user:pass@jwks.example/keys"},
		{"a redirect", srv.URL + "/redirect"},
		{"a huge body", srv.URL + "/huge"},
		{"a huge chunked body", srv.URL + "/huge-chunked"},
		{"a slow answer", srv.URL + "/slow"},
		{"a slow body", srv.URL + "/slow-body"},
		{"an error status", srv.URL + "/status"},
		{"only an HMAC key", srv.URL + "/hmac"},
		{"not JSON", srv.URL + "/html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testKeySets(newTestClock())
			c.client.Timeout = 500 * time.Millisecond // the slow ones end here; nothing measures it
			set, err := c.KeySet(context.Background(), tt.uri, false)
			if err == nil {
				t.Errorf("KeySet(%s) = %v, nil; want an error", tt.uri, set)
			}
		})
	}
	if redirected.Load() != 0 {
		t.Errorf("the redirect was followed %d times", redirected.Load())
	}
}

func TestCacheLifetime(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		want  time.Duration
	}{
		{"none", nil, clientKeysDefaultTTL},
		{"max-age", []string{"public, max-age=600"}, 10 * time.Minute},
		{"max-age quoted", []string{`max-age="600"`}, 10 * time.Minute},
		{"max-age below the minimum", []string{"max-age=5"}, clientKeysMinTTL},
		{"max-age zero", []string{"max-age=0"}, clientKeysMinTTL},
		{"max-age above the maximum", []string{"max-age=31536000"}, clientKeysMaxTTL},
		{"max-age overflowing", []string{"max-age=99999999999999999999999"}, clientKeysMaxTTL},
		{"max-age negative", []string{"max-age=-1"}, clientKeysDefaultTTL},
		{"max-age junk", []string{"max-age=soon"}, clientKeysDefaultTTL},
		{"no-store", []string{"no-store"}, clientKeysMinTTL},
		{"no-cache after max-age", []string{"max-age=600", "No-Cache"}, clientKeysMinTTL},
	} {
		if got := cacheLifetime(tt.lines); got != tt.want {
			t.Errorf("%s: cacheLifetime(%q) = %v, want %v", tt.name, tt.lines, got, tt.want)
		}
	}
}

// TestPrivateKeyJWTJWKSURI is the auth server end to end: a client whose
// keys are at a JWKS URI gets a client_credentials token with an
// assertion, and one signed with a new key once the URI serves it; an
// assertion with an unknown kid is refused, whatever the URI does — answer
// slowly, redirect, send a huge body — and the server stays up.
func TestPrivateKeyJWTJWKSURI(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	ts := httptest.NewUnstartedServer(nil)
	cfg.Issuer = "http://" + ts.Listener.Addr().String()
	a, err := Open(ctx, cfg, Options{Keys: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.clientKeys.client.Timeout = time.Second // the slow URI ends here; nothing measures it
	clk := newTestClock()
	a.clientKeys.now = clk.Now
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h
	ts.Start()
	defer ts.Close()
	defer h.StopFeeds()

	register := func(uri string) string {
		c, _, err := a.Service().CreateClient(ctx, auth.Operator(), auth.ClientSpec{Name: "keyed", OAuth: keycard.OAuthSettings{
			TokenAuthMethod: keycard.AuthPrivateKeyJWT, JWKSURI: uri,
		}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	token := func(id string, key *jose.Key) int {
		jti, _ := keycard.NewID(rand.Reader)
		now := time.Now()
		assertion, err := jwt.Sign(key, jwt.MapClaims{"iss": id, "sub": id, "aud": cfg.Issuer + "/oauth/token", "jti": jti,
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}, jwt.WithKeyID(key.KeyID()))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.PostForm(cfg.Issuer+"/oauth/token", url.Values{"grant_type": {"client_credentials"},
			"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}

	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	keys := newJWKSServer(t, k1)
	good := register(keys.URL)
	if got := token(good, k1); got != http.StatusOK {
		t.Fatalf("an assertion of the published key: %d, want 200", got)
	}
	if got := token(good, k2); got != http.StatusUnauthorized {
		t.Errorf("an assertion of a key not published yet: %d, want 401", got)
	}
	// The client publishes its new key: found by the refetch of an
	// unknown kid, once the minimum interval has passed.
	keys.set(k1, k2)
	clk.Advance(clientKeysMinInterval)
	if got := token(good, k2); got != http.StatusOK {
		t.Errorf("an assertion of the key published since: %d, want 200", got)
	}

	stop := make(chan struct{})
	defer close(stop)
	bad := http.NewServeMux()
	bad.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	bad.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, keys.URL, http.StatusFound) })
	bad.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"keys":[`+strings.Repeat(" ", 2*clientKeysMaxBytes)+`]}`)
	})
	badSrv := httptest.NewServer(bad)
	defer badSrv.Close()
	for _, path := range []string{"/slow", "/redirect", "/huge"} {
		id := register(badSrv.URL + path)
		if got := token(id, k1); got != http.StatusUnauthorized {
			t.Errorf("keys at %s: %d, want 401", path, got)
		}
	}
	// The server still answers, and the good client still gets tokens.
	if got := token(good, k1); got != http.StatusOK {
		t.Errorf("after the bad URIs: %d, want 200", got)
	}
}
