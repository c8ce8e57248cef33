package main

import (
	"strings"
	"testing"
)

// raw is `go tool pprof -raw` output in miniature: location 3 inlines
// two functions, and sample stacks are leaf first.
const raw = `PeriodType: cpu nanoseconds
Period: 10000000
Duration: 1
Samples:
samples/count cpu/nanoseconds
          5   50000000: 1 2 9
          2   20000000: 3 9
          1   10000000: 4 5 9
          1   10000000: 6 9
          1   10000000: 7
Locations
     1: 0x1 M=1 modernc.org/sqlite.(*conn).step /x/sqlite.go:1:0 s=1
     2: 0x2 M=1 database/sql.(*Tx).Commit /x/sql.go:1:0 s=1
     3: 0x3 M=1 crypto/internal/fips140/nistec.p256Mul /x/p256.go:1:0 s=1
             crypto/internal/fips140/ecdsa.signGeneric /x/ecdsa.go:1:0 s=1
     4: 0x4 M=1 runtime.mallocgc /x/malloc.go:1:0 s=1
     5: 0x5 M=1 encoding/json.Marshal /x/encode.go:1:0 s=1
     6: 0x6 M=1 runtime.mallocgc /x/malloc.go:1:0 s=1
     7: 0x7 M=1 main.somethingElse /x/main.go:1:0 s=1
     9: 0x9 M=1 net/http.(*conn).serve /x/server.go:1:0 s=1
Mappings
1: 0x0/0x0/0x0 /bin/keycard
`

func TestShares(t *testing.T) {
	p, err := parseRaw(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.total != 100_000_000 {
		t.Errorf("total %d ns, want 100,000,000", p.total)
	}
	got := p.shares()
	want := map[string]int64{
		"the commit":                 50_000_000, // SQLite under Commit is the commit's
		"ES256 signature":            20_000_000, // through the inlined frame
		"JSON encoding and decoding": 10_000_000, // its allocation with it
		"allocation":                 10_000_000,
		"other":                      10_000_000,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d ns, want %d", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("categories %v, want %v", got, want)
	}
	var b strings.Builder
	writeTable(&b, got, p.total, 400)
	for _, line := range []string{"| the commit | 50.0% | 200 |", "| ES256 signature | 20.0% | 80 |", "| other | 10.0% | 40 |", "| **all** (0.10 s of samples) | 100% | 400 |"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("table lacks %q:\n%s", line, b.String())
		}
	}
	if strings.Index(b.String(), "the commit") > strings.Index(b.String(), "| other |") {
		t.Errorf("categories out of order:\n%s", b.String())
	}
}

func TestParseRawErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no samples":   "Samples:\nsamples/count cpu/nanoseconds\nLocations\n     1: 0x1 M=1 f /x:1:0 s=1\n",
		"bad value":    "Samples:\n          1   ten: 1\n",
		"bad location": "Samples:\n          1   10: x\n",
	} {
		if _, err := parseRaw(strings.NewReader(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
