package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePeerRun writes one wrk result of bench/peers/run.sh.
func writePeerRun(t *testing.T, dir string, round int, workload, system string, rate, serverUS float64, errors int) {
	t.Helper()
	js := fmt.Sprintf(`{"schema": "keycard-wrk/1", "tool": "wrk", "workload": %q, "label": %q, "target": "http://127.0.0.1:1", "concurrency": 16,
		"wrk_threads": 2, "duration_s": 10, "requests": 1000, "successes": 1000, "errors": %d, "errors_by_kind": {}, "throughput_per_s": %g,
		"latency_us": {"min": 1, "mean": 2, "p50": 2, "p90": 3, "p99": 4, "p99_9": 5, "max": 6},
		"server_cpu": {"source": "/proc/9/stat", "cpu_s": 1, "us_per_request": %g},
		"generator_cpu": {"source": "wrk's rusage", "cpu_s": 1, "us_per_request": 10},
		"command": "wrk -t2 -c16 -d10s -s bench/wrk/%s.lua http://127.0.0.1:1"}`, workload, system, errors, rate, serverUS, workload)
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%d-%s-%s.json", round, workload, system)), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPeersReport(t *testing.T) {
	dir := t.TempDir()
	machine := `{"command": "bench/peers/run.sh --rounds 2 --duration 10s --connections 16 --threads 2", "commit": "abc1234",
		"hydra_commit": "83127c5", "oathkeeper_commit": "024fbb5", "date": "2026-12-06T16:00Z", "seconds": 900, "cpu_model": "Test CPU",
		"cores": 2, "go_version": "go1.26.8", "kernel": "Linux 6.1", "load_before": "4.50 2.00 1.00", "load_after": "3.00 2.00 1.00",
		"postgres": "15.4", "others_cpu_pct": 12.5, "rounds": 2, "duration": "10s", "connections": 16, "threads": 2}`
	if err := os.WriteFile(filepath.Join(dir, "machine.json"), []byte(machine), 0o644); err != nil {
		t.Fatal(err)
	}
	// Round by round: Keycard 3,000 and 2,000/s at 300 and 400 µs;
	// Hydra 200 and 100/s at 3,000 and 8,000 µs: Keycard ÷ Hydra 15× and
	// 20×, Hydra's CPU ÷ Keycard's 10× and 20×.
	writePeerRun(t, dir, 1, "refresh", "keycard-sqlite", 3000, 300, 0)
	writePeerRun(t, dir, 2, "refresh", "keycard-sqlite", 2000, 400, 0)
	writePeerRun(t, dir, 1, "refresh", "hydra-sqlite-opaque", 200, 3000, 0)
	writePeerRun(t, dir, 2, "refresh", "hydra-sqlite-opaque", 100, 8000, 3)
	writePeerRun(t, dir, 1, "client-credentials", "keycard-sqlite", 10000, 100, 0)
	writePeerRun(t, dir, 1, "client-credentials", "hydra-sqlite-opaque-defaulthash", 250, 7900, 0)
	writePeerRun(t, dir, 1, "gateway", "bare", 10000, 100, 0)
	writePeerRun(t, dir, 1, "gateway", "keycard-gateway", 9000, 130, 0)
	writePeerRun(t, dir, 1, "gateway", "oathkeeper", 3000, 520, 0)

	md := filepath.Join(dir, "BENCHMARKS.md")
	if err := os.WriteFile(md, []byte("# B\n\n"+peersBegin+"\nold\n"+peersEnd+"\n\nAfter.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := run([]string{"-peers", dir, "-md", md}, nil, &stderr); err != nil {
		t.Fatalf("run: %v (%s)", err, stderr.String())
	}
	b, _ := os.ReadFile(md)
	got := string(b)
	for _, want := range []string{
		"These figures are noisy: the machine was busy with other work (load average 4.5 at the start); other programs took 12% of the cores' time during the run.",
		"Keycard commit abc1234, Hydra commit 83127c5, Oathkeeper commit 024fbb5",
		"PostgreSQL 15.4",
		"median of 2 rounds",
		"#### Refresh grant",
		"| **Keycard, SQLite** | 2,500 | 3,000, 2,000 | 350 | — | — | 0 |",
		"| Hydra, SQLite, opaque tokens | 150 | 200, 100 | 5,500 | 17.50× | 15.00× | 3 |",
		"| Hydra, SQLite, opaque tokens | PBKDF2, 25,000 iterations (default) | 250 | 250 | 7,900 | 40.00× | 79.00× | 0 |",
		"| **Keycard, SQLite** | SHA-256 (high-entropy secrets) | 10,000 |",
		"| **keycard gateway** | 9,000 | 9,000 | 130 | 0.90× | +30.0 | 0 |",
		"| Oathkeeper (jwt authenticator) | 3,000 | 3,000 | 520 | 0.30× | +420 | 0 |",
		"keycard gateway ÷ Oathkeeper, rate: 3.00×; Oathkeeper's CPU per request ÷ the gateway's: 4.00×.",
		"wrk command (round 1, Keycard, SQLite): `wrk -t2 -c16 -d10s -s bench/wrk/refresh.lua http://127.0.0.1:1`",
		"\n\nAfter.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	if strings.Contains(got, "#### Introspection") {
		t.Error("a workload without results has a section")
	}
	if t.Failed() {
		t.Logf("BENCHMARKS.md:\n%s", got)
	}

	// A result of another schema is refused.
	if err := os.WriteFile(filepath.Join(dir, "r1-refresh-other.json"), []byte(`{"schema": "keycard-bench/1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-peers", dir, "-md", md}, nil, &stderr); err == nil || !strings.Contains(err.Error(), "want keycard-wrk/1") {
		t.Errorf("a keycard-bench/1 file among the peers results: %v", err)
	}
}
