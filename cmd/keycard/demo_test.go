package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/auth"
	"github.com/keycard-auth/keycard/internal/demo"
)

// demoRun is a "keycard demo" started through Main, with what it printed.
type demoRun struct {
	out, log                       *syncBuffer
	auth, gateway, weather, orders string
	travel                         string
	demoPassword, viewerPassword   string
	steps                          []demoStep
	stop                           func() int
}

// demoStep is one numbered step of the printed walk-through.
type demoStep struct {
	n        int
	comment  string
	commands []string
}

var (
	demoLineRE = func(label string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + label + `:\s+(\S+)`)
	}
	demoAuthRE     = demoLineRE("auth server")
	demoGatewayRE  = demoLineRE("gateway")
	demoWeatherRE  = demoLineRE("weather service")
	demoOrdersRE   = demoLineRE("orders service")
	demoTravelRE   = demoLineRE("travel app")
	demoUserRE     = regexp.MustCompile(`(?m)^user demo:\s+password (\S+)`)
	demoViewerRE   = regexp.MustCompile(`(?m)^user viewer:\s+password (\S+)`)
	demoStepRE     = regexp.MustCompile(`^# (\d+)\. (.*)$`)
	demoAssignRE   = regexp.MustCompile(`^([A-Z_]+)=\$\((.*)\)$`)
	demoVariableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)
)

// startDemo runs "keycard demo" on data with port 0 everywhere (and the
// extra arguments) and waits for its walk-through.
func startDemo(t *testing.T, data string, extra ...string) *demoRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &demoRun{out: &syncBuffer{}, log: &syncBuffer{}}
	done := make(chan int, 1)
	args := append([]string{"demo", "--data", data, "--auth-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--travel-addr", "127.0.0.1:0"}, extra...)
	go func() { done <- Main(ctx, args, strings.NewReader(""), d.out, d.log) }()
	var once sync.Once
	code := -1
	d.stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { d.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.out.String(), "Walk-through") {
		select {
		case code := <-done:
			t.Fatalf("demo exited with %d before printing its walk-through:\n%s\n%s", code, d.out, d.log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo did not start:\n%s", d.log)
		}
	}
	out := d.out.String()
	for _, f := range []struct {
		re   *regexp.Regexp
		into *string
	}{
		{demoAuthRE, &d.auth}, {demoGatewayRE, &d.gateway}, {demoWeatherRE, &d.weather}, {demoOrdersRE, &d.orders}, {demoTravelRE, &d.travel},
		{demoUserRE, &d.demoPassword}, {demoViewerRE, &d.viewerPassword},
	} {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the demo's output has no match for %s:\n%s", f.re, out)
		}
		*f.into = m[1]
	}
	_, walk, _ := strings.Cut(out, "Walk-through")
	for _, line := range strings.Split(walk, "\n")[1:] {
		line = strings.TrimSpace(line)
		switch m := demoStepRE.FindStringSubmatch(line); {
		case m != nil:
			n, _ := strconv.Atoi(m[1])
			d.steps = append(d.steps, demoStep{n: n, comment: m[2]})
		case line == "":
		case len(d.steps) == 0:
			t.Fatalf("a command before the first step: %q", line)
		default:
			s := &d.steps[len(d.steps)-1]
			s.commands = append(s.commands, line)
		}
	}
	return d
}

// demoShell runs the printed commands: the subset of bash, curl and jq
// that the walk-through uses (VAR=$(…), pipes, quoting, $VAR), and
// nothing else, so that a printed command outside it fails the test.
type demoShell struct {
	vars   map[string]string
	status int // of the last curl
}

// run runs one printed line and returns what it writes on stdout.
func (sh *demoShell) run(line string) (string, error) {
	if m := demoAssignRE.FindStringSubmatch(line); m != nil {
		out, err := sh.pipeline(m[2])
		if err != nil {
			return "", err
		}
		if sh.status/100 != 2 {
			return "", fmt.Errorf("%s: status %d: %s", line, sh.status, out)
		}
		sh.vars[m[1]] = out
		return "", nil
	}
	return sh.pipeline(line)
}

