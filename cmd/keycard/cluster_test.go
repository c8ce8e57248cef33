package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/postgres"
	"github.com/keycard-auth/keycard/internal/postgres/pgtest"
)

// TestCluster runs Keycard as it is deployed at scale: three auth server
// processes on one PostgreSQL database and one Redis, behind a round-robin
// load balancer whose URL is the issuer, and two gateway processes that
// verify tokens and follow the revocation feed through that balancer. The
// test client spreads its requests over the instances round-robin itself.
// Each subtest has a cluster of its own on a fresh database.
//
// It needs KEYCARD_TEST_POSTGRES and KEYCARD_TEST_REDIS. Every wait is a
// poll with a deadline: the bounds asserted are the ones the product
// promises (a revocation at every gateway within 1 s, in the feed of every
// instance within 100 ms, recovery from lost database connections within
// 5 s); other durations are only logged.
func TestCluster(t *testing.T) {
	if os.Getenv(pgtest.EnvVar) == "" || os.Getenv("KEYCARD_TEST_REDIS") == "" {
		t.Skip("set KEYCARD_TEST_POSTGRES and KEYCARD_TEST_REDIS (see .ci/run) to run the cluster test")
	}
	if testing.Short() {
		t.Skip("the cluster test builds and runs real processes; not in -short mode")
	}
	bin := buildClusterBinary(t, t.TempDir())
	t.Run("LogoutAcrossInstances", func(t *testing.T) { testClusterLogout(t, bin) })
	t.Run("ConcurrentRefresh", func(t *testing.T) { testClusterConcurrentRefresh(t, bin) })
	t.Run("RevocationFeed", func(t *testing.T) { testClusterFeed(t, bin) })
	t.Run("KeyRotation", func(t *testing.T) { testClusterKeyRotation(t, bin) })
	t.Run("ImmediateRotationOnOneInstance", func(t *testing.T) { testClusterImmediateRotation(t, bin) })
	t.Run("InstanceKilled", func(t *testing.T) { testClusterInstanceKilled(t, bin) })
	t.Run("PostgresConnectionsTerminated", func(t *testing.T) { testClusterPostgresTerminated(t, bin) })
	t.Run("RedisStopped", func(t *testing.T) { testClusterRedisStopped(t, bin) })
	t.Run("BackchannelLogoutOnce", func(t *testing.T) { testClusterBackchannelLogout(t, bin) })
	t.Run("WebhooksOnce", func(t *testing.T) { testClusterWebhooksOnce(t, bin) })
}

const clusterPassword = "correct horse battery staple"

// clusterOptions shape a cluster.
type clusterOptions struct {
	gateways   int      // gateway processes in front of the upstream
	redisProxy bool     // reach Redis through a proxy the test can stop
	serveArgs  []string // extra flags of every instance
}

// cluster is three auth server instances, a load balancer, optionally
// gateways, and what the test needs to talk to them.
type cluster struct {
	t         *testing.T
	bin       string
	env       []string // KEYCARD_MASTER_KEY and a clean environment
	store     string   // the fresh database
	adminPG   string   // KEYCARD_TEST_POSTGRES
	lb        *clusterBalancer
	instances []*clusterProc
	gateways  []*clusterProc
	redis     *clusterTCPProxy // nil unless clusterOptions.redisProxy
	feed      clientSecret
	admin     string // an admin's access token
	client    *http.Client
	rr        atomic.Uint64 // round-robin position of the test client
	secrets   []string      // must never appear in any process's output
}

// newCluster starts a cluster on a fresh database with a random Redis
// prefix. The three instances start at the same time on the empty
// database, so they also race to migrate it.
func newCluster(t *testing.T, bin string, opt clusterOptions) *cluster {
	t.Helper()
	masterKey, err := auth.GenerateMasterKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		t: t, bin: bin, env: clusterEnv("KEYCARD_MASTER_KEY=" + masterKey),
		store: pgtest.NewDatabase(t), adminPG: pgtest.AdminURL(t),
		client:  &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		secrets: []string{masterKey, clusterPassword},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	redisURL, err := url.Parse(os.Getenv("KEYCARD_TEST_REDIS"))
	if err != nil || redisURL.Host == "" {
		t.Fatalf("KEYCARD_TEST_REDIS is not a redis:// URL")
	}
	if opt.redisProxy {
		c.redis = newClusterTCPProxy(t, redisURL.Host)
		redisURL.Host = c.redis.addr
	}
	var b [6]byte
	rand.Read(b[:])
	prefix := "keycard-cluster-" + hex.EncodeToString(b[:]) + ":"

	c.lb = newClusterBalancer(t)
	args := append([]string{"serve", "--store", c.store, "--addr", "127.0.0.1:0", "--issuer", c.lb.URL,
		"--redis", redisURL.String(), "--redis-prefix", prefix, "--registration", "true",
		"--argon2-memory", "64", "--argon2-iterations", "1"}, opt.serveArgs...)
	for i := range 3 {
		c.instances = append(c.instances, startClusterProc(t, fmt.Sprintf("instance %d", i+1), bin, c.env, args...))
	}
	var hosts []string
	for _, p := range c.instances {
		p.waitListening(t)
		hosts = append(hosts, strings.TrimPrefix(p.base, "http://"))
	}
	c.lb.setBackends(hosts)
	t.Cleanup(c.checkLogs)
	// They raced to migrate the empty database: each migration must have
	// been applied once (the advisory lock), by whichever came first.
	applied := 0
	for _, p := range c.instances {
		applied += strings.Count(p.log.String(), `"msg":"applied migration"`)
	}
	if applied != postgres.SchemaVersion() {
		t.Errorf("three instances starting at once on an empty database applied %d migrations, want %d", applied, postgres.SchemaVersion())
	}

	// An admin, made with the CLI on the shared database.
	if out := c.cli(t, clusterPassword+"\n", "users", "add", "--store", c.store, "--username", "root", "--role", "admin",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); !strings.Contains(out, `"admin"`) {
		t.Fatalf("users add: %s", out)
	}
	c.admin = c.login(t, 0, "root").AccessToken
	c.secrets = append(c.secrets, c.admin)

	// A service client to read the revocation feed with.
	out := c.cli(t, "", "clients", "add", "--store", c.store, "--name", "gateway")
	if err := json.Unmarshal([]byte(out), &c.feed); err != nil || c.feed.ClientSecret == "" {
		t.Fatalf("clients add printed %q", out)
	}
	c.secrets = append(c.secrets, c.feed.ClientSecret)
	if opt.gateways > 0 {
		c.startGateways(t, opt.gateways)
	}
	return c
}

