package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// results is everything read from one benchmark output.
type results struct {
	config   []configLine                 // "key: value" lines, first occurrence of each key
	ops      []string                     // operations in order of first appearance
	libs     map[string][]string          // op → libraries in order of first appearance
	algs     map[string][]string          // op → algorithms in order of first appearance
	samples  map[key]map[string][]float64 // benchmark → unit → one value per run
	procs    int                          // GOMAXPROCS suffix of the benchmark names
	warnings []string
}

type configLine struct{ key, value string }

// key names one benchmark: Benchmark<op>/<lib>/<alg>.
type key struct{ op, lib, alg string }

var procsSuffix = regexp.MustCompile(`-(\d+)$`)

// parse reads the Go benchmark format
// (https://go.googlesource.com/proposal/+/master/design/14313-benchmark-format.md).
func parse(r io.Reader) (*results, error) {
	res := &results{
		libs:    map[string][]string{},
		algs:    map[string][]string{},
		samples: map[key]map[string][]float64{},
	}
	seenConfig := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if k, v, ok := configPair(text); ok {
			if !seenConfig[k] {
				seenConfig[k] = true
				res.config = append(res.config, configLine{k, v})
			}
			continue
		}
		if !strings.HasPrefix(text, "Benchmark") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 4 || len(fields)%2 != 0 {
			continue // "BenchmarkX" alone, or a line cut by other output
		}
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			continue
		}
		name := fields[0]
		if m := procsSuffix.FindStringSubmatch(name); m != nil {
			res.procs, _ = strconv.Atoi(m[1])
			name = name[:len(name)-len(m[0])]
		}
		parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
		if len(parts) != 3 {
			res.warnings = append(res.warnings, fmt.Sprintf("line %d: %s is not Benchmark<Op>/<lib>/<alg>; skipped", line, fields[0]))
			continue
		}
		k := key{parts[0], parts[1], parts[2]}
		if res.samples[k] == nil {
			res.samples[k] = map[string][]float64{}
			if !slices.Contains(res.ops, k.op) {
				res.ops = append(res.ops, k.op)
			}
			if !slices.Contains(res.libs[k.op], k.lib) {
				res.libs[k.op] = append(res.libs[k.op], k.lib)
			}
			if !slices.Contains(res.algs[k.op], k.alg) {
				res.algs[k.op] = append(res.algs[k.op], k.alg)
			}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %v", line, fields[i], err)
			}
			unit := fields[i+1]
			res.samples[k][unit] = append(res.samples[k][unit], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// configPair recognises a configuration line: a lower-case key without
// spaces, a colon, a space and a value ("cpu: Intel …", "goos: linux").
func configPair(line string) (k, v string, ok bool) {
	k, v, ok = strings.Cut(line, ": ")
	if !ok || k == "" || strings.ContainsAny(k, " \t") || k[0] < 'a' || k[0] > 'z' {
		return "", "", false
	}
	return k, strings.TrimSpace(v), true
}

func (r *results) configValue(k string) string {
	for _, c := range r.config {
		if c.key == k {
			return c.value
		}
	}
	return ""
}

// stat is the summary of one benchmark's runs in one unit.
type stat struct {
	median float64
	spread float64 // largest deviation from the median, as a fraction of it, outliers excluded
	n      int
	ok     bool
}

// get summarises one benchmark in one unit.
func (r *results) get(k key, unit string) stat {
	return summarize(r.samples[k][unit])
}

// summarize returns the median of vs and, like benchstat v1's "±", the
// largest relative deviation from the median among the values that are not
// outliers (outside 1.5 interquartile ranges of the quartiles).
func summarize(vs []float64) stat {
	if len(vs) == 0 {
		return stat{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := quantile(s, 0.5)
	q1, q3 := quantile(s, 0.25), quantile(s, 0.75)
	lo, hi := q1-1.5*(q3-q1), q3+1.5*(q3-q1)
	var dev float64
	for _, v := range s {
		if v < lo || v > hi || med == 0 {
			continue
		}
		dev = math.Max(dev, math.Abs(v-med)/med)
	}
	return stat{median: med, spread: dev, n: len(s), ok: true}
}

// quantile interpolates linearly in sorted s.
func quantile(s []float64, q float64) float64 {
	if len(s) == 1 {
		return s[0]
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(i)
	return s[i] + frac*(s[i+1]-s[i])
}
