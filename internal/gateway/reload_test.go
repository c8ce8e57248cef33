package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReload(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	g := newTestGateway(t, header+"routes:\n  - {path: /svc/, upstream: '"+a.URL+"', auth: none}\n")
	if w := g.do(t, "GET", "/svc/x", "", nil); w.Code != 200 || a.count() != 1 {
		t.Fatalf("before reload: %d", w.Code)
	}

	// A good configuration: new upstream, new route, new audience.
	restart, err := g.Reload(mustParse(t, strings.Replace(header, "audience: api", "audience: api2", 1)+`
routes:
  - {path: /svc/, upstream: '`+b.URL+`', auth: none}
  - {path: /new/, upstream: '`+b.URL+`'}
`))
	if err != nil || len(restart) != 0 {
		t.Fatalf("Reload: %v, restart %v", err, restart)
	}
	if w := g.do(t, "GET", "/svc/x", "", nil); w.Code != 200 || b.count() != 1 {
		t.Errorf("after reload: %d, upstream b got %d", w.Code, b.count())
	}
	if w := g.do(t, "GET", "/new/x", g.auth.token(t, "alice", "api2", ""), nil); w.Code != 200 {
		t.Errorf("new route with the new audience: %d %q", w.Code, w.Body)
	}
	if w := g.do(t, "GET", "/new/x", g.auth.token(t, "alice", "api", ""), nil); w.Code != 401 {
		t.Errorf("new route with the old audience: %d", w.Code)
	}

	// Keys read only at start: reported, and their running values stay.
	restart, err = g.Reload(mustParse(t, strings.Replace(header, "https://issuer.test", "https://other.test", 1)+
		"listen: 127.0.0.1:9999\nfail_open: true\nroutes:\n  - {path: /svc/, upstream: '"+a.URL+"', auth: none}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(restart, ","); got != "listen,issuer,fail_open" {
		t.Errorf("restart-only keys: %q", got)
	}
	if c := g.Config(); c.Issuer != testIssuer || c.Listen != DefaultListen || c.FailOpen {
		t.Errorf("restart-only keys changed on reload: %+v", c)
	}
	if w := g.do(t, "GET", "/svc/x", "", nil); w.Code != 200 || a.count() != 2 {
		t.Errorf("routes of that reload not applied: %d", w.Code)
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`); got != 2 {
		t.Errorf("reloads ok: %v", got)
	}
}

func TestReloadFile(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	good := header + "routes:\n  - {path: /, upstream: '" + a.URL + "', auth: none}\n"
	g := newTestGateway(t, good)

	// Bad: a typo. Refused, logged with the reason, old routes serve.
	os.WriteFile(path, []byte(header+"routes:\n  - {path: /, upstream: '"+b.URL+"', auht: none}\n"), 0o600)
	if err := g.ReloadFile(path); err == nil || !strings.Contains(err.Error(), `unknown key "auht"`) {
		t.Errorf("bad reload: %v", err)
	}
	if !strings.Contains(g.log.String(), "config reload refused") || !strings.Contains(g.log.String(), "auht") {
		t.Errorf("log: %s", g.log)
	}
	if g.do(t, "GET", "/x", "", nil); a.count() != 1 || b.count() != 0 {
		t.Errorf("after a bad reload: a %d, b %d", a.count(), b.count())
	}
	// Missing file: refused too.
	if err := g.ReloadFile(filepath.Join(dir, "nope.yaml")); err == nil {
		t.Error("reload of a missing file succeeded")
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="failed"`); got != 2 {
		t.Errorf("failed reloads counted: %v, want 2", got)
	}
	// Good.
	os.WriteFile(path, []byte(header+"routes:\n  - {path: /, upstream: '"+b.URL+"', auth: none}\n"), 0o600)
	if err := g.ReloadFile(path); err != nil {
		t.Fatal(err)
	}
	if g.do(t, "GET", "/x", "", nil); b.count() != 1 {
		t.Errorf("after a good reload: b %d", b.count())
	}
}

// routesTo reports whether a request for /x now reaches upstream u.
func routesTo(t *testing.T, g *testGateway, u *upstream) func() bool {
	return func() bool {
		n := u.count()
		g.do(t, "GET", "/x", "", nil)
		return u.count() > n
	}
}

func TestWatch(t *testing.T) {
	a, b, c := newUpstream(t), newUpstream(t), newUpstream(t)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	conf := func(u *upstream, extra string) []byte {
		return []byte(header + "routes:\n  - {path: /, upstream: '" + u.URL + "', auth: none" + extra + "}\n")
	}
	os.WriteFile(path, conf(a, ""), 0o600)
	g := newTestGateway(t, string(conf(a, "")))
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		g.Watch(ctx, WatchOptions{Path: path, Loaded: conf(a, ""), Interval: 10 * time.Millisecond, Signals: hup})
	}()
	defer func() { cancel(); wg.Wait() }()

	// A change of the file is picked up.
	os.WriteFile(path, conf(b, ""), 0o600)
	eventually(t, "file change applied", routesTo(t, g, b))

	// A broken file is refused once, and b keeps serving.
	os.WriteFile(path, conf(c, ", scopes: ['']"), 0o600)
	eventually(t, "bad file refused", func() bool { return strings.Contains(g.log.String(), "scopes: empty entry") })
	if !routesTo(t, g, b)() {
		t.Error("the old configuration stopped serving after a bad change")
	}
	// Replaced by rename, as editors and config managers do.
	tmp := path + ".tmp"
	os.WriteFile(tmp, conf(c, ""), 0o600)
	os.Rename(tmp, path)
	// A reload is counted after its routes serve: wait for both, so that
	// the count the signal's reload adds to is final.
	eventually(t, "renamed file applied", func() bool {
		return routesTo(t, g, c)() && testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`) == 2
	})

	// A signal reloads even an unchanged file.
	before := testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`)
	hup <- os.Interrupt
	eventually(t, "signal reload", func() bool {
		return testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`) == before+1
	})
	if n := strings.Count(g.log.String(), "scopes: empty entry"); n != 1 {
		t.Errorf("the bad file was reported %d times, want once", n)
	}
}

func TestReloadLogLevelAndAccessLog(t *testing.T) {
	up := newUpstream(t)
	level := new(slog.LevelVar)
	logBuf := &syncBuffer{}
	cfg := header + "routes:\n  - {path: /, upstream: '" + up.URL + "', auth: none}\n"
	g, err := New(mustParse(t, cfg), Options{Auth: newTestAuth(t), Level: level,
		Logger: slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelInfo {
		t.Errorf("start level %v", level.Level())
	}
	if _, err := g.Reload(mustParse(t, "log_level: warn\naccess_log: false\n"+cfg)); err != nil {
		t.Fatal(err)
	}
	if level.Level() != slog.LevelWarn {
		t.Errorf("level after reload %v, want WARN", level.Level())
	}
	g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if strings.Contains(logBuf.String(), `"msg":"request"`) {
		t.Errorf("access log after access_log: false: %s", logBuf)
	}
}

// TestReloadUnderLoad swaps the route table while requests run (go test
// -race finds unsynchronized access).
func TestReloadUnderLoad(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	conf := func(u *upstream) *Config {
		return mustParse(t, header+"routes:\n  - {path: /, upstream: '"+u.URL+"', auth: none}\n")
	}
	g := newTestGateway(t, header+"routes:\n  - {path: /, upstream: '"+a.URL+"', auth: none}\n")
	srv := httptest.NewServer(g)
	defer srv.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(srv.URL + "/x")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d during reloads", resp.StatusCode)
					return
				}
			}
		})
	}
	for i := range 50 {
		u := a
		if i%2 == 0 {
			u = b
		}
		n := u.count()
		if _, err := g.Reload(conf(u)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a request to the new upstream", func() bool { return u.count() > n })
	}
	close(stop)
	wg.Wait()
}

// TestWatchIgnoresHalfWrittenFile: a content seen once, and replaced
// before the next read, is never applied — a file read in the middle of
// an in-place write is often valid YAML with weaker checks (here, the
// admin route cut off before its roles).
func TestWatchIgnoresHalfWrittenFile(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	full := []byte(header + "routes:\n  - {path: /, upstream: '" + a.URL + "', auth: none}\n  - path: /admin/\n    upstream: '" + b.URL + "'\n    roles: [admin]\n")
	torn := full[:len(full)-len("    roles: [admin]\n")]
	os.WriteFile(path, full, 0o600)
	g := newTestGateway(t, string(full))
	// The test makes each read of the file itself: a send on the
	// unbuffered channel returns once the watcher has taken it, that is
	// once the read before it is done.
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.Watch(ctx, WatchOptions{Path: path, Loaded: full, Ticks: ticks}) })
	defer func() { cancel(); wg.Wait() }()
	read := func() { ticks <- time.Now() }

	// The torn content is there for exactly one read, as a slow write
	// would leave it.
	os.WriteFile(path, torn, 0o600)
	read()
	os.WriteFile(path, full, 0o600)
	read()
	read()
	read() // the third read is taken once the second is done
	for _, rt := range g.Config().Routes {
		if rt.Path == "/admin/" && len(rt.Roles) == 0 {
			t.Fatal("a half-written configuration was applied: /admin/ lost its roles")
		}
	}
	if strings.Contains(g.log.String(), "config reloaded") {
		t.Errorf("a reload happened: %s", g.log.String())
	}
}

// TestWatchConfigMapSymlinkSwap: a Kubernetes ConfigMap volume is
// updated the way kubelet's AtomicWriter does it — the files live in a
// timestamped directory, ..data is a symlink to it, gateway.yaml a
// symlink to ..data/gateway.yaml, and an update writes a new directory,
// points ..data_tmp at it, renames ..data_tmp over ..data and removes
// the old directory. Neither gateway.yaml itself nor its target's name
// ever changes, so a watcher keyed on the file's inode or on events for
// its name would miss every update; Watch reads through the symlinks.
func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	a, b, c := newUpstream(t), newUpstream(t), newUpstream(t)
	conf := func(u *upstream) []byte {
		return []byte(header + "routes:\n  - {path: /, upstream: '" + u.URL + "', auth: none}\n")
	}
	dir := t.TempDir()
	generation := 0
	// project writes content as kubelet writes a ConfigMap volume's
	// next generation.
	project := func(content []byte) {
		t.Helper()
		generation++
		ts := fmt.Sprintf("..2026_01_02_15_04_05.%09d", generation)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "gateway.yaml"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if generation == 1 {
			if err := os.Symlink(filepath.Join("..data", "gateway.yaml"), filepath.Join(dir, "gateway.yaml")); err != nil {
				t.Fatal(err)
			}
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	project(conf(a))
	path := filepath.Join(dir, "gateway.yaml")
	g := newTestGateway(t, string(conf(a)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { g.Watch(ctx, WatchOptions{Path: path, Loaded: conf(a), Interval: 10 * time.Millisecond}) })
	defer func() { cancel(); wg.Wait() }()

	// Two updates in a row: the second proves the watcher is not left
	// holding the first generation's (now deleted) directory.
	// A reload is counted after its routes serve: wait for both.
	for i, u := range []*upstream{b, c} {
		project(conf(u))
		eventually(t, fmt.Sprintf("generation %d applied and counted", i+2), func() bool {
			return routesTo(t, g, u)() && testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`) >= float64(i+1)
		})
	}
	if got := testutilCount(t, g.Metrics(), "keycard_gateway_config_reloads_total", `result="ok"`); got != 2 {
		t.Errorf("reloads: got %v, want 2", got)
	}
	if strings.Contains(g.log.String(), "config file unreadable") {
		t.Errorf("the swap was seen as a missing file: %s", g.log)
	}
}
