package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 960
	marginLeft  = 76
	marginRight = 16
	legendH     = 56
	panelTitleH = 28
	plotH       = 240
	axisLabelH  = 30
	panelGap    = 18
)

// libColor gives Keycard a strong colour, the floor a neutral one and the
// peers a muted palette in order of appearance.
func libColor(lib string, peerIndex int) string {
	switch lib {
	case subjectLib:
		return "#d1495b"
	case floorLib:
		return "#5b5b5b"
	}
	peers := []string{"#4c78a8", "#72b7b2", "#b279a2", "#e1a94f", "#8c6d31", "#9ecae9"}
	return peers[peerIndex%len(peers)]
}

// writeSVG draws one panel per operation: bars of median ns/op, grouped by
// algorithm, one bar per library, on a log10 axis shared by all panels.
func writeSVG(w io.Writer, r *results) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }

	// All libraries across operations, in order, for one legend.
	var libs []string
	seen := map[string]bool{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, op := range r.ops {
		for _, lib := range r.libs[op] {
			if !seen[lib] {
				seen[lib] = true
				libs = append(libs, lib)
			}
			for _, alg := range r.algs[op] {
				if s := r.get(key{op, lib, alg}, "ns/op"); s.ok && s.median > 0 {
					lo, hi = math.Min(lo, s.median), math.Max(hi, s.median)
				}
			}
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	// Whole decades, with room above the tallest bar for its label.
	decLo := math.Floor(math.Log10(lo))
	decHi := math.Ceil(math.Log10(hi * 4))
	colors := map[string]string{}
	peer := 0
	for _, lib := range libs {
		colors[lib] = libColor(lib, peer)
		if lib != subjectLib && lib != floorLib {
			peer++
		}
	}

	panelH := panelTitleH + plotH + axisLabelH
	height := legendH + len(r.ops)*(panelH+panelGap)
	plotW := float64(chartWidth - marginLeft - marginRight)

	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`+"\n",
		chartWidth, height, chartWidth, height)
	p(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	p(`<text x="%d" y="22" font-size="16" font-weight="600" fill="#222">Keycard vs peer JWT libraries: time per operation (ns/op, log scale, lower is better)</text>`+"\n", marginLeft)

	// Legend.
	lx := float64(marginLeft)
	for _, lib := range libs {
		p(`<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`+"\n", lx, colors[lib])
		weight := "400"
		if lib == subjectLib {
			weight = "700"
		}
		p(`<text x="%.1f" y="44.5" font-size="12" font-weight="%s" fill="#222">%s</text>`+"\n", lx+16, weight, esc(lib))
		lx += 16 + float64(7*len(lib)) + 22
	}

	for pi, op := range r.ops {
		top := float64(legendH + pi*(panelH+panelGap))
		plotTop := top + panelTitleH
		plotBottom := plotTop + plotH
		y := func(v float64) float64 {
			f := (math.Log10(v) - decLo) / (decHi - decLo)
			return plotBottom - f*plotH
		}
		p(`<text x="%d" y="%.1f" font-size="14" font-weight="600" fill="#222">%s</text>`+"\n", marginLeft, top+18, esc(op))

		// Decade grid lines and labels, with faint 2× and 5× lines.
		for d := decLo; d <= decHi; d++ {
			v := math.Pow(10, d)
			p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d0d0d0" stroke-width="1"/>`+"\n",
				marginLeft, chartWidth-marginRight, y(v), y(v))
			p(`<text x="%d" y="%.1f" font-size="11" fill="#555" text-anchor="end">%s</text>`+"\n",
				marginLeft-6, y(v)+4, esc(durationLabel(v)))
			if d < decHi {
				for _, m := range []float64{2, 5} {
					p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#efefef" stroke-width="1"/>`+"\n",
						marginLeft, chartWidth-marginRight, y(m*v), y(m*v))
				}
			}
		}

		algs := r.algs[op]
		opLibs := r.libs[op]
		groupW := plotW / float64(max(len(algs), 1))
		barW := groupW * 0.84 / float64(max(len(opLibs), 1))
		for gi, alg := range algs {
			gx := float64(marginLeft) + float64(gi)*groupW + groupW*0.08
			for bi, lib := range opLibs {
				s := r.get(key{op, lib, alg}, "ns/op")
				if !s.ok || s.median <= 0 {
					continue
				}
				x := gx + float64(bi)*barW
				by := y(s.median)
				p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %s: %s ns/op</title></rect>`+"\n",
					x+1, by, barW-2, plotBottom-by, colors[lib], esc(op), esc(lib), esc(alg), formatNs(s.median))
				// Value label, rotated, just above the bar.
				cx, cy := x+barW/2+3.5, by-4
				p(`<text x="%.1f" y="%.1f" font-size="10" fill="#333" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
					cx, cy, cx, cy, esc(durationLabel(s.median)))
			}
			p(`<text x="%.1f" y="%.1f" font-size="13" fill="#222" text-anchor="middle">%s</text>`+"\n",
				float64(marginLeft)+(float64(gi)+0.5)*groupW, plotBottom+20, esc(alg))
		}
		p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#888" stroke-width="1"/>`+"\n",
			marginLeft, chartWidth-marginRight, plotBottom, plotBottom)
		p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#888" stroke-width="1"/>`+"\n",
			marginLeft, marginLeft, plotTop, plotBottom)
	}
	p("</svg>\n")
}

// durationLabel prints a time in nanoseconds with a unit: "850 ns",
// "42.5 µs", "1.13 ms".
func durationLabel(ns float64) string {
	unit, v := "ns", ns
	switch {
	case ns >= 1e9:
		unit, v = "s", ns/1e9
	case ns >= 1e6:
		unit, v = "ms", ns/1e6
	case ns >= 1e3:
		unit, v = "µs", ns/1e3
	}
	prec := 0
	switch {
	case v < 10:
		prec = 2
	case v < 100:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	// Decade labels read better without trailing zeros: "1 µs", not "1.00 µs".
	if v == math.Trunc(v) {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	return s + " " + unit
}

func esc(s string) string { return html.EscapeString(s) }