func (sh *demoShell) pipeline(s string) (string, error) {
	words, err := sh.words(s)
	if err != nil {
		return "", err
	}
	var cmds [][]string
	start := 0
	for i, w := range append(words, "|") {
		if w == "|" {
			if i == start {
				return "", fmt.Errorf("empty command in %q", s)
			}
			cmds = append(cmds, words[start:i])
			start = i + 1
		}
	}
	var out string
	for i, c := range cmds {
		switch {
		case c[0] == "curl" && i == 0:
			out, err = sh.curl(c[1:])
		case c[0] == "echo" && i == 0:
			out = strings.Join(c[1:], " ")
		case c[0] == "jq" && i > 0 && len(c) == 3 && c[1] == "-r" && strings.HasPrefix(c[2], "."):
			var obj map[string]any
			if err := json.Unmarshal([]byte(out), &obj); err != nil {
				return "", fmt.Errorf("jq: %q is not a JSON object", out)
			}
			v, ok := obj[c[2][1:]].(string)
			if !ok || v == "" {
				return "", fmt.Errorf("jq: %q has no string %s", out, c[2])
			}
			out = v
		default:
			return "", fmt.Errorf("unsupported command %q in %q", c, s)
		}
		if err != nil {
			return "", err
		}
	}
	return out, nil
}

// words splits s as bash would: '…' literal, "…" and bare words with
// $VAR expanded, | a word of its own.
func (sh *demoShell) words(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		name := demoVariableRE.FindString(s[i+1:])
		if name == "" {
			return 0, fmt.Errorf("unsupported $ at %d in %q", i, s)
		}
		v, ok := sh.vars[name]
		if !ok {
			return 0, fmt.Errorf("$%s is not set (in %q)", name, s)
		}
		cur.WriteString(v)
		return i + 1 + len(name), nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '|' && !inWord:
			words = append(words, "|")
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+end+2
		case c == '"':
			inWord = true
			for i++; ; {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated \" in %q", s)
				}
				if s[i] == '"' {
					i++
					break
				}
				switch s[i] {
				case '$':
					var err error
					if i, err = expand(i); err != nil {
						return nil, err
					}
				case '\\', '`':
					return nil, fmt.Errorf("unsupported %c in %q", s[i], s)
				default:
					cur.WriteByte(s[i])
					i++
				}
			}
		case c == '$':
			var err error
			if i, err = expand(i); err != nil {
				return nil, err
			}
			inWord = true
		case strings.IndexByte(";&<>()`\\*?[]{}~#", c) >= 0:
			return nil, fmt.Errorf("unsupported %c in %q", c, s)
		default:
			cur.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// curl sends the request curl would for args (-s, -i, -X, -H, -d, URL)
