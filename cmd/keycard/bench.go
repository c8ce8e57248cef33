package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/keycard-auth/keycard/internal/loadgen"
)

// Defaults of keycard bench.
const (
	benchDefaultConcurrency     = 16 // closed loop
	benchDefaultRevConcurrency  = 1  // closed loop, revocation-latency: one logout at a time
	benchDefaultOpenConcurrency = 64 // open loop: the most requests in flight
	benchDefaultDuration        = 10 * time.Second
	benchDefaultTimeout         = 10 * time.Second
)

// benchFlags are the flags of keycard bench.
type benchFlags struct {
	workload                          string
	target, gateway, path             string
	concurrency                       int
	rate                              float64
	duration                          time.Duration
	requests                          int64
	timeout, pollInterval, revTimeout time.Duration
	adminUser, adminPassword          string
	metricsURL                        string
	serverPID                         int
	jsonOut, quiet                    bool
	dpop                              bool // gateway with DPoP: the gateway-dpop workload
}

// bench runs "keycard bench WORKLOAD --target URL …": a load test of a
// running deployment (docs/bench.md). The run itself is loadgen.Bench;
// this reads the command line and prints the result.
func (e *cmdEnv) bench(args []string) int {
	f, code, ok := e.benchFlags(args)
	if !ok {
		return code
	}
	opts, err := f.options(e.getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard bench: %v\n", err)
		return exitUsage
	}
	opts.Logf = func(format string, a ...any) {
		fmt.Fprintf(e.stderr, "keycard bench: "+format+"\n", a...)
	}
	var progress *progressPrinter
	if !f.quiet {
		progress = &progressPrinter{w: e.stderr, terminal: isTerminal(e.stderr)}
		opts.Config.Progress = progress.print
	}
	report, err := loadgen.Bench(e.ctx, opts)
	if progress != nil {
		progress.finish()
	}
	if report == nil {
		return e.fail("bench: %v", err)
	}
	report.Command = benchCommand(args)
	if f.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return e.fail("bench: %v", err)
		}
	} else if err := report.WriteTable(e.stdout); err != nil {
		return e.fail("bench: %v", err)
	}
	code = exitOK
	if err != nil { // the teardown failed
		fmt.Fprintf(e.stderr, "keycard bench: %v\n", err)
		code = exitFailure
	}
	switch {
	case report.Interrupted:
		fmt.Fprintln(e.stderr, "keycard bench: interrupted")
		return exitFailure
	case report.Successes == 0:
		fmt.Fprintln(e.stderr, "keycard bench: no request succeeded")
		return exitFailure
	}
	return code
}

