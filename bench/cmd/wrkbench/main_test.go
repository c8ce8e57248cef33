package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWrkShape(t *testing.T) {
	tests := []struct {
		name           string
		args           string
		threads, conns int
		wantErr        string
	}{
		{name: "defaults", args: "http://h", threads: 2, conns: 10},
		{name: "separate values", args: "-t 4 -c 32 -d 20s -s x.lua http://h", threads: 4, conns: 32},
		{name: "joined values", args: "-t1 -c16 http://h", threads: 1, conns: 16},
		{name: "long names", args: "--threads=3 --connections 12 http://h", threads: 3, conns: 12},
		{name: "no value", args: "http://h -c", wantErr: "has no value"},
		{name: "zero", args: "-c 0 http://h", wantErr: "not a positive count"},
		{name: "not a number", args: "-t two http://h", wantErr: "not a positive count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th, c, err := wrkShape(strings.Fields(tt.args))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %d, %d, %v; want an error with %q", th, c, err, tt.wantErr)
				}
				return
			}
			if err != nil || th != tt.threads || c != tt.conns {
				t.Errorf("got %d threads, %d connections, %v; want %d, %d", th, c, err, tt.threads, tt.conns)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		wantErr string
	}{
		{name: "ok", args: "-workload refresh -server-pid 7 -- wrk -t2 -c16 http://h"},
		{name: "unknown workload", args: "-workload nope -- wrk http://h", wantErr: "-workload must be one of"},
		{name: "no wrk", args: "-workload refresh", wantErr: "no wrk command"},
		{name: "pid and metrics", args: "-workload refresh -server-pid 7 -metrics-url http://h/metrics -- wrk http://h", wantErr: "not both"},
		{name: "negative pid", args: "-workload refresh -server-pid -7 -- wrk http://h", wantErr: "must be positive"},
		{name: "bad wrk -c", args: "-workload refresh -- wrk -c x http://h", wantErr: "not a positive count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(strings.Fields(tt.args), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v; want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || o.tokens != 32 || o.threads != 2 || o.conns != 16 || o.wrk[0] != "wrk" {
				t.Errorf("got %+v, %v; want 32 tokens for 2 threads and 16 connections", o, err)
			}
		})
	}
}

func TestNewResult(t *testing.T) {
	out := []byte("Running 1s test @ http://h\n" + resultPrefix +
		`{"duration_us":2000000,"requests":1000,"bytes":5,"errors":{"connect":1,"read":0,"write":0,"status":30,"timeout":2,"rejected":20},` +
		`"latency_us":{"min":10.0,"mean":20.0,"p50":15.0,"p90":30.0,"p99":40.0,"p99_9":50.0,"max":60.0}}` + "\n")
	sum, err := parseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	o := options{workload: "refresh", label: "Keycard", wrk: []string{"wrk", "-c16", "http://h"}, conns: 16, threads: 2}
	r := newResult(o, sum, time.Unix(0, 0))
	if r.Successes != 950 || r.Errors != 53 || r.Requests != 1003 || r.Throughput != 475 || r.DurationS != 2 {
		t.Errorf("successes %d errors %d requests %d throughput %v duration %v; want 950, 53, 1003, 475/s, 2 s",
			r.Successes, r.Errors, r.Requests, r.Throughput, r.DurationS)
	}
	want := map[string]int64{"http_4xx_5xx": 30, "bad_response": 20, "connect": 1, "timeout": 2}
	if fmt.Sprint(r.ErrorsByKind) != fmt.Sprint(want) {
		t.Errorf("errors by kind %v, want %v", r.ErrorsByKind, want)
	}
	if r.Target != "http://h" || r.Command != "wrk -c16 http://h" || r.LatencyUS.P99 != 40 || r.Schema != Schema {
		t.Errorf("result %+v", r)
	}
	if _, err := parseResult([]byte("Running 1s test\n")); err == nil {
		t.Error("output without a result line: no error")
	}
}

// fakeAuth is an auth server for the scripts: refresh tokens that are
// good once each, and an introspection endpoint.
type fakeAuth struct {
	mu      sync.Mutex
	live    map[string]bool
	next    int
	reused  int
	granted int
}

