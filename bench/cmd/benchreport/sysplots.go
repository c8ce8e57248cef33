package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// plotFiles are the SVG plots of a bench/all.sh run, in the order
// BENCHMARKS.md shows them.
var plotFiles = []struct{ file, alt string }{
	{"server.svg", "Auth server requests per second by workload and store, with the targets"},
	{"gateway.svg", "Gateway against a bare reverse proxy: requests per second and latency"},
	{"revocation.svg", "Revocation propagation latency percentiles, with the 100 ms target"},
	{"growth.svg", "How cost grows: refresh rate by stored sessions; revocation set memory and check time by entries"},
}

// bar is one horizontal bar of a panel.
type bar struct {
	label string
	value float64
	text  string // printed after the bar
	color string
}

// panel is one titled group of bars on a linear axis starting at zero,
// with an optional target drawn as a dashed line.
type panel struct {
	title       string
	bars        []bar
	target      float64
	targetLabel string
}

// Colours: the subject red, PostgreSQL and the peers muted.
const (
	colorKeycard = "#d1495b"
	colorBare    = "#5b5b5b"
	colorAlt     = "#4c78a8"
	colorAlt2    = "#72b7b2"
	colorTarget  = "#2a7d2a"
)

// Horizontal bar chart geometry.
const (
	hbWidth     = 960
	hbLabelW    = 260
	hbValueW    = 150
	hbBarH      = 20
	hbBarGap    = 6
	hbTitleH    = 30
	hbPanelGap  = 20
	hbHeaderH   = 44
	hbFooterPad = 10
)

// writeBars draws panels of horizontal bars, each panel scaled to its own
// largest value (or target).
func writeBars(w io.Writer, title, subtitle string, panels []panel) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	height := hbHeaderH + hbFooterPad
	for _, pn := range panels {
		height += hbTitleH + len(pn.bars)*(hbBarH+hbBarGap) + hbPanelGap
	}
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`+"\n",
		hbWidth, height, hbWidth, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="16" y="22" font-size="16" font-weight="600" fill="#222">%s</text>`+"\n", esc(title))
	p(`<text x="16" y="38" font-size="11" fill="#555">%s</text>`+"\n", esc(subtitle))
	plotX := float64(hbLabelW)
	plotW := float64(hbWidth - hbLabelW - hbValueW)
	y := float64(hbHeaderH)
	for _, pn := range panels {
		p(`<text x="16" y="%.1f" font-size="14" font-weight="600" fill="#222">%s</text>`+"\n", y+20, esc(pn.title))
		top := y + hbTitleH
		hi := pn.target
		for _, b := range pn.bars {
			hi = math.Max(hi, b.value)
		}
		if hi <= 0 {
			hi = 1
		}
		hi *= 1.05
		x := func(v float64) float64 { return plotX + v/hi*plotW }
		bottom := top + float64(len(pn.bars)*(hbBarH+hbBarGap)) - hbBarGap
		p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#888" stroke-width="1"/>`+"\n", plotX, plotX, top-2, bottom+2)
		for i, b := range pn.bars {
			by := top + float64(i*(hbBarH+hbBarGap))
			p(`<text x="%.1f" y="%.1f" font-size="12" fill="#222" text-anchor="end">%s</text>`+"\n", plotX-8, by+hbBarH*0.7, esc(b.label))
			if b.value > 0 {
				p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"><title>%s: %s</title></rect>`+"\n",
					plotX, by, x(b.value)-plotX, hbBarH, b.color, esc(b.label), esc(b.text))
			}
			p(`<text x="%.1f" y="%.1f" font-size="12" fill="#222">%s</text>`+"\n", x(b.value)+6, by+hbBarH*0.7, esc(b.text))
		}
		if pn.target > 0 {
			tx := x(pn.target)
			p(`<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2" stroke-dasharray="5,3"/>`+"\n", tx, tx, top-6, bottom+4, colorTarget)
			p(`<text x="%.1f" y="%.1f" font-size="11" fill="%s" text-anchor="middle">%s</text>`+"\n", tx, top-8, colorTarget, esc(pn.targetLabel))
		}
		y = bottom + hbBarGap + hbPanelGap
	}
	p("</svg>\n")
}

