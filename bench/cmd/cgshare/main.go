// Command cgshare says where the instructions of one benchmark operation
// go, from two callgrind runs of it that differ only in their iteration
// count (bench/instructions.sh makes them): each function's own
// instructions (not those of what it calls) in the larger run less those
// in the smaller, over the difference in iterations, summed by the
// function's package. The runtime is split into the garbage collector,
// memory clearing and copying, allocation and the rest (scheduler,
// timers, system calls), since a login and a bare argon2id hash differ in
// those. It reads the files through callgrind_annotate.
//
// Usage:
//
//	cgshare -n ITERATIONS [-top N] SMALLER.out LARGER.out
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	n := flag.Int("n", 0, "iterations of the larger run less those of the smaller")
	top := flag.Int("top", 12, "functions to list outside the largest package")
	flag.Parse()
	if *n <= 0 || flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: cgshare -n ITERATIONS [-top N] SMALLER.out LARGER.out")
		os.Exit(2)
	}
	small, err := selfCosts(flag.Arg(0))
	if err != nil {
		fatal(err)
	}
	large, err := selfCosts(flag.Arg(1))
	if err != nil {
		fatal(err)
	}
	report(os.Stdout, perOp(small, large, *n), *top)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "cgshare:", err)
	os.Exit(1)
}

// selfCosts returns each function's own instruction count in a callgrind
// file.
func selfCosts(path string) (map[string]int64, error) {
	out, err := exec.Command("callgrind_annotate", "--threshold=100", "--tree=none",
		"--inclusive=no", "--auto=no", path).Output()
	if err != nil {
		return nil, fmt.Errorf("callgrind_annotate %s: %w", path, err)
	}
	return parseAnnotate(bytes.NewReader(out))
}

// line is one row of callgrind_annotate's function list:
// "  1,234 ( 0.12%)  /path/file.go:pkg.Func'2 [/path/binary]".
var line = regexp.MustCompile(`^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*?)(\s+\[.*\])?$`)

// recursion is callgrind's mark of a recursion level, "'2".
var recursion = regexp.MustCompile(`'\d+$`)

func parseAnnotate(r io.Reader) (map[string]int64, error) {
	costs := map[string]int64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil || strings.Contains(m[2], "PROGRAM TOTALS") {
			continue
		}
		name := m[2]
		if i := strings.LastIndexByte(name, ':'); i >= 0 {
			name = name[i+1:] // drop the file
		}
		name = recursion.ReplaceAllString(name, "")
		v, err := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		if err != nil {
			return nil, err
		}
		costs[name] += v
	}
	return costs, sc.Err()
}

// perOp is (large − small) / n for every function of either run.
func perOp(small, large map[string]int64, n int) map[string]float64 {
	d := map[string]float64{}
	for k, v := range large {
		d[k] = float64(v-small[k]) / float64(n)
	}
	for k, v := range small {
		if _, ok := large[k]; !ok {
			d[k] = float64(-v) / float64(n)
		}
	}
	return d
}

var (
	gc    = regexp.MustCompile(`^runtime\.(gc|scan|greyobject|findObject|tryDeferToSpanScan|spanSet|typePointers|extractHeapBits|wbBuf|bulkBarrier|\(\*sweepLocked\)|sweepone|\(\*spanInlineMarkBits\)|markBits|\(\*gcWork\)|\(\*mspan\)\.(mark|sweep))`)
	mem   = regexp.MustCompile(`^runtime\.(memclr|memmove)`)
	alloc = regexp.MustCompile(`^runtime\.(malloc|\(\*mcache\)|\(\*mcentral\)|\(\*mheap\)|newobject|makeslice|growslice|nextFreeFast|\(\*mspan\))`)
)

// group names the part of the program a function belongs to: its package,
// or for the runtime, which of its jobs.
func group(fn string) string {
	switch {
	case gc.MatchString(fn):
		return "runtime: garbage collector"
	case mem.MatchString(fn):
		return "runtime: memclr, memmove"
	case alloc.MatchString(fn):
		return "runtime: allocation"
	case strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/runtime"):
		return "runtime: scheduler, timers, other"
	}
	// Package path: up to the first '.' after the last '/'.
	slash := strings.LastIndexByte(fn, '/')
	if dot := strings.IndexByte(fn[slash+1:], '.'); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return "(assembly or C: " + fn + ")"
}

func report(w io.Writer, d map[string]float64, top int) {
	var total float64
	groups := map[string]float64{}
	for fn, v := range d {
		total += v
		groups[group(fn)] += v
	}
	type kv struct {
		k string
		v float64
	}
	sorted := func(m map[string]float64) []kv {
		var s []kv
		for k, v := range m {
			s = append(s, kv{k, v})
		}
		sort.Slice(s, func(i, j int) bool { return s[i].v > s[j].v })
		return s
	}
	fmt.Fprintf(w, "%15.0f  100.00%%  instructions per operation\n", total)
	gs := sorted(groups)
	for _, g := range gs {
		if g.v >= 0.0001*total || g.v <= -0.0001*total {
			fmt.Fprintf(w, "%15.0f  %6.2f%%  %s\n", g.v, 100*g.v/total, g.k)
		}
	}
	if top > 0 && len(gs) > 0 {
		fmt.Fprintf(w, "functions outside %s:\n", gs[0].k)
		i := 0
		for _, f := range sorted(d) {
			if group(f.k) == gs[0].k {
				continue
			}
			fmt.Fprintf(w, "%15.0f  %6.2f%%  %s\n", f.v, 100*f.v/total, f.k)
			if i++; i == top {
				break
			}
		}
	}
}
