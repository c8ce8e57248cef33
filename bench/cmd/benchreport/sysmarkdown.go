package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	systemBegin = "<!-- benchreport:system:begin -->"
	systemEnd   = "<!-- benchreport:system:end -->"
)

// Workloads of the server tables, in order, and the stores they ran on:
// the file name prefixes bench/all.sh writes.
var (
	serverWorkloads = []string{"login", "refresh", "client-credentials", "introspect"}
	serverStores    = []struct{ prefix, name string }{
		{"sqlite", "SQLite"},
		{"pg1", "PostgreSQL, 1 instance"},
		{"pg2", "PostgreSQL, 2 instances"},
	}
)

// verdict is one row of the targets table.
type verdict struct {
	target   string
	measured string
	ratio    string // measured against the bound, "—" when not measured
	met      string
}

// atLeast judges got ≥ bound, with how far from it.
func atLeast(target string, got stat, bound float64, measured string) verdict {
	if !got.ok {
		return verdict{target, "—", "—", "not measured"}
	}
	r := got.median / bound
	return verdict{target, measured, fmt.Sprintf("%.2f×", r), yesNo(r >= 1, got, r)}
}

// atMost judges got ≤ bound.
func atMost(target string, got stat, bound float64, measured string) verdict {
	if !got.ok {
		return verdict{target, "—", "—", "not measured"}
	}
	r := got.median / bound
	return verdict{target, measured, fmt.Sprintf("%.2f× the bound", r), yesNo(r <= 1, got, r)}
}

// yesNo words a verdict, and says when the bound lies within the spread
// of the runs behind it, so that one run more or less could flip it.
func yesNo(ok bool, got stat, ratio float64) string {
	s := "**no**"
	if ok {
		s = "yes"
	}
	if got.n > 1 && math.Abs(ratio-1) < got.spread {
		s += " (within the runs' spread)"
	}
	return s
}

// runStat is a single keycard bench run's throughput as a stat.
func runStat(r *benchRun) stat {
	if r == nil {
		return stat{}
	}
	return stat{median: r.Throughput, n: 1, ok: true}
}

// pairStat adds the throughputs of two runs made at the same time.
func pairStat(a, b *benchRun) stat {
	if a == nil || b == nil {
		return stat{}
	}
	return stat{median: a.Throughput + b.Throughput, n: 1, ok: true}
}

// serverRun returns the run of workload on store: for pg2, the two runs
// summed into one (throughput added, latencies of the slower one).
func (s *system) serverRun(store, workload string) (*benchRun, stat) {
	if store == "pg2" {
		a, b := s.runs["pg2-"+workload+"-a"], s.runs["pg2-"+workload+"-b"]
		if a == nil || b == nil {
			return nil, stat{}
		}
		sum := *a
		sum.Throughput = a.Throughput + b.Throughput
		sum.Requests, sum.Successes, sum.Errors = a.Requests+b.Requests, a.Successes+b.Successes, a.Errors+b.Errors
		sum.ErrorsByKind = map[string]int64{}
		for _, r := range []*benchRun{a, b} {
			for k, v := range r.ErrorsByKind {
				sum.ErrorsByKind[k] += v
			}
		}
		if b.Latency.P99 > a.Latency.P99 {
			sum.Latency = b.Latency
		}
		sum.ServerCPU = nil
		if a.ServerCPU != nil && b.ServerCPU != nil && a.ServerCPU.Seconds != nil && b.ServerCPU.Seconds != nil && sum.Successes > 0 {
			cpu := *a.ServerCPU.Seconds + *b.ServerCPU.Seconds
			per := cpu * 1e6 / float64(sum.Successes)
			sum.ServerCPU = &cpuFigure{Seconds: &cpu, USPerRequest: &per}
		}
		return &sum, pairStat(a, b)
	}
	r := s.runs[store+"-"+workload]
	return r, runStat(r)
}

// pairedRatio is the median over the passes of file of a's value ÷ b's in
// unit, each pass's a set against the same pass's b: benchmarks run back
// to back in one pass share the machine's state, so the ratio is steadier
// than the medians'.
func (s *system) pairedRatio(file, a, b, unit string) stat {
	g := s.benches[file]
	if g == nil {
		return stat{}
	}
	as, bs := g.samples[a][unit], g.samples[b][unit]
	if len(as) == 0 || len(as) != len(bs) {
		return stat{}
	}
	var rs []float64
	for i := range as {
		if bs[i] != 0 {
			rs = append(rs, as[i]/bs[i])
		}
	}
	return summarize(rs)
}

// pairedDiff is the median over the passes of file of a's value − b's in
// unit, each pass's a against the same pass's b.
func (s *system) pairedDiff(file, a, b, unit string) stat {
	g := s.benches[file]
	if g == nil {
		return stat{}
	}
	as, bs := g.samples[a][unit], g.samples[b][unit]
	if len(as) == 0 || len(as) != len(bs) {
		return stat{}
	}
	ds := make([]float64, len(as))
	for i := range as {
		ds[i] = as[i] - bs[i]
	}
	return summarize(ds)
}

