// Command upstream is the stand-in service behind the gateway in
// bench/all.sh, and the bare reverse proxy the gateway is compared with.
//
// Without -proxy it answers every GET with a small JSON body, 200, like the
// upstream of internal/gateway's BenchmarkGatewayVsReverseProxy. With
// -proxy URL it is a bare httputil.ReverseProxy to URL (Rewrite with SetURL
// and SetXForwarded, 64 idle connections per host, as the gateway keeps):
// what the gateway does minus the token check.
//
// It prints the address it listens on, then serves until SIGINT or SIGTERM.
//
// Usage:
//
//	upstream [-listen 127.0.0.1:0] [-proxy http://127.0.0.1:PORT]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address (port 0 picks a free port)")
	proxy := fs.String("proxy", "", "act as a bare reverse proxy to this URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	h, err := handler(*proxy)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())

	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler returns the fixed JSON responder, or a bare reverse proxy to
// target when it is set.
func handler(target string) (http.Handler, error) {
	if target == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"city":"Lisbon","forecast":"sunny","high_c":24}`)
		}), nil
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-proxy %q is not an http:// or https:// URL", target)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	return &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
	}, nil
}
