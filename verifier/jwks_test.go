package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/authtest"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/jose"
)

// jwksClock is a settable clock for Options.Now.
type jwksClock struct{ t atomic.Int64 }

func newJWKSClock() *jwksClock {
	c := &jwksClock{}
	c.t.Store(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *jwksClock) Now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *jwksClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

// jwksLog is a bytes.Buffer safe for a logger's concurrent writes.
type jwksLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *jwksLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *jwksLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jwksResponse is what a jwksServer answers.
type jwksResponse struct {
	status       int // 0: 200
	contentType  string
	cacheControl string
	body         []byte
	block        chan struct{} // when not nil, the handler waits for it (or the request's end)
}

// jwksServer is a JWKS endpoint whose answer the test sets, counting
// the requests it receives.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64
	resp     atomic.Pointer[jwksResponse]
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(jwksResponse{body: body})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		resp := s.resp.Load()
		if resp.block != nil {
			select {
			case <-resp.block:
			case <-r.Context().Done():
				return
			}
		}
		ct := resp.contentType
		if ct == "" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		if resp.cacheControl != "" {
			w.Header().Set("Cache-Control", resp.cacheControl)
		}
		if resp.status != 0 {
			w.WriteHeader(resp.status)
		}
		w.Write(resp.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(r jwksResponse) { s.resp.Store(&r) }

// jwksKey generates a private key with a kid.
func jwksKey(t testing.TB, alg jose.Algorithm, kid string) *jose.Key {
	t.Helper()
	k, err := jose.GenerateKey(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "" {
		if k, err = k.WithKeyID(kid); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// jwksDoc returns the public JWK Set of keys, with extra raw JWKs
// appended (for malformed or unsupported keys).
func jwksDoc(t testing.TB, keys []*jose.Key, extra ...string) []byte {
	t.Helper()
	var parts []string
	for _, k := range keys {
		b, err := k.Public().MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, string(b))
	}
	parts = append(parts, extra...)
	return []byte(`{"keys":[` + strings.Join(parts, ",") + `]}`)
}

// startJWKS starts a RemoteKeySet on url with short intervals, closed at
// the end of the test.
func startJWKS(t testing.TB, url string, opt RemoteKeySetOptions) *RemoteKeySet {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := NewRemoteKeySet(url, opt)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// eventually polls cond until it holds, failing the test after a
// generous deadline (a hang, not a slow run, is what it catches).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet are options under which nothing happens in the background
// during a test unless asked for.
func quiet() RemoteKeySetOptions {
	return RemoteKeySetOptions{MinRefresh: time.Hour, MaxRefresh: time.Hour, RefetchInterval: time.Hour, MaxWait: 10 * time.Second}
}

func TestRemoteKeySetResolvesByExactKid(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	b := jwksKey(t, jose.ES256, "b")
	e := jwksKey(t, jose.EdDSA, "e")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a, b, e}))
	opt := quiet()
	opt.MaxWait = time.Millisecond // unknown kids refetch once; no need to wait for it
	s := startJWKS(t, srv.URL, opt)

	tests := []struct {
		name    string
		header  jose.Header
		wantKey *jose.Key
		wantErr error
	}{
		{name: "kid a", header: jose.Header{Algorithm: jose.ES256, KeyID: "a"}, wantKey: a},
		{name: "kid b", header: jose.Header{Algorithm: jose.ES256, KeyID: "b"}, wantKey: b},
		{name: "kid e", header: jose.Header{Algorithm: jose.EdDSA, KeyID: "e"}, wantKey: e},
		{name: "kid in other case", header: jose.Header{Algorithm: jose.ES256, KeyID: "A"}, wantErr: jose.ErrKeyNotFound},
		{name: "kid with suffix", header: jose.Header{Algorithm: jose.ES256, KeyID: "a "}, wantErr: jose.ErrKeyNotFound},
		{name: "unknown kid", header: jose.Header{Algorithm: jose.ES256, KeyID: "zz"}, wantErr: jose.ErrKeyNotFound},
		{name: "alg of another key", header: jose.Header{Algorithm: jose.EdDSA, KeyID: "a"}, wantErr: jose.ErrAlgorithmMismatch},
		{name: "alg none", header: jose.Header{Algorithm: "none", KeyID: "a"}, wantErr: jose.ErrAlgorithmMismatch},
		{name: "no kid, single EdDSA key", header: jose.Header{Algorithm: jose.EdDSA}, wantKey: e},
		{name: "no kid, two ES256 keys", header: jose.Header{Algorithm: jose.ES256}, wantErr: jose.ErrKeyNotFound},
		{name: "no kid, no RS256 key", header: jose.Header{Algorithm: jose.RS256}, wantErr: jose.ErrKeyNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ResolveKey(&tt.header)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != nil {
					t.Fatalf("got %v, %v; want nil, %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.KeyID() != tt.wantKey.KeyID() || got.Thumbprint() != tt.wantKey.Thumbprint() {
				t.Errorf("got key %q, want %q", got.KeyID(), tt.wantKey.KeyID())
			}
		})
	}
	if st := s.Status(); !st.Ready || st.Keys != 3 || st.Skipped != 0 || st.LastError != "" {
		t.Errorf("Status = %+v, want ready with 3 keys", st)
	}
}

// A token signed by a key from the set verifies through the
// RemoteKeySet; one signed by a different key with the same kid does not.
func TestRemoteKeySetVerifiesTokens(t *testing.T) {
	k := jwksKey(t, jose.ES256, "k1")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{k}))
	s := startJWKS(t, srv.URL, quiet())

	token, err := jose.Sign(k, jose.Header{Algorithm: jose.ES256, KeyID: "k1"}, []byte(`{"sub":"u"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jose.Verify(token, s); err != nil {
		t.Errorf("Verify: %v", err)
	}
	impostor := jwksKey(t, jose.ES256, "k1")
	forged, err := jose.Sign(impostor, jose.Header{Algorithm: jose.ES256, KeyID: "k1"}, []byte(`{"sub":"admin"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jose.Verify(forged, s); !errors.Is(err, jose.ErrSignatureInvalid) {
		t.Errorf("Verify(forged) = %v, want ErrSignatureInvalid", err)
	}
}

func TestRemoteKeySetUnknownKidRefetches(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	s := startJWKS(t, srv.URL, quiet())

	// The auth server publishes a new key; a token signed by it arrives
	// before the next scheduled refresh.
	b := jwksKey(t, jose.ES256, "b")
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{a, b})})
	got, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "b"})
	if err != nil {
		t.Fatalf("ResolveKey(new kid): %v", err)
	}
	if got.Thumbprint() != b.Thumbprint() {
		t.Error("got the wrong key for kid b")
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (start and one refetch)", n)
	}
	if st := s.Status(); st.Keys != 2 || st.Fetches != 2 {
		t.Errorf("Status = %+v, want 2 keys after 2 fetches", st)
	}
}

