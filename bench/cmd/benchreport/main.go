// Command benchreport turns raw `go test -bench` output from the bench module
// into the tables and chart of BENCHMARKS.md.
//
// It reads benchmarks named Benchmark<Op>/<lib>/<alg> (any -count; repeated
// runs of one benchmark are summarised by their median, as benchstat does),
// and writes:
//
//   - a markdown fragment with, per operation, a table of ns/op, B/op and
//     allocs/op for every library and algorithm, and a table that sets
//     Keycard against the fastest peer, against the standard-library floor
//     and against the targets the product owner set;
//   - an SVG bar chart, one panel per operation, grouped by algorithm, on a
//     logarithmic time axis.
//
// If the markdown file already exists, only the text between the lines
// <!-- benchreport:begin --> and <!-- benchreport:end --> is replaced, so the
// hand-written text around it survives a re-run; otherwise the file is
// created with just the fragment.
//
// Usage:
//
//	benchreport [-md FILE] [-svg FILE] [-svg-link PATH] [results.txt]
//
// With no results file, benchreport reads standard input.
//
// With -system DIR it reports a whole bench/all.sh run instead: DIR holds
// machine.json (where and how the run was made), `keycard bench --json`
// results (*.json, schema keycard-bench/1), bench/cmd/wrkbench results
// (wrk-*.json, schema keycard-wrk/1) and raw go test -bench output
// (*.txt) under the names bench/all.sh gives them. It writes the region
// between <!-- benchreport:system:begin --> and <!-- benchreport:system:end -->
// — the targets with a verdict each, and tables of every figure with the
// machine and the command it came from — and, with -plots DIR, the SVG
// plots that region links to (under -plots-link).
//
//	benchreport -system DIR [-md FILE] [-plots DIR] [-plots-link PATH]
//
// With -peers DIR it reports a bench/peers/run.sh run: DIR holds
// machine.json and rR-WORKLOAD-SYSTEM.json wrk results (keycard-wrk/1).
// It writes the region between <!-- benchreport:peers:begin --> and
// <!-- benchreport:peers:end -->: per workload, Keycard, Ory Hydra and Ory
// Oathkeeper's rates and CPU per request, with their ratios.
//
//	benchreport -peers DIR [-md FILE]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mdPath := fs.String("md", "", "markdown file to write or update (default: standard output)")
	svgPath := fs.String("svg", "", "SVG chart to write (default: none)")
	svgLink := fs.String("svg-link", "", "path of the chart as linked from the markdown (default: the -svg path)")
	systemDir := fs.String("system", "", "report the bench/all.sh results in this directory instead of a token-core results file")
	plotsDir := fs.String("plots", "", "with -system: directory to write the SVG plots to (default: none)")
	plotsLink := fs.String("plots-link", "", "with -system: path of the plots directory as linked from the markdown (default: the -plots path)")
	peersDir := fs.String("peers", "", "report the bench/peers/run.sh results in this directory instead")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *peersDir != "" {
		if fs.NArg() > 0 || *systemDir != "" {
			return errors.New("-peers takes no results file and no -system")
		}
		return runPeers(*peersDir, *mdPath)
	}
	if *systemDir != "" {
		if fs.NArg() > 0 {
			return errors.New("-system takes no results file")
		}
		return runSystem(*systemDir, *mdPath, *plotsDir, *plotsLink)
	}
	in := stdin
	source := "standard input"
	if fs.NArg() > 1 {
		return errors.New("at most one results file")
	}
	if fs.NArg() == 1 {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in, source = f, fs.Arg(0)
	}

	res, err := parse(in)
	if err != nil {
		return err
	}
	if len(res.ops) == 0 {
		return fmt.Errorf("no Benchmark<Op>/<lib>/<alg> results in %s", source)
	}
	for _, w := range res.warnings {
		fmt.Fprintln(stderr, "benchreport: warning:", w)
	}

	link := *svgLink
	if link == "" {
		link = *svgPath
	}
	var md bytes.Buffer
	writeMarkdown(&md, res, defaultTargets(), link)

	if *svgPath != "" {
		var svg bytes.Buffer
		writeSVG(&svg, res)
		if err := os.WriteFile(*svgPath, svg.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return writeRegion(*mdPath, md.String(), beginMarker, endMarker)
}

// runSystem reports the bench/all.sh results in dir.
func runSystem(dir, mdPath, plotsDir, plotsLink string) error {
	s, err := loadSystem(dir)
	if err != nil {
		return err
	}
	if plotsLink == "" {
		plotsLink = plotsDir
	}
	if plotsDir != "" {
		if err := os.MkdirAll(plotsDir, 0o755); err != nil {
			return err
		}
		if err := writePlots(plotsDir, s); err != nil {
			return err
		}
	}
	var md bytes.Buffer
	writeSystem(&md, s, plotsLink)
	return writeRegion(mdPath, md.String(), systemBegin, systemEnd)
}

// writeRegion replaces the region between begin and end in the file at
// path with frag, or prints frag when path is empty.
func writeRegion(path, frag, begin, end string) error {
	if path == "" {
		_, err := os.Stdout.WriteString(frag)
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := splice(string(old), frag, begin, end)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

const (
	beginMarker = "<!-- benchreport:begin -->"
	endMarker   = "<!-- benchreport:end -->"
)

// splice replaces the region of doc from begin to end with frag (which
// carries its own markers). An empty doc becomes frag; a doc without the
// markers is an error, so that benchreport never overwrites hand-written
// text.
func splice(doc, frag, begin, end string) (string, error) {
	if strings.TrimSpace(doc) == "" {
		return frag, nil
	}
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", fmt.Errorf("no %s … %s region to replace", begin, end)
	}
	j += len(end)
	if j < len(doc) && doc[j] == '\n' {
		j++
	}
	return doc[:i] + frag + doc[j:], nil
}