// gatewayRatio is the gateway's request rate over the bare proxy's in the
// go test benchmark: bare ns/op ÷ gateway ns/op, pass by pass.
func (s *system) gatewayRatio(variant string) stat {
	return s.pairedRatio("gateway", "BenchmarkGatewayVsReverseProxy/bare", "BenchmarkGatewayVsReverseProxy/gateway/"+variant, "ns/op")
}

// benchGatewayRatios returns, per round, the gateway's throughput over the
// bare proxy's from keycard bench, and their median.
func (s *system) benchGatewayRatios() ([]float64, stat) {
	bare, gw := s.rounds("gateway-bare"), s.rounds("gateway-keycard")
	var rs []float64
	for i := range min(len(bare), len(gw)) {
		if bare[i].Throughput > 0 {
			rs = append(rs, gw[i].Throughput/bare[i].Throughput)
		}
	}
	return rs, summarize(rs)
}

// sessionsRatio is refresh's rate with the most stored sessions over the
// rate with the fewest: the median over the rounds of each round's ratio.
func (s *system) sessionsRatio() (lo, hi int, r stat) {
	sizes := s.sessionSizes()
	if len(sizes) < 2 {
		return 0, 0, stat{}
	}
	lo, hi = sizes[0], sizes[len(sizes)-1]
	return lo, hi, s.sizeRatio(hi, lo)
}

// sizeRatio is refresh's rate with n stored sessions over the rate with
// base: the median over the rounds of each round's ratio, since the sizes
// of one round ran one after the other.
func (s *system) sizeRatio(n, base int) stat {
	a, b := s.sessionRuns(n), s.sessionRuns(base)
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i].Throughput > 0 {
			rs = append(rs, a[i].Throughput/b[i].Throughput)
		}
	}
	return summarize(rs)
}

func (s *system) sessionRuns(n int) []*benchRun {
	var out []*benchRun
	for i := 1; ; i++ {
		r := s.runs[fmt.Sprintf("sessions-%d-r%d", n, i)]
		if r == nil {
			return out
		}
		out = append(out, r)
	}
}