// Callers that meet a new kid while its refetch is under way join that
// refetch and all get the key; the server sees one request.
func TestRemoteKeySetRefetchIsShared(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	s := startJWKS(t, srv.URL, quiet())

	b := jwksKey(t, jose.ES256, "b")
	block := make(chan struct{})
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{a, b}), block: block})
	var wg, started sync.WaitGroup
	resolve := func() {
		defer wg.Done()
		started.Done()
		k, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "b"})
		if err != nil || k.Thumbprint() != b.Thumbprint() {
			t.Errorf("ResolveKey(b) = %v, %v; want key b", k, err)
		}
	}
	wg.Add(1)
	started.Add(1)
	go resolve()
	eventually(t, "the refetch reaches the server", func() bool { return srv.requests.Load() == 2 })
	for range 50 {
		wg.Add(1)
		started.Add(1)
		go resolve()
	}
	started.Wait()
	close(block)
	wg.Wait()
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2 (start and one shared refetch)", n)
	}
}

// A storm of tokens with made-up kids makes at most one fetch per
// RefetchInterval, however many requests carry them.
func TestRemoteKeySetUnknownKidStorm(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	clk := newJWKSClock()
	opt := quiet()
	opt.RefetchInterval = 10 * time.Second
	opt.MaxWait = 100 * time.Millisecond
	opt.Now = clk.Now
	s := startJWKS(t, srv.URL, opt)

	storm := func() {
		var wg sync.WaitGroup
		for range 1000 {
			wg.Go(func() {
				kid := fmt.Sprintf("%016x", rand.Uint64())
				k, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: kid})
				if !errors.Is(err, jose.ErrKeyNotFound) || k != nil {
					t.Errorf("ResolveKey(random kid) = %v, %v; want ErrKeyNotFound", k, err)
				}
			})
		}
		wg.Wait()
	}
	storm()
	// Let a refetch that every caller gave up on finish, so that it is
	// counted here and not in the next round.
	eventually(t, "the refetch completes", func() bool { return int64(s.Status().Fetches) == srv.requests.Load() })
	if n := srv.requests.Load(); n > 2 {
		t.Fatalf("after one storm the server saw %d requests, want at most 2 (start and one refetch)", n)
	}
	clk.Advance(5 * time.Second) // still within the interval
	storm()
	if n := srv.requests.Load(); n > 2 {
		t.Fatalf("a second storm within RefetchInterval made the server see %d requests, want at most 2", n)
	}
	clk.Advance(6 * time.Second) // past the interval: one more refetch allowed
	storm()
	eventually(t, "the refetch completes", func() bool { return int64(s.Status().Fetches) == srv.requests.Load() })
	if n := srv.requests.Load(); n > 3 {
		t.Fatalf("after a storm in the next interval the server saw %d requests, want at most 3", n)
	}
	// The known kid was never disturbed.
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil {
		t.Errorf("ResolveKey(a) after the storms: %v", err)
	}
}

