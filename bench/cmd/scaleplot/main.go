// Command scaleplot turns the results of bench/scale.sh into a markdown
// summary and an SVG plot: for refresh and introspection, the rate and
// the server's CPU per request against the size of the PostgreSQL store
// (10,000 sessions and users, against the large size), and the large
// size's rate as a fraction of the small one's, round by round.
//
//	scaleplot -dir bench/results/scale -md summary.md -svg bench/plots/scale.svg
package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	dir := flag.String("dir", "bench/results/scale", "directory of bench/scale.sh's results")
	md := flag.String("md", "", "markdown summary to write (default stdout)")
	svg := flag.String("svg", "", "SVG plot to write (none when empty)")
	flag.Parse()
	if err := run(*dir, *md, *svg); err != nil {
		fmt.Fprintln(os.Stderr, "scaleplot:", err)
		os.Exit(1)
	}
}

// run1 is one wrk run of bench/scale.sh (bench/cmd/wrkbench's
// keycard-wrk/1, and the load average the script adds).
type run1 struct {
	Workload   string  `json:"workload"`
	Label      string  `json:"label"`
	Throughput float64 `json:"throughput_per_s"`
	Errors     int64   `json:"errors"`
	Load       string  `json:"load_average"`
	ServerCPU  *struct {
		US float64 `json:"us_per_request"`
	} `json:"server_cpu"`
	Command string `json:"command"`
	round   int
}

// machine is bench/scale.sh's machine.json.
type machine struct {
	Command    string `json:"command"`
	Commit     string `json:"commit"`
	Date       string `json:"date"`
	Seconds    int    `json:"seconds"`
	CPU        string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
	Postgres   string `json:"postgres"`
	Small      size   `json:"small"`
	Large      size   `json:"large"`
}

type size struct {
	Sessions int `json:"sessions"`
	Users    int `json:"users"`
}

// series is one workload's figures at one store size, in round order.
type series struct {
	rate, us []float64
	loads    []string
}

