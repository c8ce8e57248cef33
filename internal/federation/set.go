package federation

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Set is the providers: those of the configuration file, in their
// order, then those Options.Load gives (added at run time), as of the
// last Refresh. It is safe for concurrent use.
type Set struct {
	opt    Options
	static int // the first static providers of list are the configuration file's

	mu     sync.RWMutex
	list   []*Provider
	byName map[string]*Provider
	loaded time.Time // the last successful Refresh
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
	if opt.MaxAge <= 0 {
		opt.MaxAge = DefaultMaxAge
	}
	s := &Set{opt: opt, byName: map[string]*Provider{}}
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
	s.static = len(s.list)
	return s, nil
}

// Dynamic reports whether the set has providers added at run time
// (Options.Load is set).
func (s *Set) Dynamic() bool { return s != nil && s.opt.Load != nil }

// Static reports whether name is a provider of the configuration file.
func (s *Set) Static(name string) bool {
	if s == nil {
		return false
	}
	for _, p := range s.list[:s.static] {
		if p.cfg.Name == name {
			return true
		}
	}
	return false
}

// CheckAdded checks c (Config.Check, which fills in its defaults) as a
// provider to add at run time, or to replace the one of the same name:
// its name must not be the configuration file's, and none of its domains
// may be routed to another provider.
func (s *Set) CheckAdded(c *Config) error {
	if err := c.Check(); err != nil {
		return err
	}
	if s.Static(c.Name) {
		return fmt.Errorf("federation: provider %s is in the configuration file", c.Name)
	}
	for _, d := range c.Domains {
		if p := s.ForEmail("@" + d); p != nil && p.cfg.Name != c.Name {
			return fmt.Errorf("federation: provider %s: domain %s is routed to %s", c.Name, d, p.cfg.Name)
		}
	}
	return nil
}

// Refresh replaces the providers added at run time with those
// Options.Load gives now; a provider whose configuration did not change
// keeps its discovered metadata and key set. A loaded provider that
// fails its checks, takes a configuration file's name or a domain routed
// elsewhere is left out (and logged). When Load fails, the providers of
// the last Refresh stay and the error is returned.
func (s *Set) Refresh(ctx context.Context) error {
	if !s.Dynamic() {
		return nil
	}
	now := s.opt.Now()
	cfgs, err := s.opt.Load(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append([]*Provider(nil), s.list[:s.static]...)
	byName := map[string]*Provider{}
	domains := map[string]string{}
	for _, p := range list {
		byName[p.cfg.Name] = p
		for _, d := range p.cfg.Domains {
			domains[d] = p.cfg.Name
		}
	}
	kept := map[*Provider]bool{}
next:
	for _, c := range cfgs {
		if err := c.Check(); err != nil {
			s.opt.Logger.WarnContext(ctx, "federation: a stored provider is left out", "provider", c.Name, "err", err)
			continue
		}
		if _, dup := byName[c.Name]; dup {
			s.opt.Logger.WarnContext(ctx, "federation: a stored provider is left out: its name is taken", "provider", c.Name)
			continue
		}
		for _, d := range c.Domains {
			if other, dup := domains[d]; dup {
				s.opt.Logger.WarnContext(ctx, "federation: a stored provider is left out: a domain is routed elsewhere", "provider", c.Name, "domain", d, "to", other)
				continue next
			}
		}
		for _, d := range c.Domains {
			domains[d] = c.Name
		}
		p := s.byName[c.Name]
		if p == nil || !reflect.DeepEqual(p.cfg, c) {
			p = &Provider{cfg: c, client: s.opt.HTTPClient, log: s.opt.Logger, now: s.opt.Now, keyOpt: s.opt.Keys}
		}
		kept[p] = true
		list = append(list, p)
		byName[c.Name] = p
	}
	for _, p := range s.list[s.static:] {
		if !kept[p] {
			p.close()
		}
	}
	s.list, s.byName, s.loaded = list, byName, now
	return nil
}

// RefreshStale is Refresh when the last one is older than Options.MaxAge,
// and nothing otherwise: the reload of the pages' requests, which would
// otherwise read the store on every sign-in and authorization request.
// The changes an instance makes itself call Refresh, and take effect here
// at once.
func (s *Set) RefreshStale(ctx context.Context) error {
	if !s.Dynamic() {
		return nil
	}
	s.mu.RLock()
	fresh := s.opt.Now().Sub(s.loaded) < s.opt.MaxAge
	s.mu.RUnlock()
	if fresh {
		return nil
	}
	return s.Refresh(ctx)
}

// Close stops the providers' key-set refreshes.
func (s *Set) Close() {
	if s == nil {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Provider(nil), s.list...)
}

// Provider returns the provider named name, or nil.
func (s *Set) Provider(name string) *Provider {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
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
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, p := range s.list {
		for _, pd := range p.cfg.Domains {
			if pd == d {
				return p
			}
		}
	}
	return nil
}