// When the JWKS endpoint hangs, callers with an unknown kid give up
// after MaxWait instead of waiting for the fetch; known kids are not
// affected at all.
func TestRemoteKeySetUnknownKidWaitIsBounded(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	opt := quiet()
	opt.MaxWait = 20 * time.Millisecond
	opt.HTTPClient = &http.Client{} // no timeout: only MaxWait bounds the wait
	s := startJWKS(t, srv.URL, opt)

	block := make(chan struct{})
	defer close(block)
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{a}), block: block})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			_, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: fmt.Sprint("unknown-", i)})
			if !errors.Is(err, jose.ErrKeyNotFound) {
				t.Errorf("ResolveKey(unknown) = %v, want ErrKeyNotFound", err)
			}
		})
	}
	returned := make(chan struct{})
	go func() { wg.Wait(); close(returned) }()
	select {
	case <-returned:
	case <-time.After(20 * time.Second): // a hang, not a slow run
		t.Fatal("callers with unknown kids stalled on a hanging fetch")
	}
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil {
		t.Errorf("ResolveKey(a) while a fetch hangs: %v", err)
	}
}

// A failed fetch of any kind keeps the last good keys, and says why in
// Status and the log without key material.
func TestRemoteKeySetKeepsKeysOnFailure(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	good := jwksDoc(t, []*jose.Key{a})
	x := jwksKey(t, jose.ES256, "x") // key material that must not reach the log
	xPub, _ := x.Public().MarshalJSON()
	var xJWK struct{ X string }
	json.Unmarshal(xPub, &xJWK)

	tests := []struct {
		name    string
		resp    jwksResponse
		timeout bool
		wantErr string
	}{
		{name: "500", resp: jwksResponse{status: 500, body: []byte("oops")}, wantErr: "HTTP status 500"},
		{name: "503", resp: jwksResponse{status: 503, body: good}, wantErr: "HTTP status 503"},
		{name: "404", resp: jwksResponse{status: 404}, wantErr: "HTTP status 404"},
		{name: "redirect loop", resp: jwksResponse{status: 302}, wantErr: "HTTP status 302"},
		{name: "HTML error page", resp: jwksResponse{contentType: "text/html", body: []byte("<html>maintenance</html>")}, wantErr: "not JSON"},
		{name: "garbage", resp: jwksResponse{body: []byte("\x00\x01garbage")}, wantErr: "malformed"},
		{name: "truncated", resp: jwksResponse{body: good[:len(good)/2]}, wantErr: "malformed"},
		{name: "not an object", resp: jwksResponse{body: []byte(`[1,2]`)}, wantErr: "malformed"},
		{name: "no keys member", resp: jwksResponse{body: []byte(`{"kees":[]}`)}, wantErr: "keys"},
		{name: "empty set", resp: jwksResponse{body: []byte(`{"keys":[]}`)}, wantErr: "no usable key"},
		{name: "only bad keys", resp: jwksResponse{body: []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"x","x":"` + xJWK.X + `","y":"AAAA"},{"kty":"nope"}]}`)}, wantErr: "no usable key (2 skipped)"},
		{name: "duplicate kid", resp: jwksResponse{body: jwksDoc(t, []*jose.Key{a, jwksKey(t, jose.ES256, "a")})}, wantErr: "duplicate kid"},
		{name: "duplicate keys member", resp: jwksResponse{body: []byte(`{"keys":[],"keys":` + string(good[8:len(good)-1]) + `}`)}, wantErr: "duplicate"},
		{name: "too large", resp: jwksResponse{body: append(append([]byte(`{"keys":[],"pad":"`), bytes.Repeat([]byte("a"), MaxKeySetSize)...), `"}`...)}, wantErr: "exceeds the limit"},
		{name: "timeout", resp: jwksResponse{block: make(chan struct{})}, timeout: true, wantErr: "Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, good)
			logs := &jwksLog{}
			opt := quiet()
			opt.Logger = slog.New(slog.NewTextHandler(logs, nil))
			opt.HTTPClient = &http.Client{
				Timeout:       2 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			if tt.timeout {
				opt.HTTPClient.Timeout = 20 * time.Millisecond
			}
			s := startJWKS(t, srv.URL, opt)

			srv.set(tt.resp)
			err := s.Refresh(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh = %v, want an error containing %q", err, tt.wantErr)
			}
			if k, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil || k.Thumbprint() != a.Thumbprint() {
				t.Errorf("ResolveKey(a) after a failed fetch = %v, %v; want the last good key", k, err)
			}
			st := s.Status()
			if !st.Ready || st.Keys != 1 || st.Failures != 1 || st.LastError != err.Error() || st.LastErrorAt.IsZero() || st.Fetches != 2 {
				t.Errorf("Status = %+v, want ready, 1 key, 1 failure, LastError %q, 2 fetches", st, err)
			}
			log := logs.String()
			if !strings.Contains(log, "JWKS fetch failed") {
				t.Errorf("log %q does not report the failure", log)
			}
			if strings.Contains(log, xJWK.X) {
				t.Errorf("log contains key material: %s", log)
			}

			// Once the endpoint recovers, the error clears. The client
			// of the timeout case gets a generous deadline back first: on
			// a loaded machine even a good answer can take 20 ms.
			opt.HTTPClient.Timeout = 2 * time.Second
			srv.set(jwksResponse{body: good})
			if err := s.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if st := s.Status(); st.LastError != "" || st.Failures != 0 {
				t.Errorf("Status after recovery = %+v, want no error", st)
			}
		})
	}
}

// Malformed and unsupported keys are skipped and counted; the rest of
// the set serves.
func TestRemoteKeySetSkipsBadKeys(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a},
		`{"kty":"EC","crv":"P-256","kid":"off-curve","x":"AAAA","y":"AAAA"}`,
		`{"kty":"RSA","kid":"tiny","n":"AQAB","e":"AQAB"}`,
		`{"kty":"OKP","crv":"X25519","kid":"ecdh","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"kty":"oct","kid":"secret"}`,
		// A secret published with an alg: usable to anyone who reads
		// the set, so skipped as well.
		`{"kty":"oct","kid":"published","alg":"HS256","k":"c2VjcmV0LXB1Ymxpc2hlZC1pbi10aGUtandrcy0zMmI"}`,
		`{"kty":"EC","crv":"P-256","kid":"enc","use":"enc"}`,
		`"not an object"`,
	))
	logs := &jwksLog{}
	opt := quiet()
	opt.MaxWait = time.Millisecond
	opt.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s := startJWKS(t, srv.URL, opt)

	if st := s.Status(); st.Keys != 1 || st.Skipped != 7 {
		t.Errorf("Status = %+v, want 1 key and 7 skipped", st)
	}
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil {
		t.Errorf("ResolveKey(a): %v", err)
	}
	for _, kid := range []string{"off-curve", "tiny", "ecdh", "secret", "enc"} {
		if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: kid}); !errors.Is(err, jose.ErrKeyNotFound) {
			t.Errorf("ResolveKey(%s) = %v, want ErrKeyNotFound", kid, err)
		}
	}
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.HS256, KeyID: "published"}); !errors.Is(err, jose.ErrKeyNotFound) {
		t.Errorf("ResolveKey(published, HS256) = %v, want ErrKeyNotFound", err)
	}
	if !strings.Contains(logs.String(), "JWKS key skipped") {
		t.Errorf("log %q does not report the skipped keys", logs.String())
	}
	if strings.Contains(logs.String(), "c2VjcmV0LXB1Ymxpc2hlZC1pbi10aGUtandrcy0zMmI") {
		t.Errorf("log %q holds the published secret", logs.String())
	}
}