// and returns the body.
func (sh *demoShell) curl(args []string) (string, error) {
	method, url := "", ""
	var data []string
	header := http.Header{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-s" || a == "-i" || a == "-si" || a == "-is":
		case (a == "-X" || a == "-H" || a == "-d") && i+1 < len(args):
			i++
			switch a {
			case "-X":
				method = args[i]
			case "-H":
				k, v, ok := strings.Cut(args[i], ":")
				if !ok {
					return "", fmt.Errorf("curl: bad header %q", args[i])
				}
				header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			case "-d":
				data = append(data, args[i])
			}
		case strings.HasPrefix(a, "http://") && url == "":
			url = a
		default:
			return "", fmt.Errorf("curl: unsupported argument %q", a)
		}
	}
	if method == "" {
		method = "GET"
		if data != nil {
			method = "POST"
		}
	}
	if data != nil && header.Get("Content-Type") == "" {
		header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req, err := http.NewRequest(method, url, strings.NewReader(strings.Join(data, "&")))
	if err != nil {
		return "", err
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	sh.status = resp.StatusCode
	return string(b), err
}

// TestDemo runs the demo, then the printed walk-through command by
// command (each step's last command must answer the status its comment
// promises), with checks that the services verify tokens themselves;
// then a second run on the same data directory, which gives the users
// new passwords.
func TestDemo(t *testing.T) {
	data := t.TempDir()
	d := startDemo(t, data)
	sh := &demoShell{vars: map[string]string{}}
	want := map[int]int{2: 200, 3: 401, 4: 201, 5: 403, 6: 200, 7: 204, 8: 401}
	// Checks the walk-through does not show, after the step of that number.
	after := map[int]func(){
		2: func() {
			// A service behind the gateway verifies tokens itself: the
			// demo's token works there directly, and a request that
			// skips the gateway with forged identity headers does not.
			expectStatus(t, "GET", d.weather+"/weather/oslo", sh.vars["ACCESS"], nil, "", 200)
			expectStatus(t, "GET", d.weather+"/weather/oslo", "", http.Header{"X-Keycard-Subject": {"someone"}, "X-Keycard-Scopes": {demo.ScopeWeather}}, "", 401)
			expectStatus(t, "GET", d.weather+"/weather/oslo", "not-a-jwt", nil, "", 401)
			expectStatus(t, "GET", d.weather+"/weather/"+strings.Repeat("x", 65), sh.vars["ACCESS"], nil, "", 400)
			expectStatus(t, "GET", d.weather+"/weather/a%3Cb%3E", sh.vars["ACCESS"], nil, "", 400)
			expectStatus(t, "GET", d.gateway+"/orders/", sh.vars["ACCESS"], nil, "", 405)
		},
		4: func() {
			for _, c := range []struct {
				name, contentType, body string
				want                    int
			}{
				{"not JSON", "text/plain", `{"item":"umbrella","quantity":1}`, 415},
				{"no content type", "", `{"item":"umbrella","quantity":1}`, 415},
				{"malformed", "application/json", `{"item":`, 400},
				{"two objects", "application/json", `{"item":"a","quantity":1}{}`, 400},
				{"unknown field", "application/json", `{"item":"a","quantity":1,"price":0}`, 400},
				{"quantity 0", "application/json", `{"item":"a","quantity":0}`, 400},
				{"quantity 100", "application/json", `{"item":"a","quantity":100}`, 400},
				{"quantity not a number", "application/json", `{"item":"a","quantity":"1"}`, 400},
				{"no item", "application/json", `{"quantity":1}`, 400},
				{"item with markup", "application/json", `{"item":"<script>","quantity":1}`, 400},
				{"too large", "application/json", `{"item":"` + strings.Repeat("a", 2000) + `","quantity":1}`, 400},
				{"deep", "application/json", strings.Repeat("[", 10000), 400},
			} {
				t.Run("order "+c.name, func(t *testing.T) {
					h := http.Header{}
					if c.contentType != "" {
						h.Set("Content-Type", c.contentType)
					}
					expectStatus(t, "POST", d.gateway+"/orders/", sh.vars["ACCESS"], h, c.body, c.want)
				})
			}
		},
		5: func() {
			// The orders service checks the scope itself too.
			expectStatus(t, "POST", d.orders+"/orders/", sh.vars["VIEWER"], http.Header{"Content-Type": {"application/json"}}, `{"item":"a","quantity":1}`, 403)
			expectStatus(t, "GET", d.gateway+"/weather/paris", sh.vars["VIEWER"], nil, "", 200)
		},
		8: func() {
			// The weather service's own verifier heard of the logout too,
			// and the session's refresh token is dead.
			pollStatus(t, "GET", d.weather+"/weather/paris", sh.vars["ACCESS"], 401)
			pollStatus(t, "POST", d.gateway+"/orders/", sh.vars["ACCESS"], 401)
			var tr tokenResponse
			code, _ := call(t, "POST", d.auth+"/oauth/token", "", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+sh.vars["REFRESH"], &tr)
			if code != 400 || tr.Error != "invalid_grant" {
				t.Errorf("refresh after logout: got %d %q, want 400 invalid_grant", code, tr.Error)
			}
		},
	}
	var seen []int
	for _, s := range d.steps {
		seen = append(seen, s.n)
		if len(s.commands) == 0 {
			t.Fatalf("step %d has no command", s.n)
		}
		for i, line := range s.commands {
			last := i == len(s.commands)-1
			_, err := sh.run(line)
			if last && s.n == 8 {
				// Revocation reaches the gateway through the feed: poll
				// for it. The demo says "within a second"; on a busy CI
				// machine it can take longer, so the deadline catches a
				// revocation that never arrives, and the time is logged,
				// not asserted.
				start := time.Now()
				for deadline := start.Add(30 * time.Second); err == nil && sh.status != 401 && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
					_, err = sh.run(line)
				}
				t.Logf("step 8: the gateway refused the logged-out token %v after the first try", time.Since(start).Round(time.Millisecond))
			}
			if err != nil {
				t.Fatalf("step %d: %q: %v", s.n, line, err)
			}
			if last && !demoAssignRE.MatchString(line) {
				if w, ok := want[s.n]; !ok || sh.status != w {
					t.Fatalf("step %d (%s): %q: got %d, want %d", s.n, s.comment, line, sh.status, w)
				}
				if !strings.Contains(s.comment, strconv.Itoa(sh.status)) {
					t.Errorf("step %d: the comment %q does not say %d", s.n, s.comment, sh.status)
				}
			}
		}
		if fn := after[s.n]; fn != nil {
			fn()
		}
	}
	if fmt.Sprint(seen) != "[1 2 3 4 5 6 7 8]" {
		t.Errorf("steps: got %v, want 1 to 8", seen)
	}

	if code := d.stop(); code != exitOK {
		t.Fatalf("demo exit code: got %d, want 0; log:\n%s", code, d.log)
	}
	log := d.log.String()
	if !strings.Contains(log, `"msg":"stopped"`) || strings.Contains(log, `"level":"ERROR"`) {
		t.Errorf("the log does not end in a clean stop:\n%s", log)
	}
	gatewaySecret, err := os.ReadFile(filepath.Join(data, "gateway.secret"))
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"demo's password": d.demoPassword, "viewer's password": d.viewerPassword,
		"access token": sh.vars["ACCESS"], "refresh token": sh.vars["REFRESH"],
		"gateway's client secret": strings.TrimSpace(string(gatewaySecret)),
	} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the %s", name)
		}
	}
	if fi, err := os.Stat(filepath.Join(data, "gateway.secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("gateway.secret: %v, %v; want mode 0600", fi.Mode(), err)
	}

	// Between the runs, demo is disabled and viewer made a customer: the
	// second run undoes both, so that its walk-through still holds.
	if code, _, errOut := run(t, "", "users", "disable", "--data", data, "--username", demo.User); code != exitOK {
		t.Fatalf("users disable: %d %s", code, errOut)
	}
	env := &cmdEnv{ctx: context.Background(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	var f serverFlags
	fs := env.serverFlagSet("test", &f)
	f.data = data
	if code := env.onData(fs, &f, false, func(svc *auth.Service) int {
		u, err := svc.UserByName(env.ctx, demo.Viewer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetUserRoles(env.ctx, auth.Operator(), u.ID, []string{demo.Role, "auditor"}); err != nil {
			t.Fatal(err)
		}
		return exitOK
	}); code != exitOK {
		t.Fatal("opening the data directory failed")
	}

	// A second run on the same data directory resets the passwords.
	d2 := startDemo(t, data)
	if !strings.Contains(d2.out.String(), "The users existed") {
		t.Errorf("the second run does not say that the users existed:\n%s", d2.out)
	}
	for _, u := range []struct{ name, old, cur string }{
		{demo.User, d.demoPassword, d2.demoPassword},
		{demo.Viewer, d.viewerPassword, d2.viewerPassword},
	} {
		if u.old == u.cur {
			t.Errorf("%s: the second run printed the same password", u.name)
		}
		code, _ := call(t, "POST", d2.auth+"/v1/login", "", "application/json", fmt.Sprintf(`{"username":%q,"password":%q}`, u.name, u.old), nil)
		if code != 401 {
			t.Errorf("%s: login with the first run's password: got %d, want 401", u.name, code)
		}
	}
	sh2 := &demoShell{vars: map[string]string{}}
	for _, line := range append(d2.steps[0].commands, d2.steps[3].commands...) { // log in, order
		if _, err := sh2.run(line); err != nil {
			t.Fatalf("second run: %q: %v", line, err)
		}
	}
	if sh2.status != 201 {
		t.Errorf("second run: an order through the gateway: got %d, want 201", sh2.status)
	}
	for _, line := range d2.steps[4].commands { // viewer may not order
		if _, err := sh2.run(line); err != nil {
			t.Fatalf("second run: %q: %v", line, err)
		}
	}
	if sh2.status != 403 {
		t.Errorf("second run: an order by viewer through the gateway: got %d, want 403", sh2.status)
	}
	var me struct {
		Roles []string `json:"roles"`
	}
	if code, _ := call(t, "GET", d2.auth+"/v1/me", sh2.vars["VIEWER"], "", "", &me); code != 200 || fmt.Sprint(me.Roles) != "[auditor]" {
		t.Errorf("second run: viewer's roles: got %d %v, want [auditor] (%s removed, others kept)", code, me.Roles, demo.Role)
	}
	if code := d2.stop(); code != exitOK {
		t.Fatalf("second demo exit code: got %d, want 0; log:\n%s", code, d2.log)
	}
}

// TestDemoBadArgs: a bad command line or a busy port stops the demo
// before it starts anything.
func TestDemoBadArgs(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, c := range []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"unknown flag", []string{"--nope"}, exitUsage, "flag provided but not defined"},
		{"an argument", []string{"extra"}, exitUsage, "want 0 argument"},
		{"bad log level", []string{"--log-level", "loud"}, exitFailure, "--log-level"},
		{"busy auth port", []string{"--auth-addr", busy.Addr().String()}, exitFailure, "--auth-addr"},
		{"busy gateway port", []string{"--auth-addr", "127.0.0.1:0", "--gateway-addr", busy.Addr().String()}, exitFailure, "--gateway-addr"},
		{"busy travel port", []string{"--auth-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0", "--travel-addr", busy.Addr().String()}, exitFailure, "--travel-addr"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			var out, errOut strings.Builder
			args := append([]string{"demo", "--data", data}, c.args...)
			code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
			if code != c.want || !strings.Contains(errOut.String(), c.msg) {
				t.Errorf("got %d %q, want %d and %q", code, errOut.String(), c.want, c.msg)
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
			if entries, _ := os.ReadDir(data); len(entries) != 0 {
				t.Errorf("the data directory is not empty: %v", entries)
			}
		})
	}
}

// expectStatus sends a request and checks its status.
func expectStatus(t *testing.T, method, url, bearer string, h http.Header, body string, want int) {
	t.Helper()
	if got := status(t, method, url, bearer, h, body); got != want {
		t.Errorf("%s %s: got %d, want %d", method, url, got, want)
	}
}

// pollStatus sends a request until it answers want, for up to 30 s: a
// revocation that never arrives, not a slow machine, is what it catches.
func pollStatus(t *testing.T, method, url, bearer string, want int) {
	t.Helper()
	got := 0
	for deadline := time.Now().Add(30 * time.Second); got != want && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = status(t, method, url, bearer, http.Header{"Content-Type": {"application/json"}}, `{"item":"a","quantity":1}`)
	}
	if got != want {
		t.Errorf("%s %s: got %d within 30 s, want %d", method, url, got, want)
	}
}