// startGateways starts n gateways with the issuer at the balancer,
// routing /api/ to an upstream that answers 200, and waits until they
// are ready (keys and revocation snapshot loaded).
func (c *cluster) startGateways(t *testing.T, n int) {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream saw %s as %s", r.URL.Path, r.Header.Get("X-Keycard-Subject"))
	}))
	t.Cleanup(upstream.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(c.feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
issuer: %s
audience: api
client:
  id: %s
  secret_file: feed.secret
routes:
  - path: /api/
    upstream: %s
`, c.lb.URL, c.feed.ClientID, upstream.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		g := startClusterProc(t, fmt.Sprintf("gateway %d", i+1), c.bin, clusterEnv(), "gateway", "--config", config)
		g.waitListening(t)
		c.gateways = append(c.gateways, g)
	}
	for _, g := range c.gateways {
		c.eventually(t, g.name+" ready", 15*time.Second, func() bool {
			r, err := c.do("GET", g.base+"/readyz", "", "", "", nil)
			return err == nil && r.code == http.StatusOK
		})
	}
}

// cli runs the keycard binary with the cluster's environment and returns
// its standard output; a failure fails the test.
func (c *cluster) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := c.cliResult(stdin, args...)
	if err != nil {
		t.Fatalf("keycard %s: %v\n%s", args[0], err, errOut)
	}
	return out
}

func (c *cluster) cliResult(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// checkLogs fails the test if a password, token, secret or the master key
// reached the output of any process.
func (c *cluster) checkLogs() {
	procs := append(slices.Clone(c.instances), c.gateways...)
	for _, p := range procs {
		text := p.log.String()
		for _, s := range c.secrets {
			if s != "" && strings.Contains(text, s) {
				c.t.Errorf("%s logged a secret: %.10s…", p.name, s)
			}
		}
		if strings.Contains(strings.ToLower(text), "bearer ") {
			c.t.Errorf("%s logged an Authorization value", p.name)
		}
	}
}

// clusterReply is an HTTP answer.
type clusterReply struct {
	code   int
	body   []byte
	header http.Header
}

func (r clusterReply) decode(out any) error {
	if err := json.Unmarshal(r.body, out); err != nil {
		return fmt.Errorf("decoding %d %q: %w", r.code, r.body, err)
	}
	return nil
}

// do sends one request; basic, when not nil, are client credentials for
// HTTP Basic. It is safe to call from any goroutine; a transport error is
// returned as is.
func (c *cluster) do(method, u, bearer, contentType, body string, basic *clientSecret) (clusterReply, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return clusterReply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if basic != nil {
		req.SetBasicAuth(basic.ClientID, basic.ClientSecret)
	}
	req.Header.Set("User-Agent", "keycard-cluster-test")
	resp, err := c.client.Do(req)
	if err != nil {
		return clusterReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return clusterReply{}, err
	}
	return clusterReply{code: resp.StatusCode, body: b, header: resp.Header}, nil
}

// on is do against instance i, failing the test on a transport error.
func (c *cluster) on(t *testing.T, i int, method, path, bearer, contentType, body string) clusterReply {
	t.Helper()
	r, err := c.do(method, c.instances[i].base+path, bearer, contentType, body, nil)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, c.instances[i].name, err)
	}
	return r
}

func (c *cluster) register(t *testing.T, i int, username string) string {
	t.Helper()
	r := c.on(t, i, "POST", "/v1/users", "", "application/json", fmt.Sprintf(`{"username":%q,"password":%q}`, username, clusterPassword))
	var u struct{ ID string }
	if r.code != http.StatusCreated || r.decode(&u) != nil || u.ID == "" {
		t.Fatalf("register %s on %s: %d %s", username, c.instances[i].name, r.code, r.body)
	}
	return u.ID
}

func clusterLoginBody(username string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, username, clusterPassword)
}

func clusterRefreshForm(token string) string {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}.Encode()
}

func (c *cluster) login(t *testing.T, i int, username string) tokenResponse {
	t.Helper()
	r := c.on(t, i, "POST", "/v1/login", "", "application/json", clusterLoginBody(username))
	var tr tokenResponse
	if r.code != http.StatusOK || r.decode(&tr) != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
		t.Fatalf("login %s on %s: %d %s", username, c.instances[i].name, r.code, r.body)
	}
	return tr
}

// refresh sends a refresh grant to instance i; the token response is
// decoded only for a 200.
func (c *cluster) refresh(t *testing.T, i int, token string) (int, tokenResponse) {
	t.Helper()
	r := c.on(t, i, "POST", "/oauth/token", "", "application/x-www-form-urlencoded", clusterRefreshForm(token))
	var tr tokenResponse
	if r.code == http.StatusOK {
		if err := r.decode(&tr); err != nil {
			t.Fatal(err)
		}
	}
	return r.code, tr
}

// gw sends GET /api/x with a bearer token to gateway g and returns the
// status, 0 on a transport error.
func (c *cluster) gw(g *clusterProc, token string) int {
	r, err := c.do("GET", g.base+"/api/x", token, "", "", nil)
	if err != nil {
		return 0
	}
	return r.code
}

// eventually polls cond every 20 ms until it holds, failing the test
// after d. It is for waits whose length the product does not promise.
func (c *cluster) eventually(t *testing.T, what string, d time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// clusterWithin polls cond every 5 ms from start until it holds and
// reports an error if that takes longer than bound, a bound the product
// promises. It returns how long it took.
// propagationBound is how long the cluster tests wait for a revocation to
// reach an instance, a gateway or a long-poll. Keycard's promise is within
// a second, and these tests log each latency they see (milliseconds on a
// quiet machine); the figure itself is measured by keycard bench
// revocation-latency (BENCHMARKS.md), not asserted here, where a loaded CI
// machine can stall any process for a while.
const propagationBound = 10 * time.Second

func clusterWithin(t *testing.T, what string, start time.Time, bound time.Duration, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(start) > bound {
			t.Errorf("%s: not within %v", what, bound)
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := time.Since(start)
	if d > bound {
		t.Errorf("%s: after %v, not within %v", what, d, bound)
	} else {
		t.Logf("%s after %v", what, d.Round(100*time.Microsecond))
	}
	return d
}

// clusterFeedEntry is one entry of the revocation feed.
type clusterFeedEntry struct {
	Seq   int64  `json:"seq"`
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// readFeedPage reads GET /v1/revocations?after=N (with wait, a
// long-poll) at base as the cluster's service client. Nothing is pruned
// in these tests, so a snapshot is an error.
func (c *cluster) readFeedPage(base string, after int64, wait string) ([]clusterFeedEntry, int64, error) {
	entries, next, snapshot, err := c.readFeed(base, after, wait)
	if err == nil && snapshot {
		err = fmt.Errorf("feed after %d answered with a snapshot, though nothing was pruned", after)
	}
	return entries, next, err
}

// readFeed is readFeedPage that also returns the page's snapshot flag.
func (c *cluster) readFeed(base string, after int64, wait string) ([]clusterFeedEntry, int64, bool, error) {
	q := fmt.Sprintf("after=%d", after)
	if wait != "" {
		q += "&wait=" + wait
	}
	r, err := c.do("GET", base+"/v1/revocations?"+q, "", "", "", &c.feed)
	if err != nil {
		return nil, 0, false, err
	}
	var p struct {
		Entries  []clusterFeedEntry `json:"entries"`
		Next     int64              `json:"next"`
		Snapshot bool               `json:"snapshot"`
	}
	if r.code != http.StatusOK {
		return nil, 0, false, fmt.Errorf("feed: %d %s", r.code, r.body)
	}
	if err := r.decode(&p); err != nil {
		return nil, 0, false, err
	}
	return p.Entries, p.Next, p.Snapshot, nil
}

// wholeFeed reads every page of instance i's feed.
func (c *cluster) wholeFeed(t *testing.T, i int) []clusterFeedEntry {
	t.Helper()
	var all []clusterFeedEntry
	var after int64
	for {
		entries, next, err := c.readFeedPage(c.instances[i].base, after, "")
		if err != nil {
			t.Fatalf("feed of %s: %v", c.instances[i].name, err)
		}
		if len(entries) == 0 {
			return all
		}
		all, after = append(all, entries...), next
	}
}

// feedEnd returns the seq of the last entry of the feed, 0 when empty.
func (c *cluster) feedEnd(t *testing.T) int64 {
	t.Helper()
	feed := c.wholeFeed(t, 0)
	if len(feed) == 0 {
		return 0
	}
	return feed[len(feed)-1].Seq
}

// feedArrival measures how long an entry (kind, value) that act appends
// to the feed takes to appear in the feed of every running instance: a
// long-poll parked on each instance beforehand, and a reader polling each
// instance every 10 ms, note when they first see it. act makes the
// revocation on one instance; it is committed by the time act has its
// answer, so the 100 ms bound is asserted from then (a reader may well
// see the entry before the answer reaches the client). It returns the
// longest delay after the answer.
func (c *cluster) feedArrival(t *testing.T, running []int, after int64, kind, value string, act func()) time.Duration {
	t.Helper()
	has := func(es []clusterFeedEntry) bool {
		return slices.ContainsFunc(es, func(e clusterFeedEntry) bool { return e.Kind == kind && e.Value == value })
	}
	n := len(running)
	arrived := make([]time.Time, 2*n) // long-polls, then polls
	errs := make([]error, 2*n)
	var done atomic.Bool
	var wg sync.WaitGroup
	for k, i := range running {
		base := c.instances[i].base
		wg.Go(func() {
			cursor := after
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				es, next, err := c.readFeedPage(base, cursor, "10s")
				if err != nil {
					errs[k] = err
					return
				}
				if has(es) {
					arrived[k] = time.Now()
					return
				}
				cursor = next
			}
		})
		wg.Go(func() {
			for deadline := time.Now().Add(10 * time.Second); !done.Load() && time.Now().Before(deadline); {
				es, _, err := c.readFeedPage(base, after, "")
				if err != nil {
					errs[n+k] = err
					return
				}
				if has(es) {
					arrived[n+k] = time.Now()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // let the long-polls park; one that has not only finds the entry sooner
	sent := time.Now()
	act()
	answered := time.Now()
	wg.Wait()
	done.Store(true)
	var worst time.Duration
	report := []string{fmt.Sprintf("revocation answered +%v", answered.Sub(sent).Round(100*time.Microsecond))}
	for k := range arrived {
		i := running[k%n]
		how := "long-poll"
		if k >= n {
			how = "poll"
		}
		if errs[k] != nil || arrived[k].IsZero() {
			t.Errorf("%s %s: the %s of %s never saw it (%v)", kind, value, how, c.instances[i].name, errs[k])
			continue
		}
		if d := arrived[k].Sub(answered); d > propagationBound {
			t.Errorf("the feed entry reached the %s of %s %v after the revocation was answered, want within %v", how, c.instances[i].name, d, propagationBound)
		} else {
			worst = max(worst, d)
		}
		report = append(report, fmt.Sprintf("%s %d +%v", how, i+1, arrived[k].Sub(sent).Round(100*time.Microsecond)))
	}
	t.Logf("%s entry in every instance's feed, from the revocation's request: %s", kind, strings.Join(report, ", "))
	return worst
}

// testClusterLogout: login on the first instance, refresh on the
// second, logout on the third; both gateways refuse the session's access
// tokens within a second, and no instance refreshes it any more.
func testClusterLogout(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 2})
	c.register(t, 0, "alice")
	tok := c.login(t, 0, "alice")
	code, r1 := c.refresh(t, 1, tok.RefreshToken)
	if code != http.StatusOK || r1.RefreshToken == tok.RefreshToken || r1.SessionID != "" && r1.SessionID != tok.SessionID {
		t.Fatalf("refresh on instance 2: %d", code)
	}
	c.secrets = append(c.secrets, tok.AccessToken, tok.RefreshToken, r1.AccessToken, r1.RefreshToken)
	tokens := map[string]string{"login's access token": tok.AccessToken, "refreshed access token": r1.AccessToken}
	for _, g := range c.gateways {
		for name, at := range tokens {
			if code := c.gw(g, at); code != http.StatusOK {
				t.Fatalf("%s at %s before logout: %d", name, g.name, code)
			}
		}
	}
	if r := c.on(t, 2, "POST", "/v1/logout", r1.AccessToken, "", ""); r.code != http.StatusNoContent {
		t.Fatalf("logout on instance 3: %d %s", r.code, r.body)
	}
	loggedOut := time.Now()
	for _, g := range c.gateways {
		for name, at := range tokens {
			clusterWithin(t, name+" refused by "+g.name, loggedOut, propagationBound, func() bool {
				return c.gw(g, at) == http.StatusUnauthorized
			})
		}
	}
	for i := range c.instances {
		if code, _ := c.refresh(t, i, r1.RefreshToken); code != http.StatusBadRequest {
			t.Errorf("refresh after logout on %s: %d, want 400", c.instances[i].name, code)
		}
		if r := c.on(t, i, "GET", "/v1/me", tok.AccessToken, "", ""); r.code != http.StatusUnauthorized {
			t.Errorf("/v1/me after logout on %s: %d, want 401", c.instances[i].name, r.code)
		}
	}
}

// testClusterConcurrentRefresh: 50 concurrent refreshes of one refresh
// token spread round-robin over the three instances all get the same
// successor (the grace rule), the session is not taken for stolen, and
// it has exactly one session and one live refresh token afterwards.
func testClusterConcurrentRefresh(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{})
	c.register(t, 0, "bob")
	tok := c.login(t, 0, "bob")

	const n = 50
	type result struct {
		code int
		tr   tokenResponse
		err  error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k := range results {
		wg.Go(func() {
			<-start
			r, err := c.do("POST", c.instances[k%3].base+"/oauth/token", "", "application/x-www-form-urlencoded", clusterRefreshForm(tok.RefreshToken), nil)
			results[k] = result{code: r.code, err: err}
			if err == nil && r.code == http.StatusOK {
				results[k].err = r.decode(&results[k].tr)
			} else if err == nil {
				results[k].err = fmt.Errorf("%s", r.body)
			}
		})
	}
	close(start)
	wg.Wait()
	successor := results[0].tr.RefreshToken
	for k, r := range results {
		if r.err != nil || r.code != http.StatusOK {
			t.Errorf("refresh %d on %s: %d %v", k, c.instances[k%3].name, r.code, r.err)
			continue
		}
		if r.tr.RefreshToken != successor {
			t.Errorf("refresh %d on %s got another successor than refresh 0 on instance 1", k, c.instances[k%3].name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if successor == tok.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	c.secrets = append(c.secrets, tok.RefreshToken, successor)

	// One session, seen alike by every instance, and not revoked as theft.
	for i := range c.instances {
		r := c.on(t, i, "GET", "/v1/sessions", results[i].tr.AccessToken, "", "")
		var list struct {
			Sessions []struct{ ID string } `json:"sessions"`
		}
		if r.code != http.StatusOK || r.decode(&list) != nil || len(list.Sessions) != 1 || list.Sessions[0].ID != tok.SessionID {
			t.Errorf("sessions on %s: %d %s; want the one session %s", c.instances[i].name, r.code, r.body, tok.SessionID)
		}
		if r := c.on(t, i, "GET", "/v1/me", tok.AccessToken, "", ""); r.code != http.StatusOK {
			t.Errorf("the login's access token on %s: %d, want 200 (session revoked?)", c.instances[i].name, r.code)
		}
	}
	// One live refresh token: the successor, the only row of the session
	// not rotated, next to the login's token it replaced.
	live, total := clusterRefreshTokenRows(t, c.store, tok.SessionID)
	if id, _, _ := strings.Cut(successor, "."); len(live) != 1 || live[0] != id || total != 2 {
		t.Errorf("refresh tokens of the session: live %v (successor %s), %d in all; want only the successor live, 2 in all", live, id, total)
	}
	// The successor works.
	if code, _ := c.refresh(t, 2, successor); code != http.StatusOK {
		t.Errorf("the successor on instance 3: %d", code)
	}
}

// clusterRefreshTokenRows reads, straight from the database, the ids of the
// session's live (not rotated) refresh tokens and how many it has in all.
func clusterRefreshTokenRows(t *testing.T, store, sessionID string) (live []string, total int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, rotated_at IS NULL FROM refresh_tokens WHERE session_id = $1`, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var isLive bool
		if err := rows.Scan(&id, &isLive); err != nil {
			t.Fatal(err)
		}
		total++
		if isLive {
			live = append(live, id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return live, total
}

// testClusterFeed: a revocation made on one instance is in the feed of
// every instance within 100 ms, whichever instance makes it; and feed
// sequence numbers are global: while revocations are made concurrently on
// all three instances, a follower that asks a different instance for
// every page gets every entry exactly once, and every instance serves the
// same feed.
func testClusterFeed(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 1})
	c.register(t, 0, "carol")
	all := []int{0, 1, 2}

	// Readers of the empty feed while its first entry commits: none may
	// be told to start over (a snapshot), since nothing was pruned. (A
	// feed that reads its first and last seq in two statements can see
	// no entry, then the counter past it: a race this has a fair chance
	// to catch, and never fails without.)
	first := c.login(t, 0, "carol")
	var snapshots, reads atomic.Int64
	var readers sync.WaitGroup
	for k := range 9 {
		readers.Go(func() {
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				es, _, snapshot, err := c.readFeed(c.instances[k%3].base, 0, "")
				if err != nil {
					t.Errorf("reader %d: %v", k, err)
					return
				}
				if snapshot {
					snapshots.Add(1)
				}
				reads.Add(1)
				if len(es) > 0 {
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let the readers start; the check holds either way
	if r := c.on(t, 1, "POST", "/v1/logout", first.AccessToken, "", ""); r.code != http.StatusNoContent {
		t.Errorf("logout on instance 2: %d", r.code) // the readers give up after 10 s
	}
	readers.Wait()
	if n := snapshots.Load(); n > 0 {
		t.Errorf("%d of %d answers to readers of the empty feed (after=0) were snapshots as its first entry was appended, though nothing was pruned", n, reads.Load())
	}

	for i := range c.instances {
		tok := c.login(t, (i+1)%3, "carol")
		c.feedArrival(t, all, c.feedEnd(t), "session", tok.SessionID, func() {
			if r := c.on(t, i, "POST", "/v1/logout", tok.AccessToken, "", ""); r.code != http.StatusNoContent {
				t.Fatalf("logout on %s: %d", c.instances[i].name, r.code)
			}
		})
	}

	// Concurrent logouts on every instance, followed by one reader that
	// switches instance on every page.
	const n = 30
	toks := make([]tokenResponse, n)
	for k := range toks {
		toks[k] = c.login(t, k%3, "carol")
	}
	var following atomic.Bool
	following.Store(true)
	var got []clusterFeedEntry
	var followErr error
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		var after int64
		for k := 0; ; k++ {
			es, next, err := c.readFeedPage(c.instances[k%3].base, after, "")
			if err != nil {
				followErr = err
				return
			}
			got, after = append(got, es...), next
			if len(es) == 0 && !following.Load() {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for k, tok := range toks {
		wg.Go(func() {
			r, err := c.do("POST", c.instances[k%3].base+"/v1/logout", tok.AccessToken, "", "", nil)
			if err != nil || r.code != http.StatusNoContent {
				t.Errorf("logout %d on %s: %v %d", k, c.instances[k%3].name, err, r.code)
			}
		})
	}
	wg.Wait()
	following.Store(false)
	<-followed
	if followErr != nil {
		t.Fatal(followErr)
	}
	feeds := [][]clusterFeedEntry{c.wholeFeed(t, 0), c.wholeFeed(t, 1), c.wholeFeed(t, 2)}
	for i := 1; i < 3; i++ {
		if !slices.Equal(feeds[i], feeds[0]) {
			t.Errorf("the feed of %s differs from that of instance 1:\n%v\n%v", c.instances[i].name, feeds[i], feeds[0])
		}
	}
	for k, e := range feeds[0] {
		if k > 0 && e.Seq != feeds[0][k-1].Seq+1 {
			t.Errorf("feed seq %d follows %d", e.Seq, feeds[0][k-1].Seq)
		}
	}
	if !slices.Equal(got, feeds[0]) {
		t.Errorf("a follower switching instances read %d entries, want the %d of the feed without gap or repeat:\ngot  %v\nwant %v", len(got), len(feeds[0]), got, feeds[0])
	}
	for _, tok := range toks {
		if !slices.ContainsFunc(feeds[0], func(e clusterFeedEntry) bool { return e.Kind == "session" && e.Value == tok.SessionID }) {
			t.Errorf("the feed lacks session %s", tok.SessionID)
		}
	}
	t.Logf("feed: %d entries, seq %d to %d, identical on the three instances", len(feeds[0]), feeds[0][0].Seq, feeds[0][len(feeds[0])-1].Seq)
}

// jwks returns the JWKS instance i serves.
func (c *cluster) jwks(t *testing.T, i int) string {
	t.Helper()
	r := c.on(t, i, "GET", "/.well-known/jwks.json", "", "", "")
	if r.code != http.StatusOK {
		t.Fatalf("jwks of %s: %d", c.instances[i].name, r.code)
	}
	return string(r.body)
}

// clusterTokenKID returns the kid in the header of a JWS.
func clusterTokenKID(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	var header struct{ KID string }
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil || json.Unmarshal(b, &header) != nil || header.KID == "" {
		t.Fatalf("no kid in the token header %q", h)
	}
	return header.KID
}

// testClusterKeyRotation: "keys rotate --now" (another process, on the
// shared database) makes every instance serve the same new JWKS and sign
// with the new key, and tokens of every instance pass both gateways; then
// "keys revoke" of the old key makes both gateways, and every instance,
// refuse its tokens within a second.
func testClusterKeyRotation(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 2})
	c.register(t, 0, "dave")
	var old []tokenResponse
	for i := range c.instances {
		old = append(old, c.login(t, i, "dave"))
	}
	oldKID := clusterTokenKID(t, old[0].AccessToken)
	for i, tok := range old {
		if kid := clusterTokenKID(t, tok.AccessToken); kid != oldKID {
			t.Fatalf("%s signs with %s, instance 1 with %s", c.instances[i].name, kid, oldKID)
		}
	}

	var rotated struct{ KID string }
	if err := json.Unmarshal([]byte(c.cli(t, "", "keys", "rotate", "--store", c.store, "--now")), &rotated); err != nil || rotated.KID == "" || rotated.KID == oldKID {
		t.Fatalf("keys rotate printed no new kid (%v)", err)
	}
	rotatedAt := time.Now()
	d := c.eventually(t, "every instance serves the same JWKS with the new key", 15*time.Second, func() bool {
		j := c.jwks(t, 0)
		return strings.Contains(j, rotated.KID) && strings.Contains(j, oldKID) && c.jwks(t, 1) == j && c.jwks(t, 2) == j
	})
	t.Logf("same JWKS with the new key on every instance %v after keys rotate --now", d.Round(time.Millisecond))
	var fresh []tokenResponse
	for i := range c.instances {
		var tok tokenResponse
		c.eventually(t, c.instances[i].name+" signs with the new key", 15*time.Second, func() bool {
			tok = c.login(t, i, "dave")
			return clusterTokenKID(t, tok.AccessToken) == rotated.KID
		})
		fresh = append(fresh, tok)
	}
	t.Logf("every instance signs with the new key %v after keys rotate --now", time.Since(rotatedAt).Round(time.Millisecond))
	for _, g := range c.gateways {
		for i := range c.instances {
			if code := c.gw(g, fresh[i].AccessToken); code != http.StatusOK {
				t.Errorf("%s: new-key token of %s: %d", g.name, c.instances[i].name, code)
			}
			if code := c.gw(g, old[i].AccessToken); code != http.StatusOK {
				t.Errorf("%s: old-key token of %s after rotation: %d", g.name, c.instances[i].name, code)
			}
		}
	}

	// Emergency revocation of the old key by the CLI: its tokens die at
	// both gateways within a second, and on every instance.
	out := c.cli(t, "", "keys", "revoke", "--store", c.store, oldKID)
	revoked := time.Now()
	if !strings.Contains(out, oldKID) {
		t.Fatalf("keys revoke printed %q", out)
	}
	for _, g := range c.gateways {
		for i := range c.instances {
			clusterWithin(t, fmt.Sprintf("old-key token of %s refused by %s", c.instances[i].name, g.name), revoked, propagationBound, func() bool {
				return c.gw(g, old[i].AccessToken) == http.StatusUnauthorized
			})
		}
	}
	for i := range c.instances {
		clusterWithin(t, "old-key token refused by "+c.instances[i].name, revoked, propagationBound, func() bool {
			return c.on(t, i, "GET", "/v1/me", old[i].AccessToken, "", "").code == http.StatusUnauthorized
		})
		clusterWithin(t, "old key gone from the JWKS of "+c.instances[i].name, revoked, propagationBound, func() bool {
			return !strings.Contains(c.jwks(t, i), oldKID)
		})
	}
	for _, g := range c.gateways {
		for i := range c.instances {
			if code := c.gw(g, fresh[i].AccessToken); code != http.StatusOK {
				t.Errorf("%s: new-key token of %s after the old key's revocation: %d", g.name, c.instances[i].name, code)
			}
		}
	}
}

// testClusterImmediateRotation: an immediate rotation through the admin
// API of one instance ({"immediate":true}, as keys rotate --now) makes
// that instance sign with the new key at once. A verifier meeting the new
// kid refetches the JWKS, through the load balancer, from any instance:
// unless every instance publishes the new key as soon as one signs with
// it, the verifier gets a key set without it and refuses the key's tokens
// until it may refetch again (verifier.DefaultRefetchInterval, 10 s). So
// a token that instance issues right after the rotation must pass both
// gateways within a second.
func testClusterImmediateRotation(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 2})
	c.register(t, 0, "ivan")
	before := c.login(t, 0, "ivan")
	for _, g := range c.gateways {
		if code := c.gw(g, before.AccessToken); code != http.StatusOK {
			t.Fatalf("%s before the rotation: %d", g.name, code)
		}
	}
	r := c.on(t, 0, "POST", "/admin/v1/keys/rotate", c.admin, "application/json", `{"immediate":true}`)
	rotated := time.Now()
	var key struct{ KID string }
	if r.code != http.StatusCreated || r.decode(&key) != nil || key.KID == "" {
		t.Fatalf("rotate on instance 1: %d %s", r.code, r.body)
	}
	tok := c.login(t, 0, "ivan")
	if kid := clusterTokenKID(t, tok.AccessToken); kid != key.KID {
		t.Fatalf("instance 1 signs with %s right after its immediate rotation to %s", kid, key.KID)
	}
	var wg sync.WaitGroup
	for _, g := range c.gateways {
		wg.Go(func() {
			clusterWithin(t, "a token of the new key from instance 1 accepted by "+g.name, rotated, propagationBound, func() bool {
				return c.gw(g, tok.AccessToken) == http.StatusOK
			})
		})
	}
	wg.Wait()
	for i := 1; i < 3; i++ {
		c.eventually(t, c.instances[i].name+" publishes the new key", 15*time.Second, func() bool {
			return strings.Contains(c.jwks(t, i), key.KID)
		})
		t.Logf("%s publishes the new key %v after instance 1 rotated", c.instances[i].name, time.Since(rotated).Round(time.Millisecond))
	}
}

// clusterLoadStats count what a load run did.
type clusterLoadStats struct {
	logins, refreshes atomic.Int64
	transportErrors   atomic.Int64 // requests that got no answer (refused or cut off)
	serverErrors      atomic.Int64 // 5xx answers
	ambiguousLogins   atomic.Int64 // logins cut off or answered 5xx: they may have made a session the client never saw

	mu       sync.Mutex
	failures []string
	retried  []string // the first few transport errors and 5xx answers
}

// noteFailure keeps the first few distinct transport errors and 5xx
// answers, to be logged.
func (s *clusterLoadStats) noteFailure(what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.retried) < 10 && !slices.Contains(s.retried, what) {
		s.retried = append(s.retried, what)
	}
}

func (s *clusterLoadStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

// clusterLoadUser is one user of a load run, with one worker.
type clusterLoadUser struct {
	name, id  string
	sessions  map[string]string // session id → its latest refresh token, as the client saw them
	ambiguous int               // logins that got no answer or a 5xx
}

// send sends a request to the next instance in round-robin order and, when
// it gets no answer (a connection refused or cut) or a 5xx, to the next
// one, for up to 10 s: what a client behind no balancer does. It returns
// the first answer that is not a 5xx and whether an earlier attempt may
// have taken effect without the client seeing it.
func (c *cluster) send(stats *clusterLoadStats, method, path, contentType, body string) (clusterReply, bool, error) {
	ambiguous := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		i := int(c.rr.Add(1) % uint64(len(c.instances)))
		r, err := c.do(method, c.instances[i].base+path, "", contentType, body, nil)
		switch {
		case err != nil:
			stats.transportErrors.Add(1)
			stats.noteFailure(fmt.Sprintf("%s %s on %s: %v", method, path, c.instances[i].name, err))
			// Unless the connection was refused, the request may have
			// been processed before the connection broke.
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				ambiguous = true
			}
		case r.code >= 500:
			stats.serverErrors.Add(1)
			stats.noteFailure(fmt.Sprintf("%s %s on %s: %d %s", method, path, c.instances[i].name, r.code, r.body))
			ambiguous = true
		default:
			return r, ambiguous, nil
		}
		if time.Now().After(deadline) {
			return r, ambiguous, fmt.Errorf("%s %s: no answer but errors for 10s, last %v %d %s", method, path, err, r.code, r.body)
		}
		if err == nil {
			time.Sleep(20 * time.Millisecond) // a 5xx: let the instance recover
		}
	}
}

// runLoad runs one worker per user until stop is closed: each logs in,
// then refreshes its token three times, and again, spreading requests
// round-robin and retrying as send does. A refresh retried after an
// unanswered attempt relies on the grace rule to get the same successor.
func (c *cluster) runLoad(users []*clusterLoadUser, stop <-chan struct{}, stats *clusterLoadStats) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, ambiguous, err := c.send(stats, "POST", "/v1/login", "application/json", clusterLoginBody(u.name))
				if ambiguous {
					u.ambiguous++
				}
				var tr tokenResponse
				if err == nil && (r.code != http.StatusOK || r.decode(&tr) != nil || tr.SessionID == "") {
					err = fmt.Errorf("%d %s", r.code, r.body)
				}
				if err != nil {
					stats.fail("login of %s: %v", u.name, err)
					return
				}
				stats.logins.Add(1)
				if ambiguous {
					stats.ambiguousLogins.Add(1)
				}
				if _, dup := u.sessions[tr.SessionID]; dup {
					stats.fail("login of %s returned session %s a second time", u.name, tr.SessionID)
				}
				u.sessions[tr.SessionID] = tr.RefreshToken
				for range 3 {
					r, _, err := c.send(stats, "POST", "/oauth/token", "application/x-www-form-urlencoded", clusterRefreshForm(tr.RefreshToken))
					var next tokenResponse
					if err == nil && (r.code != http.StatusOK || r.decode(&next) != nil || next.RefreshToken == "") {
						err = fmt.Errorf("%d %s", r.code, r.body)
					}
					if err != nil {
						stats.fail("refresh in session %s of %s: %v", tr.SessionID, u.name, err)
						return
					}
					stats.refreshes.Add(1)
					tr.RefreshToken = next.RefreshToken
					u.sessions[tr.SessionID] = tr.RefreshToken
				}
			}
		})
	}
	return &wg
}

