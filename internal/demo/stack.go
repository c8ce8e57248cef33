package demo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/tlsconfig"
)

// stack is what a demo run has started, stopped in reverse order: each
// server's context ends and it is waited for before what was started
// before it (the verifiers it uses, the database) is closed.
type stack struct {
	errc  chan error // a server that stopped with an error; room for every server
	mu    sync.Mutex
	stops []func() error
}

// onStop registers fn to run when the stack stops.
func (s *stack) onStop(fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stops = append(s.stops, fn)
}

// run runs a server until the stack stops it. An error it returns before
// then ends the demo.
func (s *stack) run(name string, serve func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := serve(ctx)
		if err != nil && ctx.Err() == nil {
			s.errc <- fmt.Errorf("%s: %w", name, err)
		}
		done <- err
	}()
	s.onStop(func() error {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			return nil // reported on errc already
		} else if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// listenAndServe serves h on a free loopback port, reached only through
// the gateway, and returns its base URL.
func (s *stack) listenAndServe(name string, h http.Handler, log *slog.Logger, shutdownTimeout time.Duration) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	s.serve(name, ln, nil, h, log, shutdownTimeout)
	return "http://" + ln.Addr().String(), nil
}

// serve serves h on ln, with TLS when tlsConfig is not nil, until the
// stack stops.
func (s *stack) serve(name string, ln net.Listener, tlsConfig *tls.Config, h http.Handler, log *slog.Logger, shutdownTimeout time.Duration) {
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if shutdownTimeout <= 0 {
		shutdownTimeout = 20 * time.Second
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.run(name, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	log.Info("listening", "addr", ln.Addr().String())
}

// stop stops everything, the last started first.
func (s *stack) stop() error {
	s.mu.Lock()
	stops := slices.Clone(s.stops)
	s.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		errs = append(errs, stops[i]())
	}
	return errors.Join(errs...)
}

// localTLS is "keycard demo --tls": a throw-away local CA kept in the data
// directory (tlsconfig.CACertFile, and tlsconfig.CAKeyFile with mode
// 0600), made on the first run and reused after, and a certificate of it
// for the demo's listeners, reissued when their names change or it nears
// its end.
type localTLS struct {
	caFile string
	server *tls.Config
	client *http.Client // trusts the CA only: for the demo's verifiers
}

// newLocalTLS prepares the CA and the certificate in data for loopback
// names and the hosts the listeners at addrs are on.
func newLocalTLS(data string, log *slog.Logger, addrs ...net.Addr) (*localTLS, error) {
	ca, created, err := tlsconfig.OpenLocalCA(data)
	if err != nil {
		return nil, err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !slices.Contains(hosts, ta.IP.String()) {
			hosts = append(hosts, ta.IP.String())
		}
	}
	certFile, keyFile := filepath.Join(data, "tls.pem"), filepath.Join(data, "tls-key.pem")
	renewed, err := ca.EnsureLeaf(certFile, keyFile, hosts...)
	if err != nil {
		return nil, err
	}
	certs, err := tlsconfig.LoadCertFile(certFile, keyFile, tlsconfig.CertOptions{Logger: log})
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(data, tlsconfig.CACertFile)
	tr, err := tlsconfig.Transport(caFile)
	if err != nil {
		return nil, err
	}
	log.Info("demo TLS", "ca", caFile, "ca_created", created, "certificate_issued", renewed, "hosts", strings.Join(hosts, ","))
	return &localTLS{caFile: caFile, server: tlsconfig.Server(certs), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

// scheme returns the scheme of the demo's URLs.
func (d *localTLS) scheme() string {
	if d == nil {
		return "http"
	}
	return "https"
}

// httpClient returns the verifiers' client: nil (the default) without
// TLS.
func (d *localTLS) httpClient() *http.Client {
	if d == nil {
		return nil
	}
	return d.client
}
