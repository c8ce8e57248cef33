// Command wrkbench runs wrk with one of the scripts in bench/wrk and
// reports what keycard bench reports: throughput, latency, errors, and the
// CPU time per successful request of the server (read around the run
// from its /metrics or /proc/PID/stat, as keycard bench does) and of wrk
// itself (its rusage). bench/all.sh and bench/peers/run.sh use it to set
// wrk beside keycard bench, and Keycard beside its peers.
//
// With -keycard URL it first prepares what the workload needs on that
// Keycard auth server, through the admin API as keycard bench does
// (internal/loadgen's Fixture: users named kcbench-…, a service client
// with scope bench:read, logins), hands it to the script in WRK_*
// variables and files, and deletes it afterwards. Without it the caller
// sets the WRK_* variables (bench/peers does, for Hydra).
//
// Usage:
//
//	wrkbench -workload W [-keycard URL] [-server-pid PID | -metrics-url URL]
//	         [-label TEXT] [-out FILE] -- wrk -t2 -c16 -d20s -s bench/wrk/W.lua URL
//
// The admin's credentials come from KEYCARD_BENCH_ADMIN_USER and
// KEYCARD_BENCH_ADMIN_PASSWORD. The result is one JSON object, schema
// keycard-wrk/1, whose members are those of keycard bench's keycard-bench/1
// that apply (docs/bench.md) plus tool, label and wrk_threads.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keycard-auth/keycard/internal/loadgen"
)

// Schema names the version of Result's JSON form.
const Schema = "keycard-wrk/1"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wrkbench:", err)
		os.Exit(1)
	}
}

// Result is a wrk run in the form wrkbench prints.
type Result struct {
	Schema       string             `json:"schema"`
	Tool         string             `json:"tool"`
	Workload     string             `json:"workload"`
	Label        string             `json:"label,omitempty"`
	Target       string             `json:"target"`
	Concurrency  int                `json:"concurrency"`
	Threads      int                `json:"wrk_threads"`
	StartedAt    time.Time          `json:"started_at"`
	DurationS    float64            `json:"duration_s"`
	Requests     int64              `json:"requests"`
	Successes    int64              `json:"successes"`
	Errors       int64              `json:"errors"`
	ErrorsByKind map[string]int64   `json:"errors_by_kind"`
	Throughput   float64            `json:"throughput_per_s"`
	LatencyUS    loadgen.Latency    `json:"latency_us"`
	ServerCPU    *loadgen.CPUFigure `json:"server_cpu"`
	GeneratorCPU *loadgen.CPUFigure `json:"generator_cpu"`
	Command      string             `json:"command"`
}

// wrkSummary is the "wrk-result" line bench/wrk/common.lua's done()
// prints.
type wrkSummary struct {
	DurationUS int64 `json:"duration_us"`
	Requests   int64 `json:"requests"`
	Errors     struct {
		Connect  int64 `json:"connect"`
		Read     int64 `json:"read"`
		Write    int64 `json:"write"`
		Status   int64 `json:"status"`
		Timeout  int64 `json:"timeout"`
		Rejected int64 `json:"rejected"`
	} `json:"errors"`
	LatencyUS loadgen.Latency `json:"latency_us"`
}

const resultPrefix = "wrk-result "

// options are wrkbench's command line.
type options struct {
	workload   string
	keycard    string
	serverPID  int
	metricsURL string
	label      string
	out        string
	tokens     int
	wrk        []string // the wrk command and its arguments
	threads    int      // wrk's -t
	conns      int      // wrk's -c
}

var workloads = []string{loadgen.WorkloadLogin, loadgen.WorkloadRefresh, loadgen.WorkloadClientCredentials, loadgen.WorkloadIntrospect, loadgen.WorkloadGateway}

func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("wrkbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.workload, "workload", "", "the workload: "+strings.Join(workloads, ", "))
	fs.StringVar(&o.keycard, "keycard", "", "prepare the workload's users, client and tokens on this Keycard auth server `URL` (admin from KEYCARD_BENCH_ADMIN_USER and KEYCARD_BENCH_ADMIN_PASSWORD)")
	fs.IntVar(&o.serverPID, "server-pid", 0, "read the server's CPU time from /proc/`PID`/stat")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "read the server's CPU time from its Prometheus metrics at `URL`")
	fs.StringVar(&o.label, "label", "", "what was measured, in words, for the report")
	fs.StringVar(&o.out, "out", "", "write the result to `FILE` instead of standard output")
	fs.IntVar(&o.tokens, "tokens", 0, "-keycard refresh: refresh tokens to prepare (default two per connection)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.wrk = fs.Args()
	switch {
	case !contains(workloads, o.workload):
		return o, fmt.Errorf("-workload must be one of %s", strings.Join(workloads, ", "))
	case len(o.wrk) == 0:
		return o, errors.New("no wrk command after the flags (… -- wrk -t2 -c16 -d20s -s bench/wrk/W.lua URL)")
	case o.serverPID != 0 && o.metricsURL != "":
		return o, errors.New("give -server-pid or -metrics-url, not both")
	case o.serverPID < 0 || o.tokens < 0:
		return o, errors.New("-server-pid and -tokens must be positive")
	}
	var err error
	if o.threads, o.conns, err = wrkShape(o.wrk[1:]); err != nil {
		return o, err
	}
	if o.tokens == 0 {
		o.tokens = 2 * o.conns
	}
	return o, nil
}