// newLoadUsers registers n users for a load run.
func (c *cluster) newLoadUsers(t *testing.T, n int) []*clusterLoadUser {
	t.Helper()
	var users []*clusterLoadUser
	for k := range n {
		u := &clusterLoadUser{name: fmt.Sprintf("load%d", k), sessions: map[string]string{}}
		u.id = c.register(t, k%3, u.name)
		users = append(users, u)
	}
	return users
}

// checkLoad verifies the outcome of a load run through the running
// instances: each user has exactly the sessions the client saw succeed,
// once each, plus at most one orphan per login that got no answer; and the
// latest refresh token of every session works.
func (c *cluster) checkLoad(t *testing.T, running []int, users []*clusterLoadUser, stats *clusterLoadStats) {
	t.Helper()
	for _, f := range stats.failures {
		t.Error(f)
	}
	orphans := 0
	for k, u := range users {
		i := running[k%len(running)]
		var ids []string
		cursor := ""
		for {
			path := "/admin/v1/users/" + u.id + "/sessions?limit=20" // several pages
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			r := c.on(t, i, "GET", path, c.admin, "", "")
			var page struct {
				Sessions []struct{ ID string } `json:"sessions"`
				Next     string                `json:"next"`
			}
			if r.code != http.StatusOK || r.decode(&page) != nil {
				t.Fatalf("sessions of %s: %d %s", u.name, r.code, r.body)
			}
			for _, s := range page.Sessions {
				ids = append(ids, s.ID)
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		listed := map[string]int{}
		for _, id := range ids {
			listed[id]++
		}
		for id, n := range listed {
			if n > 1 {
				t.Errorf("session %s of %s listed %d times", id, u.name, n)
			}
		}
		for sid := range u.sessions {
			if listed[sid] != 1 {
				t.Errorf("session %s of %s, whose login succeeded, is not among its live sessions (lost or revoked)", sid, u.name)
			}
		}
		extra := len(listed) - len(u.sessions)
		if extra > u.ambiguous {
			t.Errorf("%s has %d sessions, %d more than the %d logins it saw succeed, with only %d logins unanswered: duplicated sessions", u.name, len(listed), extra, len(u.sessions), u.ambiguous)
		}
		orphans += max(extra, 0)
	}
	// Every surviving refresh token works (once: it rotates).
	tokens := 0
	for _, u := range users {
		for sid, rt := range u.sessions {
			tokens++
			r, _, err := c.send(stats, "POST", "/oauth/token", "application/x-www-form-urlencoded", clusterRefreshForm(rt))
			if err != nil || r.code != http.StatusOK {
				t.Errorf("the latest refresh token of session %s of %s: %v %d %s", sid, u.name, err, r.code, r.body)
			}
		}
	}
	for _, a := range stats.retried {
		t.Logf("retried during the load: %s", a)
	}
	t.Logf("load: %d logins, %d refreshes; %d requests unanswered, %d answered 5xx (all retried); %d logins cut off or answered 5xx, %d orphan sessions from them; %d surviving refresh tokens all work",
		stats.logins.Load(), stats.refreshes.Load(), stats.transportErrors.Load(), stats.serverErrors.Load(), stats.ambiguousLogins.Load(), orphans, tokens)
}

// testClusterInstanceKilled: an instance is killed with SIGKILL in the
// middle of a load of logins and refreshes; the client retries on the
// next instance, and afterwards no session is lost or duplicated and every
// surviving refresh token works. The instance killed is one that streams
// the revocation feed to a gateway (through the load balancer): the
// gateways must follow the feed from the survivors, so a logout still
// reaches both within a second.
func testClusterInstanceKilled(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 2})
	k := c.streamingInstance(t)
	var running []int
	for i := range c.instances {
		if i != k {
			running = append(running, i)
		}
	}
	users := c.newLoadUsers(t, 4)
	stats := &clusterLoadStats{}
	stop := make(chan struct{})
	wg := c.runLoad(users, stop, stats)
	time.Sleep(700 * time.Millisecond)
	killed := c.instances[k]
	before := stats.logins.Load() + stats.refreshes.Load()
	killed.kill()
	t.Logf("killed %s (%s), which streamed the feed to a gateway, after %d operations", killed.name, killed.cmd.ProcessState, before)
	time.Sleep(1300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if stats.transportErrors.Load() == 0 {
		t.Errorf("no request failed on the killed instance: the kill happened outside the load")
	}
	c.checkLoad(t, running, users, stats)
	if a, b := c.wholeFeed(t, running[0]), c.wholeFeed(t, running[1]); !slices.Equal(a, b) {
		t.Errorf("the feeds of the surviving instances differ")
	}

	c.register(t, running[0], "judy")
	tok := c.login(t, running[0], "judy")
	for _, g := range c.gateways {
		if code := c.gw(g, tok.AccessToken); code != http.StatusOK {
			t.Fatalf("%s after the kill: %d", g.name, code)
		}
	}
	if r := c.on(t, running[1], "POST", "/v1/logout", tok.AccessToken, "", ""); r.code != http.StatusNoContent {
		t.Fatalf("logout on %s: %d", c.instances[running[1]].name, r.code)
	}
	loggedOut := time.Now()
	for _, g := range c.gateways {
		clusterWithin(t, "logged-out token refused by "+g.name+" after the kill", loggedOut, propagationBound, func() bool {
			return c.gw(g, tok.AccessToken) == http.StatusUnauthorized
		})
	}
}

// streamingInstance waits until every gateway streams the revocation
// feed from some instance, and returns the index of one that streams to
// at least one gateway (keycard_revocation_feed_subscribers{kind="stream"}).
func (c *cluster) streamingInstance(t *testing.T) int {
	t.Helper()
	const metric = `keycard_revocation_feed_subscribers{kind="stream"} `
	streams := make([]int, len(c.instances))
	c.eventually(t, "every gateway streams the feed", 15*time.Second, func() bool {
		total := 0
		for i := range c.instances {
			r := c.on(t, i, "GET", "/metrics", "", "", "")
			streams[i] = 0
			for line := range strings.Lines(string(r.body)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), metric); ok {
					fmt.Sscan(v, &streams[i])
				}
			}
			total += streams[i]
		}
		return total >= len(c.gateways)
	})
	return slices.Index(streams, slices.Max(streams))
}

