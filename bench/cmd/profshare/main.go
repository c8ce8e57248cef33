// Command profshare says where a Keycard server's CPU time goes, from a
// CPU profile taken under load (bench/profile.sh): it reads the profile's
// samples (through `go tool pprof -raw`), puts each into the first of a
// fixed list of categories that one of its stack's functions matches, and
// prints a markdown table of each category's share and, given the
// server's CPU time per request measured in the same run (-us), its
// microseconds per request.
//
// The categories, in the order they are tried (so a sample of the commit
// is not also "SQLite", and allocation counts where it was made):
//
//	the commit                 database/sql (*Tx).Commit and below (SQLite: WAL append, checkpoints)
//	SQLite statements          modernc.org/sqlite, database/sql
//	ES256 signature            crypto/ecdsa signing
//	ES256 verification         crypto/ecdsa verification
//	token encoding, parsing    keycard/jwt, keycard/jose (claims JSON, base64)
//	JSON encoding              encoding/json (the answer's body)
//	HTTP request, form parsing net/http reading, net/textproto, net/url, ParseForm
//	logging                    log/slog
//	metrics                    Prometheus client
//	hashing, randomness        crypto/sha256, crypto/rand, crypto/hmac, crypto/subtle
//	HTTP answer, socket I/O    writing the response, internal/poll, syscalls
//	garbage collection         the collector's own goroutines
//	scheduler, netpoll         runtime scheduling and waiting
//	allocation                 runtime.mallocgc outside every category above
//	other Keycard code         github.com/keycard-auth/keycard/…
//	other                      the rest
//
// Usage:
//
//	profshare [-us MICROSECONDS] PROFILE
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// category is a bucket of samples: those whose stack has a function
// matching re, and none of an earlier category.
type category struct {
	name string
	re   *regexp.Regexp
}