// verdicts is the targets table, in the order of the issues.
func (s *system) verdicts() []verdict {
	var v []verdict
	rate := func(store, w string) stat { _, st := s.serverRun(store, w); return st }
	perS := func(st stat) string { return formatRate(st.median) + "/s" }
	v = append(v,
		atLeast("refresh ≥ 5,000/s, SQLite", rate("sqlite", "refresh"), 5000, perS(rate("sqlite", "refresh"))),
		atLeast("refresh ≥ 3,000/s, PostgreSQL, 1 instance", rate("pg1", "refresh"), 3000, perS(rate("pg1", "refresh"))),
		atLeast("client-credentials ≥ 5,000/s, SQLite", rate("sqlite", "client-credentials"), 5000, perS(rate("sqlite", "client-credentials"))),
		atLeast("client-credentials ≥ 5,000/s, PostgreSQL, 1 instance", rate("pg1", "client-credentials"), 5000, perS(rate("pg1", "client-credentials"))),
		atLeast("introspection ≥ 10,000/s, SQLite", rate("sqlite", "introspect"), 10000, perS(rate("sqlite", "introspect"))),
		atLeast("introspection ≥ 10,000/s, PostgreSQL, 1 instance", rate("pg1", "introspect"), 10000, perS(rate("pg1", "introspect"))),
	)
	// Issue 20: rates with wrk, and the server's CPU per request.
	wrkRate := func(store, w string) stat { return runStat(s.runs["wrk-"+store+"-"+w]) }
	cpu := func(store, w string) stat {
		if c := s.runs["wrk-"+store+"-"+w].serverUS(); c.ok {
			return c
		}
		return s.runs[store+"-"+w].serverUS()
	}
	perReq := func(st stat) string { return formatUS(st.median) + " µs" }
	v = append(v,
		atLeast("refresh ≥ 5,000/s with wrk, SQLite", wrkRate("sqlite", "refresh"), 5000, perS(wrkRate("sqlite", "refresh"))),
		atMost("refresh ≤ 200 µs of server CPU, SQLite", cpu("sqlite", "refresh"), 200, perReq(cpu("sqlite", "refresh"))),
		atLeast("refresh ≥ 3,000/s with wrk, PostgreSQL, 1 instance", wrkRate("pg1", "refresh"), 3000, perS(wrkRate("pg1", "refresh"))),
		atMost("refresh ≤ 250 µs of server CPU, PostgreSQL, 1 instance", cpu("pg1", "refresh"), 250, perReq(cpu("pg1", "refresh"))),
		atLeast("introspection ≥ 10,000/s with wrk, SQLite", wrkRate("sqlite", "introspect"), 10000, perS(wrkRate("sqlite", "introspect"))),
		atMost("introspection ≤ 100 µs of server CPU, SQLite", cpu("sqlite", "introspect"), 100, perReq(cpu("sqlite", "introspect"))),
		atLeast("client credentials ≥ 10,000/s with wrk, SQLite", wrkRate("sqlite", "client-credentials"), 10000, perS(wrkRate("sqlite", "client-credentials"))),
	)
	for _, variant := range []string{"cached", "cold"} {
		r := s.gatewayRatio(variant)
		v = append(v, atLeast(fmt.Sprintf("gateway ≥ 0.9× a bare reverse proxy, ES256, %s (go test)", variant), scale(r, 1), 0.9,
			fmt.Sprintf("%.2f× (±%s)", r.median, pct(r.spread))))
	}
	if _, r := s.benchGatewayRatios(); r.ok {
		v = append(v, atLeast("gateway ≥ 0.9× a bare reverse proxy, ES256, cached (keycard bench)", r, 0.9, fmt.Sprintf("%.2f×", r.median)))
	}
	if rev := s.runs["revocation"]; rev != nil {
		p99 := stat{median: rev.Latency.P99, n: 1, ok: true}
		v = append(v, atMost("revocation propagation p99 < 100 ms", p99, 100_000, durationLabel(rev.Latency.P99*1000)))
	} else {
		v = append(v, atMost("revocation propagation p99 < 100 ms", stat{}, 1, ""))
	}
	lo, hi, sr := s.sessionsRatio()
	v = append(v, atLeast(fmt.Sprintf("refresh with %s stored sessions ≥ 0.8× with %s", countLabel(hi), countLabel(lo)), sr, 0.8,
		fmt.Sprintf("%.2f×", sr.median)))
	for _, alg := range []string{"HS256", "ES256", "EdDSA"} {
		c := s.get("verifier", "BenchmarkMiddleware/"+alg+"/cached", "ns/op")
		v = append(v, atMost("middleware, cached, "+alg+": < 1 µs", c, 1000, formatNs(c.median)+" ns"))
		ca := s.get("verifier", "BenchmarkMiddleware/"+alg+"/cached", "allocs/op")
		ba := s.get("verifier", "BenchmarkMiddleware/"+alg+"/baseline", "allocs/op")
		if ca.ok && ba.ok {
			extra := ca.median - ba.median
			v = append(v, verdict{"middleware, cached, " + alg + ": 0 allocs beyond the request's own (baseline)",
				fmt.Sprintf("%s allocs, baseline %s", formatCount(ca), formatCount(ba)), fmt.Sprintf("%+g", extra), yesNoPlain(extra <= 0)})
		}
	}
	for _, kind := range []string{"hit", "miss"} {
		a := s.get("verifier", "BenchmarkRevokedCheck/entries=100000/"+kind, "allocs/op")
		if a.ok {
			v = append(v, verdict{"revocation check, 100,000 entries, " + kind + ": 0 allocs", formatCount(a) + " allocs", "—", yesNoPlain(a.median == 0)})
		}
	}
	if r := s.loginRatio(); r.ok {
		v = append(v, atLeast("login ≥ 0.95× the raw argon2id rate (go test, pass by pass)", r, 0.95, fmt.Sprintf("%.2f× (±%s)", r.median, pct(r.spread))))
	}
	return v
}

// loginRatio is BenchmarkLogin's rate over BenchmarkArgon2idHash's, pass
// by pass.
func (s *system) loginRatio() stat {
	g := s.benches["login"]
	if g == nil {
		return stat{}
	}
	ls, hs := g.samples["BenchmarkLogin"]["logins/s"], g.samples["BenchmarkArgon2idHash"]["hashes/s"]
	if len(ls) == 0 || len(ls) != len(hs) {
		return stat{}
	}
	var rs []float64
	for i := range ls {
		if hs[i] != 0 {
			rs = append(rs, ls[i]/hs[i])
		}
	}
	return summarize(rs)
}