// benchFlags parses the command line of keycard bench. With ok false,
// the caller returns code: help was printed, or a bad command line was
// explained.
func (e *cmdEnv) benchFlags(args []string) (f benchFlags, code int, ok bool) {
	fs := e.flagSet("bench")
	fs.StringVar(&f.target, "target", "", "the auth server's base `URL`, such as http://127.0.0.1:4000")
	fs.StringVar(&f.gateway, "gateway", "", "the gateway's base `URL` (gateway and revocation-latency workloads)")
	fs.StringVar(&f.path, "path", "/", "`path` requested through the gateway; its route must accept a plain user's token")
	fs.IntVar(&f.concurrency, "concurrency", 0, fmt.Sprintf("workers: requests in flight (closed loop, default %d; %d for revocation-latency), or the most in flight with --rate (default %d)",
		benchDefaultConcurrency, benchDefaultRevConcurrency, benchDefaultOpenConcurrency))
	fs.Float64Var(&f.rate, "rate", 0, "open loop: start this many requests per second on a fixed schedule; latency counts from each scheduled start")
	fs.DurationVar(&f.duration, "duration", 0, fmt.Sprintf("how long to send requests (default %v unless --requests)", benchDefaultDuration))
	fs.Int64Var(&f.requests, "requests", 0, "how many requests to send, instead of --duration")
	fs.DurationVar(&f.timeout, "timeout", benchDefaultTimeout, "time limit of one HTTP request")
	fs.StringVar(&f.adminUser, "admin-user", "", "`username` of an admin, who creates and deletes the bench users and clients (or KEYCARD_BENCH_ADMIN_USER)")
	fs.StringVar(&f.adminPassword, "admin-password", "", "the admin's password; prefer KEYCARD_BENCH_ADMIN_PASSWORD, which other users of the machine cannot see")
	fs.DurationVar(&f.pollInterval, "poll-interval", loadgen.DefaultPollInterval, "revocation-latency: how often to ask the gateway whether the token is refused yet")
	fs.DurationVar(&f.revTimeout, "revocation-timeout", loadgen.DefaultRevocationTimeout, "revocation-latency: how long to wait for the refusal before counting an error")
	fs.StringVar(&f.metricsURL, "metrics-url", "", "`URL` of the server's Prometheus metrics, for its CPU time per request (default: /metrics of --target, or of --gateway for the gateway workload)")
	fs.IntVar(&f.serverPID, "server-pid", 0, "`PID` of the server on this machine, for its CPU time per request from /proc/PID/stat (Linux), instead of its metrics")
	fs.BoolVar(&f.jsonOut, "json", false, "print the result as one JSON object (docs/bench.md describes its members)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	fs.BoolVar(&f.dpop, "dpop", false, "with the gateway workload: DPoP-bound tokens and a fresh proof per request, the same as the gateway-dpop workload (docs/dpop.md)")
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: keycard bench WORKLOAD --target URL [--concurrency N | --rate R] [--duration D | --requests N] [--metrics-url URL | --server-pid PID] [--json]\n\n"+
			"Workloads: %s\n\nFlags:\n", strings.Join(loadgen.WorkloadNames(), ", "))
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}

	// The workload may come before, among or after the flags.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(e.stdout)
				return f, exitOK, false
			}
			fmt.Fprintf(e.stderr, "keycard bench: %v\n", err)
			usage(e.stderr)
			return f, exitUsage, false
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintf(e.stderr, "keycard bench: want one workload, got %d\n", len(positional))
		usage(e.stderr)
		return f, exitUsage, false
	}
	f.workload = positional[0]
	return f, exitOK, true
}