// terminateBackends ends every connection to the cluster's database but
// this one, as a failover or an administrator would, and returns how many.
func (c *cluster) terminateBackends(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	u, _ := url.Parse(c.store)
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
		strings.TrimPrefix(u.Path, "/")).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// testClusterPostgresTerminated: every database connection of the
// instances is terminated (pg_terminate_backend) twice under a load of
// logins and refreshes; each instance serves logins, refreshes, session
// lists and the feed again within 5 s, on its own; the load loses no
// session; and revocations still reach every instance's feed within
// 100 ms and both gateways within a second (the LISTEN connection was
// re-established).
func testClusterPostgresTerminated(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{gateways: 2})
	users := c.newLoadUsers(t, 4)
	conn, err := pgx.Connect(context.Background(), c.adminPG)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())

	stats := &clusterLoadStats{}
	stop := make(chan struct{})
	wg := c.runLoad(users, stop, stats)
	time.Sleep(500 * time.Millisecond)
	n1 := c.terminateBackends(t, conn)
	time.Sleep(300 * time.Millisecond)
	n2 := c.terminateBackends(t, conn)
	terminated := time.Now()
	t.Logf("terminated %d, then %d database connections under load", n1, n2)

	c.register(t, 0, "erin")
	for i := range c.instances {
		clusterWithin(t, c.instances[i].name+" serves again", terminated, 2*propagationBound, func() bool {
			r, err := c.do("POST", c.instances[i].base+"/v1/login", "", "application/json", clusterLoginBody("erin"), nil)
			var tr tokenResponse
			if err != nil || r.code != http.StatusOK || r.decode(&tr) != nil {
				return false
			}
			r, err = c.do("POST", c.instances[i].base+"/oauth/token", "", "application/x-www-form-urlencoded", clusterRefreshForm(tr.RefreshToken), nil)
			if err != nil || r.code != http.StatusOK || r.decode(&tr) != nil {
				return false
			}
			r, err = c.do("GET", c.instances[i].base+"/v1/sessions", tr.AccessToken, "", "", nil)
			if err != nil || r.code != http.StatusOK {
				return false
			}
			_, _, err = c.readFeedPage(c.instances[i].base, 0, "")
			return err == nil
		})
	}
	time.Sleep(time.Until(terminated.Add(time.Second)))
	close(stop)
	wg.Wait()
	c.checkLoad(t, []int{0, 1, 2}, users, stats)

	// The instances' LISTEN connections were cut too: a logout on one
	// instance must still wake every instance's feed, and both gateways.
	tok := c.login(t, 0, "erin")
	c.feedArrival(t, []int{0, 1, 2}, c.feedEnd(t), "session", tok.SessionID, func() {
		if r := c.on(t, 0, "POST", "/v1/logout", tok.AccessToken, "", ""); r.code != http.StatusNoContent {
			t.Fatalf("logout: %d", r.code)
		}
	})
	loggedOut := time.Now()
	for _, g := range c.gateways {
		clusterWithin(t, "logged-out token refused by "+g.name, loggedOut, propagationBound, func() bool {
			return c.gw(g, tok.AccessToken) == http.StatusUnauthorized
		})
	}
}