func yesNoPlain(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func scale(s stat, f float64) stat { s.median *= f; return s }

// writeSystem writes the generated region for a bench/all.sh run.
func writeSystem(w io.Writer, s *system, plotsLink string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := s.machine
	p("%s\n", systemBegin)
	p("<!-- Generated by bench/cmd/benchreport -system from bench/results/ (bench/all.sh). Edit outside these markers. -->\n\n")
	if noisy, why := s.noisy(); noisy {
		p("> **These figures are noisy: %s.** They show that `bench/all.sh` works and roughly where Keycard stands, not its speed on an idle machine. Re-run `bench/all.sh` on an idle machine before quoting them.\n\n", why)
	}
	p("Run: `%s`, commit %s, %s, %s. ", m.Command, m.Commit, m.Date, minutes(m.Seconds))
	p("Machine: %s, %d cores, %s, %s. ", orUnknown(m.CPUModel), m.Cores, m.GoVersion, m.Kernel)
	p("Load average (1, 5, 15 min) before the run: %s; after: %s. ", m.LoadBefore, m.LoadAfter)
	if m.OthersCPU != nil {
		p("Other programs (the PostgreSQL server excluded) used %.0f%% of the cores' time while it ran", *m.OthersCPU)
		if m.StealCPU != nil {
			p(", and the hypervisor took %.0f%% for other machines (steal)", *m.StealCPU)
		}
		p(". ")
	}
	p("Every server, gateway, proxy and load generator of the run shares those cores over loopback, so a rate here is what one machine does with its load generator on board.\n\n")

	if len(m.Failures) > 0 {
		p("**Steps that failed in this run** (their figures are missing or partial):\n\n")
		for _, f := range m.Failures {
			p("- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
		p("\n")
	}
	p("### Targets\n\n")
	p("| target | measured | against the target | met |\n|---|--:|--:|---|\n")
	for _, v := range s.verdicts() {
		p("| %s | %s | %s | %s |\n", v.target, v.measured, v.ratio, v.met)
	}

	s.writeServer(w)
	s.writeWrk(w)
	s.writeLogin(w)
	s.writeGateway(w)
	s.writeRevocation(w)
	s.writeGrowth(w)
	s.writeMiddleware(w)
	s.writeStores(w)

	if plotsLink != "" {
		p("\n### Plots\n\n")
		for _, pl := range plotFiles {
			p("![%s](%s/%s)\n\n", pl.alt, plotsLink, pl.file)
		}
	}
	p("%s\n", systemEnd)
}

// noisyOthers is the share of the cores' time, in percent, that other
// programs (or other machines, through steal) may take during a run before
// its figures are called noisy.
const noisyOthers = 10

// noisy says whether the run's figures should be read as noisy, and why.
func (s *system) noisy() (bool, string) {
	m := s.machine
	var why, loads []string
	if m.Mode == "quick" {
		why = append(why, "`--quick` mode (short runs, one pass each)")
	}
	// The run itself keeps about as many threads runnable as there are
	// cores: a load average of 3 before it, or of three times the cores
	// after it, means other work was running too.
	if l, ok := firstLoad(m.LoadBefore); ok && l >= 3 {
		loads = append(loads, fmt.Sprintf("%s at the start", trimFloat(l)))
	}
	if l, ok := firstLoad(m.LoadAfter); ok && m.Cores > 0 && l >= 3*float64(m.Cores) {
		loads = append(loads, fmt.Sprintf("%s at the end", trimFloat(l)))
	}
	if len(loads) > 0 {
		why = append(why, fmt.Sprintf("the machine was busy with other work (load average %s on %d cores)", strings.Join(loads, " and "), m.Cores))
	}
	if m.OthersCPU != nil && *m.OthersCPU >= noisyOthers {
		why = append(why, fmt.Sprintf("other programs took %.0f%% of the cores' time during the run", *m.OthersCPU))
	}
	if m.StealCPU != nil && *m.StealCPU >= noisyOthers {
		why = append(why, fmt.Sprintf("the hypervisor took %.0f%% of the cores' time for other machines", *m.StealCPU))
	}
	return len(why) > 0, strings.Join(why, "; ")
}

// firstLoad is the 1-minute figure of a "1 5 15" load average.
func firstLoad(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return l, err == nil
}

func (s *system) writeServer(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### Auth server over HTTP: `keycard serve` driven by `keycard bench`\n\n")
	p("Each row is one `keycard bench WORKLOAD --json` run of %s, closed loop, against `keycard serve --dev` started by the script on a fresh SQLite data directory or a fresh PostgreSQL database (default flags: ES256, argon2id 19 MiB t=2, info-level request log to a file). ", s.machine.Duration)
	p("\"2 instances\" are two `keycard serve` processes on one database, each driven by its own `keycard bench` at the same time (bench has one `--target`); their throughputs add, and the latencies shown are the slower instance's. ")
	p("Latencies are of successful requests, from the load generator's side. \"Server µs\" is the server's CPU time (user and system, from /proc/PID/stat) per successful request over the run; \"bench µs\" the same of `keycard bench` itself.\n\n")
	p("| workload | store | requests/s | server µs | bench µs | p50 | p90 | p99 | p99.9 | errors | workers |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var cmd string
	for _, wl := range serverWorkloads {
		for _, st := range serverStores {
			r, _ := s.serverRun(st.prefix, wl)
			if r == nil {
				continue
			}
			if cmd == "" && st.prefix == "sqlite" && wl == "refresh" {
				cmd = r.Command
			}
			workers := strconv.Itoa(r.Concurrency)
			if st.prefix == "pg2" {
				workers = "2 × " + workers
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", wl, st.name, formatRate(r.Throughput), cpuCell(r.ServerCPU), cpuCell(r.GeneratorCPU),
				us(r.Latency.P50), us(r.Latency.P90), us(r.Latency.P99), us(r.Latency.P999), errorsCell(r), workers)
		}
	}
	for _, wl := range []string{"refresh", "client-credentials", "introspect"} {
		_, one := s.serverRun("pg1", wl)
		_, two := s.serverRun("pg2", wl)
		if one.ok && two.ok && one.median > 0 {
			a, b := s.runs["pg2-"+wl+"-a"], s.runs["pg2-"+wl+"-b"]
			p("\nPostgreSQL, %s: two instances ÷ one = %.2f× (%s/s + %s/s; the two runs started %s apart).", wl, two.median/one.median,
				formatRate(a.Throughput), formatRate(b.Throughput), a.StartedAt.Sub(b.StartedAt).Abs().Round(10*time.Millisecond))
		}
	}
	if !s.machine.Postgres {
		p("\nPostgreSQL was not measured in this run (no `KEYCARD_TEST_POSTGRES`).\n")
	} else {
		p("\n")
	}
	if cmd != "" {
		p("\nCommand (refresh on SQLite; the others differ in workload and target): `%s`\n", cmd)
	}
}

func (s *system) writeLogin(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	login := s.runs["sqlite-login"]
	gl := s.get("login", "BenchmarkLogin", "logins/s")
	hash := s.get("login", "BenchmarkArgon2idHash", "hashes/s")
	if login == nil && !gl.ok && !hash.ok {
		return
	}
	p("\n### Login against the raw argon2id rate\n\n")
	p("A login is bound by its password hash. The raw rate is `password.Hasher.Verify` with the server's parameters at the same 16-way parallelism (`BenchmarkArgon2idHash`); `BenchmarkLogin` is the whole login over loopback HTTP in one test process; `keycard bench login` is the same against the `keycard serve` above. %s\n\n", passes(hash))
	p("| measured | logins or hashes/s | ± | ÷ argon2id |\n|---|--:|--:|--:|\n")
	ratio := func(v float64) string {
		if !hash.ok || hash.median == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f×", v/hash.median)
	}
	if hash.ok {
		p("| argon2id verify, go test | %s | %s | 1.00× |\n", formatRate(hash.median), formatPct(hash))
	}
	if gl.ok {
		r := ratio(gl.median)
		if lr := s.loginRatio(); lr.ok {
			r = fmt.Sprintf("%.2f× (pass by pass)", lr.median)
		}
		p("| login, go test (httptest server) | %s | %s | %s |\n", formatRate(gl.median), formatPct(gl), r)
	}
	if login != nil {
		p("| login, keycard bench against keycard serve | %s | — | %s |\n", formatRate(login.Throughput), ratio(login.Throughput))
	}
	if c := s.goConfig("login", "command"); c != "" {
		p("\nCommand: `%s`", c)
		if login != nil {
			p("; `%s`", login.Command)
		}
		p("\n")
	} else if login != nil {
		p("\nCommand: `%s`\n", login.Command)
	}
}

func (s *system) writeGateway(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### Gateway against a bare reverse proxy\n\n")
	bare := s.get("gateway", "BenchmarkGatewayVsReverseProxy/bare", "ns/op")
	if bare.ok {
		p("`BenchmarkGatewayVsReverseProxy`: 32 keep-alive clients send GETs with an ES256 access token through a bare `httputil.ReverseProxy`, through the gateway with its verification cache (cached) and through the gateway with the cache off, so every request checks the signature (cold); all in one test process, to the same upstream. Each pass runs the three back to back. %s The rate is 10⁹ ÷ ns/op; \"rate ÷ bare\" is the median over the passes of each pass's ratio.\n\n", passes(bare))
		p("| proxy | ns/op | ± | requests/s | B/op | allocs/op | rate ÷ bare |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, v := range []struct{ name, label string }{{"bare", "bare httputil.ReverseProxy"}, {"gateway/cached", "gateway, cached"}, {"gateway/cold", "gateway, cold"}} {
			name := "BenchmarkGatewayVsReverseProxy/" + v.name
			ns := s.get("gateway", name, "ns/op")
			if !ns.ok {
				continue
			}
			rel := s.pairedRatio("gateway", "BenchmarkGatewayVsReverseProxy/bare", name, "ns/op")
			p("| %s | %s | %s | %s | %s | %s | %.2f× |\n", v.label, formatNs(ns.median), formatPct(ns), formatRate(1e9/ns.median),
				formatCount(s.get("gateway", name, "B/op")), formatCount(s.get("gateway", name, "allocs/op")), rel.median)
		}
		p("\nCommand: `%s`\n", s.goConfig("gateway", "command"))
	}
	bareRuns, gwRuns := s.rounds("gateway-bare"), s.rounds("gateway-keycard")
	if len(bareRuns) > 0 && len(gwRuns) > 0 {
		ratios, med := s.benchGatewayRatios()
		p("\n`keycard bench gateway` against `keycard gateway` (its cache on, access log off) and against a bare `httputil.ReverseProxy` (`bench/cmd/upstream -proxy`), both in front of the same upstream (`bench/cmd/upstream`), alternating, %s each:\n\n", s.machine.Duration)
		p("| round | proxy | requests/s | proxy µs | bench µs | p50 | p90 | p99 | p99.9 | errors | gateway ÷ bare |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for i := range min(len(bareRuns), len(gwRuns)) {
			for j, r := range []*benchRun{bareRuns[i], gwRuns[i]} {
				name, rel := "bare", ""
				if j == 1 {
					name, rel = "gateway", fmt.Sprintf("%.2f×", ratios[i])
				}
				p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i+1, name, formatRate(r.Throughput), cpuCell(r.ServerCPU), cpuCell(r.GeneratorCPU),
					us(r.Latency.P50), us(r.Latency.P90), us(r.Latency.P99), us(r.Latency.P999), errorsCell(r), rel)
			}
		}
		if med.ok {
			p("\nMedian gateway ÷ bare over the rounds: %.2f×.\n", med.median)
		}
		p("\nCommand: `%s`\n", gwRuns[0].Command)
	}
}

func (s *system) writeRevocation(w io.Writer) {
	r := s.runs["revocation"]
	if r == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### Revocation propagation\n\n")
	p("`keycard bench revocation-latency`: %s cycles of login, a request the gateway accepts, logout, then a poll of the gateway every 2 ms until it answers 401; the latency is from the logout's answer to the refusal's (an upper bound, by at most one poll interval and a round trip). The gateway follows the SQLite server's revocation feed.\n\n", group(r.Requests))
	p("| cycles | min | p50 | p90 | p99 | p99.9 | max | errors |\n|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", group(r.Requests), us(r.Latency.Min), us(r.Latency.P50), us(r.Latency.P90),
		us(r.Latency.P99), us(r.Latency.P999), us(r.Latency.Max), errorsCell(r))
	p("\nCommand: `%s`\n", r.Command)
}

func (s *system) writeGrowth(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("\n### How cost grows\n\n")
	if sizes := s.revocationSizes(); len(sizes) > 0 {
		p("The verifier's revocation set (`BenchmarkRevocationSetMemory`, `BenchmarkRevokedCheck`): live entries 60%% sessions, 30%% token ids, 10%% user cut-offs, 22-character ids as the server makes them. Memory is the heap the set holds, values included; a check is `RevocationSet.Revoked`, the call every request makes, for a revoked session (hit) and for a token nothing revoked (miss, which looks at everything); parallel is both cores checking at once (ns/op is wall time per check). %s\n\n",
			passes(s.get("verifier", fmt.Sprintf("BenchmarkRevokedCheck/entries=%d/miss", sizes[0]), "ns/op")))
		p("| entries | B/entry | MiB | load ns/entry | hit ns | miss ns | hit ns, parallel | miss ns, parallel | allocs/check |\n|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		for _, n := range sizes {
			mem := s.get("verifier", fmt.Sprintf("BenchmarkRevocationSetMemory/entries=%d", n), "B/entry")
			load := s.get("verifier", fmt.Sprintf("BenchmarkRevocationSetMemory/entries=%d", n), "ns/entry-loaded")
			check := func(kind, unit string) stat {
				return s.get("verifier", fmt.Sprintf("BenchmarkRevokedCheck/entries=%d/%s", n, kind), unit)
			}
			allocs := check("hit", "allocs/op")
			if miss := check("miss", "allocs/op"); !allocs.ok || miss.median > allocs.median {
				allocs = miss
			}
			mib := "—"
			if mem.ok {
				mib = fmt.Sprintf("%.1f", mem.median*float64(n)/(1<<20))
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", group(int64(n)), formatCount(mem), mib,
				nsCell(load), nsCell(check("hit", "ns/op")), nsCell(check("miss", "ns/op")),
				nsCell(check("hit-parallel", "ns/op")), nsCell(check("miss-parallel", "ns/op")), formatCount(allocs))
		}
		p("\nCommand: `%s`\n\n", s.goConfig("verifier", "command"))
	}
	sizes := s.sessionSizes()
	if len(sizes) == 0 {
		return
	}
	p("Refresh as the stored sessions grow: one SQLite data directory per size, seeded before the run (in one transaction, with the sqlite3 shell) with that many live sessions, each with one live refresh token, spread over 1,000 users, random 32-character ids; then `keycard serve --dev` on each in turn and `keycard bench refresh` for %s, in %s, each round running every size once, one after the other. The refreshes rotate bench's own sessions, which sit in the same tables as the seeded ones.\n\n", s.machine.Duration, plural(s.machine.Rounds, "round"))
	p("| stored sessions | refresh/s (median) | each round | p50 | p99 | ÷ %s, round by round |\n|--:|--:|---|--:|--:|--:|\n", countLabel(sizes[0]))
	var cmd string
	for _, n := range sizes {
		runs := s.sessionRuns(n)
		st := medianRate(runs)
		var each []string
		var p50s, p99s []float64
		for _, r := range runs {
			each = append(each, formatRate(r.Throughput))
			p50s = append(p50s, r.Latency.P50)
			p99s = append(p99s, r.Latency.P99)
			cmd = r.Command
		}
		rel := "—"
		if r := s.sizeRatio(n, sizes[0]); r.ok {
			rel = fmt.Sprintf("%.2f×", r.median)
			if r.n > 1 && n != sizes[0] {
				rel += " ±" + formatPct(r)
			}
		}
		p("| %s | %s | %s | %s | %s | %s |\n", group(int64(n)), formatRate(st.median), strings.Join(each, ", "),
			us(summarize(p50s).median), us(summarize(p99s).median), rel)
	}
	p("\nCommand (each size): `%s`\n", cmd)
}

func (s *system) writeMiddleware(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	if s.benches["verifier"] == nil {
		return
	}
	p("\n### Verifier middleware overhead\n\n")
	p("`BenchmarkMiddleware`: the middleware around an empty handler, one request served again and again. Baseline is the least any middleware that hands claims to the handler costs (`context.WithValue` and `Request.WithContext`, 2 allocations); cold verifies the signature and claims every time (cache off); cached finds the token in the verification cache and still checks expiry and revocation. %s\n\n",
		passes(s.get("verifier", "BenchmarkMiddleware/ES256/cached", "ns/op")))
	p("| alg | baseline ns | cold ns | cached ns | cached − baseline, pass by pass | baseline allocs | cold allocs | cached allocs |\n|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, alg := range []string{"HS256", "ES256", "EdDSA"} {
		g := func(mode, unit string) stat { return s.get("verifier", "BenchmarkMiddleware/"+alg+"/"+mode, unit) }
		extra := "—"
		if d := s.pairedDiff("verifier", "BenchmarkMiddleware/"+alg+"/cached", "BenchmarkMiddleware/"+alg+"/baseline", "ns/op"); d.ok {
			extra = signedNs(d.median)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", alg, nsCell(g("baseline", "ns/op")), nsCell(g("cold", "ns/op")),
			nsCell(g("cached", "ns/op")), extra,
			formatCount(g("baseline", "allocs/op")), formatCount(g("cold", "allocs/op")), formatCount(g("cached", "allocs/op")))
	}
	if vc := s.get("verifier", "BenchmarkVerifyCached", "ns/op"); vc.ok {
		p("\n`Verifier.Verify` of a cached ES256 token from both cores at once (`BenchmarkVerifyCached`): %s ns/op wall time, %s allocs.\n",
			formatNs(vc.median), formatCount(s.get("verifier", "BenchmarkVerifyCached", "allocs/op")))
	}
}

func (s *system) writeStores(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	sq := s.get("stores", "BenchmarkRotateRefreshToken", "ns/op")
	pg := s.get("stores-postgres", "BenchmarkRotate", "ns/op")
	if !sq.ok && !pg.ok {
		return
	}
	p("\n### The database's share of a refresh\n\n")
	p("Store-level refresh-token rotation (the write transaction of a refresh grant, nothing else), from parallel goroutines each on its own session: `internal/sqlite` `BenchmarkRotateRefreshToken` and `internal/postgres` `BenchmarkRotate`. %s\n\n", passes(sq))
	p("| store | ns/op | ± | rotations/s | allocs/op |\n|---|--:|--:|--:|--:|\n")
	if sq.ok {
		p("| SQLite | %s | %s | %s | %s |\n", formatNs(sq.median), formatPct(sq), formatRate(1e9/sq.median), formatCount(s.get("stores", "BenchmarkRotateRefreshToken", "allocs/op")))
	}
	if pg.ok {
		p("| PostgreSQL | %s | %s | %s | %s |\n", formatNs(pg.median), formatPct(pg), formatRate(1e9/pg.median), formatCount(s.get("stores-postgres", "BenchmarkRotate", "allocs/op")))
	}
	p("\nCommands: `%s`", s.goConfig("stores", "command"))
	if pg.ok {
		p("; `%s`", s.goConfig("stores-postgres", "command"))
	}
	p("\n")
}

// signedNs prints a difference of ns/op with its sign.
func signedNs(v float64) string {
	if v < 0 {
		return "−" + formatNs(-v)
	}
	return "+" + formatNs(v)
}

// nsCell prints a median ns/op, or "—" when there is none.
func nsCell(s stat) string {
	if !s.ok {
		return "—"
	}
	return formatNs(s.median)
}

// formatRate prints a rate with thousands separators, one decimal below 100.
func formatRate(v float64) string {
	if v < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return group(int64(math.Round(v)))
}

// us prints a latency given in microseconds.
func us(v float64) string {
	if v == 0 {
		return "—"
	}
	return durationLabel(v * 1000)
}

func pct(f float64) string { return formatPct(stat{spread: f, n: 2}) }

func errorsCell(r *benchRun) string {
	if r.Errors == 0 {
		return "0"
	}
	var kinds []string
	for k, v := range r.ErrorsByKind {
		kinds = append(kinds, fmt.Sprintf("%s %s", k, group(v)))
	}
	return fmt.Sprintf("%s (%s)", group(r.Errors), strings.Join(kinds, ", "))
}

// passes says how many runs a figure is the median of, as a sentence.
func passes(s stat) string {
	switch {
	case !s.ok:
		return "Not measured."
	case s.n == 1:
		return "One pass: single runs, no medians."
	default:
		return fmt.Sprintf("Medians of %d passes.", s.n)
	}
}

// countLabel prints 10000 as "10k" and 1000000 as "1M".
func countLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	default:
		return strconv.Itoa(n)
	}
}

func minutes(sec int) string {
	if sec < 120 {
		return fmt.Sprintf("took %d s", sec)
	}
	return fmt.Sprintf("took %d min", (sec+30)/60)
}

// plural prints "1 round" or "3 rounds".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func orUnknown(s string) string {
	if s == "" {
		return "CPU not recorded"
	}
	return s
}

