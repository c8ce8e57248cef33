package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCPUModel(t *testing.T) {
	if got := cpuModel("testdata/cpuinfo"); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q, want AMD EPYC 7B13", got)
	}
	if got := cpuModel("testdata/no-such-file"); got != "" {
		t.Errorf("cpuModel of a missing file = %q, want empty", got)
	}
}

func sampleResult(t *testing.T) *Result {
	t.Helper()
	clock := newFakeClock()
	var n int
	op := func(ctx context.Context, worker int) (time.Duration, error) {
		n++
		clock.Advance(time.Duration(n) * time.Millisecond)
		if n%10 == 0 {
			return 0, &StatusError{Code: 429}
		}
		return 0, nil
	}
	res, err := Run(context.Background(), Config{Concurrency: 1, Rate: 1000, Requests: 100, Clock: clock}, op)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestReportJSONMembers pins the JSON form's member names, which
// scripts read (docs/bench.md): renaming one must change ReportSchema.
func TestReportJSONMembers(t *testing.T) {
	r := NewReport(WorkloadGateway, Target{URL: "http://auth", Gateway: "http://gw", Path: "/x"}, sampleResult(t), CurrentEnvironment())
	r.Command = "keycard bench gateway"
	r.ServerCPU = NewCPUFigure("http://gw/metrics", CPUReading{}, nil, CPUReading{CPU: time.Second}, nil, 90)
	r.GeneratorCPU = NewCPUFigure("/proc/1/stat", CPUReading{}, errors.New("no /proc"), CPUReading{}, nil, 90)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"command", "concurrency", "duration_s", "environment", "errors", "errors_by_kind", "gateway", "generator_cpu", "interrupted", "late_starts",
		"latency_us", "max_start_lag_us", "mode", "path", "rate", "requests", "schema", "server_cpu", "started_at", "successes", "target", "throughput_per_s", "workload"}
	if !slices.Equal(keys, want) {
		t.Errorf("members %v\nwant    %v", keys, want)
	}
	var server, gen map[string]any
	json.Unmarshal(m["server_cpu"], &server)
	json.Unmarshal(m["generator_cpu"], &gen)
	if want := map[string]any{"source": "http://gw/metrics", "cpu_s": 1.0, "us_per_request": 11111.1}; fmt.Sprint(server) != fmt.Sprint(want) {
		t.Errorf("server_cpu %v, want %v", server, want)
	}
	if want := map[string]any{"source": "/proc/1/stat", "unavailable": "reading it before the run failed: no /proc"}; fmt.Sprint(gen) != fmt.Sprint(want) {
		t.Errorf("generator_cpu %v, want %v", gen, want)
	}
	var lat, env map[string]any
	json.Unmarshal(m["latency_us"], &lat)
	json.Unmarshal(m["environment"], &env)
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency_us has no %q: %v", k, lat)
		}
	}
	for _, k := range []string{"go_version", "gomaxprocs", "num_cpu", "os", "arch"} {
		if _, ok := env[k]; !ok {
			t.Errorf("environment has no %q: %v", k, env)
		}
	}
	if r.Schema != ReportSchema || r.Requests != 100 || r.Errors != 10 || r.ErrorsByKind["http_429"] != 10 || r.Successes != 90 {
		t.Errorf("report %+v", r)
	}
	l := r.LatencyUS
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("percentiles out of order: %+v", l)
	}
	// The login workload has no gateway members.
	r = NewReport(WorkloadLogin, Target{URL: "http://auth", Gateway: "http://gw", Path: "/x"}, sampleResult(t), CurrentEnvironment())
	if b, _ := json.Marshal(r); strings.Contains(string(b), `"gateway"`) {
		t.Errorf("login report names a gateway: %s", b)
	}
}

func TestWriteTable(t *testing.T) {
	res := sampleResult(t)
	r := NewReport(WorkloadRefresh, Target{URL: "http://auth"}, res, Environment{})
	r.ServerCPU = NewCPUFigure("http://auth/metrics", CPUReading{}, nil, CPUReading{CPU: 27 * time.Millisecond}, nil, 90)
	r.GeneratorCPU = &CPUFigure{Unavailable: "no /proc"}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"keycard bench refresh: http://auth (open loop, 1,000/s scheduled, at most 1 in flight)",
		"requests", "100 in", "90 ok, 10 failed", "throughput", "p99.9", "http_429", "10", "fell behind its schedule",
		"server CPU  300µs per successful request (0.03 s in all, from http://auth/metrics)", "bench CPU   not measured: no /proc"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtCount(1234567), "1,234,567"},
		{fmtCount(999), "999"},
		{fmtCount(12.25), "12.2"},
		{fmtCount(0), "0"},
		{fmtMicros(0), "0"},
		{fmtMicros(12.34), "12.3µs"},
		{fmtMicros(812.5), "812µs"},
		{fmtMicros(1500), "1.50ms"},
		{fmtMicros(2_500_000), "2.50s"},
		{FormatProgress(Progress{Elapsed: 3 * time.Second, Requests: 1500, Errors: 2, Rate: 500, P50: time.Millisecond, P99: 5 * time.Millisecond}),
			"   3.0s       1,500 requests       2 errors         500/s  p50   1.00ms  p99   5.00ms"},
		{FormatProgress(Progress{Elapsed: time.Second, Requests: 10, Rate: 10, LateStarts: 1234}),
			"   1.0s          10 requests       0 errors          10/s  p50        0  p99        0  behind schedule: 1,234 late starts"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
