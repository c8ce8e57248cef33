package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 3 to 22 after the command; utime 14, stime 15, starttime 22.
	rest := "S 1 2 3 4 5 6 7 8 9 10 %s %s 13 14 15 16 17 18 %s 20 21"
	tests := []struct {
		name    string
		line    string
		wantCPU time.Duration
		wantPID string
		wantErr string
	}{
		{name: "plain", line: "42 (keycard) " + fmt.Sprintf(rest, "250", "37", "9876"), wantCPU: 2870 * time.Millisecond, wantPID: "9876"},
		{name: "command with spaces and parentheses", line: "42 (a (b) c) " + fmt.Sprintf(rest, "100", "0", "5"), wantCPU: time.Second, wantPID: "5"},
		{name: "zero", line: "1 (x) " + fmt.Sprintf(rest, "0", "0", "1"), wantCPU: 0, wantPID: "1"},
		{name: "no command", line: "42 keycard S 1", wantErr: "no command name"},
		{name: "too short", line: "42 (keycard) S 1 2 3", wantErr: "fields"},
		{name: "not a number", line: "42 (keycard) " + fmt.Sprintf(rest, "x", "1", "1"), wantErr: "unreadable"},
		{name: "negative", line: "42 (keycard) " + fmt.Sprintf(rest, "-5", "1", "1"), wantErr: "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat(tt.line)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.CPU != tt.wantCPU || got.Process != tt.wantPID {
				t.Errorf("got %+v, %v; want CPU %v process %q", got, err, tt.wantCPU, tt.wantPID)
			}
		})
	}
}

