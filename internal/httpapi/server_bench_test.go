package httpapi_test

// Benchmarks of the auth server end to end: the real handler on a real
// loopback listener, over a real auth.Service on SQLite in a temporary
// directory, with ES256 signing keys and the default argon2id parameters
// (19 MiB, t=2, p=1), wired as cmd/keycard's serve wires them. Run all
// three side by side with
//
//	go test -run '^$' -bench 'RefreshGrant|Login|Argon2id' -benchtime 5s -count 3 ./internal/httpapi
//
// BENCHMARKS.md ("Auth server (HTTP, SQLite)") has the figures and the
// targets: at least 5,000 refresh grants/s on the 2-core machine, and a
// login rate at least 0.9× the raw argon2id rate (BenchmarkArgon2idHash,
// Verify with the same parameters and parallelism, since login verifies).
//
// Every response is checked to be a 200 with the expected body, so no
// failure path is ever measured.
//
// Besides its rate, each benchmark reports cpu-us/op: the CPU time (user
// and system) the whole test process spent per operation while the timer
// ran — server, client and runtime together, as /proc/self/stat counts it
// (Linux only; elsewhere the metric is left out). Other programs on a
// shared machine lower the rates much more than this figure, and on N
// cores it bounds the rate: at most N/cpu-per-op operations per second.

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
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/httpapi"
	"github.com/keycard-auth/keycard/internal/metrics"
	"github.com/keycard-auth/keycard/internal/password"
	"github.com/keycard-auth/keycard/internal/sqlite"
	"github.com/keycard-auth/keycard/internal/storetrace"
	"github.com/keycard-auth/keycard/internal/throttle"
	"github.com/keycard-auth/keycard/internal/tracing"
	"github.com/keycard-auth/keycard/jose"
	"go.opentelemetry.io/otel/trace"
)

const (
	// benchParallelism is passed to b.SetParallelism: RunParallel runs
	// benchParallelism×GOMAXPROCS goroutines, each one concurrent client
	// (16 on the 2-core machine), enough to keep both cores busy while
	// requests wait on the loopback network and the SQLite writer.
	benchParallelism = 8
	benchIssuer      = "http://keycard.bench"
	benchPassword    = "correct horse battery staple"
)

// benchServer is a running auth server and an HTTP client for it.
type benchServer struct {
	svc    *auth.Service
	url    string
	client *http.Client
}

// benchWorkers is how many goroutines RunParallel starts with
// benchParallelism.
func benchWorkers() int { return benchParallelism * runtime.GOMAXPROCS(0) }

// newBenchServer starts the server as cmd/keycard's serve does with its
// default flags: SQLite in a fresh directory, a sealed ES256 key, the
// default argon2id parameters, the in-memory login throttles, Prometheus
// metrics and an info-level JSON request log (to io.Discard, so that its
// formatting is paid for but no I/O). Its http.Client keeps an idle
// connection for every worker, so no request pays for a new TCP
// connection.
func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "keycard.db"),
		sqlite.Options{RevocationTTL: auth.DefaultAccessTTL + auth.DefaultLeeway})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return newBenchServerOn(b, db.Stores())
}

// newBenchServerOn is newBenchServer on the given stores.
func newBenchServerOn(b *testing.B, stores keycard.Stores) *benchServer {
	b.Helper()
	return newBenchServerTraced(b, stores, nil)
}

