package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportSchema names the version of Report's JSON form. A change that
// renames, removes or changes the meaning of a member changes it;
// members may be added without one.
const ReportSchema = "keycard-bench/1"

// Report is the outcome of a run in the form "keycard bench --json"
// prints: one JSON object, documented member by member in docs/bench.md.
type Report struct {
	Schema        string           `json:"schema"`
	Workload      string           `json:"workload"`
	Target        string           `json:"target"`
	Gateway       string           `json:"gateway,omitempty"`
	Path          string           `json:"path,omitempty"`
	Mode          string           `json:"mode"`
	Concurrency   int              `json:"concurrency"`
	Rate          float64          `json:"rate"`
	StartedAt     time.Time        `json:"started_at"`
	DurationS     float64          `json:"duration_s"`
	Requests      int64            `json:"requests"`
	Successes     int64            `json:"successes"`
	Errors        int64            `json:"errors"`
	ErrorsByKind  map[string]int64 `json:"errors_by_kind"`
	Throughput    float64          `json:"throughput_per_s"`
	LatencyUS     Latency          `json:"latency_us"`
	LateStarts    int64            `json:"late_starts"`
	MaxStartLagUS float64          `json:"max_start_lag_us"`
	Interrupted   bool             `json:"interrupted"`
	// ServerCPU is the CPU time of the server under test per successful
	// request, or why there is none; GeneratorCPU the same of this load
	// generator. Set by Bench; nil (absent) otherwise.
	ServerCPU    *CPUFigure  `json:"server_cpu,omitempty"`
	GeneratorCPU *CPUFigure  `json:"generator_cpu,omitempty"`
	Environment  Environment `json:"environment"`
	// Command is the command line that ran, with secrets left out; set
	// by the caller.
	Command string `json:"command,omitempty"`
}