// options checks the flags and fills in their defaults, reading the
// admin's credentials from getenv when no flag gives them.
func (f *benchFlags) options(getenv func(string) string) (loadgen.BenchOptions, error) {
	var none loadgen.BenchOptions
	if f.dpop {
		switch f.workload {
		case loadgen.WorkloadGateway, loadgen.WorkloadGatewayDPoP:
			f.workload = loadgen.WorkloadGatewayDPoP
		default:
			return none, fmt.Errorf("--dpop is for the gateway workload, not %s", f.workload)
		}
	}
	if !validWorkload(f.workload) {
		return none, fmt.Errorf("unknown workload %q (want one of %s)", f.workload, strings.Join(loadgen.WorkloadNames(), ", "))
	}
	if f.target == "" {
		return none, errors.New("--target is required: the auth server's URL, such as http://127.0.0.1:4000")
	}
	if err := checkBaseURL(f.target); err != nil {
		return none, fmt.Errorf("--target: %w", err)
	}
	if loadgen.NeedsGateway(f.workload) {
		if f.gateway == "" {
			return none, fmt.Errorf("workload %s needs --gateway URL (and --path)", f.workload)
		}
		if err := checkBaseURL(f.gateway); err != nil {
			return none, fmt.Errorf("--gateway: %w", err)
		}
		if !strings.HasPrefix(f.path, "/") {
			return none, errors.New("--path must start with /")
		}
	}
	if f.rate < 0 || f.rate != f.rate || f.rate > 1e7 {
		return none, errors.New("--rate must be a number of requests per second from 0 to 10000000")
	}
	if f.concurrency < 0 || f.concurrency > 100000 {
		return none, errors.New("--concurrency must be from 1 to 100000")
	}
	if f.duration < 0 || f.requests < 0 {
		return none, errors.New("--duration and --requests must be positive")
	}
	if f.duration > 0 && f.requests > 0 {
		return none, errors.New("give --duration or --requests, not both")
	}
	if f.duration == 0 && f.requests == 0 {
		f.duration = benchDefaultDuration
	}
	if f.timeout <= 0 || f.pollInterval <= 0 || f.revTimeout <= 0 {
		return none, errors.New("--timeout, --poll-interval and --revocation-timeout must be positive")
	}
	if f.concurrency == 0 {
		switch {
		case f.rate > 0:
			f.concurrency = benchDefaultOpenConcurrency
		case f.workload == loadgen.WorkloadRevocationLatency:
			f.concurrency = benchDefaultRevConcurrency
		default:
			f.concurrency = benchDefaultConcurrency
		}
	}
	var serverCPU loadgen.CPUMeter
	switch {
	case f.metricsURL != "" && f.serverPID != 0:
		return none, errors.New("give --metrics-url or --server-pid, not both")
	case f.metricsURL != "":
		if err := checkMetricsURL(f.metricsURL); err != nil {
			return none, fmt.Errorf("--metrics-url: %w", err)
		}
		serverCPU = loadgen.MetricsCPU{URL: f.metricsURL}
	case f.serverPID < 0:
		return none, errors.New("--server-pid must be a process id")
	case f.serverPID > 0:
		serverCPU = loadgen.ProcCPU{PID: f.serverPID}
	}
	if f.adminUser == "" {
		f.adminUser = getenv("KEYCARD_BENCH_ADMIN_USER")
	}
	if f.adminPassword == "" {
		f.adminPassword = getenv("KEYCARD_BENCH_ADMIN_PASSWORD")
	}
	if f.adminUser == "" || f.adminPassword == "" {
		return none, errors.New("bench needs an admin's credentials to create and delete its users and clients: " +
			"--admin-user (or KEYCARD_BENCH_ADMIN_USER) and KEYCARD_BENCH_ADMIN_PASSWORD (or --admin-password)")
	}
	return loadgen.BenchOptions{
		Workload: f.workload,
		Target: loadgen.Target{
			URL:           strings.TrimRight(f.target, "/"),
			Gateway:       strings.TrimRight(f.gateway, "/"),
			Path:          f.path,
			Client:        loadgen.NewClient(f.concurrency, f.timeout),
			AdminUser:     f.adminUser,
			AdminPassword: f.adminPassword,
		},
		Config: loadgen.Config{
			Concurrency: f.concurrency,
			Rate:        f.rate,
			Duration:    f.duration,
			Requests:    f.requests,
		},
		WorkloadOptions: loadgen.WorkloadOptions{PollInterval: f.pollInterval, RevocationTimeout: f.revTimeout},
		ServerCPU:       serverCPU,
	}, nil
}

// benchCommand returns the command line "keycard bench args…" for the
// report, with the value of --admin-password replaced by "…".
func benchCommand(args []string) string {
	out := []string{"keycard", "bench"}
	hideNext := false
	for _, a := range args {
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case hideNext:
			a, hideNext = "…", false
		case strings.HasPrefix(a, "-") && name == "admin-password" && hasValue:
			a = a[:strings.Index(a, "=")+1] + "…"
		case strings.HasPrefix(a, "-") && name == "admin-password":
			hideNext = true
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func validWorkload(name string) bool {
	for _, n := range loadgen.WorkloadNames() {
		if n == name {
			return true
		}
	}
	return false
}

// checkMetricsURL accepts an absolute http or https URL with a host.
func checkMetricsURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http:// or https:// URL such as http://127.0.0.1:9090/metrics, got %q", s)
	}
	return nil
}

// checkBaseURL accepts an absolute http or https URL with a host and
// without a query or fragment.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want an http:// or https:// base URL such as http://127.0.0.1:4000, got %q", s)
	}
	return nil
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressPrinter writes progress lines: on a terminal one line that
// rewrites itself with \r, elsewhere one line per report.
type progressPrinter struct {
	w        io.Writer
	terminal bool
	printed  bool
}

func (p *progressPrinter) print(pr loadgen.Progress) {
	line := loadgen.FormatProgress(pr)
	if p.terminal {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line) // \x1b[K clears what a longer line left
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// finish ends the progress line on a terminal. It is called after the
// run, when print no longer is.
func (p *progressPrinter) finish() {
	if p.terminal && p.printed {
		fmt.Fprintln(p.w)
	}
}