func TestRefreshInterval(t *testing.T) {
	tests := []struct {
		name         string
		min, max     time.Duration
		cacheControl []string
		want         time.Duration
	}{
		{name: "none", want: DefaultRefresh},
		{name: "auth server", cacheControl: []string{"public, max-age=300"}, want: 5 * time.Minute},
		{name: "max-age", cacheControl: []string{"max-age=600"}, want: 10 * time.Minute},
		{name: "below min", cacheControl: []string{"max-age=1"}, want: time.Minute},
		{name: "max-age zero", cacheControl: []string{"max-age=0"}, want: time.Minute},
		{name: "above max", cacheControl: []string{"max-age=86400"}, want: time.Hour},
		{name: "huge", cacheControl: []string{"max-age=99999999999999999"}, want: time.Hour},
		{name: "beyond int64", cacheControl: []string{"max-age=99999999999999999999"}, want: time.Hour},
		{name: "overflowing duration", cacheControl: []string{"max-age=9223372036"}, want: time.Hour},
		{name: "quoted", cacheControl: []string{`max-age="120"`}, want: 2 * time.Minute},
		{name: "upper case", cacheControl: []string{"Max-Age=120"}, want: 2 * time.Minute},
		{name: "negative", cacheControl: []string{"max-age=-5"}, want: DefaultRefresh},
		{name: "garbage", cacheControl: []string{"max-age=soon"}, want: DefaultRefresh},
		{name: "no-store", cacheControl: []string{"no-store"}, want: time.Minute},
		{name: "no-cache wins over max-age", cacheControl: []string{"max-age=600, no-cache"}, want: time.Minute},
		{name: "second header line", cacheControl: []string{"public", "max-age=900"}, want: 15 * time.Minute},
		{name: "default clamped to min", min: 10 * time.Minute, want: 10 * time.Minute},
		{name: "default clamped to max", max: 2 * time.Minute, want: 2 * time.Minute},
		{name: "custom bounds", min: time.Second, max: 10 * time.Second, cacheControl: []string{"max-age=3"}, want: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewRemoteKeySet("http://unused", RemoteKeySetOptions{MinRefresh: tt.min, MaxRefresh: tt.max})
			if got := s.refreshInterval(tt.cacheControl); got != tt.want {
				t.Errorf("refreshInterval(%q) = %v, want %v", tt.cacheControl, got, tt.want)
			}
		})
	}
}