func run(dir, mdPath, svgPath string) error {
	var m machine
	b, err := os.ReadFile(filepath.Join(dir, "machine.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("machine.json: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*-r*.json"))
	if err != nil {
		return err
	}
	var runs []run1
	for _, f := range files {
		var r run1
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if _, err := fmt.Sscanf(name[strings.LastIndex(name, "-r")+2:], "%d", &r.round); err != nil {
			return fmt.Errorf("%s: no round in the name", f)
		}
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return errors.New("no results in " + dir)
	}
	slices.SortFunc(runs, func(a, b run1) int { return cmp.Compare(a.round, b.round) })
	data := map[string]map[string]*series{} // workload → small|large
	for _, r := range runs {
		if data[r.Workload] == nil {
			data[r.Workload] = map[string]*series{"small": {}, "large": {}}
		}
		s := data[r.Workload][r.Label]
		if s == nil {
			return fmt.Errorf("run label %q is neither small nor large", r.Label)
		}
		us := math.NaN()
		if r.ServerCPU != nil {
			us = r.ServerCPU.US
		}
		s.rate, s.us, s.loads = append(s.rate, r.Throughput), append(s.us, us), append(s.loads, r.Load)
	}
	workloads := []string{"refresh", "introspect"}
	var out io.Writer = os.Stdout
	if mdPath != "" {
		f, err := os.Create(mdPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	writeMarkdown(out, &m, data, workloads, runs[0].Command)
	if svgPath != "" {
		f, err := os.Create(svgPath)
		if err != nil {
			return err
		}
		defer f.Close()
		writeSVG(f, &m, data, workloads)
	}
	return nil
}

func median(v []float64) float64 {
	v = slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// ratios returns large ÷ small round by round.
func ratios(s *series, l *series, of func(*series) []float64) []float64 {
	a, b := of(s), of(l)
	var r []float64
	for i := range min(len(a), len(b)) {
		r = append(r, b[i]/a[i])
	}
	return r
}

func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func num(f float64) string {
	switch {
	case math.IsNaN(f):
		return "—"
	case f >= 1000:
		return count(int(math.Round(f)))
	case f >= 100:
		return fmt.Sprintf("%.0f", f)
	default:
		return fmt.Sprintf("%.1f", f)
	}
}

func list(v []float64) string {
	var s []string
	for _, f := range v {
		s = append(s, num(f))
	}
	return strings.Join(s, ", ")
}

func writeMarkdown(w io.Writer, m *machine, data map[string]map[string]*series, workloads []string, command string) {
	fmt.Fprintf(w, "Run: `%s`, commit %s, %s, took %d min. Machine: %s, %d cores, PostgreSQL %s on the same machine. Load average (1, 5, 15 min) before the run: %s; after: %s.\n\n",
		m.Command, m.Commit, m.Date, (m.Seconds+30)/60, m.CPU, m.Cores, m.Postgres, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(w, "Small store: %s sessions, %s users; large store: %s sessions, %s users (seeded by COPY, plus the benchmark's own users and sessions). Medians of the rounds; the ratio is the large store's rate over the small one's, round by round, then the median.\n\n",
		count(m.Small.Sessions), count(m.Small.Users), count(m.Large.Sessions), count(m.Large.Users))
	fmt.Fprintln(w, "| workload | store | requests/s | each round | server µs | each round | load average at each run | large ÷ small, rate | target ≥ 0.8× |")
	fmt.Fprintln(w, "|---|---|--:|---|--:|---|---|--:|---|")
	for _, wl := range workloads {
		d := data[wl]
		if d == nil {
			continue
		}
		for _, sz := range []string{"small", "large"} {
			s := d[sz]
			n := m.Small
			if sz == "large" {
				n = m.Large
			}
			ratio, met := "", ""
			if sz == "large" {
				r := median(ratios(d["small"], s, func(s *series) []float64 { return s.rate }))
				ratio = fmt.Sprintf("%.2f×", r)
				met = "**no**"
				if r >= 0.8 {
					met = "yes"
				}
			}
			var loads []string
			for _, l := range s.loads {
				loads = append(loads, strings.Fields(l + " ")[0])
			}
			fmt.Fprintf(w, "| %s | %s sessions, %s users | %s | %s | %s | %s | %s | %s | %s |\n", wl, count(n.Sessions), count(n.Users),
				num(median(s.rate)), list(s.rate), num(median(s.us)), list(s.us), strings.Join(loads, ", "), ratio, met)
		}
	}
	fmt.Fprintf(w, "\nwrk command (round 1): `%s`\n", command)
}

// writeSVG draws one panel per workload and figure (requests/s, server
// CPU µs per request), each on its own scale, with a bar per store size
// (the median of the rounds) and each round's figure as a dot.
func writeSVG(w io.Writer, m *machine, data map[string]map[string]*series, workloads []string) {
	const W, panelW, panelH, top, left = 760, 300, 170, 50, 70
	H := top + len(workloads)*(panelH+60) + 30
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`+"\n", W, H, W, H)
	p(`<rect width="%d" height="%d" fill="#fff"/>`+"\n", W, H)
	p(`<text x="20" y="22" font-size="15" font-weight="600">As the PostgreSQL store grows (wrk; bars: medians, dots: rounds)</text>` + "\n")
	colors := map[string]string{"small": "#9ecae1", "large": "#3182bd"}
	labels := map[string]string{
		"small": fmt.Sprintf("%s sessions, %s users", count(m.Small.Sessions), count(m.Small.Users)),
		"large": fmt.Sprintf("%s sessions, %s users", count(m.Large.Sessions), count(m.Large.Users)),
	}
	figures := []struct {
		title string
		of    func(*series) []float64
	}{
		{"requests/s", func(s *series) []float64 { return s.rate }},
		{"server CPU µs per request", func(s *series) []float64 { return s.us }},
	}
	for wi, wl := range workloads {
		d := data[wl]
		for fi, fig := range figures {
			x0, y0 := left+fi*(panelW+80), top+wi*(panelH+60)
			p(`<text x="%d" y="%d" font-size="13">%s: %s</text>`+"\n", x0, y0-8, wl, fig.title)
			maxV := 0.0
			if d != nil {
				for _, sz := range []string{"small", "large"} {
					for _, v := range fig.of(d[sz]) {
						if !math.IsNaN(v) {
							maxV = max(maxV, v)
						}
					}
				}
			}
			maxV = niceCeil(maxV)
			for t := 0; t <= 4; t++ {
				y := y0 + panelH - int(float64(panelH)*float64(t)/4)
				p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x0, y, x0+panelW, y)
				p(`<text x="%d" y="%d" font-size="10" text-anchor="end">%s</text>`+"\n", x0-4, y+3, num(maxV*float64(t)/4))
			}
			if d == nil {
				continue
			}
			for si, sz := range []string{"small", "large"} {
				bx := x0 + 50 + si*120
				if v := median(fig.of(d[sz])); !math.IsNaN(v) {
					h := int(float64(panelH) * v / maxV)
					p(`<rect x="%d" y="%d" width="80" height="%d" fill="%s"/>`+"\n", bx, y0+panelH-h, h, colors[sz])
					p(`<text x="%d" y="%d" font-size="10" text-anchor="middle">%s</text>`+"\n", bx+40, y0+panelH-h-3, num(v))
				}
				for ri, v := range fig.of(d[sz]) {
					if math.IsNaN(v) {
						continue
					}
					p(`<circle cx="%d" cy="%d" r="3" fill="#333"/>`+"\n", bx+20+ri*20, y0+panelH-int(float64(panelH)*v/maxV))
				}
			}
		}
	}
	for i, sz := range []string{"small", "large"} {
		x := left + i*300
		p(`<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, H-22, colors[sz])
		p(`<text x="%d" y="%d" font-size="11">%s</text>`+"\n", x+16, H-12, labels[sz])
	}
	p("</svg>\n")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*e >= v {
			return f * e
		}
	}
	return 10 * e
}