var categories = []category{
	{"the commit", regexp.MustCompile(`^database/sql\.\(\*Tx\)\.Commit$`)},
	{"SQLite statements", regexp.MustCompile(`^(modernc\.org/(sqlite|libc)|database/sql)\.`)},
	{"ES256 signature", regexp.MustCompile(`^crypto/(ecdsa|internal/fips140/ecdsa)\.(Sign|sign)`)},
	{"ES256 verification", regexp.MustCompile(`^crypto/(ecdsa|internal/fips140/ecdsa)\.(Verify|verify)`)},
	{"token encoding and parsing (claims JSON, base64)", regexp.MustCompile(`^github\.com/keycard-auth/keycard/(jwt|jose)\.`)},
	{"JSON encoding and decoding", regexp.MustCompile(`^encoding/json\.`)},
	{"HTTP request and form parsing", regexp.MustCompile(`^(net/http\.(\(\*conn\)\.readRequest|readRequest|\(\*Request\)\.(ParseForm|ParseMultipartForm|PostFormValue|FormValue)|parsePostForm|\(\*connReader\))|net/textproto\.|net/url\.|mime\.)`)},
	{"logging", regexp.MustCompile(`^log/slog\.`)},
	{"metrics", regexp.MustCompile(`^github\.com/prometheus/`)},
	{"hashing and randomness", regexp.MustCompile(`^crypto/(sha256|rand|hmac|subtle|internal/fips140/(sha256|hmac|drbg)|internal/sysrand)\.`)},
	{"HTTP answer and socket I/O", regexp.MustCompile(`^(net/http\.(\(\*response\)|\(\*chunkWriter\)|checkConnErrorWriter|\(\*conn\)\.(finalFlush|close))|bufio\.\(\*Writer\)|internal/poll\.|syscall\.|net\.\(\*conn\))`)},
	{"garbage collection", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|gcDrain|bgsweep|bgscavenge|gcAssistAlloc|markroot|scanobject|gcStart|sweepone|madvise|sysUnused)`)},
	{"scheduler and netpoll", regexp.MustCompile(`^runtime\.(schedule|findRunnable|netpoll|park_m|mcall|futex|notesleep|notetsleep|stopm|goexit0|gopark|wakep|startm|sysmon)`)},
	{"allocation", regexp.MustCompile(`^runtime\.(mallocgc|newobject|makeslice|growslice|makemap|mapassign)`)},
	{"other Keycard code", regexp.MustCompile(`^github\.com/keycard-auth/keycard`)},
}

const otherCategory = "other"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "profshare:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("profshare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	us := fs.Float64("us", 0, "the server's CPU time per request in the profiled run, in `microseconds`, to turn shares into µs per request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: profshare [-us MICROSECONDS] PROFILE")
	}
	raw, err := exec.Command("go", "tool", "pprof", "-raw", fs.Arg(0)).Output()
	if err != nil {
		return fmt.Errorf("go tool pprof -raw %s: %w", fs.Arg(0), err)
	}
	p, err := parseRaw(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	writeTable(stdout, p.shares(), p.total, *us)
	return nil
}

// rawProfile is what profshare needs of `go tool pprof -raw`: each
// sample's value (CPU nanoseconds) and stack of location ids, and each
// location's functions (several when calls were inlined).
type rawProfile struct {
	samples []rawSample
	funcs   map[int][]string
	total   int64
}

type rawSample struct {
	value int64
	locs  []int
}

// parseRaw reads the text of `go tool pprof -raw` of a CPU profile:
//
//	samples/count cpu/nanoseconds
//	          3   30000000: 1 2 3
//	Locations
//	     1: 0x4990e3 M=1 runtime.futex /path/file.s:570:0 s=561
//	             inlined.caller /path/file.go:12:0 s=10
func parseRaw(r io.Reader) (*rawProfile, error) {
	p := &rawProfile{funcs: map[int][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	section, lastLoc := "", 0
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Samples:"):
			section = "samples"
			continue
		case strings.HasPrefix(line, "Locations"):
			section = "locations"
			continue
		case strings.HasPrefix(line, "Mappings"):
			section = ""
			continue
		case trimmed == "" || section == "":
			continue
		}
		switch section {
		case "samples":
			vals, stack, ok := strings.Cut(trimmed, ":")
			if !ok {
				continue // the header line
			}
			f := strings.Fields(vals)
			if len(f) < 2 {
				return nil, fmt.Errorf("sample %q: want a count and a value", trimmed)
			}
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("sample %q: %v", trimmed, err)
			}
			s := rawSample{value: v}
			for _, id := range strings.Fields(stack) {
				n, err := strconv.Atoi(id)
				if err != nil {
					return nil, fmt.Errorf("sample %q: location %q", trimmed, id)
				}
				s.locs = append(s.locs, n)
			}
			p.samples = append(p.samples, s)
			p.total += v
		case "locations":
			f := strings.Fields(trimmed)
			if id, ok := strings.CutSuffix(f[0], ":"); ok {
				n, err := strconv.Atoi(id)
				if err != nil {
					return nil, fmt.Errorf("location %q", trimmed)
				}
				lastLoc = n
				if len(f) >= 4 {
					p.funcs[n] = append(p.funcs[n], f[3])
				}
			} else if lastLoc != 0 { // an inlined caller of the location above
				p.funcs[lastLoc] = append(p.funcs[lastLoc], f[0])
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(p.samples) == 0 {
		return nil, errors.New("no samples in the profile")
	}
	return p, nil
}

// shares returns the CPU nanoseconds of each category, "other" included.
func (p *rawProfile) shares() map[string]int64 {
	out := map[string]int64{}
	for _, s := range p.samples {
		out[p.classify(s)] += s.value
	}
	return out
}

func (p *rawProfile) classify(s rawSample) string {
	for _, c := range categories {
		for _, loc := range s.locs {
			for _, fn := range p.funcs[loc] {
				if c.re.MatchString(fn) {
					return c.name
				}
			}
		}
	}
	return otherCategory
}

// writeTable prints the categories in their order, with their share of
// total and, when us > 0, their µs per request.
func writeTable(w io.Writer, shares map[string]int64, total int64, us float64) {
	if us > 0 {
		fmt.Fprintf(w, "| where | share | µs per request |\n|---|--:|--:|\n")
	} else {
		fmt.Fprintf(w, "| where | share |\n|---|--:|\n")
	}
	names := make([]string, 0, len(categories)+1)
	for _, c := range categories {
		names = append(names, c.name)
	}
	names = append(names, otherCategory)
	for _, n := range names {
		v, ok := shares[n]
		if !ok {
			continue
		}
		share := float64(v) / float64(total)
		if us > 0 {
			fmt.Fprintf(w, "| %s | %.1f%% | %.0f |\n", n, share*100, share*us)
		} else {
			fmt.Fprintf(w, "| %s | %.1f%% |\n", n, share*100)
		}
	}
	if us > 0 {
		fmt.Fprintf(w, "| **all** (%.2f s of samples) | 100%% | %.0f |\n", float64(total)/1e9, us)
	} else {
		fmt.Fprintf(w, "| **all** (%.2f s of samples) | 100%% |\n", float64(total)/1e9)
	}
}