// Retries after failures back off but never wait longer than MinRefresh.
func TestRetryBackOff(t *testing.T) {
	s := NewRemoteKeySet("http://unused", RemoteKeySetOptions{MinRefresh: time.Minute})
	prevMax := time.Duration(0)
	for failures := 1; failures <= 70; failures++ {
		s.status.Failures = failures
		d := s.nextDelay(errors.New("down"))
		want := min(firstRetry<<min(failures-1, 20), time.Minute)
		if d > want || d < want-want/10 {
			t.Errorf("after %d failures the delay is %v, want %v less up to a tenth", failures, d, want)
		}
		if want < prevMax {
			t.Errorf("the back-off shrank after %d failures", failures)
		}
		prevMax = want
	}
}

// The background goroutine refreshes on its own, retries when the
// endpoint fails, and picks up the keys once it recovers.
func TestRemoteKeySetBackgroundRefresh(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	opt := RemoteKeySetOptions{MinRefresh: time.Millisecond, MaxRefresh: 2 * time.Millisecond, RefetchInterval: time.Hour}
	s := startJWKS(t, srv.URL, opt)
	eventually(t, "a background refresh", func() bool { return srv.requests.Load() >= 3 })

	srv.set(jwksResponse{status: http.StatusBadGateway})
	eventually(t, "retries fail", func() bool { return s.Status().Failures >= 3 })
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil {
		t.Errorf("ResolveKey(a) while the endpoint fails: %v", err)
	}

	b := jwksKey(t, jose.ES256, "b")
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{b}), cacheControl: "max-age=3600"})
	eventually(t, "the new keys arrive", func() bool {
		st := s.Status()
		return st.Failures == 0 && s.set.Load().Lookup("b") != nil && st.NextRefresh.After(st.LastFetch)
	})
	// max-age=3600 is clamped to MaxRefresh. NextRefresh is reckoned from
	// a clock reading a little after LastFetch's, and on a loaded machine
	// "a little" can be as long as the goroutine is descheduled: the
	// bound allows a minute, still far below the hour the answer asked
	// for.
	if st := s.Status(); st.Keys != 1 || st.NextRefresh.Sub(st.LastFetch) > opt.MaxRefresh+time.Minute {
		t.Errorf("Status = %+v, want 1 key and the next refresh within MaxRefresh", st)
	}
}

// Start reports a failed first fetch but keeps trying in the background.
func TestRemoteKeySetStartFailsThenRecovers(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, nil)
	srv.set(jwksResponse{status: http.StatusServiceUnavailable})
	s := NewRemoteKeySet(srv.URL, RemoteKeySetOptions{MinRefresh: time.Millisecond, MaxWait: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Start = %v, want the 503", err)
	}
	if st := s.Status(); st.Ready {
		t.Errorf("Status = %+v, want not ready", st)
	}
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); !errors.Is(err, jose.ErrKeyNotFound) || !strings.Contains(err.Error(), "not loaded") {
		t.Errorf("ResolveKey before any keys = %v, want ErrKeyNotFound, not loaded", err)
	}
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{a})})
	eventually(t, "the keys load", func() bool { return s.Status().Ready })
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); err != nil {
		t.Errorf("ResolveKey(a) after recovery: %v", err)
	}
}