// Latency is a latency distribution in microseconds.
type Latency struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Environment is where the generator ran.
type Environment struct {
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	CPUModel   string `json:"cpu_model,omitempty"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// CurrentEnvironment describes this process and machine; the CPU model
// is read from /proc/cpuinfo where there is one.
func CurrentEnvironment() Environment {
	return Environment{
		GoVersion:  runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU:     runtime.NumCPU(),
		CPUModel:   cpuModel("/proc/cpuinfo"),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

// cpuModel returns the first "model name" of a /proc/cpuinfo file, or "".
func cpuModel(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

func micros(d time.Duration) float64 {
	return float64(d.Nanoseconds()/100) / 10 // 0.1 µs, well inside the histogram's precision
}

// NewReport makes the report of res, a run of workload against t.
func NewReport(workload string, t Target, res *Result, env Environment) Report {
	r := Report{
		Schema:       ReportSchema,
		Workload:     workload,
		Target:       t.URL,
		Mode:         res.Mode,
		Concurrency:  res.Concurrency,
		Rate:         res.Rate,
		StartedAt:    res.Started.UTC().Truncate(time.Millisecond),
		DurationS:    res.Elapsed.Seconds(),
		Successes:    res.Successes(),
		Errors:       res.ErrorCount(),
		ErrorsByKind: res.Errors,
		Throughput:   res.Throughput(),
		LatencyUS: Latency{
			Min:  micros(res.Latency.Min()),
			Mean: micros(res.Latency.Mean()),
			P50:  micros(res.Latency.Quantile(0.50)),
			P90:  micros(res.Latency.Quantile(0.90)),
			P99:  micros(res.Latency.Quantile(0.99)),
			P999: micros(res.Latency.Quantile(0.999)),
			Max:  micros(res.Latency.Max()),
		},
		LateStarts:    res.LateStarts,
		MaxStartLagUS: micros(res.MaxStartLag),
		Interrupted:   res.Interrupted,
		Environment:   env,
	}
	r.Requests = r.Successes + r.Errors
	if NeedsGateway(workload) {
		r.Gateway, r.Path = t.Gateway, t.Path
	}
	return r
}

// Behind reports whether an open-loop run fell behind its schedule: more
// than 1% of its requests started late.
func (r *Report) Behind() bool {
	return r.Mode == ModeOpen && r.LateStarts*100 > r.Requests
}

// WriteTable writes r for a reader: what ran, throughput, the latency
// percentiles and the errors by kind.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	what := fmt.Sprintf("closed loop, %d workers", r.Concurrency)
	if r.Concurrency == 1 {
		what = "closed loop, 1 worker"
	}
	if r.Mode == ModeOpen {
		what = fmt.Sprintf("open loop, %s/s scheduled, at most %d in flight", fmtCount(r.Rate), r.Concurrency)
	}
	fmt.Fprintf(&b, "keycard bench %s: %s (%s)\n", r.Workload, r.Target, what)
	if r.Gateway != "" {
		fmt.Fprintf(&b, "  through the gateway %s, GET %s\n", r.Gateway, r.Path)
	}
	if r.Interrupted {
		b.WriteString("  interrupted: the figures cover the requests completed before\n")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  requests\t%s in %.2fs (%s ok, %s failed)\n", fmtCount(float64(r.Requests)), r.DurationS, fmtCount(float64(r.Successes)), fmtCount(float64(r.Errors)))
	fmt.Fprintf(tw, "  throughput\t%s/s\n", fmtCount(r.Throughput))
	if r.ServerCPU != nil {
		fmt.Fprintf(tw, "  server CPU\t%s\n", r.ServerCPU.describe())
	}
	if r.GeneratorCPU != nil {
		fmt.Fprintf(tw, "  bench CPU\t%s\n", r.GeneratorCPU.describe())
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	l := r.LatencyUS
	fmt.Fprintf(tw, "  latency\tmin\tmean\tp50\tp90\tp99\tp99.9\tmax\t\n")
	fmt.Fprintf(tw, "  \t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", fmtMicros(l.Min), fmtMicros(l.Mean), fmtMicros(l.P50), fmtMicros(l.P90), fmtMicros(l.P99), fmtMicros(l.P999), fmtMicros(l.Max))
	tw.Flush()
	if r.Workload == WorkloadRevocationLatency {
		b.WriteString("  (latency: from the logout's answer to the gateway's first refusal of the token)\n")
	} else if r.Mode == ModeOpen {
		b.WriteString("  (latency: from each request's scheduled start, so waiting for a free worker counts)\n")
	}
	if len(r.ErrorsByKind) > 0 {
		b.WriteString("\n")
		kinds := make([]string, 0, len(r.ErrorsByKind))
		for k := range r.ErrorsByKind {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool {
			ni, nj := r.ErrorsByKind[kinds[i]], r.ErrorsByKind[kinds[j]]
			return ni > nj || ni == nj && kinds[i] < kinds[j]
		})
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for i, k := range kinds {
			label := ""
			if i == 0 {
				label = "errors"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\n", label, k, r.ErrorsByKind[k])
		}
		tw.Flush()
	}
	if r.Behind() {
		fmt.Fprintf(&b, "\nThe generator fell behind its schedule: %s of %s requests started more than %v late (at most %s).\n"+
			"No worker was free to send them on time (%d may be in flight): the target is slower than the rate asked\n"+
			"for, or, if it has capacity to spare, more requests must be in flight (--concurrency), or this machine\n"+
			"cannot send faster.\n"+
			"The latencies count from the scheduled starts, so they include the wait; the rate achieved is the throughput.\n",
			fmtCount(float64(r.LateStarts)), fmtCount(float64(r.Requests)), DefaultLateThreshold, fmtMicros(r.MaxStartLagUS), r.Concurrency)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatProgress formats p as one line without a line ending.
func FormatProgress(p Progress) string {
	line := fmt.Sprintf("%6.1fs  %10s requests  %6s errors  %10s/s  p50 %8s  p99 %8s",
		p.Elapsed.Seconds(), fmtCount(float64(p.Requests)), fmtCount(float64(p.Errors)), fmtCount(p.Rate),
		fmtMicros(micros(p.P50)), fmtMicros(micros(p.P99)))
	if p.LateStarts > 0 {
		line += fmt.Sprintf("  behind schedule: %s late starts", fmtCount(float64(p.LateStarts)))
	}
	return line
}

// fmtMicros formats a duration in microseconds with three significant
// digits and a unit.
func fmtMicros(us float64) string {
	switch {
	case us == 0:
		return "0"
	case us < 1000:
		return trimFloat(us) + "µs"
	case us < 1e6:
		return trimFloat(us/1e3) + "ms"
	}
	return trimFloat(us/1e6) + "s"
}

func trimFloat(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// fmtCount formats a count or rate with thousands separators and, below
// 100, one decimal.
func fmtCount(v float64) string {
	if v < 100 && v != float64(int64(v)) {
		return fmt.Sprintf("%.1f", v)
	}
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
