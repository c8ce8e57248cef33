package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// A CPUMeter reads the CPU time a process has used since it started:
// the server under test (MetricsCPU, ProcCPU) or the load generator
// itself (ProcCPU of this process).
type CPUMeter interface {
	// ReadCPU returns the process's CPU time so far, user and system.
	ReadCPU(ctx context.Context) (CPUReading, error)
	// Source says where the meter reads, for the report: a URL or a
	// /proc path.
	Source() string
}

// CPUReading is one reading of a CPUMeter.
type CPUReading struct {
	// CPU is the CPU time the process has used, user and system, in all
	// its threads.
	CPU time.Duration
	// Process tells one process from another (its start time), so that
	// two readings of different processes are not subtracted: a server
	// that restarted during the run, or another instance behind the same
	// load balancer. Empty when the source does not say.
	Process string
}

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ),
// which is 100 per second on every architecture Go supports on Linux;
// Prometheus's process collector assumes the same.
const clockTicks = 100

// ProcCPU reads the CPU time of a process on this machine from
// /proc/PID/stat (Linux): utime plus stime, in 10 ms clock ticks.
type ProcCPU struct {
	PID int
	// Dir is the proc file system's mount point; "" means /proc.
	Dir string
}

// Source returns the path ProcCPU reads.
func (p ProcCPU) Source() string {
	dir := p.Dir
	if dir == "" {
		dir = "/proc"
	}
	return fmt.Sprintf("%s/%d/stat", dir, p.PID)
}

