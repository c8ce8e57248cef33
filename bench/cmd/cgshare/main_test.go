package main

import (
	"bytes"
	"strings"
	"testing"
)

// A function list as callgrind_annotate 3.19 prints it: recursion levels
// ("'2") and inlined copies under another file are summed under one name,
// and the program total is left out.
const annotate = `--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,571,917,777 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
973,122,965 (61.91%)  /usr/local/go/src/crypto/internal/fips140/sha256/sha256block_amd64.s:crypto/internal/fips140/sha256.blockAVX2.abi0 [/tmp/bench.test]
159,839,000 (10.17%)  /work/jose/base64.go:github.com/keycard-auth/keycard/jose.b64AppendEncode [/tmp/bench.test]
 25,019,865 ( 1.59%)  /usr/local/go/src/encoding/binary/binary.go:github.com/keycard-auth/keycard/jose.b64AppendEncode
  4,263,737 ( 0.27%)  /work/jose/jws.go:github.com/keycard-auth/keycard/jose.(*Signer).AppendSign'2 [/tmp/bench.test]
  1,000 ( 0.00%)  /work/jose/jws.go:github.com/keycard-auth/keycard/jose.(*Signer).AppendSign [/tmp/bench.test]
  6,304,213 ( 0.40%)  /usr/local/go/src/runtime/mgcmark_greenteagc.go:runtime.tryDeferToSpanScan [/tmp/bench.test]
     54,432 ( 0.00%)  ???:p256MulInternal [/tmp/bench.test]
`

func TestParseAnnotate(t *testing.T) {
	got, err := parseAnnotate(strings.NewReader(annotate))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"crypto/internal/fips140/sha256.blockAVX2.abi0":             973122965,
		"github.com/keycard-auth/keycard/jose.b64AppendEncode":      159839000 + 25019865,
		"github.com/keycard-auth/keycard/jose.(*Signer).AppendSign": 4263737 + 1000,
		"runtime.tryDeferToSpanScan":                                6304213,
		"p256MulInternal":                                           54432,
	}
	if len(got) != len(want) {
		t.Errorf("parsed %d functions, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %d instructions, want %d", k, got[k], v)
		}
	}
}

func TestGroup(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/keycard-auth/keycard/jose.(*Signer).AppendSign": "github.com/keycard-auth/keycard/jose",
		"golang.org/x/crypto/argon2.blamkaSSE4.abi0":                "golang.org/x/crypto/argon2",
		"runtime.scanObject":           "runtime: garbage collector",
		"runtime.memclrNoHeapPointers": "runtime: memclr, memmove",
		"runtime.mallocgc":             "runtime: allocation",
		"runtime.findRunnable":         "runtime: scheduler, timers, other",
		"encoding/json.unquoteBytes":   "encoding/json",
		"p256MulInternal":              "(assembly or C: p256MulInternal)",
	} {
		if got := group(fn); got != want {
			t.Errorf("group(%q) = %q, want %q", fn, got, want)
		}
	}
}

// The per-operation figure is the larger run less the smaller over the
// iterations between them, and a function only in the smaller run counts
// against the total.
func TestReport(t *testing.T) {
	small := map[string]int64{"a/x.F": 100, "runtime.findRunnable": 50}
	large := map[string]int64{"a/x.F": 500, "b.G": 40}
	var out bytes.Buffer
	report(&out, perOp(small, large, 4), 5)
	for _, want := range []string{
		"             98  100.00%  instructions per operation", // (400 + 40 − 50) / 4 = 97.5
		"            100  102.56%  a/x",
		"            -12  -12.82%  runtime: scheduler, timers, other",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
