package federation

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Set is the configured providers, in configuration order. It is safe for
// concurrent use; it does not change after New.
type Set struct {
	list   []*Provider
	byName map[string]*Provider
}

// New returns the providers of cfgs, each checked (Config.Check). Nothing
// is fetched yet: each provider discovers its metadata at its first
// sign-in, or when Provider.Discover is called.
func New(cfgs []Config, opt Options) (*Set, error) {
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{
			Timeout: 10 * time.Second,
			// A provider's endpoints are used as given: a redirect
			// could carry a code or a token elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Set{byName: map[string]*Provider{}}
	domains := map[string]string{}
	for _, c := range cfgs {
		if err := c.Check(); err != nil {
			return nil, err
		}
		if _, dup := s.byName[c.Name]; dup {
			return nil, fmt.Errorf("federation: two providers are named %q", c.Name)
		}
		for _, d := range c.Domains {
			if other, dup := domains[d]; dup {
				return nil, fmt.Errorf("federation: domain %s is routed to both %s and %s", d, other, c.Name)
			}
			domains[d] = c.Name
		}
		p := &Provider{cfg: c, client: opt.HTTPClient, log: opt.Logger, now: opt.Now, keyOpt: opt.Keys}
		s.list = append(s.list, p)
		s.byName[c.Name] = p
	}
	return s, nil
}

// Close stops the providers' key-set refreshes.
func (s *Set) Close() {
	if s == nil {
		return
	}
	for _, p := range s.list {
		p.close()
	}
}

// DiscoverAll fetches each provider's metadata, retrying those that fail
// every retry interval (doubling from 1 s up to 5 min), until all have
// succeeded or ctx ends. The server runs it in the background at start,
// so that the sign-in page knows where each provider's forms go; a
// sign-in discovers its provider itself when it is not done yet.
func (s *Set) DiscoverAll(ctx context.Context, log *slog.Logger) {
	if s == nil {
		return
	}
	pending := s.Providers()
	delay := time.Second
	for len(pending) > 0 {
		var failed []*Provider
		for _, p := range pending {
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := p.Discover(dctx)
			cancel()
			if err != nil {
				if log != nil {
					log.Warn("federation: discovery failed; retrying", "provider", p.Name(), "err", err)
				}
				failed = append(failed, p)
			}
		}
		pending = failed
		if len(pending) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Minute)
	}
}

// Providers returns the providers in configuration order.
func (s *Set) Providers() []*Provider {
	if s == nil {
		return nil
	}
	return append([]*Provider(nil), s.list...)
}

// Provider returns the provider named name, or nil.
func (s *Set) Provider(name string) *Provider {
	if s == nil {
		return nil
	}
	return s.byName[name]
}

// ForEmail returns the provider an address's domain is routed to, or nil.
func (s *Set) ForEmail(email string) *Provider {
	if s == nil {
		return nil
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return nil
	}
	d := strings.ToLower(strings.TrimSpace(email[at+1:]))
	for _, p := range s.list {
		for _, pd := range p.cfg.Domains {
			if pd == d {
				return p
			}
		}
	}
	return nil
}