// readiness returns the status of instance i's /readyz.
func (c *cluster) readiness(t *testing.T, i int) string {
	t.Helper()
	r := c.on(t, i, "GET", "/readyz", "", "", "")
	var ready struct{ Status string }
	if r.code != http.StatusOK || r.decode(&ready) != nil {
		t.Fatalf("readyz of %s: %d %s", c.instances[i].name, r.code, r.body)
	}
	return ready.Status
}

// testClusterRedisStopped: with Redis reachable the login throttle is
// shared by the instances; with Redis stopped (a proxy in front of it is
// shut, the real one is not touched) logins go on, every instance
// reports degraded in /readyz and throttles with its own limits; once
// Redis is back every instance shares again.
func testClusterRedisStopped(t *testing.T, bin string) {
	c := newCluster(t, bin, clusterOptions{redisProxy: true, serveArgs: []string{"--login-attempts", "2", "--login-address-attempts", "1000"}})
	c.register(t, 0, "frank")
	bad := func(username string) string {
		return fmt.Sprintf(`{"username":%q,"password":"not the password"}`, username)
	}
	for i := range c.instances {
		if s := c.readiness(t, i); s != "ok" {
			t.Errorf("readyz of %s with Redis up: %s", c.instances[i].name, s)
		}
	}
	// Shared: two failures on instance 1, the third on instance 2 is held.
	c.register(t, 0, "grace")
	for k, i := range []int{0, 0, 1} {
		want := http.StatusUnauthorized
		if k == 2 {
			want = http.StatusTooManyRequests
		}
		if r := c.on(t, i, "POST", "/v1/login", "", "application/json", bad("grace")); r.code != want {
			t.Errorf("failed login %d of grace on %s with Redis up: %d, want %d", k+1, c.instances[i].name, r.code, want)
		}
	}

	c.redis.stop()
	stopped := time.Now()
	for i := range c.instances {
		c.login(t, i, "frank") // fails the test unless 200
	}
	t.Logf("logins on the three instances with Redis stopped took %v", time.Since(stopped).Round(time.Millisecond))
	for i := range c.instances {
		c.eventually(t, c.instances[i].name+" reports degraded", 10*time.Second, func() bool {
			c.on(t, i, "POST", "/v1/login", "", "application/json", clusterLoginBody("frank"))
			return c.readiness(t, i) == "degraded"
		})
	}
	// Local limits: two failures on instance 1 hold the third there, but
	// instance 2 has seen none.
	c.register(t, 1, "heidi")
	for k, i := range []int{0, 0, 0, 1} {
		want := http.StatusUnauthorized
		if k == 2 {
			want = http.StatusTooManyRequests
		}
		if r := c.on(t, i, "POST", "/v1/login", "", "application/json", bad("heidi")); r.code != want {
			t.Errorf("failed login %d of heidi on %s with Redis stopped: %d, want %d", k+1, c.instances[i].name, r.code, want)
		}
	}

	if err := c.redis.start(); err != nil {
		t.Fatalf("restarting the Redis proxy: %v", err)
	}
	for i := range c.instances {
		d := c.eventually(t, c.instances[i].name+" shares again", 15*time.Second, func() bool {
			c.on(t, i, "POST", "/v1/login", "", "application/json", clusterLoginBody("frank"))
			return c.readiness(t, i) == "ok"
		})
		t.Logf("%s back on Redis %v after it returned", c.instances[i].name, d.Round(time.Millisecond))
	}
}
