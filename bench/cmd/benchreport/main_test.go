package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `go: go1.26.8
cores: 2
goos: linux
goarch: amd64
pkg: github.com/keycard-auth/keycard/bench
cpu: Test CPU @ 2.10GHz
BenchmarkVerify/keycard/HS256-2   	  100000	      1000 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerify/keycard/HS256-2   	  100000	      1100 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerify/keycard/HS256-2   	  100000	       900 ns/op	       0 B/op	       0 allocs/op
BenchmarkVerify/golang-jwt/HS256-2	   10000	     10000 ns/op	    3616 B/op	      59 allocs/op
BenchmarkVerify/cristalhq/HS256-2 	   10000	      5000 ns/op	    1928 B/op	      35 allocs/op
BenchmarkVerify/floor/HS256-2     	  300000	       500 ns/op	       0 B/op	       0 allocs/op
BenchmarkSign/keycard/RS256-2     	     300	   1100000 ns/op	    3392 B/op	       5 allocs/op
BenchmarkSign/floor/RS256-2       	     300	   1000000 ns/op	    1280 B/op	       3 allocs/op
BenchmarkOther-2                  	     300	   1000000 ns/op
PASS
`

func TestParse(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(r.ops, ","), "Verify,Sign"; got != want {
		t.Errorf("ops = %s, want %s", got, want)
	}
	if got, want := strings.Join(r.libs["Verify"], ","), "keycard,golang-jwt,cristalhq,floor"; got != want {
		t.Errorf("Verify libs = %s, want %s", got, want)
	}
	s := r.get(key{"Verify", "keycard", "HS256"}, "ns/op")
	if s.median != 1000 || s.n != 3 {
		t.Errorf("keycard HS256 = median %v over %d runs, want 1000 over 3", s.median, s.n)
	}
	if s.spread < 0.099 || s.spread > 0.101 {
		t.Errorf("spread = %v, want 0.1", s.spread)
	}
	if r.procs != 2 || r.configValue("cpu") != "Test CPU @ 2.10GHz" || r.configValue("cores") != "2" {
		t.Errorf("procs %d, cpu %q, cores %q", r.procs, r.configValue("cpu"), r.configValue("cores"))
	}
	if len(r.warnings) != 1 {
		t.Errorf("warnings = %q, want one for BenchmarkOther", r.warnings)
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name       string
		in         []float64
		wantMedian float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
		{"outlier does not move the median", []float64{10, 10, 11, 10, 1000, 10}, 10},
	}
	for _, tt := range tests {
		if got := summarize(tt.in).median; got != tt.wantMedian {
			t.Errorf("%s: median = %v, want %v", tt.name, got, tt.wantMedian)
		}
	}
	if got := summarize([]float64{10, 10, 11, 10, 1000, 10}).spread; got != 0.1 {
		t.Errorf("spread with outlier = %v, want 0.1 (outlier excluded)", got)
	}
}

func TestMarkdownTargets(t *testing.T) {
	r, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeMarkdown(&b, r, defaultTargets(), "bench/chart.svg")
	md := b.String()
	for _, want := range []string{
		beginMarker, endMarker,
		"Machine: Test CPU @ 2.10GHz, 2 cores, GOMAXPROCS=2, linux/amd64, go1.26.8.",
		// keycard 1000 ns vs cristalhq 5000 (5× ≥ 4×), vs floor 500 (2× ≤ 2.5×), 0 allocs.
		"| HS256 | 1,000 ±10% | cristalhq | 5,000 | 5.00× | 500 | 2.00× | 0 | ≥4× faster than fastest peer, ≤2.5× floor, 0 allocs | yes |",
		// 1.1 ms vs 1.0 ms floor misses ≤1.05×.
		"**no**: 1.10× floor",
		"|  | golang-jwt | 10,000 | — | 3,616 | 59 | 10.00× |",
		"![Benchmark chart",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q; got:\n%s", want, md)
		}
	}
}

func TestSplice(t *testing.T) {
	frag := beginMarker + "\nnew\n" + endMarker + "\n"
	doc := "# Title\n\nintro\n\n" + beginMarker + "\nold\n" + endMarker + "\n\nafter\n"
	got, err := splice(doc, frag, beginMarker, endMarker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "# Title\n\nintro\n\n" + frag + "\nafter\n"; got != want {
		t.Errorf("splice = %q, want %q", got, want)
	}
	if _, err := splice("# hand-written, no markers\n", frag, beginMarker, endMarker); err == nil {
		t.Error("splice into a document without markers succeeded, want an error")
	}
	if got, _ := splice("", frag, beginMarker, endMarker); got != frag {
		t.Errorf("splice into empty = %q, want the fragment", got)
	}
}

func TestRunWritesFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.txt")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	md, svg := filepath.Join(dir, "B.md"), filepath.Join(dir, "chart.svg")
	if err := os.WriteFile(md, []byte("# Benchmarks\n\n"+beginMarker+"\n"+endMarker+"\n\nNotes.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := run([]string{"-md", md, "-svg", svg, in}, nil, &stderr); err != nil {
		t.Fatalf("run: %v (stderr %s)", err, stderr.String())
	}
	b, _ := os.ReadFile(md)
	if !strings.HasPrefix(string(b), "# Benchmarks\n") || !strings.HasSuffix(string(b), "\nNotes.\n") || !strings.Contains(string(b), "### Verify") {
		t.Errorf("BENCHMARKS.md after run:\n%s", b)
	}
	s, _ := os.ReadFile(svg)
	if !strings.HasPrefix(string(s), "<svg ") || !strings.Contains(string(s), ">keycard</text>") || !strings.HasSuffix(string(s), "</svg>\n") {
		t.Errorf("chart.svg is not the expected SVG:\n%.300s", s)
	}
}