// writePlots writes every plot of plotFiles into dir.
func writePlots(dir string, s *system) error {
	subtitle := fmt.Sprintf("%s, %d cores, %s; %s, %s", orUnknown(s.machine.CPUModel), s.machine.Cores, s.machine.GoVersion, s.machine.Command, s.machine.Date)
	if noisy, _ := s.noisy(); noisy {
		subtitle += " — NOISY (quick mode or a busy machine)"
	}
	plots := map[string]func(io.Writer){
		"server.svg": func(w io.Writer) {
			writeBars(w, "Auth server: requests/s by workload and store (keycard bench, higher is better)", subtitle, s.serverPanels())
		},
		"gateway.svg": func(w io.Writer) {
			writeBars(w, "Gateway against a bare httputil.ReverseProxy, ES256 (higher rate, lower latency is better)", subtitle, s.gatewayPanels())
		},
		"revocation.svg": func(w io.Writer) {
			writeBars(w, "Revocation propagation: logout to refusal at the gateway (ms, lower is better)", subtitle, s.revocationPanels())
		},
		"growth.svg": func(w io.Writer) {
			writeBars(w, "How cost grows", subtitle, s.growthPanels())
		},
	}
	for _, pf := range plotFiles {
		var b bytes.Buffer
		plots[pf.file](&b)
		if err := os.WriteFile(filepath.Join(dir, pf.file), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

var storeColors = map[string]string{"sqlite": colorKeycard, "pg1": colorAlt, "pg2": colorAlt2}

var workloadTargets = map[string]struct {
	v     float64
	label string
}{
	"refresh":            {5000, "target 5,000/s (SQLite; PostgreSQL 3,000/s)"},
	"client-credentials": {5000, "target 5,000/s"},
	"introspect":         {10000, "target 10,000/s"},
}

func (s *system) serverPanels() []panel {
	var ps []panel
	for _, wl := range serverWorkloads {
		pn := panel{title: wl, target: workloadTargets[wl].v, targetLabel: workloadTargets[wl].label}
		for _, st := range serverStores {
			if r, _ := s.serverRun(st.prefix, wl); r != nil {
				pn.bars = append(pn.bars, bar{st.name, r.Throughput, formatRate(r.Throughput) + "/s, p99 " + us(r.Latency.P99), storeColors[st.prefix]})
			}
		}
		if len(pn.bars) > 0 {
			ps = append(ps, pn)
		}
	}
	return ps
}

func (s *system) gatewayPanels() []panel {
	var ps []panel
	bare := s.get("gateway", "BenchmarkGatewayVsReverseProxy/bare", "ns/op")
	if bare.ok {
		pn := panel{title: "go test BenchmarkGatewayVsReverseProxy: requests/s", target: 0.9 * 1e9 / bare.median, targetLabel: "0.9× bare"}
		for _, v := range []struct{ name, label, color string }{{"bare", "bare reverse proxy", colorBare}, {"gateway/cached", "gateway, cached", colorKeycard}, {"gateway/cold", "gateway, cold (ES256 every request)", colorAlt}} {
			name := "BenchmarkGatewayVsReverseProxy/" + v.name
			if ns := s.get("gateway", name, "ns/op"); ns.ok {
				rate := 1e9 / ns.median
				rel := s.pairedRatio("gateway", "BenchmarkGatewayVsReverseProxy/bare", name, "ns/op")
				pn.bars = append(pn.bars, bar{v.label, rate, fmt.Sprintf("%s/s (%.2f× bare, pass by pass)", formatRate(rate), rel.median), v.color})
			}
		}
		ps = append(ps, pn)
	}
	bareRuns, gwRuns := s.rounds("gateway-bare"), s.rounds("gateway-keycard")
	if len(bareRuns) > 0 && len(gwRuns) > 0 {
		b, g := medianRate(bareRuns), medianRate(gwRuns)
		_, rel := s.benchGatewayRatios()
		ps = append(ps, panel{title: "keycard bench gateway: requests/s (median of rounds)", target: 0.9 * b.median, targetLabel: "0.9× bare",
			bars: []bar{
				{"bare reverse proxy", b.median, formatRate(b.median) + "/s", colorBare},
				{"keycard gateway", g.median, fmt.Sprintf("%s/s (%.2f× bare, round by round)", formatRate(g.median), rel.median), colorKeycard},
			}})
		lat := panel{title: "keycard bench gateway: latency (first round)"}
		for _, q := range []struct {
			name string
			get  func(latency) float64
		}{{"p50", func(l latency) float64 { return l.P50 }}, {"p99", func(l latency) float64 { return l.P99 }}} {
			lat.bars = append(lat.bars,
				bar{"bare, " + q.name, q.get(bareRuns[0].Latency), us(q.get(bareRuns[0].Latency)), colorBare},
				bar{"gateway, " + q.name, q.get(gwRuns[0].Latency), us(q.get(gwRuns[0].Latency)), colorKeycard})
		}
		ps = append(ps, lat)
	}
	return ps
}

func (s *system) revocationPanels() []panel {
	r := s.runs["revocation"]
	if r == nil {
		return nil
	}
	l := r.Latency
	pn := panel{title: fmt.Sprintf("%s logouts", group(r.Requests)), target: 100, targetLabel: "p99 target 100 ms"}
	for _, q := range []struct {
		name string
		v    float64
	}{{"min", l.Min}, {"p50", l.P50}, {"p90", l.P90}, {"p99", l.P99}, {"p99.9", l.P999}, {"max", l.Max}} {
		color := colorAlt
		if q.name == "p99" {
			color = colorKeycard
		}
		pn.bars = append(pn.bars, bar{q.name, q.v / 1000, us(q.v), color})
	}
	return []panel{pn}
}

func (s *system) growthPanels() []panel {
	var ps []panel
	if sizes := s.sessionSizes(); len(sizes) > 0 {
		base := medianRate(s.sessionRuns(sizes[0]))
		pn := panel{title: "refresh/s by stored sessions (SQLite, keycard bench, median of rounds)", target: 0.8 * base.median,
			targetLabel: fmt.Sprintf("0.8× the rate at %s", countLabel(sizes[0]))}
		for _, n := range sizes {
			st := medianRate(s.sessionRuns(n))
			rel := s.sizeRatio(n, sizes[0])
			pn.bars = append(pn.bars, bar{countLabel(n) + " sessions", st.median, fmt.Sprintf("%s/s (%.2f×, round by round)", formatRate(st.median), rel.median), colorKeycard})
		}
		ps = append(ps, pn)
	}
	if sizes := s.revocationSizes(); len(sizes) > 0 {
		mem := panel{title: "revocation set: heap per entry (bytes)"}
		check := panel{title: "revocation check (ns, one core; miss looks at everything)"}
		for _, n := range sizes {
			m := s.get("verifier", fmt.Sprintf("BenchmarkRevocationSetMemory/entries=%d", n), "B/entry")
			mem.bars = append(mem.bars, bar{countLabel(n) + " entries", m.median,
				fmt.Sprintf("%s B/entry, %.1f MiB", formatCount(m), m.median*float64(n)/(1<<20)), colorKeycard})
			for _, kind := range []string{"hit", "miss"} {
				c := s.get("verifier", fmt.Sprintf("BenchmarkRevokedCheck/entries=%d/%s", n, kind), "ns/op")
				color := colorKeycard
				if kind == "miss" {
					color = colorAlt
				}
				check.bars = append(check.bars, bar{countLabel(n) + " entries, " + kind, c.median, formatNs(c.median) + " ns", color})
			}
		}
		ps = append(ps, mem, check)
	}
	return ps
}