func status(t *testing.T, method, url, bearer string, h http.Header, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// TestDemoWeatherPage: the weather page, a single-page app on
// @keycard/browser, is served through the gateway: the page, its script
// and the package's bundle (the one js/browser builds), with a content
// security policy that lets it call the issuer and nothing else; and the
// auth server's pages are reachable through the gateway too.
func TestDemoWeatherPage(t *testing.T) {
	d := startDemo(t, t.TempDir())
	get := func(path, ctype string) []byte {
		t.Helper()
		res, err := http.Get(d.gateway + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ctype {
			t.Fatalf("GET %s through the gateway: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") || !strings.Contains(csp, "connect-src 'self' "+d.auth+";") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
		return b
	}
	page := string(get(demo.WeatherApp, "text/html; charset=utf-8"))
	if !strings.Contains(page, `<script type="module" src="weather-app.js"></script>`) || !strings.Contains(page, `"issuer":"`+d.auth+`"`) {
		t.Errorf("the weather page:\n%s", page)
	}
	if script := string(get(demo.WeatherApp+"weather-app.js", "text/javascript; charset=utf-8")); !strings.Contains(script, `from "./keycard-browser.js"`) {
		t.Errorf("the page's script does not import the package:\n%s", script)
	}
	if !bytes.Equal(get(demo.WeatherApp+"keycard-browser.js", "text/javascript; charset=utf-8"), demo.BrowserBundle()) {
		t.Errorf("the gateway serves another bundle than the embedded one")
	}
	res, err := http.Get(d.gateway + "/signin?next=" + demo.WeatherApp)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("sign-in page through the gateway: %d", res.StatusCode)
	}
	if !strings.Contains(d.out.String(), "weather page:    "+d.gateway+demo.WeatherApp) {
		t.Errorf("the page's address is not printed")
	}
}
