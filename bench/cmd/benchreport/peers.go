package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const (
	peersBegin = "<!-- benchreport:peers:begin -->"
	peersEnd   = "<!-- benchreport:peers:end -->"
)

// peersMachine is bench/peers/results/machine.json, written by
// bench/peers/run.sh.
type peersMachine struct {
	host
	HydraCommit      string `json:"hydra_commit"`
	OathkeeperCommit string `json:"oathkeeper_commit"`
	Postgres         string `json:"postgres"` // the server's version
	Rounds           int    `json:"rounds"`
	Duration         string `json:"duration"`
	Connections      int    `json:"connections"`
	Threads          int    `json:"threads"`
}

// peers is a bench/peers/run.sh run: runs[workload][system] by round.
type peers struct {
	machine peersMachine
	runs    map[string]map[string][]*benchRun
}

var peerFile = regexp.MustCompile(`^r(\d+)-(login|refresh|client-credentials|introspect|gateway)-(.+)\.json$`)

// loadPeers reads machine.json and the rR-WORKLOAD-SYSTEM.json results
// in dir.
func loadPeers(dir string) (*peers, error) {
	p := &peers{runs: map[string]map[string][]*benchRun{}}
	entries, err := readMachine(dir, &p.machine)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		m := peerFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var r benchRun
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if r.Schema != "keycard-wrk/1" {
			return nil, fmt.Errorf("%s: schema %q, want keycard-wrk/1", path, r.Schema)
		}
		round, _ := strconv.Atoi(m[1])
		w, sys := m[2], m[3]
		if p.runs[w] == nil {
			p.runs[w] = map[string][]*benchRun{}
		}
		for len(p.runs[w][sys]) < round {
			p.runs[w][sys] = append(p.runs[w][sys], nil)
		}
		p.runs[w][sys][round-1] = &r
	}
	if len(p.runs) == 0 {
		return nil, fmt.Errorf("%s: no rR-WORKLOAD-SYSTEM.json results", dir)
	}
	return p, nil
}

// peerSystem is a configuration bench/peers/run.sh measures.
type peerSystem struct {
	name string // the SYSTEM of the file names
	// label says what it is; hashing says how its client secrets are
	// hashed, which only the client credentials grant pays for.
	label, hashing string
	// base is the system this one is compared with: Keycard on the same
	// store, or for the gateway the bare proxy.
	base string
}

var peerSystems = []peerSystem{
	{"keycard-sqlite", "Keycard, SQLite", "", ""},
	{"hydra-sqlite-opaque", "Hydra, SQLite, opaque tokens", "PBKDF2, 1 iteration", "keycard-sqlite"},
	{"hydra-sqlite-opaque-defaulthash", "Hydra, SQLite, opaque tokens", "PBKDF2, 25,000 iterations (default)", "keycard-sqlite"},
	{"hydra-sqlite-jwt", "Hydra, SQLite, JWT (ES256) tokens", "PBKDF2, 1 iteration", "keycard-sqlite"},
	{"keycard-pg", "Keycard, PostgreSQL", "", ""},
	{"hydra-pg-opaque", "Hydra, PostgreSQL, opaque tokens", "PBKDF2, 1 iteration", "keycard-pg"},
	{"hydra-pg-opaque-defaulthash", "Hydra, PostgreSQL, opaque tokens", "PBKDF2, 25,000 iterations (default)", "keycard-pg"},
	{"hydra-pg-jwt", "Hydra, PostgreSQL, JWT (ES256) tokens", "PBKDF2, 1 iteration", "keycard-pg"},
	{"keycard-gateway", "keycard gateway", "", "bare"},
	{"oathkeeper", "Oathkeeper (jwt authenticator)", "", "bare"},
	{"bare", "bare httputil.ReverseProxy", "", ""},
}

// peerWorkloads are the workloads in the order of the report, with what
// each system's request is.
var peerWorkloads = []struct{ name, title, what string }{
	{"refresh", "Refresh grant", "Keycard: `POST /oauth/token` `grant_type=refresh_token`, first-party, no client authentication. Hydra: `POST /oauth2/token` with a public client (`client_id` in the form, no secret, so its hashing plays no part), each session started by the authorization code flow. Both rotate the refresh token on every grant (`bench/wrk/refresh.lua` follows each chain)."},
	{"client-credentials", "Client credentials grant", "`POST` to the token endpoint, `grant_type=client_credentials&scope=bench:read`, HTTP Basic: every request checks the client secret, so Hydra's secret hashing is on the path."},
	{"introspect", "Introspection", "Keycard: `POST /oauth/introspect` of a user's access token, the caller authenticated with HTTP Basic (a service client). Hydra: its admin endpoint `POST /admin/oauth2/introspect`, which takes no client authentication, of user access tokens from the authorization code flow."},
	{"gateway", "Gateway: a JWT-verifying reverse proxy", "`GET /me/x` with a Keycard ES256 access token through keycard gateway (verification cache on, revocation feed followed, access log off), through Oathkeeper (jwt authenticator on Keycard's JWKS, `allow` authorizer, `header` mutator, log level warn: no access log) and through a bare `httputil.ReverseProxy`, each in front of the same upstream (`bench/cmd/upstream`). Oathkeeper checks no revocation."},
}