func TestRemoteKeySetLifecycle(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	doc := jwksDoc(t, []*jose.Key{a})
	header := &jose.Header{Algorithm: jose.ES256, KeyID: "a"}
	unknown := &jose.Header{Algorithm: jose.ES256, KeyID: "b"}

	t.Run("not started", func(t *testing.T) {
		srv := newJWKSServer(t, doc)
		s := NewRemoteKeySet(srv.URL, RemoteKeySetOptions{MaxWait: time.Hour})
		if _, err := s.ResolveKey(header); !errors.Is(err, jose.ErrKeyNotFound) {
			t.Errorf("ResolveKey before Start = %v, want ErrKeyNotFound", err)
		}
		s.Close() // returns although nothing was started
		if srv.requests.Load() != 0 {
			t.Error("a set that was never started fetched")
		}
	})
	t.Run("Close ends the goroutine", func(t *testing.T) {
		srv := newJWKSServer(t, doc)
		s := startJWKS(t, srv.URL, RemoteKeySetOptions{MinRefresh: time.Millisecond, MaxRefresh: time.Millisecond, MaxWait: time.Hour})
		s.Close()
		select {
		case <-s.done:
		default:
			t.Fatal("Close returned before the goroutine ended")
		}
		n := srv.requests.Load()
		// Known keys keep resolving; unknown ones no longer fetch or wait.
		if _, err := s.ResolveKey(header); err != nil {
			t.Errorf("ResolveKey after Close: %v", err)
		}
		if _, err := s.ResolveKey(unknown); !errors.Is(err, jose.ErrKeyNotFound) {
			t.Errorf("ResolveKey(unknown) after Close = %v, want ErrKeyNotFound", err)
		}
		if srv.requests.Load() != n {
			t.Error("the set fetched after Close")
		}
		s.Close() // a second Close is harmless
		if err := s.Start(context.Background()); err == nil {
			t.Error("Start after Close succeeded")
		}
	})
	t.Run("Close during a hanging fetch", func(t *testing.T) {
		srv := newJWKSServer(t, doc)
		s := startJWKS(t, srv.URL, RemoteKeySetOptions{MinRefresh: time.Hour, MaxWait: time.Hour, HTTPClient: &http.Client{}})
		block := make(chan struct{})
		defer close(block)
		srv.set(jwksResponse{body: doc, block: block})
		waiter := make(chan error, 1)
		go func() { _, err := s.ResolveKey(unknown); waiter <- err }()
		eventually(t, "the refetch reaches the server", func() bool { return srv.requests.Load() == 2 })
		s.Close() // must not wait for the hanging response
		if err := <-waiter; !errors.Is(err, jose.ErrKeyNotFound) {
			t.Errorf("ResolveKey waiting across Close = %v, want ErrKeyNotFound", err)
		}
	})
	t.Run("context ends the goroutine", func(t *testing.T) {
		srv := newJWKSServer(t, doc)
		s := NewRemoteKeySet(srv.URL, RemoteKeySetOptions{MinRefresh: time.Millisecond, MaxRefresh: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-s.done // hangs, and the test times out, if the goroutine does not end
		if err := s.Start(context.Background()); err == nil {
			t.Error("a second Start succeeded")
		}
		s.Close()
	})
}

// ResolveKey of a known kid is the per-request hot path: no allocation.
func TestResolveKnownKidDoesNotAllocate(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	s := startJWKS(t, srv.URL, quiet())
	h := &jose.Header{Algorithm: jose.ES256, KeyID: "a"}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := s.ResolveKey(h); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ResolveKey allocates %v times, want 0", n)
	}
}

func BenchmarkResolveKnownKid(b *testing.B) {
	var keys []*jose.Key
	for i := range 4 {
		keys = append(keys, jwksKey(b, jose.ES256, fmt.Sprint("key-", i)))
	}
	srv := newJWKSServer(b, jwksDoc(b, keys))
	s := startJWKS(b, srv.URL, quiet())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		h := &jose.Header{Algorithm: jose.ES256, KeyID: "key-2"}
		for pb.Next() {
			if _, err := s.ResolveKey(h); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// End to end: the real auth server's handler, discovered from its
// issuer; a token it mints verifies with the keys a RemoteKeySet fetched
// from its JWKS, refreshed at the interval its Cache-Control asks for.
func TestRemoteKeySetAgainstAuthServer(t *testing.T) {
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()

	clk := newJWKSClock()
	env := authtest.New(t, clk.Now)
	stores, sealer, km := env.Stores, env.Sealer, env.Keys
	hasher := &password.Hasher{Params: password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	svc, err := auth.NewService(auth.Deps{Stores: stores, Keys: km, Sealer: sealer, Hasher: hasher, Now: clk.Now, Logger: slog.New(slog.DiscardHandler)},
		auth.Config{Issuer: issuer, Registration: true})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = httpapi.New(svc, httpapi.Options{Now: clk.Now})
	ts.Start()
	t.Cleanup(ts.Close)

	md, err := Discover(ctx, ts.Client(), issuer)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	if md.JWKSURI != issuer+"/.well-known/jwks.json" || md.RevocationFeedEndpoint != issuer+"/v1/revocations" ||
		md.RevocationStreamEndpoint != issuer+"/v1/revocations/stream" {
		t.Errorf("Discover = %+v", md)
	}
	s := startJWKS(t, md.JWKSURI, RemoteKeySetOptions{HTTPClient: ts.Client(), Now: clk.Now})
	// The first background refresh is scheduled by the goroutine Start
	// started, at the server's max-age less jitter.
	eventually(t, "the refresh is scheduled", func() bool { return !s.Status().NextRefresh.IsZero() })
	if st, d := s.Status(), auth.JWKSMaxAge; !st.Ready || st.Keys == 0 || st.NextRefresh.Sub(st.LastFetch) > d || st.NextRefresh.Sub(st.LastFetch) < d-d/10 {
		t.Errorf("Status = %+v, want ready with the next refresh at the server's max-age %v less up to a tenth", st, d)
	}

	post := func(path, body string) map[string]any {
		t.Helper()
		res, err := ts.Client().Post(issuer+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s %s", path, res.Status, raw)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	creds := `{"username":"alice","password":"correct horse battery"}`
	post("/v1/users", creds)
	token, _ := post("/v1/login", creds)["access_token"].(string)
	msg, err := (&jose.JWSVerifier{Keys: s, Algorithms: []jose.Algorithm{jose.ES256}}).Verify(token)
	if err != nil {
		t.Fatalf("verifying the server's access token: %v", err)
	}
	if msg.Header.KeyID == "" || msg.Header.Type != "at+jwt" {
		t.Errorf("header = %+v, want a kid and typ at+jwt", msg.Header)
	}
}

func ExampleRemoteKeySet() {
	// The auth server's signing key and a stand-in for its JWKS endpoint.
	key, _ := jose.GenerateKey(jose.ES256, nil)
	key, _ = key.WithKeyID("2026-11")
	jwks, _ := key.Public().MarshalJSON()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		fmt.Fprintf(w, `{"keys":[%s]}`, jwks)
	}))
	defer srv.Close()

	keys := NewRemoteKeySet(srv.URL, RemoteKeySetOptions{})
	if err := keys.Start(context.Background()); err != nil {
		fmt.Println(err) // the keys are fetched again in the background
	}
	defer keys.Close()

	token, _ := jose.Sign(key, jose.Header{Algorithm: jose.ES256, KeyID: "2026-11"}, []byte(`{"sub":"alice"}`))
	v := jose.JWSVerifier{Keys: keys, Algorithms: []jose.Algorithm{jose.ES256}}
	msg, err := v.Verify(token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(msg.Payload))
	st := keys.Status()
	fmt.Println(st.Ready, st.Keys)
	// Output:
	// {"sub":"alice"}
	// true 1
}

// TestRemoteKeySetRequestRefresh: a requested refresh fetches at once,
// although the rate limit of unknown kids (RefetchInterval) has just been
// spent, and the new key then resolves.
func TestRemoteKeySetRequestRefresh(t *testing.T) {
	a, b := jwksKey(t, jose.ES256, "a"), jwksKey(t, jose.ES256, "b")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	opt := quiet() // RefetchInterval: an hour
	opt.Now = newJWKSClock().Now
	s := startJWKS(t, srv.URL, opt)
	hb := &jose.Header{Algorithm: jose.ES256, KeyID: "b"}

	// A token of b before b is published spends the refetch of unknown
	// kids.
	if _, err := s.ResolveKey(hb); !errors.Is(err, jose.ErrKeyNotFound) {
		t.Fatalf("ResolveKey(b) before b is published: got %v, want ErrKeyNotFound", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("the server saw %d requests, want 2 (start and the refetch for b)", n)
	}
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{b})})
	if _, err := s.ResolveKey(hb); !errors.Is(err, jose.ErrKeyNotFound) || srv.requests.Load() != 2 {
		t.Fatalf("ResolveKey(b) within RefetchInterval: got %v after %d requests, want ErrKeyNotFound without a fetch", err, srv.requests.Load())
	}

	s.RequestRefresh()
	eventually(t, "b resolves", func() bool {
		k, err := s.ResolveKey(hb)
		return err == nil && k.Thumbprint() == b.Thumbprint()
	})
	if n := srv.requests.Load(); n != 3 {
		t.Errorf("the server saw %d requests, want 3 (one for the request)", n)
	}
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "a"}); !errors.Is(err, jose.ErrKeyNotFound) {
		t.Errorf("ResolveKey(a) after the refresh: got %v, want ErrKeyNotFound (a left the set)", err)
	}
}

