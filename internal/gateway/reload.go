package gateway

import (
	"context"
	"crypto/sha256"
	"os"
	"strings"
	"time"
)

// DefaultPollInterval is how often Watch reads the configuration file.
const DefaultPollInterval = time.Second

// Reload replaces the running configuration with cfg (from Parse or
// LoadConfig): routes, audience, access_log and log_level take effect for
// the requests that start after it returns; requests already running
// finish with the routes they started with. Keys read only at start
// (listen, metrics_listen, issuer, client, algorithms, leeway, fail_open,
// max_feed_outage, upstream_timeout, shutdown_timeout) keep their running
// values; restart lists those whose value in cfg differs, so the caller
// can say that they need a restart.
func (g *Gateway) Reload(cfg *Config) (restart []string, err error) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.table.Load().cfg
	restart = restartOnly(old, cfg)
	eff := *cfg
	eff.Listen, eff.MetricsListen, eff.Issuer = old.Listen, old.MetricsListen, old.Issuer
	eff.Client, eff.ClientSecretFile = old.Client, old.ClientSecretFile
	eff.Algorithms, eff.Leeway, eff.FailOpen = old.Algorithms, old.Leeway, old.FailOpen
	eff.MaxFeedOutage, eff.UpstreamTimeout, eff.ShutdownTimeout = old.MaxFeedOutage, old.UpstreamTimeout, old.ShutdownTimeout
	t, err := g.build(&eff)
	if err != nil {
		g.metrics.reloaded(false)
		return restart, err
	}
	g.table.Store(t)
	if g.level != nil {
		g.level.Set(eff.Level())
	}
	g.metrics.reloaded(true)
	return restart, nil
}

// ReloadFile reads the configuration file at path and reloads it. An
// unreadable or invalid file is refused with a logged reason, and the
// running configuration keeps serving; the error is returned too.
func (g *Gateway) ReloadFile(path string) error {
	data, err := os.ReadFile(path)
	if err == nil {
		err = g.reloadData(path, data)
	} else {
		g.metrics.reloaded(false)
	}
	if err != nil {
		g.log.Error("config reload refused; the running configuration stays", "file", path, "err", err.Error())
	}
	return err
}

func (g *Gateway) reloadData(path string, data []byte) error {
	cfg, err := LoadConfigWith(path, data, g.parse)
	if err != nil {
		g.metrics.reloaded(false)
		return err
	}
	restart, err := g.Reload(cfg)
	if err != nil {
		return err
	}
	if len(restart) > 0 {
		g.log.Warn("config reloaded, but these keys need a restart to change and keep their running values",
			"file", path, "keys", strings.Join(restart, ", "))
	}
	g.log.Info("config reloaded", "file", path, "routes", len(cfg.Routes))
	return nil
}

// WatchOptions configure Watch.
type WatchOptions struct {
	// Path is the configuration file.
	Path string
	// Loaded is the content the running configuration was loaded from,
	// so that an unchanged file is not reloaded; nil reloads on the
	// first poll.
	Loaded []byte
	// Interval is the polling interval; DefaultPollInterval when zero.
	Interval time.Duration
	// Signals, when not nil, asks for a reload on each receive (SIGHUP),
	// whether or not the file changed.
	Signals <-chan os.Signal
	// Ticks, when not nil, replaces the polling ticker: one read of the
	// file per receive (tests drive the reads with it).
	Ticks <-chan time.Time
}

// Watch reloads the configuration whenever the content of the file
// changes (it reads and hashes the file every Interval, so that writes
// in place, renames over it and symlink swaps are all seen; a new content
// is applied once two reads in a row agree, so a half-written file is
// never loaded) and on each signal, until ctx ends. A content that failed to load is not tried
// again until it changes or a signal asks.
func (g *Gateway) Watch(ctx context.Context, opt WatchOptions) {
	if opt.Interval <= 0 {
		opt.Interval = DefaultPollInterval
	}
	var seen, pending [sha256.Size]byte
	if opt.Loaded != nil {
		seen = sha256.Sum256(opt.Loaded)
	}
	ticks := opt.Ticks
	if ticks == nil {
		tick := time.NewTicker(opt.Interval)
		defer tick.Stop()
		ticks = tick.C
	}
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-opt.Signals:
			g.log.Info("reloading the configuration on a signal", "file", opt.Path)
			if data, err := os.ReadFile(opt.Path); err == nil {
				seen = sha256.Sum256(data)
			}
			g.ReloadFile(opt.Path)
		case <-ticks:
			data, err := os.ReadFile(opt.Path)
			if err != nil {
				// Say it once, not every second; a file being replaced
				// may be missing for a moment.
				if msg := err.Error(); msg != lastErr {
					g.log.Warn("config file unreadable; the running configuration stays", "err", msg)
					lastErr = msg
				}
				continue
			}
			lastErr = ""
			sum := sha256.Sum256(data)
			if sum == seen {
				pending = [sha256.Size]byte{}
				continue
			}
			// A file written in place can be read half-written, and a
			// truncated file is often valid YAML with weaker checks (a
			// route cut off before its roles). Apply a new content only
			// once two reads in a row agree on it.
			if sum != pending {
				pending = sum
				continue
			}
			pending = [sha256.Size]byte{}
			seen = sum
			if err := g.reloadData(opt.Path, data); err != nil {
				g.log.Error("config reload refused; the running configuration stays", "file", opt.Path, "err", err.Error())
			}
		}
	}
}
