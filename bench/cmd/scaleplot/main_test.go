package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A results directory as bench/scale.sh leaves it gives a summary with
// each size's medians and the large ÷ small ratio round by round, and an
// SVG with both panels.
func TestScalePlot(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("machine.json", `{"command":"bench/scale.sh","commit":"abc","date":"2026-12-06T21:00Z","seconds":600,"cpu_model":"CPU","cores":2,
		"load_before":"1 2 3","load_after":"4 5 6","postgres":"15","small":{"sessions":10000,"users":10000},"large":{"sessions":1000000,"users":10000000}}`)
	put := func(name, workload, label string, rate, us float64) {
		f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
		write(name, `{"load_average":"7.5 1 1","workload":"`+workload+`","label":"`+label+`","throughput_per_s":`+f(rate)+
			`,"server_cpu":{"us_per_request":`+f(us)+`},"command":"wrk x"}`)
	}
	// Ratios round by round: 0.9, 0.5, 0.8 → median 0.8.
	put("small-refresh-r1.json", "refresh", "small", 1000, 400)
	put("large-refresh-r1.json", "refresh", "large", 900, 420)
	put("small-refresh-r2.json", "refresh", "small", 2000, 380)
	put("large-refresh-r2.json", "refresh", "large", 1000, 500)
	put("small-refresh-r3.json", "refresh", "small", 1000, 390)
	put("large-refresh-r3.json", "refresh", "large", 800, 410)
	put("small-introspect-r1.json", "introspect", "small", 20000, 30)
	put("large-introspect-r1.json", "introspect", "large", 10000, 31)
	md, svg := filepath.Join(dir, "summary.md"), filepath.Join(dir, "scale.svg")
	if err := run(dir, md, svg); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(md)
	for _, want := range []string{
		"| refresh | 10,000 sessions, 10,000 users | 1,000 | 1,000, 2,000, 1,000 | 390 |",
		"| refresh | 1,000,000 sessions, 10,000,000 users | 900 | 900, 1,000, 800 | 420 |",
		"| 0.80× | yes |",
		"| introspect | 1,000,000 sessions, 10,000,000 users | 10,000 |",
		"| 0.50× | **no** |",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("summary lacks %q:\n%s", want, b)
		}
	}
	s, _ := os.ReadFile(svg)
	if !strings.HasPrefix(string(s), "<svg ") || !strings.HasSuffix(string(s), "</svg>\n") || strings.Contains(string(s), "NaN") ||
		!strings.Contains(string(s), "requests/s") || !strings.Contains(string(s), "server CPU µs per request") {
		t.Errorf("SVG:\n%s", s)
	}
	if err := run(t.TempDir(), "", ""); err == nil {
		t.Errorf("an empty directory gave no error")
	}
}