// TestRemoteKeySetRequestRefreshTooEarly: when a requested fetch comes
// before the new key is published, the next unknown kid may refetch at
// once, although RefetchInterval has not passed.
func TestRemoteKeySetRequestRefreshTooEarly(t *testing.T) {
	a, b := jwksKey(t, jose.ES256, "a"), jwksKey(t, jose.ES256, "b")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	opt := quiet() // RefetchInterval: an hour
	opt.Now = newJWKSClock().Now
	s := startJWKS(t, srv.URL, opt)
	hb := &jose.Header{Algorithm: jose.ES256, KeyID: "b"}
	if _, err := s.ResolveKey(hb); !errors.Is(err, jose.ErrKeyNotFound) || srv.requests.Load() != 2 {
		t.Fatalf("ResolveKey(b) before b is published: got %v after %d requests, want ErrKeyNotFound after 2", err, srv.requests.Load())
	}
	s.RequestRefresh() // too early: the server still has a only
	eventually(t, "the requested fetch completes", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.lastRefetch.IsZero() // cleared once the requested fetch is done
	})
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("the server saw %d requests, want 3 (start, refetch, requested)", n)
	}
	srv.set(jwksResponse{body: jwksDoc(t, []*jose.Key{a, b})})
	k, err := s.ResolveKey(hb)
	if err != nil || k.Thumbprint() != b.Thumbprint() {
		t.Fatalf("ResolveKey(b) after b is published: got %v, %v; want key b", k, err)
	}
	if n := srv.requests.Load(); n != 4 {
		t.Errorf("the server saw %d requests, want 4 (start, refetch, requested, refetch)", n)
	}
	// The limit holds again after that refetch.
	if _, err := s.ResolveKey(&jose.Header{Algorithm: jose.ES256, KeyID: "c"}); !errors.Is(err, jose.ErrKeyNotFound) || srv.requests.Load() != 4 {
		t.Errorf("ResolveKey(c): got %v after %d requests, want ErrKeyNotFound without a fetch", err, srv.requests.Load())
	}
}

