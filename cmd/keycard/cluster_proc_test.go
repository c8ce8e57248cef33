package main

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// This file holds the machinery of the cluster test (cluster_test.go):
// the keycard binary, real processes that can be killed, a load balancer
// and a TCP proxy that can be switched off.

// buildClusterBinary builds the keycard binary of this package into dir and
// returns its path. It uses the go command on PATH, where go test puts
// the one running it first (runtime.GOROOT is deprecated).
func buildClusterBinary(t *testing.T, dir string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the cluster test builds the keycard binary: %v", err)
	}
	bin := filepath.Join(dir, "keycard")
	cmd := exec.Command(goCmd, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// clusterEnv returns the environment of the processes the cluster test
// starts: this process's, without any KEYCARD_ variable (which would
// configure them behind the test's back), plus extra.
func clusterEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYCARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// clusterProc is a keycard process (serve or gateway) started from the binary.
// Its stdout and stderr are kept and printed when the test fails.
type clusterProc struct {
	name   string
	cmd    *exec.Cmd
	log    *syncBuffer
	base   string        // http://ADDR once listening
	exited chan struct{} // closed when the process has been waited for
}

// startClusterProc starts bin with args and env. The process is killed (SIGKILL)
// when the test ends, and its output is logged if the test failed.
func startClusterProc(t *testing.T, name, bin string, env []string, args ...string) *clusterProc {
	t.Helper()
	p := &clusterProc{name: name, log: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s (%s), without the access log of requests answered below 500 ---\n%s", p.name, p.cmd.ProcessState, clusterLogTail(clusterWithoutAccessLog(p.log.String()), 16<<10))
		}
	})
	return p
}

// clusterAccessLogRE matches an access log line of a request answered below 500.
var clusterAccessLogRE = regexp.MustCompile(`"msg":"request",.*"status":[1-4][0-9][0-9],`)

// clusterWithoutAccessLog drops from a process's output the access log lines of
// requests answered below 500, which bury what explains a failure.
func clusterWithoutAccessLog(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !clusterAccessLogRE.MatchString(line) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// clusterLogTail returns the last n bytes of s, marking a cut.
func clusterLogTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[…]" + s[len(s)-n:]
}

// waitListening waits until the process logs its "listening" line and
// sets p.base; it fails the test if the process exits first or takes
// longer than 20 s.
func (p *clusterProc) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := listenRE.FindStringSubmatch(p.log.String()); m != nil {
			p.base = "http://" + m[1]
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%s) before listening:\n%s", p.name, p.cmd.ProcessState, p.log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening within 20s:\n%s", p.name, p.log.String())
		}
	}
}

// kill sends SIGKILL, not a shutdown signal: the process gets no chance
// to finish requests, close connections or release anything. It waits
// until the process is gone.
func (p *clusterProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// clusterBalancer is a round-robin HTTP load balancer in front of the auth server
// instances, as an operator would deploy one: its URL is the issuer. A
// backend that refuses the connection is skipped for the next one (nginx's
// proxy_next_upstream error) when the request has no body, so nothing was
// sent; there is no health checking.
type clusterBalancer struct {
	*httptest.Server
	log       *syncBuffer
	transport *http.Transport

	mu       sync.Mutex
	backends []string // host:port
	next     int
}

// newClusterBalancer starts a balancer with no backends yet; they are set with
// setBackends once the instances listen. It is closed when the test ends.
func newClusterBalancer(t *testing.T) *clusterBalancer {
	b := &clusterBalancer{log: &syncBuffer{}, transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = "backend" // chosen by RoundTrip
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: b,
		ErrorLog:  log.New(b.log, "balancer: ", log.Lmicroseconds),
	}
	b.Server = httptest.NewServer(proxy)
	t.Cleanup(func() {
		b.transport.CloseIdleConnections()
		b.CloseClientConnections()
		b.Close()
		if t.Failed() && b.log.String() != "" {
			t.Logf("--- balancer log ---\n%s", clusterLogTail(b.log.String(), 8<<10))
		}
	})
	return b
}

func (b *clusterBalancer) setBackends(hosts []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = hosts
}

// RoundTrip sends r to the next backend, and on to the ones after it
// while they refuse the connection.
func (b *clusterBalancer) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	hosts, start := b.backends, b.next
	b.next++
	b.mu.Unlock()
	if len(hosts) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	var err error
	for i := range hosts {
		out := r.Clone(r.Context())
		out.URL.Host = hosts[(start+i)%len(hosts)]
		resp, e := b.transport.RoundTrip(out)
		if e == nil {
			return resp, nil
		}
		err = e
		var op *net.OpError
		if !errors.As(e, &op) || op.Op != "dial" || (r.Body != nil && r.Body != http.NoBody) {
			break
		}
	}
	return nil, err
}

// clusterTCPProxy forwards TCP connections to a target; it stands for a Redis
// server that can be stopped and started again at the same address
// without touching the machine's real one.
type clusterTCPProxy struct {
	target string
	addr   string // fixed by the first start

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// newClusterTCPProxy starts a proxy to target on a free port of 127.0.0.1; it
// is stopped when the test ends.
func newClusterTCPProxy(t *testing.T, target string) *clusterTCPProxy {
	t.Helper()
	p := &clusterTCPProxy{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]bool{}}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	return p
}

// start listens (again) at p.addr and forwards what it accepts.
func (p *clusterTCPProxy) start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
	return nil
}

func (p *clusterTCPProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // stopped meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	var pipes sync.WaitGroup
	pipes.Go(func() { io.Copy(up, c); up.Close() })
	pipes.Go(func() { io.Copy(c, up); c.Close() })
	pipes.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// stop closes the listener and every forwarded connection, as a Redis
// server that went away would, and waits for the forwarding to end.
func (p *clusterTCPProxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