func TestProcCPU(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	line := "7 (srv) S 1 2 3 4 5 6 7 8 9 10 123 77 13 14 15 16 17 18 555 20 21\n"
	if err := os.WriteFile(filepath.Join(dir, "7", "stat"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	p := ProcCPU{PID: 7, Dir: dir}
	if got, want := p.Source(), dir+"/7/stat"; got != want {
		t.Errorf("Source() = %q, want %q", got, want)
	}
	got, err := p.ReadCPU(context.Background())
	if err != nil || got.CPU != 2*time.Second || got.Process != "555" {
		t.Errorf("ReadCPU = %+v, %v; want 2s of process 555", got, err)
	}
	if _, err := (ProcCPU{PID: 8, Dir: dir}).ReadCPU(context.Background()); err == nil || !strings.Contains(err.Error(), "no process 8") {
		t.Errorf("a missing process: %v, want an error naming it", err)
	}
	if got := (ProcCPU{PID: 3}).Source(); got != "/proc/3/stat" {
		t.Errorf("default Source() = %q, want /proc/3/stat", got)
	}
}

// TestProcCPUSelf reads this process's real /proc entry before and after
// some work: the same process, and no less CPU time.
func TestProcCPUSelf(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc/PID/stat is Linux only")
	}
	p := ProcCPU{PID: os.Getpid()}
	a, err := p.ReadCPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	b, err := p.ReadCPU(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b.CPU < a.CPU || a.Process != b.Process || a.Process == "" {
		t.Errorf("readings %+v then %+v (work %d): want the same process and no less CPU", a, b, x)
	}
}

func TestScanMetrics(t *testing.T) {
	tests := []struct {
		name    string
		page    string
		want    map[string]float64
		wantErr string
	}{
		{
			name: "process collector",
			page: "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n" +
				"# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.34\n" +
				"process_start_time_seconds 1.79e+09\nprocess_cpu_seconds_totally 99\n",
			want: map[string]float64{"process_cpu_seconds_total": 12.34, "process_start_time_seconds": 1.79e9},
		},
		{name: "labels and a timestamp", page: `process_cpu_seconds_total{job="a b",x="}"} 3 1700000000000` + "\n", want: map[string]float64{"process_cpu_seconds_total": 3}},
		{name: "absent", page: "go_goroutines 8\n", want: map[string]float64{}},
		{name: "several series", page: "process_cpu_seconds_total{pid=\"1\"} 1\nprocess_cpu_seconds_total{pid=\"2\"} 2\n", wantErr: "several series"},
		{name: "no value", page: "process_cpu_seconds_total\n", wantErr: "no value"},
		{name: "NaN", page: "process_cpu_seconds_total NaN\n", wantErr: "value"},
		{name: "Inf", page: "process_cpu_seconds_total +Inf\n", wantErr: "value"},
		{name: "garbage", page: "process_cpu_seconds_total twelve\n", wantErr: "value"},
		{name: "unclosed labels", page: "process_cpu_seconds_total{a=\"b\" 1\n", wantErr: "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanMetrics(strings.NewReader(tt.page), metricCPU, metricStart)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMetricsCPU(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			if got := r.Header.Get("Accept"); !strings.HasPrefix(got, "text/plain") {
				t.Errorf("Accept %q, want the text format", got)
			}
			fmt.Fprint(w, "process_cpu_seconds_total 1.5\nprocess_start_time_seconds 1700000000.25\n")
		case "/nocpu":
			fmt.Fprint(w, "go_goroutines 3\n")
		case "/negative":
			fmt.Fprint(w, "process_cpu_seconds_total -1\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	got, err := MetricsCPU{URL: srv.URL + "/metrics"}.ReadCPU(context.Background())
	if err != nil || got.CPU != 1500*time.Millisecond || got.Process != "1700000000.25" {
		t.Errorf("ReadCPU = %+v, %v; want 1.5s of the process started at 1700000000.25", got, err)
	}
	for path, want := range map[string]string{"/nocpu": "has no process_cpu_seconds_total", "/negative": "is -1", "/other": "answers 404"} {
		if _, err := (MetricsCPU{URL: srv.URL + path}).ReadCPU(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", path, err, want)
		}
	}
}

func TestCPUFigure(t *testing.T) {
	at := func(cpu time.Duration) CPUReading { return CPUReading{CPU: cpu, Process: "100"} }
	failed := errors.New("connection refused")
	tests := []struct {
		name          string
		before, after CPUReading
		errB, errA    error
		successes     int64
		wantUS        float64
		wantSeconds   float64
		wantWhy       string
	}{
		{name: "measured", before: at(10 * time.Second), after: at(12500 * time.Millisecond), successes: 1000, wantUS: 2500, wantSeconds: 2.5},
		{name: "one decimal", before: at(0), after: at(10 * time.Millisecond), successes: 3, wantUS: 3333.3, wantSeconds: 0.01},
		{name: "no CPU used", before: at(time.Second), after: at(time.Second), successes: 5, wantWhy: "did not advance"},
		{name: "first reading failed", errB: failed, successes: 5, wantWhy: "before the run failed: connection refused"},
		{name: "second reading failed", before: at(0), errA: failed, successes: 5, wantWhy: "after the run failed: connection refused"},
		{name: "another process", before: at(0), after: CPUReading{CPU: time.Second, Process: "200"}, successes: 5, wantWhy: "different processes"},
		{name: "backwards", before: at(time.Second), after: at(0), successes: 5, wantWhy: "went backwards"},
		{name: "no success", before: at(0), after: at(time.Second), successes: 0, wantWhy: "no request succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewCPUFigure("src", tt.before, tt.errB, tt.after, tt.errA, tt.successes)
			if f.Source != "src" {
				t.Errorf("source %q, want src", f.Source)
			}
			if tt.wantWhy != "" {
				if f.Measured() || f.Seconds != nil || !strings.Contains(f.Unavailable, tt.wantWhy) {
					t.Errorf("got %+v; want no figure and a reason with %q", f, tt.wantWhy)
				}
				if d := f.describe(); !strings.HasPrefix(d, "not measured: ") {
					t.Errorf("describe() = %q, want it to say not measured", d)
				}
				return
			}
			if !f.Measured() || *f.USPerRequest != tt.wantUS || *f.Seconds != tt.wantSeconds || f.Unavailable != "" {
				t.Errorf("got %+v; want %v µs per request, %v s", f, tt.wantUS, tt.wantSeconds)
			}
		})
	}
}
