package loadgen

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestClientHTTP1KeepAlive: against a server that offers HTTP/2, the
// client speaks HTTP/1.1 and reuses one connection per worker.
func TestClientHTTP1KeepAlive(t *testing.T) {
	var mu sync.Mutex
	protos := map[string]bool{}
	conns := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		protos[r.Proto] = true
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/", http.StatusFound)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	c := NewClient(4, 5*time.Second)
	tr := c.Transport.(*http.Transport)
	if tr.MaxIdleConnsPerHost != 4 || !tr.DisableCompression {
		t.Errorf("MaxIdleConnsPerHost %d, DisableCompression %v; want 4 and true", tr.MaxIdleConnsPerHost, tr.DisableCompression)
	}
	// The protocols are set, not left to depend on the TLS configuration
	// (a custom one turns HTTP/2 off by itself, as the next line does).
	if tr.Protocols == nil || !tr.Protocols.HTTP1() || tr.Protocols.HTTP2() {
		t.Errorf("protocols %v, want HTTP/1 only", tr.Protocols)
	}
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 25 {
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	resp, err := c.Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect: got %d, want the 302 itself", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(protos) != 1 || !protos["HTTP/1.1"] {
		t.Errorf("protocols %v, want HTTP/1.1 only", protos)
	}
	// 101 requests. A dial may race with a connection coming free, and on
	// a loaded machine such races are many (CI once saw 9 connections),
	// so the bound is loose: without keep-alive there is one connection a
	// request, 101.
	if len(conns) > 50 {
		t.Errorf("%d connections for 101 requests of 4 workers, want far fewer (keep-alive)", len(conns))
	}
}
