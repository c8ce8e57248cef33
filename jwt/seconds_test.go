package jwt

import (
	"math"
	"strconv"
	"testing"
)

// appendSeconds writes what strconv.AppendInt writes, on both sides of
// its ten-digit range and inside it.
func TestAppendSeconds(t *testing.T) {
	for _, v := range []int64{
		math.MinInt64, -1e10, -1, 0, 9, 10, 99, 100, 999999999,
		1e9, 1e9 + 1, 1700000000, 1732233600, 4102444800, 9999999999,
		1e10, 253402300799, math.MaxInt64,
	} {
		if got, want := string(appendSeconds([]byte("x"), v)), "x"+strconv.FormatInt(v, 10); got != want {
			t.Errorf("appendSeconds(%d) = %s, want %s", v, got, want)
		}
	}
	for v := int64(1e9); v < 1e10; v += 7919 * 104729 {
		if got, want := string(appendSeconds(nil, v)), strconv.FormatInt(v, 10); got != want {
			t.Fatalf("appendSeconds(%d) = %s, want %s", v, got, want)
		}
	}
}