// runsOf returns the rounds of workload on system, nil where a round is
// missing.
func (p *peers) runsOf(workload, system string) []*benchRun { return p.runs[workload][system] }

// rateStat and cpuStat summarise a system's rounds.
func rateStat(runs []*benchRun) stat {
	var vs []float64
	for _, r := range runs {
		if r != nil {
			vs = append(vs, r.Throughput)
		}
	}
	return summarize(vs)
}

func cpuStat(runs []*benchRun) stat {
	var vs []float64
	for _, r := range runs {
		if c := r.serverUS(); c.ok {
			vs = append(vs, c.median)
		}
	}
	return summarize(vs)
}

// roundRatios is, round by round, num(a) ÷ num(b) where both ran.
func roundRatios(a, b []*benchRun, num func(*benchRun) (float64, bool)) stat {
	var vs []float64
	for i := range min(len(a), len(b)) {
		x, okx := num(a[i])
		y, oky := num(b[i])
		if okx && oky && y != 0 {
			vs = append(vs, x/y)
		}
	}
	return summarize(vs)
}

func runRate(r *benchRun) (float64, bool) { return r.Throughput, r != nil && r.Throughput > 0 }

func runCPU(r *benchRun) (float64, bool) { c := r.serverUS(); return c.median, c.ok }