// wrkShape reads wrk's thread and connection counts from its arguments
// (wrk's defaults are 2 and 10). The scripts deal tokens out by thread,
// and a connection count below the threads' is wrk's own error.
func wrkShape(args []string) (threads, conns int, err error) {
	threads, conns = 2, 10
	for i := 0; i < len(args); i++ {
		name, val, inline := strings.Cut(args[i], "=")
		var dst *int
		switch name {
		case "-t", "--threads":
			dst = &threads
		case "-c", "--connections":
			dst = &conns
		default:
			if len(name) > 2 && (strings.HasPrefix(name, "-t") || strings.HasPrefix(name, "-c")) && !strings.HasPrefix(name, "--") {
				dst, val, inline = &threads, name[2:], true
				if name[1] == 'c' {
					dst = &conns
				}
			} else {
				continue
			}
		}
		if !inline {
			if i+1 >= len(args) {
				return 0, 0, fmt.Errorf("wrk %s has no value", name)
			}
			i++
			val = args[i]
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("wrk %s %q is not a positive count", name, val)
		}
		*dst = n
	}
	return threads, conns, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args, stderr)
	if err != nil {
		return err
	}
	env := []string{"WRK_THREADS=" + strconv.Itoa(o.threads)}
	if o.keycard != "" {
		dir, err := os.MkdirTemp("", "wrkbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fx, kenv, err := prepareKeycard(ctx, o, dir)
		if fx != nil {
			defer func() {
				tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
				defer cancel()
				if terr := fx.Teardown(tctx); terr != nil {
					fmt.Fprintf(stderr, "wrkbench: cleaning up left users or clients named %s-… behind: %v\n", fx.Prefix(), terr)
				}
			}()
		}
		if err != nil {
			return err
		}
		env = append(env, kenv...)
	}
	var meter loadgen.CPUMeter
	switch {
	case o.serverPID > 0:
		meter = loadgen.ProcCPU{PID: o.serverPID}
	case o.metricsURL != "":
		meter = loadgen.MetricsCPU{URL: o.metricsURL}
	}
	res, err := runWrk(ctx, o, env, meter, stderr)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if o.out != "" {
		return os.WriteFile(o.out, b, 0o644)
	}
	_, err = stdout.Write(b)
	return err
}

// runWrk runs wrk with env added to this process's environment, reading
// the server's CPU time before and after, and makes the result of its
// wrk-result line.
func runWrk(ctx context.Context, o options, env []string, meter loadgen.CPUMeter, stderr io.Writer) (*Result, error) {
	var before loadgen.CPUReading
	if meter != nil {
		var err error
		if before, err = meter.ReadCPU(ctx); err != nil {
			return nil, fmt.Errorf("reading the server's CPU time: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, o.wrk[0], o.wrk[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, stderr)
	cmd.Stderr = stderr
	started := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w", o.wrk[0], err)
	}
	var after loadgen.CPUReading
	var errAfter error
	if meter != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		after, errAfter = meter.ReadCPU(rctx)
		cancel()
	}
	sum, err := parseResult(out.Bytes())
	if err != nil {
		return nil, err
	}
	res := newResult(o, sum, started)
	if meter != nil {
		res.ServerCPU = loadgen.NewCPUFigure(meter.Source(), before, nil, after, errAfter, res.Successes)
	} else {
		res.ServerCPU = &loadgen.CPUFigure{Unavailable: "no -server-pid or -metrics-url"}
	}
	wrkCPU := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	res.GeneratorCPU = loadgen.NewCPUFigure("wrk's rusage", loadgen.CPUReading{}, nil, loadgen.CPUReading{CPU: wrkCPU}, nil, res.Successes)
	return res, nil
}

// parseResult finds the wrk-result line in wrk's output.
func parseResult(out []byte) (wrkSummary, error) {
	var sum wrkSummary
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			if err := json.Unmarshal([]byte(line), &sum); err != nil {
				return sum, fmt.Errorf("wrk's result line: %w", err)
			}
			return sum, nil
		}
	}
	return sum, errors.New("wrk printed no result line: is the script one of bench/wrk's (its done() prints it)?")
}

