package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// machine is bench/results/machine.json, written by bench/all.sh: where and
// how the whole run was made.
type machine struct {
	Mode string `json:"mode"` // "full" or "quick"
	host
	Count         int    `json:"count"`
	Benchtime     string `json:"benchtime"`
	HTTPBenchtime string `json:"http_benchtime"`
	Duration      string `json:"duration"`
	Revocations   int    `json:"revocations"`
	Rounds        int    `json:"rounds"`
	Postgres      bool   `json:"postgres"`
	// Wrk says whether wrk ran beside keycard bench, and with how many
	// threads. Absent in older results.
	Wrk        bool     `json:"wrk"`
	WrkThreads int      `json:"wrk_threads"`
	Failures   []string `json:"failures"` // steps that failed; the run went on
}

// host is what bench/all.sh and bench/peers/run.sh both record in their
// machine.json: the command, the commit, when, on what, and how busy the
// machine was.
type host struct {
	Command    string `json:"command"`
	Commit     string `json:"commit"`
	Date       string `json:"date"`
	Seconds    int    `json:"seconds"`
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	GoVersion  string `json:"go_version"`
	Kernel     string `json:"kernel"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	// OthersCPU is the share of all cores' time that programs other than
	// the run used while it ran, in percent; StealCPU the share the
	// hypervisor gave to other machines. Absent in older results.
	OthersCPU *float64 `json:"others_cpu_pct"`
	StealCPU  *float64 `json:"steal_cpu_pct"`
}

// benchRun is the part of a `keycard bench --json` result (schema
// keycard-bench/1, docs/bench.md) or a bench/cmd/wrkbench result (schema
// keycard-wrk/1, the same members where they apply) the report uses.
type benchRun struct {
	Schema       string           `json:"schema"`
	Tool         string           `json:"tool"` // "wrk" for keycard-wrk/1
	Label        string           `json:"label"`
	Workload     string           `json:"workload"`
	Concurrency  int              `json:"concurrency"`
	StartedAt    time.Time        `json:"started_at"`
	DurationS    float64          `json:"duration_s"`
	Requests     int64            `json:"requests"`
	Successes    int64            `json:"successes"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	Throughput   float64          `json:"throughput_per_s"`
	Latency      latency          `json:"latency_us"`
	Command      string           `json:"command"`
	ServerCPU    *cpuFigure       `json:"server_cpu"`
	GeneratorCPU *cpuFigure       `json:"generator_cpu"`
	Environment  struct {
		GoVersion  string `json:"go_version"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		NumCPU     int    `json:"num_cpu"`
		CPUModel   string `json:"cpu_model"`
	} `json:"environment"`
}

// cpuFigure is a CPU time per successful request (docs/bench.md): a
// figure, or why there is none.
type cpuFigure struct {
	Source       string   `json:"source"`
	Seconds      *float64 `json:"cpu_s"`
	USPerRequest *float64 `json:"us_per_request"`
	Unavailable  string   `json:"unavailable"`
}

// serverUS is r's server CPU µs per request as a stat; not ok when not
// measured.
func (r *benchRun) serverUS() stat {
	if r == nil || r.ServerCPU == nil || r.ServerCPU.USPerRequest == nil {
		return stat{}
	}
	return stat{median: *r.ServerCPU.USPerRequest, n: 1, ok: true}
}

// shares are the shares of the machine's cores' time over r, in
// percent, that its load generator and its server used; ok false when
// either is not measured.
func (r *benchRun) shares(cores int) (gen, server float64, ok bool) {
	if r == nil || cores < 1 || r.DurationS <= 0 || r.GeneratorCPU == nil || r.GeneratorCPU.Seconds == nil ||
		r.ServerCPU == nil || r.ServerCPU.Seconds == nil {
		return 0, 0, false
	}
	all := r.DurationS * float64(cores) / 100
	return *r.GeneratorCPU.Seconds / all, *r.ServerCPU.Seconds / all, true
}

type latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// goBench is one file of raw go test -bench output: every benchmark by its
// full name (without the -GOMAXPROCS suffix), unit → one value per run.
type goBench struct {
	config  []configLine
	names   []string
	samples map[string]map[string][]float64
	procs   int
}

// system is everything in a results directory.
type system struct {
	machine machine
	runs    map[string]*benchRun // file name without .json → result
	benches map[string]*goBench  // file name without .txt → results
}

// loadSystem reads machine.json, every *.json keycard bench result and
// every *.txt go test output in dir.
func loadSystem(dir string) (*system, error) {
	s := &system{runs: map[string]*benchRun{}, benches: map[string]*goBench{}}
	entries, err := readMachine(dir, &s.machine)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case e.IsDir() || name == "machine.json":
		case strings.HasSuffix(name, ".json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			var r benchRun
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if r.Schema != "keycard-bench/1" && r.Schema != "keycard-wrk/1" {
				return nil, fmt.Errorf("%s: schema %q, want keycard-bench/1 or keycard-wrk/1", path, r.Schema)
			}
			s.runs[strings.TrimSuffix(name, ".json")] = &r
		case strings.HasSuffix(name, ".txt"):
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			g, err := parseGoBench(f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			s.benches[strings.TrimSuffix(name, ".txt")] = g
		}
	}
	if len(s.runs) == 0 && len(s.benches) == 0 {
		return nil, fmt.Errorf("%s: no results: %w", dir, fs.ErrNotExist)
	}
	return s, nil
}

// readMachine decodes dir/machine.json into m and lists dir.
func readMachine(dir string, m any) ([]os.DirEntry, error) {
	path := filepath.Join(dir, "machine.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return os.ReadDir(dir)
}

// parseGoBench reads go test -bench output with any benchmark names.
func parseGoBench(r io.Reader) (*goBench, error) {
	g := &goBench{samples: map[string]map[string][]float64{}}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if k, v, ok := configPair(text); ok {
			if !seen[k] {
				seen[k] = true
				g.config = append(g.config, configLine{k, v})
			}
			continue
		}
		fields := strings.Fields(text)
		if !strings.HasPrefix(text, "Benchmark") || len(fields) < 4 || len(fields)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := fields[0]
		if m := procsSuffix.FindStringSubmatch(name); m != nil {
			g.procs, _ = strconv.Atoi(m[1])
			name = name[:len(name)-len(m[0])]
		}
		if g.samples[name] == nil {
			g.samples[name] = map[string][]float64{}
			g.names = append(g.names, name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %v", line, fields[i], err)
			}
			g.samples[name][fields[i+1]] = append(g.samples[name][fields[i+1]], v)
		}
	}
	return g, sc.Err()
}

// get summarises benchmark name of file in unit; the zero stat when absent.
func (s *system) get(file, name, unit string) stat {
	g := s.benches[file]
	if g == nil {
		return stat{}
	}
	return summarize(g.samples[name][unit])
}

func (s *system) goConfig(file, key string) string {
	if g := s.benches[file]; g != nil {
		for _, c := range g.config {
			if c.key == key {
				return c.value
			}
		}
	}
	return ""
}

// rounds returns the runs named prefix-r1, prefix-r2, … (or just prefix),
// in order.
func (s *system) rounds(prefix string) []*benchRun {
	var out []*benchRun
	if r := s.runs[prefix]; r != nil {
		out = append(out, r)
	}
	for i := 1; ; i++ {
		r := s.runs[fmt.Sprintf("%s-r%d", prefix, i)]
		if r == nil {
			return out
		}
		out = append(out, r)
	}
}

// medianRate is the median throughput of runs and the runs' spread.
func medianRate(runs []*benchRun) stat {
	var vs []float64
	for _, r := range runs {
		vs = append(vs, r.Throughput)
	}
	return summarize(vs)
}

var sessionsFile = regexp.MustCompile(`^sessions-(\d+)-r\d+$`)

// sessionSizes returns the stored-session counts of the sessions-N-rR
// results, ascending.
func (s *system) sessionSizes() []int {
	var sizes []int
	for name := range s.runs {
		if m := sessionsFile.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			if !slices.Contains(sizes, n) {
				sizes = append(sizes, n)
			}
		}
	}
	sort.Ints(sizes)
	return sizes
}

// revocationSizes returns the entries=N sizes of BenchmarkRevokedCheck,
// ascending.
func (s *system) revocationSizes() []int {
	var sizes []int
	g := s.benches["verifier"]
	if g == nil {
		return nil
	}
	re := regexp.MustCompile(`^BenchmarkRevocationSetMemory/entries=(\d+)$`)
	for _, name := range g.names {
		if m := re.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[1])
			sizes = append(sizes, n)
		}
	}
	sort.Ints(sizes)
	return sizes
}