// writePeers writes the "Against Ory" region.
func writePeers(w io.Writer, p *peers) {
	pr := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	m := p.machine
	pr("%s\n", peersBegin)
	pr("<!-- Generated by bench/cmd/benchreport -peers from bench/peers/results/ (bench/peers/run.sh). Edit outside these markers. -->\n\n")
	if why := peersNoisy(m); why != "" {
		pr("> **These figures are noisy: %s.** The CPU time per request is the steadier figure; the ratios of rates still hold roughly, since the rounds interleave.\n\n", why)
	}
	pr("Run: `%s`, Keycard commit %s, Hydra commit %s, Oathkeeper commit %s, %s, %s. ", m.Command, m.Commit, m.HydraCommit, m.OathkeeperCommit, m.Date, minutes(m.Seconds))
	pr("Machine: %s, %d cores, %s, %s, PostgreSQL %s. ", orUnknown(m.CPUModel), m.Cores, m.GoVersion, m.Kernel, m.Postgres)
	pr("Load average (1, 5, 15 min) before the run: %s; after: %s. ", m.LoadBefore, m.LoadAfter)
	if m.OthersCPU != nil {
		pr("Other programs (the PostgreSQL server excluded) used %.0f%% of the cores' time while it ran. ", *m.OthersCPU)
	}
	pr("Every server, database and wrk share those cores over loopback.\n\n")
	pr("Each figure is the median of %s (interleaved: every round runs every configuration once, one after the other), wrk with %d threads and %d connections for %s per run. ", plural(m.Rounds, "round"), m.Threads, m.Connections, m.Duration)
	pr("\"Server µs\" is the server's CPU time (user and system, all threads, from /proc/PID/stat) per successful request. Ratios are round by round, then the median: \"Keycard ÷\" is Keycard's rate over the row's, \"CPU ÷ Keycard\" the row's CPU per request over Keycard's on the same store.\n")
	for _, wl := range peerWorkloads {
		if p.runs[wl.name] == nil {
			continue
		}
		pr("\n#### %s\n\n%s\n\n", wl.title, wl.what)
		gateway := wl.name == "gateway"
		if gateway {
			pr("| proxy | requests/s | each round | proxy µs | ÷ bare, rate | µs − bare's | errors |\n|---|--:|---|--:|--:|--:|--:|\n")
		} else if wl.name == "client-credentials" {
			pr("| server | secret hashing | requests/s | each round | server µs | Keycard ÷, rate | CPU ÷ Keycard | errors |\n|---|---|--:|---|--:|--:|--:|--:|\n")
		} else {
			pr("| server | requests/s | each round | server µs | Keycard ÷, rate | CPU ÷ Keycard | errors |\n|---|--:|---|--:|--:|--:|--:|\n")
		}
		for _, sys := range peerSystems {
			runs := p.runsOf(wl.name, sys.name)
			if len(runs) == 0 {
				continue
			}
			rate, cpu := rateStat(runs), cpuStat(runs)
			var each []string
			var errs int64
			for _, r := range runs {
				if r == nil {
					each = append(each, "—")
					continue
				}
				each = append(each, formatRate(r.Throughput))
				errs += r.Errors
			}
			cpuCell := "—"
			if cpu.ok {
				cpuCell = formatUS(cpu.median)
			}
			ratio := func(a, b []*benchRun, f func(*benchRun) (float64, bool)) string {
				if r := roundRatios(a, b, f); r.ok {
					return fmt.Sprintf("%.2f×", r.median)
				}
				return "—"
			}
			base := p.runsOf(wl.name, sys.base)
			name := sys.label
			if strings.HasPrefix(sys.name, "keycard") {
				name = "**" + name + "**"
			}
			switch {
			case gateway:
				rel, diff := "—", "—"
				if sys.base != "" {
					rel = ratio(runs, base, runRate)
					if c, b := cpu, cpuStat(base); c.ok && b.ok {
						diff = signedUS(c.median - b.median)
					}
				}
				pr("| %s | %s | %s | %s | %s | %s | %d |\n", name, formatRate(rate.median), strings.Join(each, ", "), cpuCell, rel, diff, errs)
			default:
				kr, kc := "—", "—"
				if sys.base != "" {
					kr, kc = ratio(base, runs, runRate), ratio(runs, base, runCPU)
				}
				if wl.name == "client-credentials" {
					hashing := sys.hashing
					if hashing == "" {
						hashing = "SHA-256 (high-entropy secrets)"
					}
					pr("| %s | %s | %s | %s | %s | %s | %s | %d |\n", name, hashing, formatRate(rate.median), strings.Join(each, ", "), cpuCell, kr, kc, errs)
				} else {
					pr("| %s | %s | %s | %s | %s | %s | %d |\n", name, formatRate(rate.median), strings.Join(each, ", "), cpuCell, kr, kc, errs)
				}
			}
		}
		if gateway {
			gw, ok := p.runsOf("gateway", "keycard-gateway"), p.runsOf("gateway", "oathkeeper")
			if r := roundRatios(gw, ok, runRate); r.ok {
				pr("\nkeycard gateway ÷ Oathkeeper, rate: %.2f×; Oathkeeper's CPU per request ÷ the gateway's: %s.\n", r.median,
					ratioCell(roundRatios(ok, gw, runCPU)))
			}
		}
		pr("\nwrk command (round 1, %s): `%s`\n", firstLabel(p, wl.name), firstCommand(p, wl.name))
	}
	pr("\n%s\n", peersEnd)
}

func ratioCell(s stat) string {
	if !s.ok {
		return "—"
	}
	return fmt.Sprintf("%.2f×", s.median)
}

// signedUS prints a difference of µs per request with its sign.
func signedUS(v float64) string {
	if v < 0 {
		return "−" + formatUS(-v)
	}
	return "+" + formatUS(v)
}

// firstCommand is the wrk command line of the first Keycard run of a
// workload (the others differ in script variables and URL).
func firstCommand(p *peers, workload string) string {
	names := make([]string, 0, len(p.runs[workload]))
	for n := range p.runs[workload] {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, r := range p.runs[workload][n] {
			if r != nil && strings.HasPrefix(n, "keycard") {
				return r.Command
			}
		}
	}
	return ""
}

func firstLabel(p *peers, workload string) string {
	for _, sys := range peerSystems {
		if strings.HasPrefix(sys.name, "keycard") && len(p.runsOf(workload, sys.name)) > 0 {
			return sys.label
		}
	}
	return ""
}

// peersNoisy says why a peers run is noisy, or "".
func peersNoisy(m peersMachine) string {
	var why []string
	if l, ok := firstLoad(m.LoadBefore); ok && l >= 3 {
		why = append(why, fmt.Sprintf("the machine was busy with other work (load average %s at the start)", trimFloat(l)))
	}
	if m.OthersCPU != nil && *m.OthersCPU >= noisyOthers {
		why = append(why, fmt.Sprintf("other programs took %.0f%% of the cores' time during the run", *m.OthersCPU))
	}
	return strings.Join(why, "; ")
}

// runPeers reports the bench/peers/run.sh results in dir.
func runPeers(dir, mdPath string) error {
	p, err := loadPeers(dir)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writePeers(&md, p)
	return writeRegion(mdPath, md.String(), peersBegin, peersEnd)
}
