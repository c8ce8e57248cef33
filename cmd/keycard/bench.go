package main

import (
	"context"
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
	benchTeardownTimeout        = time.Minute
)

// bench runs "keycard bench WORKLOAD --target URL …": a load test of a
// running deployment (docs/bench.md).
func (e *cmdEnv) bench(args []string) int {
	command := benchCommand(args)
	fs := e.flagSet("bench")
	target := fs.String("target", "", "the auth server's base `URL`, such as http://127.0.0.1:4000")
	gateway := fs.String("gateway", "", "the gateway's base `URL` (gateway and revocation-latency workloads)")
	path := fs.String("path", "/", "`path` requested through the gateway; its route must accept a plain user's token")
	concurrency := fs.Int("concurrency", 0, fmt.Sprintf("workers: requests in flight (closed loop, default %d; %d for revocation-latency), or the most in flight with --rate (default %d)",
		benchDefaultConcurrency, benchDefaultRevConcurrency, benchDefaultOpenConcurrency))
	rate := fs.Float64("rate", 0, "open loop: start this many requests per second on a fixed schedule; latency counts from each scheduled start")
	duration := fs.Duration("duration", 0, fmt.Sprintf("how long to send requests (default %v unless --requests)", benchDefaultDuration))
	requests := fs.Int64("requests", 0, "how many requests to send, instead of --duration")
	timeout := fs.Duration("timeout", benchDefaultTimeout, "time limit of one HTTP request")
	adminUser := fs.String("admin-user", "", "`username` of an admin, who creates and deletes the bench users and clients (or KEYCARD_BENCH_ADMIN_USER)")
	adminPassword := fs.String("admin-password", "", "the admin's password; prefer KEYCARD_BENCH_ADMIN_PASSWORD, which other users of the machine cannot see")
	pollInterval := fs.Duration("poll-interval", loadgen.DefaultPollInterval, "revocation-latency: how often to ask the gateway whether the token is refused yet")
	revTimeout := fs.Duration("revocation-timeout", loadgen.DefaultRevocationTimeout, "revocation-latency: how long to wait for the refusal before counting an error")
	jsonOut := fs.Bool("json", false, "print the result as one JSON object (docs/bench.md describes its members)")
	quiet := fs.Bool("quiet", false, "no progress lines")
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: keycard bench WORKLOAD --target URL [--concurrency N | --rate R] [--duration D | --requests N] [--json]\n\n"+
			"Workloads: %s\n\nFlags:\n", strings.Join(loadgen.WorkloadNames(), ", "))
		fs.PrintDefaults()
	}

	// The workload may come before, among or after the flags.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintf(e.stderr, "keycard bench: want one workload, got %d\n", len(positional))
		printFlags(e.stderr, fs)
		return exitUsage
	}
	workload := positional[0]

	usage := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "keycard bench: "+format+"\n", a...)
		return exitUsage
	}
	if !validWorkload(workload) {
		return usage("unknown workload %q (want one of %s)", workload, strings.Join(loadgen.WorkloadNames(), ", "))
	}
	if *target == "" {
		return usage("--target is required: the auth server's URL, such as http://127.0.0.1:4000")
	}
	if err := checkBaseURL(*target); err != nil {
		return usage("--target: %v", err)
	}
	if loadgen.NeedsGateway(workload) {
		if *gateway == "" {
			return usage("workload %s needs --gateway URL (and --path)", workload)
		}
		if err := checkBaseURL(*gateway); err != nil {
			return usage("--gateway: %v", err)
		}
		if !strings.HasPrefix(*path, "/") {
			return usage("--path must start with /")
		}
	}
	if *rate < 0 || *rate != *rate || *rate > 1e7 {
		return usage("--rate must be a number of requests per second from 0 to 10000000")
	}
	if *concurrency < 0 || *concurrency > 100000 {
		return usage("--concurrency must be from 1 to 100000")
	}
	if *duration < 0 || *requests < 0 {
		return usage("--duration and --requests must be positive")
	}
	if *duration > 0 && *requests > 0 {
		return usage("give --duration or --requests, not both")
	}
	if *duration == 0 && *requests == 0 {
		*duration = benchDefaultDuration
	}
	if *timeout <= 0 || *pollInterval <= 0 || *revTimeout <= 0 {
		return usage("--timeout, --poll-interval and --revocation-timeout must be positive")
	}
	if *concurrency == 0 {
		switch {
		case *rate > 0:
			*concurrency = benchDefaultOpenConcurrency
		case workload == loadgen.WorkloadRevocationLatency:
			*concurrency = benchDefaultRevConcurrency
		default:
			*concurrency = benchDefaultConcurrency
		}
	}
	if *adminUser == "" {
		*adminUser = e.getenv("KEYCARD_BENCH_ADMIN_USER")
	}
	if *adminPassword == "" {
		*adminPassword = e.getenv("KEYCARD_BENCH_ADMIN_PASSWORD")
	}
	if *adminUser == "" || *adminPassword == "" {
		return usage("bench needs an admin's credentials to create and delete its users and clients: " +
			"--admin-user (or KEYCARD_BENCH_ADMIN_USER) and KEYCARD_BENCH_ADMIN_PASSWORD (or --admin-password)")
	}

	t := loadgen.Target{
		URL:           strings.TrimRight(*target, "/"),
		Gateway:       strings.TrimRight(*gateway, "/"),
		Path:          *path,
		Client:        loadgen.NewClient(*concurrency, *timeout),
		AdminUser:     *adminUser,
		AdminPassword: *adminPassword,
	}
	fx := loadgen.NewFixture(t)
	w, err := loadgen.NewWorkload(workload, fx, loadgen.WorkloadOptions{PollInterval: *pollInterval, RevocationTimeout: *revTimeout})
	if err != nil {
		return usage("%v", err)
	}

	ctx := e.ctx
	if err := fx.Check(ctx); err != nil {
		return e.fail("bench: %v", err)
	}
	if loadgen.NeedsGateway(workload) {
		if err := fx.CheckGateway(ctx); err != nil {
			return e.fail("bench: %v", err)
		}
	}
	if err := fx.AdminLogin(ctx); err != nil {
		return e.fail("bench: %v", err)
	}
	// Whatever happens from here on (an error, Ctrl-C), delete what was
	// created, with a context of its own.
	teardown := func() int {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), benchTeardownTimeout)
		defer cancel()
		if err := fx.Teardown(tctx); err != nil {
			fmt.Fprintf(e.stderr, "keycard bench: cleaning up left users or clients named %s-… behind: %v\n", fx.Prefix(), err)
			return exitFailure
		}
		return exitOK
	}

	fmt.Fprintf(e.stderr, "keycard bench: setting up %s (users and clients named %s-…)\n", workload, fx.Prefix())
	if err := w.Setup(ctx, *concurrency); err != nil {
		teardown()
		if ctx.Err() != nil {
			return e.fail("bench: interrupted during setup")
		}
		return e.fail("bench: setup: %v", err)
	}

	cfg := loadgen.Config{
		Concurrency: *concurrency,
		Rate:        *rate,
		Duration:    *duration,
		Requests:    *requests,
		SelfTimed:   w.SelfTimed(),
	}
	var progress *progressPrinter
	if !*quiet {
		progress = &progressPrinter{w: e.stderr, terminal: isTerminal(e.stderr)}
		cfg.Progress = progress.print
	}
	res, err := loadgen.Run(ctx, cfg, w.Op)
	if progress != nil {
		progress.finish()
	}
	if err != nil {
		teardown()
		return e.fail("bench: %v", err)
	}
	code := teardown()

	report := loadgen.NewReport(workload, t, res, loadgen.CurrentEnvironment())
	report.Command = command
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return e.fail("bench: %v", err)
		}
	} else if err := report.WriteTable(e.stdout); err != nil {
		return e.fail("bench: %v", err)
	}
	switch {
	case res.Interrupted:
		fmt.Fprintln(e.stderr, "keycard bench: interrupted")
		return exitFailure
	case report.Successes == 0:
		fmt.Fprintln(e.stderr, "keycard bench: no request succeeded")
		return exitFailure
	}
	return code
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