// newBenchServerTraced is newBenchServerOn with tracing through tp, as
// internal/server wires it (traced stores, the auth hook, the request
// spans, trace ids in the log); nil tp is no tracing.
func newBenchServerTraced(b *testing.B, stores keycard.Stores, tp trace.TracerProvider) *benchServer {
	b.Helper()
	stores = storetrace.Wrap(stores, tp, storetrace.SQLite)
	ctx := context.Background()
	master, err := auth.GenerateMasterKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	mk, err := auth.ParseMasterKey([]byte(master))
	if err != nil {
		b.Fatal(err)
	}
	sealer, err := auth.NewSealer(mk)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := auth.NewKeyManager(stores.Keys, sealer, auth.KeyOptions{
		Algorithm: jose.ES256,
		RetainFor: auth.DefaultAccessTTL + auth.DefaultLeeway,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := keys.Maintain(ctx); err != nil {
		b.Fatal(err)
	}
	log := slog.New(httpapi.WithRequestID(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if tp != nil {
		log = slog.New(tracing.LogHandler(log.Handler()))
	}
	hasher := &password.Hasher{Params: password.DefaultParams()}
	// The login throttles of serve's defaults count failures only, so
	// the benchmarks' successful logins pay for them but are never
	// refused.
	limits := auth.LoginLimits{
		Account: throttle.NewMemory(throttle.Policy{Burst: throttle.DefaultBurst}, nil),
		Address: throttle.NewMemory(throttle.Policy{Burst: 20}, nil),
	}
	m := metrics.New(metrics.Options{Keys: keys.Keys})
	svc, err := auth.NewService(auth.Deps{Stores: stores, Keys: keys, Sealer: sealer, Hasher: hasher, Logger: log,
		LoginLimits: limits, Metrics: m, Trace: tracing.Operation(tp, tracing.OpOptions{})}, auth.Config{Issuer: benchIssuer})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(httpapi.New(svc, httpapi.Options{Logger: log, Metrics: m, Tracer: tp}))
	b.Cleanup(ts.Close)

	idle := 2 * benchWorkers()
	tr := &http.Transport{
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchServer{svc: svc, url: ts.URL, client: &http.Client{Transport: tr}}
}

// register creates a user directly through the service.
func (s *benchServer) register(name string) error {
	_, err := s.svc.Register(context.Background(), name, benchPassword, []string{"user"})
	return err
}

// tokenJSON is the part of a token response the benchmarks check.
type tokenJSON struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

// post sends one request and decodes a 200 token response, returning an
// error for anything else.
func (s *benchServer) post(path, contentType, body string) (*tokenJSON, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: status %d: %s", path, resp.StatusCode, data)
	}
	var t tokenJSON
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("POST %s: %v in %s", path, err, data)
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.SessionID == "" || t.TokenType != "Bearer" {
		return nil, fmt.Errorf("POST %s: incomplete token response %s", path, data)
	}
	return &t, nil
}

func loginBody(name string) string {
	b, _ := json.Marshal(map[string]string{"username": name, "password": benchPassword})
	return string(b)
}

func (s *benchServer) login(name string) (*tokenJSON, error) {
	return s.post("/v1/login", "application/json", loginBody(name))
}

func (s *benchServer) refresh(token string) (*tokenJSON, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
	return s.post("/oauth/token", "application/x-www-form-urlencoded", form.Encode())
}

// processCPU returns the CPU time, user and system, that this process has
// used, read from /proc/self/stat; ok is false where there is no such
// file.
func processCPU() (d time.Duration, ok bool) {
	user, sys, ok := processTimes()
	return user + sys, ok
}

// processTimes returns the user and the system CPU time this process has
// used, read from /proc/self/stat; ok is false where there is no such
// file.
func processTimes() (user, sys time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, false
	}
	// Field 2, the command name, is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	// In clock ticks of USER_HZ, which is 100 on Linux whatever the kernel's HZ.
	const tick = time.Second / 100
	return time.Duration(utime) * tick, time.Duration(stime) * tick, true
}

// cpuMeter measures the process's CPU time from its start to report.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	d, ok := processCPU()
	return cpuMeter{d, ok}
}

// report adds the cpu-us/op metric.
func (m cpuMeter) report(b *testing.B) {
	end, ok := processCPU()
	if ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(end-m.start)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
	}
}

// BenchmarkRefreshGrant measures POST /oauth/token with
// grant_type=refresh_token. Each parallel worker owns one session and
// always presents the newest refresh token of its chain, so every request
// is a real rotation (a SQLite write transaction, a sealed successor and a
// new ES256-signed access token), never a replay answered from the grace
// window; a response that hands back the presented token fails it.
func BenchmarkRefreshGrant(b *testing.B) {
	benchRefreshGrant(b, newBenchServer(b))
}

// benchRefreshGrant is BenchmarkRefreshGrant on the server s.
func benchRefreshGrant(b *testing.B, s *benchServer) {
	if err := s.register("refresher"); err != nil {
		b.Fatal(err)
	}
	n := benchWorkers()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range tokens {
		wg.Go(func() {
			t, err := s.login("refresher")
			if err != nil {
				errs <- err
				return
			}
			tokens[i] = t.RefreshToken
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	// Rotate each chain once before the timer starts.
	for i, tok := range tokens {
		t, err := s.refresh(tok)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t.RefreshToken
	}

	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) - 1)
		if i >= len(tokens) {
			b.Errorf("worker %d of %d: more workers than sessions", i, len(tokens))
			return
		}
		token := tokens[i]
		for pb.Next() {
			t, err := s.refresh(token)
			if err != nil {
				b.Error(err)
				return
			}
			if t.RefreshToken == token {
				b.Error("refresh answered with the presented token: not a rotation")
				return
			}
			token = t.RefreshToken
		}
	})
	b.StopTimer()
	if b.Failed() {
		b.FailNow()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "grants/s")
	cpu.report(b)
}

// BenchmarkLogin measures POST /v1/login with a correct password: argon2id
// verification, a new session with its refresh token, an audit event and
// an ES256-signed access token.
func BenchmarkLogin(b *testing.B) {
	benchLogin(b, newBenchServer(b))
}

// benchLogin is BenchmarkLogin on the server s.
func benchLogin(b *testing.B, s *benchServer) {
	bodies := s.loginUsers(b, "user")

	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		body := bodies[int(next.Add(1)-1)%len(bodies)]
		for pb.Next() {
			if _, err := s.post("/v1/login", "application/json", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if b.Failed() {
		b.FailNow()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
	cpu.report(b)
}

// loginUsers registers benchWorkers() users named prefix00, prefix01, …
// and returns their login request bodies, one per worker.
func (s *benchServer) loginUsers(b *testing.B, prefix string) []string {
	n := benchWorkers()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	// Hash the passwords concurrently: setup time is not measured, but
	// it is waited for.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, name := range names {
		wg.Go(func() { errs <- s.register(name) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	bodies := make([]string, n)
	for i, name := range names {
		bodies[i] = loginBody(name)
	}
	return bodies
}

// BenchmarkArgon2idHash measures password.Hasher.Verify of a correct
// password against a hash stored with the default parameters — the work a
// login does — with the same parallelism as BenchmarkLogin. Its rate is
// the ceiling the login rate is compared with.
func BenchmarkArgon2idHash(b *testing.B) {
	h := &password.Hasher{Params: password.DefaultParams()}
	stored, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	if ok, rehash, err := h.Verify(benchPassword, stored); !ok || rehash || err != nil {
		b.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
	}
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	cpu := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, _, err := h.Verify(benchPassword, stored)
			if !ok || err != nil {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
	b.StopTimer()
	if b.Failed() {
		b.FailNow()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
	cpu.report(b)
}
