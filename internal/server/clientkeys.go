package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/jose"
)

// Limits of clientKeySets.
const (
	// clientKeysTimeout bounds one fetch of a client's JWK Set: connect,
	// TLS, headers and body.
	clientKeysTimeout = 5 * time.Second
	// clientKeysMaxBytes bounds a JWK Set's size: ample for dozens of RSA
	// keys.
	clientKeysMaxBytes = 64 << 10
	// clientKeysMinInterval is the least time between two fetches of one
	// URI, whatever asks: a refresh for an unknown kid, an expired entry,
	// or a retry after a failure. Assertions naming unknown kids cannot
	// make the server fetch more often than that.
	clientKeysMinInterval = 10 * time.Second
	// A fetched set is used for the time its Cache-Control max-age says,
	// within [clientKeysMinTTL, clientKeysMaxTTL]; clientKeysDefaultTTL
	// without one.
	clientKeysMinTTL     = time.Minute
	clientKeysMaxTTL     = 24 * time.Hour
	clientKeysDefaultTTL = 5 * time.Minute
	// clientKeysMaxEntries bounds the cache: one entry per jwks_uri
	// registered (by admins), so the bound is never reached in practice.
	clientKeysMaxEntries = 1000
)

// clientKeySets implements auth.ClientKeys over HTTP: it fetches the JWK
// Sets that private_key_jwt clients publish at their jwks_uri, https only
// (http on a loopback host), without following redirects, within
// clientKeysTimeout and clientKeysMaxBytes, and caches them per URI. A
// fetch that fails keeps the set fetched before, if any. Concurrent
// requests for one URI share one fetch. It is safe for concurrent use.
type clientKeySets struct {
	client      *http.Client
	now         func() time.Time
	log         *slog.Logger
	minInterval time.Duration

	mu      sync.Mutex
	entries map[string]*keySetEntry
}

var _ auth.ClientKeys = (*clientKeySets)(nil)

// keySetEntry is the cache of one URI.
type keySetEntry struct {
	set       *jose.KeySet  // the last set fetched, nil before one is
	err       error         // the last fetch's error, nil after a success
	fetchedAt time.Time     // when the last fetch began (zero: never)
	expires   time.Time     // when set is due for a fetch
	done      chan struct{} // while a fetch runs: closed when it ends
}

func newClientKeySets(log *slog.Logger) *clientKeySets {
	dialer := &net.Dialer{Timeout: clientKeysTimeout}
	return &clientKeySets{
		client: &http.Client{
			Timeout: clientKeysTimeout,
			// A redirect is answered as the response it is (a 3xx),
			// which fetch refuses.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           dialer.DialContext,
				TLSHandshakeTimeout:   clientKeysTimeout,
				ResponseHeaderTimeout: clientKeysTimeout,
				MaxIdleConns:          16,
				IdleConnTimeout:       90 * time.Second,
				ForceAttemptHTTP2:     true,
			},
		},
		now:         time.Now,
		log:         log,
		minInterval: clientKeysMinInterval,
		entries:     map[string]*keySetEntry{},
	}
}

// KeySet implements auth.ClientKeys: the cached set of uri while it is
// fresh (and, with refresh, unless clientKeysMinInterval has passed since
// the last fetch); otherwise a new fetch, at most one per
// clientKeysMinInterval. When a fetch fails, the set fetched before (if
// any) is returned, and the error only when there is none.
func (c *clientKeySets) KeySet(ctx context.Context, uri string, refresh bool) (*jose.KeySet, error) {
	if err := checkKeySetURI(uri); err != nil {
		return nil, err
	}
	c.mu.Lock()
	e := c.entry(uri)
	for e.done != nil { // another request is fetching: wait for it
		done := e.done
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c.mu.Lock()
		// That fetch is as fresh as one of our own.
		refresh = false
	}
	now := c.now()
	fresh := e.set != nil && now.Before(e.expires)
	mayFetch := e.fetchedAt.IsZero() || now.Sub(e.fetchedAt) >= c.minInterval
	if fresh && !refresh || !mayFetch {
		set, err := e.set, e.err
		c.mu.Unlock()
		if set != nil {
			return set, nil
		}
		return nil, err
	}
	e.fetchedAt, e.done = now, make(chan struct{})
	c.mu.Unlock()

	// The fetch is shared: a request that gives up must not cancel it
	// for the others.
	set, ttl, err := c.fetch(context.WithoutCancel(ctx), uri)

	c.mu.Lock()
	defer c.mu.Unlock()
	close(e.done)
	e.done = nil
	if err != nil {
		c.log.WarnContext(ctx, "fetching a client's JWK Set failed", "jwks_uri", uri, "err", err)
		e.err = err
		if e.set != nil {
			return e.set, nil
		}
		return nil, err
	}
	e.set, e.err, e.expires = set, nil, c.now().Add(ttl)
	return set, nil
}

