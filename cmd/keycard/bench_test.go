package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/loadgen"
)

const benchAdminPass = "bench-admin-password"

// benchReport is the part of "keycard bench --json" the tests read.
type benchReport struct {
	Schema       string           `json:"schema"`
	Workload     string           `json:"workload"`
	Target       string           `json:"target"`
	Gateway      string           `json:"gateway"`
	Mode         string           `json:"mode"`
	Concurrency  int              `json:"concurrency"`
	Rate         float64          `json:"rate"`
	DurationS    float64          `json:"duration_s"`
	Requests     int64            `json:"requests"`
	Successes    int64            `json:"successes"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	Throughput   float64          `json:"throughput_per_s"`
	Command      string           `json:"command"`
	Latency      struct {
		Min, Mean, P50, P90, P99, Max float64
		P999                          float64 `json:"p99_9"`
	} `json:"latency_us"`
	Environment struct {
		GoVersion  string `json:"go_version"`
		GOMAXPROCS int    `json:"gomaxprocs"`
	} `json:"environment"`
	ServerCPU    *benchCPU `json:"server_cpu"`
	GeneratorCPU *benchCPU `json:"generator_cpu"`
}

// benchCPU is a CPU figure of the report.
type benchCPU struct {
	Source       string   `json:"source"`
	Seconds      *float64 `json:"cpu_s"`
	USPerRequest *float64 `json:"us_per_request"`
	Unavailable  string   `json:"unavailable"`
}

// checkCPU checks that f is a figure from source, above zero.
func checkCPU(t *testing.T, what string, f *benchCPU, source string) {
	t.Helper()
	switch {
	case f == nil:
		t.Errorf("%s: no CPU figure", what)
	case f.USPerRequest == nil || f.Seconds == nil || f.Unavailable != "":
		t.Errorf("%s: CPU not measured: %q", what, f.Unavailable)
	case f.Source != source || *f.USPerRequest <= 0 || *f.Seconds <= 0:
		t.Errorf("%s: %v µs per request, %v s, from %q; want a positive figure from %q", what, *f.USPerRequest, *f.Seconds, f.Source, source)
	}
}

// benchServer starts a server with an admin user for bench.
func benchServer(t *testing.T, extra ...string) *runningServer {
	t.Helper()
	s := startServer(t, extra...)
	if code, _, errOut := run(t, benchAdminPass+"\n", "users", "add", "--data", s.data, "--username", "benchadmin", "--role", "admin",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	return s
}

// runBench runs keycard bench with the admin's credentials and, for
// --json runs, decodes the report.
func runBench(t *testing.T, s *runningServer, args ...string) (int, benchReport, string, string) {
	t.Helper()
	args = append([]string{"bench"}, args...)
	args = append(args, "--target", s.base, "--admin-user", "benchadmin", "--admin-password", benchAdminPass)
	code, out, errOut := run(t, "", args...)
	var r benchReport
	if code == 0 && strings.Contains(strings.Join(args, " "), "--json") {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench --json printed %q: %v", out, err)
		}
	}
	return code, r, out, errOut
}

// checkReport checks a run of n requests that should all have succeeded.
func checkReport(t *testing.T, r benchReport, workload, mode string, n int64) {
	t.Helper()
	if r.Schema != "keycard-bench/1" || r.Workload != workload || r.Mode != mode {
		t.Errorf("%s: schema %q workload %q mode %q", workload, r.Schema, r.Workload, r.Mode)
	}
	if r.Requests != n || r.Successes != n || r.Errors != 0 || len(r.ErrorsByKind) != 0 {
		t.Errorf("%s: requests %d successes %d errors %d %v, want %d successes and no error", workload, r.Requests, r.Successes, r.Errors, r.ErrorsByKind, n)
	}
	l := r.Latency
	if !(0 < l.Min && l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Min <= l.Mean && l.Mean <= l.Max) {
		t.Errorf("%s: latency percentiles out of order: %+v", workload, l)
	}
	if r.Throughput <= 0 || r.DurationS <= 0 || r.Environment.GoVersion == "" || r.Environment.GOMAXPROCS < 1 {
		t.Errorf("%s: throughput %v duration %v environment %+v", workload, r.Throughput, r.DurationS, r.Environment)
	}
}

// checkCleanedUp checks that no bench user or client is left.
func checkCleanedUp(t *testing.T, s *runningServer) {
	t.Helper()
	for _, what := range []string{"users", "clients"} {
		code, out, errOut := run(t, "", what, "list", "--data", s.data)
		if code != 0 {
			t.Fatalf("%s list: %d %s", what, code, errOut)
		}
		if strings.Contains(out, "kcbench") {
			t.Errorf("bench left %s behind:\n%s", what, out)
		}
	}
}

func TestBenchAuthServerWorkloads(t *testing.T) {
	s := benchServer(t)
	for _, w := range []string{"login", "refresh", "client-credentials", "introspect", "authcode"} {
		code, r, _, errOut := runBench(t, s, w, "--requests", "50", "--concurrency", "4", "--json")
		if code != 0 {
			t.Fatalf("bench %s: exit %d: %s", w, code, errOut)
		}
		checkReport(t, r, w, "closed", 50)
		if r.Concurrency != 4 || r.Target != s.base {
			t.Errorf("%s: concurrency %d target %q", w, r.Concurrency, r.Target)
		}
		if strings.Contains(errOut, benchAdminPass) || strings.Contains(r.Command, benchAdminPass) {
			t.Errorf("%s: the admin password reached the output", w)
		}
		if want := "keycard bench " + w + " --requests 50 --concurrency 4 --json --target " + s.base + " --admin-user benchadmin --admin-password …"; r.Command != want {
			t.Errorf("command %q, want %q", r.Command, want)
		}
	}
	// Open loop, the workload before or after the flags.
	code, r, _, errOut := runBench(t, s, "--rate", "500", "--requests", "50", "--json", "client-credentials")
	if code != 0 {
		t.Fatalf("bench --rate: exit %d: %s", code, errOut)
	}
	checkReport(t, r, "client-credentials", "open", 50)
	if r.Rate != 500 || r.Concurrency != benchDefaultOpenConcurrency {
		t.Errorf("open loop: rate %v concurrency %d", r.Rate, r.Concurrency)
	}
	// The table, for people; progress lines go to stderr.
	code, _, out, errOut := runBench(t, s, "refresh", "--requests", "20", "--concurrency", "2")
	if code != 0 {
		t.Fatalf("bench refresh: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"keycard bench refresh: " + s.base + " (closed loop, 2 workers)", "20 in", "20 ok, 0 failed", "throughput", "p99.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	checkCleanedUp(t, s)
	// Every bench user's session ended with the user, and the admin's
	// sessions with its logout: the server's log names no error.
	if strings.Contains(s.log.String(), `"level":"ERROR"`) {
		t.Errorf("server logged an error:\n%s", s.log.String())
	}
}

// TestBenchAdminPasswordFromEnv: the password can come from
// KEYCARD_BENCH_ADMIN_PASSWORD, and the user from KEYCARD_BENCH_ADMIN_USER.
func TestBenchAdminPasswordFromEnv(t *testing.T) {
	s := benchServer(t)
	t.Setenv("KEYCARD_BENCH_ADMIN_USER", "benchadmin")
	t.Setenv("KEYCARD_BENCH_ADMIN_PASSWORD", benchAdminPass)
	code, out, errOut := run(t, "", "bench", "client-credentials", "--target", s.base, "--requests", "10", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, "client-credentials", "closed", 10)
	if strings.Contains(errOut, "requests ") {
		t.Errorf("--quiet printed progress: %s", errOut)
	}
	checkCleanedUp(t, s)
}

func TestBenchThroughGateway(t *testing.T) {
	s := benchServer(t)
	feed := addClient(t, s.data, "--name", "gateway")
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "feed.secret"), []byte(feed.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	configPath := filepath.Join(dir, "gateway.yaml")
	config := fmt.Sprintf(`
listen: 127.0.0.1:0
issuer: %s
audience: api
client:
  id: %s
  secret_file: feed.secret
routes:
  - path: /me/
    upstream: %s
  - path: /admin/
    upstream: %s
    roles: [admin]
  - path: /dpop/
    upstream: %s
    dpop: required
`, s.base, feed.ClientID, up.URL, up.URL, up.URL)
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, configPath)
	eventually(t, "gateway ready", func() bool {
		code, _ := call(t, "GET", g.base+"/readyz", "", "", "", nil)
		return code == http.StatusOK
	})

	// Enough requests for the gateway's CPU time, counted in 10 ms
	// ticks, to advance (50 once did not).
	code, r, _, errOut := runBench(t, s, "gateway", "--gateway", g.base, "--path", "/me/x", "--requests", "1000", "--concurrency", "4", "--json")
	if code != 0 {
		t.Fatalf("bench gateway: exit %d: %s", code, errOut)
	}
	checkReport(t, r, "gateway", "closed", 1000)
	if r.Gateway != g.base {
		t.Errorf("gateway %q, want %q", r.Gateway, g.base)
	}
	// By default the CPU is the gateway's, from its /metrics.
	checkCPU(t, "gateway", r.ServerCPU, g.base+"/metrics")
	if h := up.last(); h == nil || h.Get("X-Keycard-Subject") == "" {
		t.Errorf("the upstream did not get an authenticated request: %v", h)
	}

	// The same through a route that takes DPoP-bound tokens only: each
	// request with a fresh proof of the user's key.
	code, r, _, errOut = runBench(t, s, "gateway", "--dpop", "--gateway", g.base, "--path", "/dpop/x", "--requests", "1000", "--concurrency", "4", "--json")
	if code != 0 {
		t.Fatalf("bench gateway-dpop: exit %d: %s", code, errOut)
	}
	checkReport(t, r, "gateway-dpop", "closed", 1000)
	checkCPU(t, "gateway-dpop", r.ServerCPU, g.base+"/metrics")
	if h := up.last(); h == nil || h.Get("X-Keycard-Key-Thumbprint") == "" {
		t.Errorf("the upstream did not get a DPoP-bound request: %v", h)
	}

	code, r, _, errOut = runBench(t, s, "revocation-latency", "--gateway", g.base, "--path", "/me/x", "--requests", "10", "--json")
	if code != 0 {
		t.Fatalf("bench revocation-latency: exit %d: %s", code, errOut)
	}
	checkReport(t, r, "revocation-latency", "closed", 10)
	if r.ServerCPU == nil || r.ServerCPU.USPerRequest != nil || !strings.Contains(r.ServerCPU.Unavailable, "not measured for revocation-latency") {
		t.Errorf("revocation-latency server CPU %+v, want none by default, and why", r.ServerCPU)
	}
	if r.Concurrency != benchDefaultRevConcurrency {
		t.Errorf("revocation-latency concurrency %d, want %d", r.Concurrency, benchDefaultRevConcurrency)
	}
	t.Logf("revocation latency through the gateway: p50 %.0fµs p99 %.0fµs max %.0fµs", r.Latency.P50, r.Latency.P99, r.Latency.Max)

	// A route that refuses a plain user's token is a setup error, not a
	// run of 403s.
	code, _, _, errOut = runBench(t, s, "gateway", "--gateway", g.base, "--path", "/admin/x", "--requests", "5")
	if code != exitFailure || !strings.Contains(errOut, "setup") || !strings.Contains(errOut, "403") {
		t.Errorf("route refusing the token: exit %d, stderr %q", code, errOut)
	}
	checkCleanedUp(t, s)
}

func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no workload", []string{"--target", "http://127.0.0.1:1"}, "want one workload, got 0"},
		{"unknown workload", []string{"nope", "--target", "http://127.0.0.1:1"}, `unknown workload "nope"`},
		{"no target", []string{"login"}, "--target is required"},
		{"dpop with another workload", []string{"refresh", "--dpop", "--target", "http://h"}, "--dpop is for the gateway workload"},
		{"bad target", []string{"login", "--target", "127.0.0.1:4000"}, "want an http:// or https:// base URL"},
		{"target with a query", []string{"login", "--target", "http://h/?x=1"}, "base URL"},
		{"duration and requests", []string{"login", "--target", "http://h", "--duration", "1s", "--requests", "5"}, "not both"},
		{"negative requests", []string{"login", "--target", "http://h", "--requests", "-5"}, "must be positive"},
		{"negative rate", []string{"login", "--target", "http://h", "--rate", "-5"}, "--rate"},
		{"NaN rate", []string{"login", "--target", "http://h", "--rate", "NaN"}, "--rate"},
		{"negative concurrency", []string{"login", "--target", "http://h", "--concurrency", "-1"}, "--concurrency"},
		{"zero timeout", []string{"login", "--target", "http://h", "--timeout", "0s"}, "must be positive"},
		{"gateway without --gateway", []string{"gateway", "--target", "http://h"}, "needs --gateway"},
		{"bad gateway URL", []string{"revocation-latency", "--target", "http://h", "--gateway", "ftp://g"}, "--gateway"},
		{"relative path", []string{"gateway", "--target", "http://h", "--gateway", "http://g", "--path", "me"}, "--path must start with /"},
		{"no admin", []string{"login", "--target", "http://h"}, "needs an admin's credentials"},
		{"unknown flag", []string{"login", "--target", "http://h", "--bogus"}, "flag provided but not defined"},
		{"two workloads", []string{"login", "refresh", "--target", "http://h"}, "want one workload, got 2"},
		{"metrics URL and pid", []string{"login", "--target", "http://h", "--metrics-url", "http://h/metrics", "--server-pid", "1"}, "not both"},
		{"bad metrics URL", []string{"login", "--target", "http://h", "--metrics-url", "h:9090/metrics"}, "--metrics-url: want an http://"},
		{"negative pid", []string{"login", "--target", "http://h", "--server-pid", "-4"}, "--server-pid must be a process id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, "", append([]string{"bench"}, tt.args...)...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitUsage, tt.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
	if code, out, errOut := run(t, "", "bench", "-h"); code != exitOK || !strings.Contains(out, "revocation-latency") || errOut != "" {
		t.Errorf("bench -h: exit %d, stdout %q, stderr %q; want the help on stdout", code, out, errOut)
	}
}

// closedAddr returns an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestBenchFailures(t *testing.T) {
	s := benchServer(t)
	if code, _, errOut := run(t, "not-admin-pass\n", "users", "add", "--data", s.data, "--username", "plainuser",
		"--password-stdin", "--argon2-memory", "64", "--argon2-iterations", "1"); code != 0 {
		t.Fatalf("users add: %d %s", code, errOut)
	}
	down := "http://" + closedAddr(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable target", []string{"login", "--target", down, "--admin-user", "a", "--admin-password", "b"}, "is unreachable"},
		{"unreachable gateway", []string{"gateway", "--target", s.base, "--gateway", down, "--admin-user", "benchadmin", "--admin-password", benchAdminPass}, "gateway at " + down + " is unreachable"},
		{"not a Keycard server", []string{"login", "--target", s.base + "/nowhere", "--admin-user", "a", "--admin-password", "b"}, "answers GET /healthz with 404"},
		{"wrong admin password", []string{"login", "--target", s.base, "--admin-user", "benchadmin", "--admin-password", "wrong-password"}, "admin login refused"},
		{"not an admin", []string{"login", "--target", s.base, "--admin-user", "plainuser", "--admin-password", "not-admin-pass"}, `"plainuser" does not have the admin role`},
		{"metrics URL without metrics", []string{"login", "--target", s.base, "--metrics-url", s.base + "/nowhere", "--admin-user", "benchadmin", "--admin-password", benchAdminPass},
			"reading the server's CPU time: " + s.base + "/nowhere answers 404"},
		{"no such server process", []string{"login", "--target", s.base, "--server-pid", "2147483647", "--admin-user", "benchadmin", "--admin-password", benchAdminPass},
			"reading the server's CPU time: no process 2147483647"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, "", append([]string{"bench"}, tt.args...)...)
			if code != exitFailure || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, exitFailure, tt.want)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
		})
	}
}

// TestBenchWithoutRegistration: bench creates its users through the
// admin API, so it works against a server with registration off.
func TestBenchWithoutRegistration(t *testing.T) {
	s := benchServer(t, "--registration", "false")
	if code, _, _, errOut := runBench(t, s, "login", "--requests", "5"); code != 0 {
		t.Errorf("login without registration: exit %d: %s", code, errOut)
	}
	if code, _, _, errOut := runBench(t, s, "client-credentials", "--requests", "5"); code != 0 {
		t.Errorf("client-credentials without registration: exit %d: %s", code, errOut)
	}
	checkCleanedUp(t, s)
}

// TestBenchInterruptCleansUp stops a long run the way Ctrl-C does (the
// context Main gets ends) and checks that the users and client it made
// are deleted.
func TestBenchInterruptCleansUp(t *testing.T) {
	s := benchServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := &syncBuffer{}
	var stdout syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"bench", "introspect", "--target", s.base, "--admin-user", "benchadmin", "--admin-password", benchAdminPass,
			"--duration", "1h", "--concurrency", "2"}, strings.NewReader(""), &stdout, stderr)
	}()
	// Wait for the first progress line, so that setup is over and the
	// run is under way.
	eventually(t, "a progress line", func() bool { return strings.Contains(stderr.String(), " requests ") })
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("bench did not stop after its context ended")
	}
	if code != exitFailure || !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("exit %d, stderr %q; want 1 and interrupted", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "interrupted: the figures cover the requests completed before") {
		t.Errorf("the table does not say the run was interrupted:\n%s", stdout.String())
	}
	checkCleanedUp(t, s)
}

// TestBenchRenewsTokens runs introspect for longer than the access-token
// lifetime: the tokens bench holds are renewed in the background, so none
// is found inactive.
func TestBenchRenewsTokens(t *testing.T) {
	s := benchServer(t, "--access-ttl", "4s")
	code, r, _, errOut := runBench(t, s, "introspect", "--duration", "6s", "--concurrency", "2", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if r.Errors != 0 || r.Successes == 0 {
		t.Errorf("successes %d errors %v, want no error after the first tokens expired", r.Successes, r.ErrorsByKind)
	}
	checkCleanedUp(t, s)
}

func TestBenchCommandHidesPassword(t *testing.T) {
	tests := []struct{ args, want string }{
		{"login --admin-password s3cret --target http://h", "keycard bench login --admin-password … --target http://h"},
		{"login -admin-password=s3cret", "keycard bench login -admin-password=…"},
		{"login --admin-password=s3cret --admin-user admin", "keycard bench login --admin-password=… --admin-user admin"},
		{"login --rate 5", "keycard bench login --rate 5"},
	}
	for _, tt := range tests {
		if got := benchCommand(strings.Fields(tt.args)); got != tt.want || strings.Contains(got, "s3cret") {
			t.Errorf("benchCommand(%s) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestBenchProgressLines(t *testing.T) {
	p := loadgen.Progress{Elapsed: time.Second, Requests: 10, Rate: 10}
	var term, plain strings.Builder
	tp := &progressPrinter{w: &term, terminal: true}
	tp.print(p)
	tp.print(p)
	tp.finish()
	if want := "\r" + loadgen.FormatProgress(p) + "\x1b[K"; term.String() != want+want+"\n" {
		t.Errorf("terminal progress %q, want each line rewriting the last and a final newline", term.String())
	}
	pp := &progressPrinter{w: &plain}
	pp.print(p)
	pp.print(p)
	pp.finish()
	if want := loadgen.FormatProgress(p) + "\n"; plain.String() != want+want {
		t.Errorf("plain progress %q, want one line each", plain.String())
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&plain) {
		t.Error("a regular file or a buffer taken for a terminal")
	}
	if null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0); err == nil {
		defer null.Close()
		if !isTerminal(null) {
			t.Errorf("%s is a character device, like a terminal", os.DevNull)
		}
	}
}

// TestBenchServerCPU: bench reads the server's CPU time from its /metrics
// by default, or from /proc with --server-pid, and divides it by the
// successful requests. The server here runs in the test process, so
// --server-pid is the test's own pid.
func TestBenchServerCPU(t *testing.T) {
	s := benchServer(t)
	code, r, out, errOut := runBench(t, s, "refresh", "--requests", "300", "--concurrency", "4", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkReport(t, r, "refresh", "closed", 300)
	checkCPU(t, "server, from /metrics", r.ServerCPU, s.base+"/metrics")
	if runtime.GOOS == "linux" {
		checkCPU(t, "bench itself", r.GeneratorCPU, fmt.Sprintf("/proc/%d/stat", os.Getpid()))
	}
	if !strings.Contains(out, `"server_cpu": {`) {
		t.Errorf("no server_cpu in the JSON:\n%s", out)
	}

	if runtime.GOOS != "linux" {
		t.Skip("--server-pid reads /proc, which is Linux only")
	}
	pid := os.Getpid()
	// Enough requests for CPU counted in 10 ms ticks to advance.
	code, r, _, errOut = runBench(t, s, "client-credentials", "--requests", "1000", "--concurrency", "4", "--server-pid", strconv.Itoa(pid), "--json", "--quiet")
	if code != 0 {
		t.Fatalf("--server-pid: exit %d: %s", code, errOut)
	}
	checkCPU(t, "server, from /proc", r.ServerCPU, fmt.Sprintf("/proc/%d/stat", pid))

	// The table says it too.
	code, _, out, errOut = runBench(t, s, "client-credentials", "--requests", "1000", "--quiet")
	if code != 0 {
		t.Fatalf("table: exit %d: %s", code, errOut)
	}
	if !regexp.MustCompile(`server CPU +[0-9.]+(µs|ms) per successful request \([0-9.]+ s in all, from ` + regexp.QuoteMeta(s.base) + `/metrics\)`).MatchString(out) {
		t.Errorf("table lacks the server CPU line:\n%s", out)
	}
	checkCleanedUp(t, s)
}

// fakeMetrics serves a /metrics page whose process_cpu_seconds_total
// grows by step on every scrape, with the start time start(n) of the
// n-th scrape (from 1).
func fakeMetrics(t *testing.T, step float64, start func(n int) string) string {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		cpu := 100 + step*float64(n-1)
		st := start(n)
		mu.Unlock()
		fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\nprocess_start_time_seconds %s\n", cpu, st)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

// TestBenchServerCPUFakeMetrics: a /metrics whose CPU time advances by
// 0.5 s between two scrapes, around a run of 100 successful requests, is
// 5,000 µs per request; readings of two different processes give no
// figure, and say why.
func TestBenchServerCPUFakeMetrics(t *testing.T) {
	s := benchServer(t)
	same := fakeMetrics(t, 0.5, func(int) string { return "1700000000.5" })
	code, r, _, errOut := runBench(t, s, "client-credentials", "--requests", "100", "--concurrency", "2", "--metrics-url", same, "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	f := r.ServerCPU
	if f == nil || f.USPerRequest == nil || *f.USPerRequest != 5000 || *f.Seconds != 0.5 || f.Source != same {
		t.Errorf("server CPU %+v, want 5000 µs per request, 0.5 s, from %s", f, same)
	}

	restarting := fakeMetrics(t, 0.5, func(n int) string { return strconv.Itoa(1700000000 + n) })
	code, r, _, errOut = runBench(t, s, "client-credentials", "--requests", "20", "--metrics-url", restarting, "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if f := r.ServerCPU; f == nil || f.USPerRequest != nil || f.Seconds != nil || !strings.Contains(f.Unavailable, "different processes") {
		t.Errorf("server CPU %+v, want no figure: the readings are of different processes", f)
	}
	code, _, out, errOut := runBench(t, s, "client-credentials", "--requests", "20", "--metrics-url", restarting, "--quiet")
	if code != 0 || !strings.Contains(out, "server CPU  not measured: the two readings are of different processes") {
		t.Errorf("exit %d (%s), table:\n%s\nwant it to say the server CPU was not measured", code, errOut, out)
	}
	checkCleanedUp(t, s)
}