// newResult makes the report of a summary. A request is a success when
// its status is below 400 and the script did not reject the answer.
func newResult(o options, sum wrkSummary, started time.Time) *Result {
	r := &Result{
		Schema:      Schema,
		Tool:        "wrk",
		Workload:    o.workload,
		Label:       o.label,
		Target:      o.wrk[len(o.wrk)-1],
		Concurrency: o.conns,
		Threads:     o.threads,
		StartedAt:   started.UTC().Truncate(time.Millisecond),
		DurationS:   float64(sum.DurationUS) / 1e6,
		LatencyUS:   sum.LatencyUS,
		Command:     strings.Join(o.wrk, " "),
	}
	e := sum.Errors
	r.ErrorsByKind = map[string]int64{}
	for kind, n := range map[string]int64{"http_4xx_5xx": e.Status, "bad_response": e.Rejected, "connect": e.Connect,
		"read": e.Read, "write": e.Write, "timeout": e.Timeout} {
		if n > 0 {
			r.ErrorsByKind[kind] = n
			r.Errors += n
		}
	}
	r.Successes = max(sum.Requests-e.Status-e.Rejected, 0)
	r.Requests = r.Successes + r.Errors
	if r.DurationS > 0 {
		r.Throughput = float64(r.Successes) / r.DurationS
	}
	return r
}

// maxUsers is how many users the Keycard fixture registers, as keycard
// bench does.
const maxUsers = 8

// prepareKeycard creates what the workload needs on the Keycard server,
// writes the files the script reads into dir, and returns the fixture
// (to tear down, also after an error) and the WRK_* variables.
func prepareKeycard(ctx context.Context, o options, dir string) (*loadgen.Fixture, []string, error) {
	u, err := url.Parse(o.keycard)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("-keycard: want an http:// or https:// base URL, got %q", o.keycard)
	}
	t := loadgen.Target{
		URL:           strings.TrimRight(o.keycard, "/"),
		Client:        loadgen.NewClient(4, 30*time.Second),
		AdminUser:     os.Getenv("KEYCARD_BENCH_ADMIN_USER"),
		AdminPassword: os.Getenv("KEYCARD_BENCH_ADMIN_PASSWORD"),
	}
	if t.AdminUser == "" || t.AdminPassword == "" {
		return nil, nil, errors.New("-keycard needs KEYCARD_BENCH_ADMIN_USER and KEYCARD_BENCH_ADMIN_PASSWORD")
	}
	fx := loadgen.NewFixture(t)
	if err := fx.Check(ctx); err != nil {
		return nil, nil, err
	}
	if err := fx.AdminLogin(ctx); err != nil {
		return nil, nil, err
	}
	var env []string
	writeLines := func(name string, lines []string) (string, error) {
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	}
	needsClient := o.workload == loadgen.WorkloadClientCredentials || o.workload == loadgen.WorkloadIntrospect
	if needsClient {
		c, err := fx.CreateClient(ctx, []string{loadgen.BenchScope})
		if err != nil {
			return fx, nil, err
		}
		// RFC 6749 §2.3.1: id and secret are form-encoded first.
		cred := url.QueryEscape(c.ID) + ":" + url.QueryEscape(c.Secret)
		env = append(env, "WRK_AUTH=Basic "+base64.StdEncoding.EncodeToString([]byte(cred)), "WRK_SCOPE="+loadgen.BenchScope)
	}
	if o.workload == loadgen.WorkloadClientCredentials {
		return fx, env, nil
	}
	users, err := fx.CreateUsers(ctx, max(o.threads, min(o.conns, maxUsers)))
	if err != nil {
		return fx, nil, err
	}
	var lines []string
	switch o.workload {
	case loadgen.WorkloadLogin:
		for _, u := range users {
			lines = append(lines, u.Username+"\t"+u.Password)
		}
		path, err := writeLines("users", lines)
		return fx, append(env, "WRK_USERS="+path), err
	case loadgen.WorkloadRefresh:
		// A pool of live refresh tokens, one session each, as keycard
		// bench's refresh workload has one per worker.
		toks, err := fx.LoginAll(ctx, users, max(o.tokens, o.threads))
		if err != nil {
			return fx, nil, err
		}
		for _, t := range toks {
			lines = append(lines, t.RefreshToken)
		}
	default: // introspect, gateway: one access token per user
		toks, err := fx.LoginAll(ctx, users, len(users))
		if err != nil {
			return fx, nil, err
		}
		for _, t := range toks {
			lines = append(lines, t.AccessToken)
		}
	}
	path, err := writeLines("tokens", lines)
	return fx, append(env, "WRK_TOKENS="+path), err
}