func (f *fakeAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	switch {
	case r.URL.Path == "/oauth/token" && r.PostForm.Get("grant_type") == "refresh_token":
		f.mu.Lock()
		defer f.mu.Unlock()
		rt := r.PostForm.Get("refresh_token")
		if !f.live[rt] {
			f.reused++
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		delete(f.live, rt)
		f.next++
		f.granted++
		nt := fmt.Sprintf("rt-%d", f.next)
		f.live[nt] = true
		fmt.Fprintf(w, `{"access_token":"at","token_type":"Bearer","expires_in":900,"refresh_token":%q}`, nt)
	case r.URL.Path == "/oauth/token" && r.PostForm.Get("grant_type") == "client_credentials" && r.Header.Get("Authorization") == "Basic Y2xpZW50OnNlY3JldA==":
		fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer","expires_in":900}`)
	case r.URL.Path == "/oauth/introspect":
		fmt.Fprintf(w, `{"active":%v}`, r.PostForm.Get("token") != "dead")
	case r.URL.Path == "/me/x" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		fmt.Fprint(w, "{}")
	default:
		http.Error(w, "no", http.StatusUnauthorized)
	}
}

// TestScripts runs wrk with each script of bench/wrk against a fake
// server: refresh uses every refresh token once and follows each chain,
// introspection rejects an inactive answer, and the figures add up.
func TestScripts(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not installed (Debian: apt-get install wrk)")
	}
	dir := t.TempDir()
	f := &fakeAuth{live: map[string]bool{}}
	var pool []string
	for i := range 8 {
		rt := fmt.Sprintf("seed-%d", i)
		f.live[rt] = true
		pool = append(pool, rt)
	}
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	scripts, err := filepath.Abs("../../wrk")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		workload     string
		env          []string
		wantRejected bool
	}{
		{workload: "refresh", env: []string{"WRK_TOKENS=" + write("refresh", pool...)}},
		{workload: "client-credentials", env: []string{"WRK_AUTH=Basic Y2xpZW50OnNlY3JldA=="}},
		{workload: "introspect", env: []string{"WRK_TOKENS=" + write("access", "a1", "a2", "a3", "a4")}},
		{workload: "introspect", env: []string{"WRK_TOKENS=" + write("dead", "a1", "dead")}, wantRejected: true},
		{workload: "gateway", env: []string{"WRK_TOKENS=" + write("access2", "a1", "a2"), "WRK_PATH=/me/x"}},
	}
	for _, tt := range tests {
		o := options{workload: tt.workload, threads: 2, conns: 4,
			wrk: []string{wrk, "-t2", "-c4", "-d1s", "--timeout", "30s", "-s", filepath.Join(scripts, tt.workload+".lua"), srv.URL}}
		var stderr bytes.Buffer
		r, err := runWrk(context.Background(), o, append(tt.env, "WRK_THREADS=2"), nil, &stderr)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tt.workload, err, stderr.String())
		}
		rejected := r.ErrorsByKind["bad_response"]
		if tt.wantRejected {
			if rejected == 0 || r.Successes == 0 {
				t.Errorf("%s with an inactive token: %d successes, %d rejected; want both", tt.workload, r.Successes, rejected)
			}
			continue
		}
		if r.Successes == 0 || r.Errors != 0 || r.Throughput <= 0 {
			t.Errorf("%s: %d successes, errors %v; want successes only\n%s", tt.workload, r.Successes, r.ErrorsByKind, stderr.String())
		}
		if r.GeneratorCPU == nil || !r.GeneratorCPU.Measured() || r.ServerCPU == nil || r.ServerCPU.Unavailable == "" {
			t.Errorf("%s: wrk's CPU %+v, server CPU %+v; want wrk's and no server's", tt.workload, r.GeneratorCPU, r.ServerCPU)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reused != 0 || f.granted == 0 {
		t.Errorf("refresh: %d grants, %d refused reuses; want grants and never a token used twice", f.granted, f.reused)
	}
	// Each chain ends with one live token; wrk's check of the script
	// takes one token it never sends.
	if len(f.live) < 8-1 || len(f.live) > 8 {
		t.Errorf("%d live refresh tokens after the run, want the 8 chains (7 if wrk's request check took one)", len(f.live))
	}
	var m map[string]any
	b, _ := json.Marshal(newResult(options{wrk: []string{"wrk", "http://h"}}, wrkSummary{}, time.Now()))
	json.Unmarshal(b, &m)
	for _, k := range []string{"schema", "tool", "workload", "target", "concurrency", "throughput_per_s", "latency_us", "server_cpu", "generator_cpu", "command"} {
		if _, ok := m[k]; !ok {
			t.Errorf("the result has no %q member", k)
		}
	}
}