// ReadCPU reads the process's utime and stime, and its start time (in
// clock ticks after boot) as the Process.
func (p ProcCPU) ReadCPU(ctx context.Context) (CPUReading, error) {
	b, err := os.ReadFile(p.Source())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return CPUReading{}, fmt.Errorf("no process %d on this machine (%s does not exist; /proc is Linux only)", p.PID, p.Source())
		}
		return CPUReading{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime (field 14), stime (15) and starttime (22) of
// a /proc/PID/stat line. The command name, field 2, is in parentheses
// and may hold spaces and parentheses itself, so the fields are counted
// from the last ")".
func parseProcStat(s string) (CPUReading, error) {
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return CPUReading{}, errors.New("unreadable /proc stat line: no command name")
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3
	const utime, stime, start = 14 - 3, 15 - 3, 22 - 3
	if len(f) <= start {
		return CPUReading{}, fmt.Errorf("unreadable /proc stat line: %d fields", len(f)+2)
	}
	u, err1 := strconv.ParseUint(f[utime], 10, 63)
	sy, err2 := strconv.ParseUint(f[stime], 10, 63)
	if err := errors.Join(err1, err2); err != nil {
		return CPUReading{}, fmt.Errorf("unreadable /proc stat line: %w", err)
	}
	ticks := u + sy
	return CPUReading{
		CPU:     time.Duration(ticks/clockTicks)*time.Second + time.Duration(ticks%clockTicks)*(time.Second/clockTicks),
		Process: f[start],
	}, nil
}

// Names of the Prometheus process collector's metrics MetricsCPU reads.
const (
	metricCPU   = "process_cpu_seconds_total"
	metricStart = "process_start_time_seconds"
)

// maxMetricsBody is the most of a /metrics page MetricsCPU reads.
const maxMetricsBody = 16 << 20

// MetricsCPU reads the CPU time of a server from its Prometheus metrics:
// process_cpu_seconds_total (and process_start_time_seconds, to tell
// instances apart) of the standard process collector, which the auth
// server serves at /metrics and the gateway on its metrics address.
// Behind a load balancer each reading may come from another instance;
// ReadCPU's Process tells them apart, and the figure is then refused.
type MetricsCPU struct {
	URL string
	// Client sends the request; nil means a client with a 10 s timeout.
	Client *http.Client
}

// Source returns the metrics URL.
func (m MetricsCPU) Source() string { return m.URL }

// ReadCPU fetches the metrics page and reads the process's CPU seconds.
func (m MetricsCPU) ReadCPU(ctx context.Context) (CPUReading, error) {
	c := m.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL, nil)
	if err != nil {
		return CPUReading{}, err
	}
	// The text format, not protocol buffers or OpenMetrics.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	req.Header.Set("User-Agent", "keycard-bench")
	resp, err := c.Do(req)
	if err != nil {
		return CPUReading{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return CPUReading{}, fmt.Errorf("%s answers %d", m.URL, resp.StatusCode)
	}
	vals, err := scanMetrics(io.LimitReader(resp.Body, maxMetricsBody), metricCPU, metricStart)
	if err != nil {
		return CPUReading{}, fmt.Errorf("%s: %w", m.URL, err)
	}
	cpu, ok := vals[metricCPU]
	if !ok {
		return CPUReading{}, fmt.Errorf("%s has no %s", m.URL, metricCPU)
	}
	if cpu < 0 || cpu > float64(math.MaxInt64/int64(time.Second)) {
		return CPUReading{}, fmt.Errorf("%s: %s is %v", m.URL, metricCPU, cpu)
	}
	r := CPUReading{CPU: time.Duration(math.Round(cpu * float64(time.Second)))}
	if start, ok := vals[metricStart]; ok {
		r.Process = strconv.FormatFloat(start, 'f', -1, 64)
	}
	return r, nil
}

// scanMetrics reads the Prometheus text exposition format and returns the
// value of each of names that has one series. A name with several series
// (labels) is an error: which process each is cannot be told.
func scanMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if !want[name] {
			continue
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				return nil, fmt.Errorf("unreadable series of %s", name)
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest) // value [timestamp]
		if len(f) == 0 {
			return nil, fmt.Errorf("%s has no value", name)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s has the value %q", name, f[0])
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s has several series", name)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// CPUFigure is a process's CPU time over a run, per successful request,
// in the report ("server_cpu", "generator_cpu"). Either Seconds and
// USPerRequest are set, or Unavailable says why there is no figure.
type CPUFigure struct {
	// Source is where it was read (see CPUMeter.Source).
	Source string `json:"source,omitempty"`
	// Seconds is the CPU time used from just before the first request
	// to just after the last answer.
	Seconds *float64 `json:"cpu_s,omitempty"`
	// USPerRequest is Seconds in microseconds divided by the successful
	// requests.
	USPerRequest *float64 `json:"us_per_request,omitempty"`
	// Unavailable says why there is no figure.
	Unavailable string `json:"unavailable,omitempty"`
}

// Measured reports whether f holds a figure.
func (f *CPUFigure) Measured() bool { return f != nil && f.USPerRequest != nil }

// NewCPUFigure makes the figure of source's two readings around a run
// with successes successful requests (errBefore and errAfter are the
// readings' errors). A failed reading, readings of two
// different processes, or no success gives no figure but the reason.
func NewCPUFigure(source string, before CPUReading, errBefore error, after CPUReading, errAfter error, successes int64) *CPUFigure {
	f := &CPUFigure{Source: source}
	switch {
	case errBefore != nil:
		f.Unavailable = "reading it before the run failed: " + errBefore.Error()
	case errAfter != nil:
		f.Unavailable = "reading it after the run failed: " + errAfter.Error()
	case before.Process != after.Process:
		f.Unavailable = "the two readings are of different processes (start times " + before.Process + " and " + after.Process + "): the server restarted, or another instance answered"
	case after.CPU < before.CPU:
		f.Unavailable = "the CPU time went backwards: the server restarted, or another instance answered"
	case successes == 0:
		f.Unavailable = "no request succeeded"
	case after.CPU == before.CPU:
		f.Unavailable = "the server's CPU time did not advance: the run was shorter than the 10 ms ticks it is counted in; run longer"
	default:
		cpu := after.CPU - before.CPU
		s := math.Round(cpu.Seconds()*1000) / 1000                                // the sources count in 10 ms ticks
		per := math.Round(float64(cpu.Nanoseconds())/float64(successes)/100) / 10 // µs, one decimal
		f.Seconds, f.USPerRequest = &s, &per
	}
	return f
}

// describe words f for the table.
func (f *CPUFigure) describe() string {
	if !f.Measured() {
		return "not measured: " + f.Unavailable
	}
	return fmt.Sprintf("%s per successful request (%.2f s in all, from %s)", fmtMicros(*f.USPerRequest), *f.Seconds, f.Source)
}