// formatUS prints a CPU time per request in µs: no decimals from 100 up.
func formatUS(v float64) string {
	if v >= 100 {
		return group(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// cpuCell prints a CPU figure's µs per request, or "—".
func cpuCell(f *cpuFigure) string {
	if f == nil || f.USPerRequest == nil {
		return "—"
	}
	return formatUS(*f.USPerRequest)
}

// wrkDisagreement is how far wrk's throughput may be from keycard bench's
// before the report says why they differ.
const wrkDisagreement = 0.10

// writeWrk sets each keycard bench run beside the wrk run of the same
// workload right after it.
func (s *system) writeWrk(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	type pair struct {
		label    string
		bench, k *benchRun
	}
	var pairs []pair
	for _, st := range serverStores[:2] {
		for _, wl := range serverWorkloads {
			if b, k := s.runs[st.prefix+"-"+wl], s.runs["wrk-"+st.prefix+"-"+wl]; b != nil && k != nil {
				pairs = append(pairs, pair{wl + ", " + st.name, b, k})
			}
		}
	}
	for _, proxy := range []string{"keycard", "bare"} {
		bs, ks := s.rounds("gateway-"+proxy), s.rounds("wrk-gateway-"+proxy)
		for i := range min(len(bs), len(ks)) {
			name := "gateway"
			if proxy == "bare" {
				name = "bare reverse proxy"
			}
			pairs = append(pairs, pair{fmt.Sprintf("%s, round %d", name, i+1), bs[i], ks[i]})
		}
	}
	p("\n### `keycard bench` and wrk side by side\n\n")
	if len(pairs) == 0 {
		if !s.machine.Wrk {
			p("wrk did not run (it was not installed): no side-by-side figures.\n")
		} else {
			p("No pair of runs to compare.\n")
		}
		return
	}
	threads := s.machine.WrkThreads
	if threads == 0 {
		threads = 2
	}
	p("Each workload ran with `keycard bench` (16 workers, %s) and then, against the same server, with wrk (`bench/wrk/WORKLOAD.lua` through `bench/cmd/wrkbench`: %d threads, 16 connections, %s). ", s.machine.Duration, threads, s.machine.Duration)
	p("Server µs is the server's (or proxy's) CPU time per successful request, from /proc/PID/stat around each run; generator µs the load generator's own (bench's /proc/self/stat, wrk's rusage). ")
	p("The shares are of the %d cores' time over the run: what the load generator took, and what the server got.\n\n", s.machine.Cores)
	p("| workload | bench /s | wrk /s | wrk ÷ bench | server µs, bench run | server µs, wrk run | bench µs | wrk µs | bench's share / server's | wrk's share / server's |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var notes []string
	for _, pr := range pairs {
		ratio := 0.0
		if pr.bench.Throughput > 0 {
			ratio = pr.k.Throughput / pr.bench.Throughput
		}
		share := func(r *benchRun) string {
			g, sv, ok := r.shares(s.machine.Cores)
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%.0f%% / %.0f%%", g, sv)
		}
		p("| %s | %s | %s | %.2f× | %s | %s | %s | %s | %s | %s |\n", pr.label, formatRate(pr.bench.Throughput), formatRate(pr.k.Throughput), ratio,
			cpuCell(pr.bench.ServerCPU), cpuCell(pr.k.ServerCPU), cpuCell(pr.bench.GeneratorCPU), cpuCell(pr.k.GeneratorCPU), share(pr.bench), share(pr.k))
		if math.Abs(ratio-1) > wrkDisagreement {
			bg, bs, bok := pr.bench.shares(s.machine.Cores)
			kg, ks, kok := pr.k.shares(s.machine.Cores)
			note := fmt.Sprintf("%s: wrk %.2f× keycard bench", pr.label, ratio)
			if bok && kok {
				note += fmt.Sprintf("; keycard bench took %.0f%% of the cores and left the server %.0f%%, wrk took %.0f%% and left it %.0f%%", bg, bs, kg, ks)
			}
			notes = append(notes, note)
		}
	}
	if len(notes) > 0 {
		p("\nWhere the two disagree by more than %.0f%% on throughput (the text after this section says why):\n\n", wrkDisagreement*100)
		for _, n := range notes {
			p("- %s.\n", n)
		}
	}
	if k := s.runs["wrk-sqlite-refresh"]; k != nil {
		p("\nCommand (refresh on SQLite; the others differ in script and URL): `%s`\n", k.Command)
	}
}