// startRequesting is startJWKS with requestEvery set to every.
func startRequesting(t *testing.T, url string, opt RemoteKeySetOptions, every time.Duration) *RemoteKeySet {
	t.Helper()
	s := NewRemoteKeySet(url, opt)
	s.log = slog.New(slog.DiscardHandler)
	s.requestEvery = every
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestRemoteKeySetRequestRefreshFlood: a flood of requests makes one
// fetch, and those within requestEvery of it wait for one more, which
// serves them all.
func TestRemoteKeySetRequestRefreshFlood(t *testing.T) {
	a := jwksKey(t, jose.ES256, "a")
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{a}))
	opt := quiet()
	opt.Now = newJWKSClock().Now // never advances: requests after the first wait for requestEvery
	s := startRequesting(t, srv.URL, opt, time.Hour)

	flood := func() {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 10_000 {
					s.RequestRefresh()
				}
			})
		}
		wg.Wait()
	}
	flood()
	eventually(t, "the first request is served", func() bool { return srv.requests.Load() == 2 })
	flood()
	// Let the requests reach the background goroutine; none may fetch
	// within requestEvery (an hour) of the first.
	eventually(t, "the requests are taken", func() bool { return len(s.requested) == 0 })
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("after two floods the server saw %d requests, want 2 (start and one fetch)", n)
	}

	// With a short requestEvery the waiting requests are served by one
	// more fetch, not dropped.
	t2 := startRequesting(t, srv.URL, opt, 50*time.Millisecond)
	base := srv.requests.Load() // t2's start
	t2.RequestRefresh()
	eventually(t, "the first request is served", func() bool { return srv.requests.Load() == base+1 })
	for range 1000 {
		t2.RequestRefresh()
	}
	eventually(t, "the requests that waited are served", func() bool { return srv.requests.Load() >= base+2 })
}

func TestRemoteKeySetRequestRefreshBeforeStartAndAfterClose(t *testing.T) {
	srv := newJWKSServer(t, jwksDoc(t, []*jose.Key{jwksKey(t, jose.ES256, "a")}))
	s := NewRemoteKeySet(srv.URL, quiet())
	s.log = slog.New(slog.DiscardHandler)
	s.RequestRefresh() // before Start: nothing
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.RequestRefresh() // after Close: nothing, and no panic
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("the server saw %d requests, want 1 (Start's)", n)
	}
}