// entry returns the cache entry of uri, making it, and making room for it
// when the cache is full. c.mu is held.
func (c *clientKeySets) entry(uri string) *keySetEntry {
	if e, ok := c.entries[uri]; ok {
		return e
	}
	if len(c.entries) >= clientKeysMaxEntries {
		for u, old := range c.entries {
			if old.done == nil {
				delete(c.entries, u)
				break
			}
		}
	}
	e := &keySetEntry{}
	c.entries[uri] = e
	return e
}

// checkKeySetURI refuses a URI the server must not fetch: anything but
// https, or http on a loopback host (as registration does, checked again
// here in case a registration predates the rule).
func checkKeySetURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("server: jwks_uri %q is not an absolute URL", raw)
	}
	if u.Scheme == "https" {
		return nil
	}
	if u.Scheme == "http" {
		host := u.Hostname()
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || strings.EqualFold(host, "localhost") {
			return nil
		}
	}
	return fmt.Errorf("server: jwks_uri %q: only https (or http on a loopback host) is fetched", raw)
}

// fetch GETs the JWK Set at uri: status 200, at most clientKeysMaxBytes,
// a JWK Set with a usable public key. It returns the set and how long to use it.
func (c *clientKeySets) fetch(ctx context.Context, uri string) (*jose.KeySet, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("server: GET %s: status %d, want 200 (redirects are not followed)", uri, resp.StatusCode)
	}
	if resp.ContentLength > clientKeysMaxBytes {
		return nil, 0, fmt.Errorf("server: GET %s: %d bytes, more than %d", uri, resp.ContentLength, clientKeysMaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, clientKeysMaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("server: GET %s: %w", uri, err)
	}
	if len(body) > clientKeysMaxBytes {
		return nil, 0, fmt.Errorf("server: GET %s: more than %d bytes", uri, clientKeysMaxBytes)
	}
	set, err := jose.ParsePublicKeySet(body)
	if err != nil {
		return nil, 0, fmt.Errorf("server: JWK Set at %s: %w", uri, err)
	}
	if !slices.ContainsFunc(set.Keys(), func(k *jose.Key) bool { return k.PublicKey() != nil && !k.IsPrivate() }) {
		// auth uses public keys alone: a set without one is useless.
		return nil, 0, errors.New("server: the JWK Set at " + uri + " has no usable public key")
	}
	return set, cacheLifetime(resp.Header.Values("Cache-Control")), nil
}

// cacheLifetime is how long to use a response with these Cache-Control
// header lines (RFC 9111 section 5.2.2): its max-age, clientKeysMinTTL for
// no-store or no-cache, clientKeysDefaultTTL without either; always within
// [clientKeysMinTTL, clientKeysMaxTTL].
func cacheLifetime(lines []string) time.Duration {
	ttl := clientKeysDefaultTTL
	for _, line := range lines {
		for _, directive := range strings.Split(line, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return clientKeysMinTTL
			case "max-age":
				secs, err := strconv.ParseUint(strings.Trim(arg, `"`), 10, 63)
				if errors.Is(err, strconv.ErrRange) {
					secs = math.MaxInt64
				} else if err != nil {
					continue
				}
				ttl = time.Duration(min(secs, uint64(clientKeysMaxTTL/time.Second))) * time.Second
			}
		}
	}
	return min(max(ttl, clientKeysMinTTL), clientKeysMaxTTL)
}
