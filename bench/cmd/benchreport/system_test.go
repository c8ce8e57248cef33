package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeResults fills dir with a small bench/all.sh run: files maps names to
// contents, and every keycard bench result is built from a throughput and
// a p99 in µs.
func writeResults(t *testing.T, dir string, runs map[string][2]float64, files map[string]string) {
	t.Helper()
	machine := `{"mode": "full", "command": "bench/all.sh", "commit": "abc1234", "date": "2026-11-22T15:30Z", "seconds": 2100,
		"cpu_model": "Test CPU", "cores": 2, "go_version": "go1.26.8", "kernel": "Linux 6.1", "load_before": "0.40 0.90 1.20",
		"load_after": "2.00 1.50 1.30", "count": 6, "benchtime": "1s", "http_benchtime": "5s", "duration": "20s",
		"revocations": 1000, "rounds": 1, "postgres": true}`
	if err := os.WriteFile(filepath.Join(dir, "machine.json"), []byte(machine), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, r := range runs {
		js := fmt.Sprintf(`{"schema": "keycard-bench/1", "workload": "w", "concurrency": 16, "started_at": "2026-11-22T15:31:00Z",
			"duration_s": 20, "requests": 1000, "successes": 1000, "errors": 0, "errors_by_kind": {}, "throughput_per_s": %g,
			"latency_us": {"min": 100, "mean": 900, "p50": 800, "p90": 1500, "p99": %g, "p99_9": 9000, "max": 12000},
			"server_cpu": {"source": "/proc/1/stat", "cpu_s": 0.3, "us_per_request": 300},
			"generator_cpu": {"source": "/proc/2/stat", "cpu_s": 0.1, "us_per_request": 100},
			"command": "keycard bench %s --target http://127.0.0.1:4000 --json"}`, r[0], r[1], name)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const gatewayTxt = `command: go test -run '^$' -bench '^BenchmarkGatewayVsReverseProxy$' ./internal/gateway/, 2 passes
cpu: Test CPU
BenchmarkGatewayVsReverseProxy/bare-2           	  100000	      1000 ns/op	    5000 B/op	      60 allocs/op
BenchmarkGatewayVsReverseProxy/gateway/cached-2 	  100000	      1050 ns/op	    5200 B/op	      62 allocs/op
BenchmarkGatewayVsReverseProxy/gateway/cold-2   	   50000	      2000 ns/op	    6000 B/op	      80 allocs/op
BenchmarkGatewayVsReverseProxy/bare-2           	  100000	      1000 ns/op	    5000 B/op	      60 allocs/op
BenchmarkGatewayVsReverseProxy/gateway/cached-2 	  100000	      1050 ns/op	    5200 B/op	      62 allocs/op
BenchmarkGatewayVsReverseProxy/gateway/cold-2   	   50000	      2000 ns/op	    6000 B/op	      80 allocs/op
`

const verifierTxt = `command: go test -run '^$' -bench verifier ./verifier/, 1 passes
BenchmarkMiddleware/HS256/baseline-2 	 5000000	       200 ns/op	     400 B/op	       2 allocs/op
BenchmarkMiddleware/HS256/cached-2   	 2000000	       500 ns/op	     400 B/op	       2 allocs/op
BenchmarkMiddleware/HS256/cold-2     	  500000	      2500 ns/op	     900 B/op	       9 allocs/op
BenchmarkMiddleware/ES256/baseline-2 	 5000000	       200 ns/op	     400 B/op	       2 allocs/op
BenchmarkMiddleware/ES256/cached-2   	 1000000	      1200 ns/op	     450 B/op	       3 allocs/op
BenchmarkRevokedCheck/entries=100000/hit-2 	10000000	        60 ns/op	       0 B/op	       0 allocs/op
BenchmarkRevokedCheck/entries=100000/miss-2	10000000	        90 ns/op	       0 B/op	       0 allocs/op
BenchmarkRevocationSetMemory/entries=100000-2 	       1	 900000000 ns/op	        95.0 B/entry	         9.06 MiB/100k	       150 ns/entry-loaded
`

func TestSystemReport(t *testing.T) {
	dir := t.TempDir()
	results := filepath.Join(dir, "results")
	if err := os.Mkdir(results, 0o755); err != nil {
		t.Fatal(err)
	}
	writeResults(t, results, map[string][2]float64{
		"sqlite-refresh":            {5500, 20_000},
		"pg1-refresh":               {2000, 30_000},
		"pg2-refresh-a":             {1500, 40_000},
		"pg2-refresh-b":             {1600, 50_000},
		"revocation":                {20, 50_000},
		"gateway-bare-r1":           {4000, 3000},
		"gateway-keycard-r1":        {3000, 3500},
		"sessions-10000-r1":         {1000, 9000},
		"sessions-1000000-r1":       {700, 9000},
		"sqlite-login":              {45, 900_000},
		"sqlite-introspect":         {12_000, 5000},
		"sqlite-client-credentials": {4000, 5000},
	}, map[string]string{
		"wrk-sqlite-refresh.json": `{"schema": "keycard-wrk/1", "tool": "wrk", "workload": "refresh", "concurrency": 16, "wrk_threads": 2,
			"duration_s": 10, "requests": 40000, "successes": 40000, "errors": 0, "errors_by_kind": {}, "throughput_per_s": 4000,
			"latency_us": {"min": 100, "mean": 900, "p50": 800, "p90": 1500, "p99": 3000, "p99_9": 9000, "max": 12000},
			"server_cpu": {"source": "/proc/1/stat", "cpu_s": 10, "us_per_request": 250},
			"generator_cpu": {"source": "wrk's rusage", "cpu_s": 2, "us_per_request": 50},
			"command": "wrk -t2 -c16 -d10s -s bench/wrk/refresh.lua http://127.0.0.1:4000"}`,
		"gateway.txt":  gatewayTxt,
		"verifier.txt": verifierTxt,
		"login.txt": "command: go test login\n" +
			"BenchmarkLogin-2 \t 100 \t 20000000 ns/op \t 40.00 logins/s\nBenchmarkArgon2idHash-2 \t 100 \t 20000000 ns/op \t 50.00 hashes/s\n",
	})
	md := filepath.Join(dir, "BENCHMARKS.md")
	doc := "# Benchmarks\n\n" + beginMarker + "\ntoken core\n" + endMarker + "\n\n" + systemBegin + "\nold\n" + systemEnd + "\n\nNotes.\n"
	if err := os.WriteFile(md, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	plots := filepath.Join(dir, "plots")
	var stderr bytes.Buffer
	if err := run([]string{"-system", results, "-md", md, "-plots", plots, "-plots-link", "bench/plots"}, nil, &stderr); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, stderr.String())
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		beginMarker + "\ntoken core\n" + endMarker, // the token-core region is left alone
		"\n\nNotes.\n",
		"Machine: Test CPU, 2 cores, go1.26.8, Linux 6.1.",
		"Load average (1, 5, 15 min) before the run: 0.40 0.90 1.20",
		"| refresh ≥ 5,000/s, SQLite | 5,500/s | 1.10× | yes |",
		"| refresh ≥ 3,000/s, PostgreSQL, 1 instance | 2,000/s | 0.67× | **no** |",
		"| client-credentials ≥ 5,000/s, SQLite | 4,000/s | 0.80× | **no** |",
		"| client-credentials ≥ 5,000/s, PostgreSQL, 1 instance | — | — | not measured |",
		"| introspection ≥ 10,000/s, SQLite | 12,000/s | 1.20× | yes |",
		// bare 1000 ns ÷ cached 1050 ns = 0.95× ≥ 0.9; cold 0.5× is not.
		"| gateway ≥ 0.9× a bare reverse proxy, ES256, cached (go test) | 0.95× (±0.0%) | 1.06× | yes |",
		"| gateway ≥ 0.9× a bare reverse proxy, ES256, cold (go test) | 0.50× (±0.0%) | 0.56× | **no** |",
		"| gateway ≥ 0.9× a bare reverse proxy, ES256, cached (keycard bench) | 0.75× | 0.83× | **no** |",
		"| revocation propagation p99 < 100 ms | 50 ms | 0.50× the bound | yes |",
		"| refresh with 1M stored sessions ≥ 0.8× with 10k | 0.70× | 0.87× | **no** |",
		"| middleware, cached, HS256: < 1 µs | 500 ns | 0.50× the bound | yes |",
		"| middleware, cached, ES256: < 1 µs | 1,200 ns | 1.20× the bound | **no** |",
		"| middleware, cached, ES256: 0 allocs beyond the request's own (baseline) | 3 allocs, baseline 2 | +1 | **no** |",
		"| revocation check, 100,000 entries, miss: 0 allocs | 0 allocs | — | yes |",
		"| login ≥ 0.95× the raw argon2id rate (go test, pass by pass) | 0.80× (±0.0%) | 0.84× | **no** |",
		"| refresh ≥ 5,000/s with wrk, SQLite | 4,000/s | 0.80× | **no** |",
		"| refresh ≤ 200 µs of server CPU, SQLite | 250 µs | 1.25× the bound | **no** |",       // the wrk run's
		"| introspection ≤ 100 µs of server CPU, SQLite | 300 µs | 3.00× the bound | **no** |", // no wrk run: keycard bench's
		"| introspection ≥ 10,000/s with wrk, SQLite | — | — | not measured |",
		"| refresh | PostgreSQL, 2 instances | 3,100 | 300 | 100 | 800 µs | 1.50 ms | 50 ms | 9 ms | 0 | 2 × 16 |", // (0.3 s + 0.3 s) ÷ 2,000
		"| refresh | SQLite | 5,500 | 300 | 100 | 800 µs |",
		"| refresh, SQLite | 5,500 | 4,000 | 0.73× | 300 | 250 | 100 | 50.0 | 0% / 1% | 10% / 50% |",
		"- refresh, SQLite: wrk 0.73× keycard bench; keycard bench took 0% of the cores and left the server 1%, wrk took 10% and left it 50%.",
		"| 1 | gateway | 3,000 | 300 | 100 | 800 µs |",
		"PostgreSQL, refresh: two instances ÷ one = 1.55× (1,500/s + 1,600/s; the two runs started 0s apart).",
		"| gateway, cold | 2,000 | 0.0% | 500,000 | 6,000 | 80 | 0.50× |",
		"| 100,000 | 95 | 9.1 | 150 | 60.0 | 90.0 | — | — | 0 |",
		"| EdDSA | — | — | — | — | — | — | — |",
		"| HS256 | 200 | 2,500 | 500 | +300 | 2 | 9 | 2 |",
		"| 1,000,000 | 700 | 700 | 800 µs | 9 ms | 0.70× |",
		"![Gateway against a bare reverse proxy: requests per second and latency](bench/plots/gateway.svg)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	if strings.Contains(got, "noisy") {
		t.Error("a full run on an idle machine is called noisy")
	}
	if t.Failed() {
		t.Logf("BENCHMARKS.md:\n%s", got)
	}
	for _, pf := range plotFiles {
		s, err := os.ReadFile(filepath.Join(plots, pf.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(s), "<svg ") || !strings.HasSuffix(string(s), "</svg>\n") || strings.Contains(string(s), "NaN") {
			t.Errorf("%s is not a well-formed plot:\n%.400s", pf.file, s)
		}
	}
}

func TestSystemNoisy(t *testing.T) {
	for _, tt := range []struct {
		mode, load string
		want       string
	}{
		{"full", "0.50 1.00 1.00", ""},
		{"quick", "0.50 1.00 1.00", "`--quick` mode"},
		{"full", "7.25 6.00 5.00", "load average 7.25 at the start on 2 cores"},
		{"full", "0.50 1.00 1.00 others 25", "other programs took 25% of the cores' time during the run"},
		{"full", "0.50 1.00 1.00 others 5", ""},
	} {
		s := &system{machine: machine{Mode: tt.mode, host: host{LoadBefore: tt.load, LoadAfter: "2.50 2.00 1.50", Cores: 2}}}
		if _, o, ok := strings.Cut(tt.load, " others "); ok {
			v, _ := strconv.ParseFloat(o, 64)
			s.machine.OthersCPU = &v
		}
		noisy, why := s.noisy()
		if noisy != (tt.want != "") || !strings.Contains(why, tt.want) {
			t.Errorf("mode %s, load %s: noisy = %v, %q; want %q", tt.mode, tt.load, noisy, why, tt.want)
		}
	}
}

func TestSystemNoisyAfter(t *testing.T) {
	s := &system{machine: machine{Mode: "full", host: host{LoadBefore: "0.50 1.00 1.00", LoadAfter: "16.17 12.42 9.74", Cores: 2}}}
	if noisy, why := s.noisy(); !noisy || !strings.Contains(why, "load average 16.17 at the end on 2 cores") {
		t.Errorf("noisy = %v, %q; want a load average of 16 at the end called noisy", noisy, why)
	}
}

func TestSystemErrors(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if err := run([]string{"-system", dir}, nil, &stderr); err == nil {
		t.Error("a directory without machine.json: no error")
	}
	failures := t.TempDir()
	writeResults(t, failures, map[string][2]float64{"sqlite-refresh": {100, 100}}, nil)
	m, _ := os.ReadFile(filepath.Join(failures, "machine.json"))
	m = []byte(strings.Replace(string(m), `"postgres": true`, `"postgres": true, "failures": ["keycard bench login (sqlite-login.json): exit 1: no request succeeded"]`, 1))
	os.WriteFile(filepath.Join(failures, "machine.json"), m, 0o644)
	var frag bytes.Buffer
	s, err := loadSystem(failures)
	if err != nil {
		t.Fatal(err)
	}
	writeSystem(&frag, s, "")
	if !strings.Contains(frag.String(), "**Steps that failed in this run**") || !strings.Contains(frag.String(), "- keycard bench login (sqlite-login.json): exit 1: no request succeeded\n") {
		t.Errorf("failures are not listed:\n%s", frag.String())
	}
	writeResults(t, dir, nil, map[string]string{"x.json": `{"schema": "other/2"}`})
	if err := run([]string{"-system", dir}, nil, &stderr); err == nil || !strings.Contains(err.Error(), "keycard-bench/1") {
		t.Errorf("a result of another schema: err = %v", err)
	}
	if err := run([]string{"-system", dir, "results.txt"}, nil, &stderr); err == nil {
		t.Error("-system with a results file: no error")
	}
	md := filepath.Join(dir, "B.md")
	os.Remove(filepath.Join(dir, "x.json"))
	writeResults(t, dir, map[string][2]float64{"sqlite-refresh": {100, 100}}, map[string]string{"B.md": "# no markers\n"})
	if err := run([]string{"-system", dir, "-md", md}, nil, &stderr); err == nil {
		t.Error("a markdown file without the system markers: no error")
	}
}

func TestPairedRatio(t *testing.T) {
	// A slow spell in pass 2 slows both; a burst in pass 3 lands on the
	// gateway only. Pass by pass, the gateway is 0.91× the bare proxy; the
	// ratio of the medians would say 0.5×.
	g, err := parseGoBench(strings.NewReader(`BenchmarkG/bare-2 1 1000 ns/op
BenchmarkG/gw-2 1 1100 ns/op
BenchmarkG/bare-2 1 3000 ns/op
BenchmarkG/gw-2 1 3300 ns/op
BenchmarkG/bare-2 1 1000 ns/op
BenchmarkG/gw-2 1 2000 ns/op
`))
	if err != nil {
		t.Fatal(err)
	}
	s := &system{benches: map[string]*goBench{"gateway": g}}
	r := s.pairedRatio("gateway", "BenchmarkG/bare", "BenchmarkG/gw", "ns/op")
	if !r.ok || r.n != 3 || math.Abs(r.median-1000.0/1100) > 1e-9 {
		t.Errorf("pairedRatio = %+v, want the median 0.909 of 3 passes", r)
	}
	if r := s.pairedRatio("gateway", "BenchmarkG/bare", "BenchmarkG/none", "ns/op"); r.ok {
		t.Errorf("pairedRatio with a missing benchmark = %+v, want none", r)
	}
}
