package verifier

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestIDTableAgainstAMap puts, deletes and looks up ids in an idTable and
// a map side by side, with hashes chosen to collide (few distinct tags,
// so long runs of probes that wrap around the table's end), and checks
// that they always agree: ids that share a prefix, ids with zero bytes,
// ids of exactly maxInlineID bytes and longer ones kept in the map.
func TestIDTableAgainstAMap(t *testing.T) {
	for _, tags := range []uint64{1, 3, 64, 1 << 32} {
		t.Run(fmt.Sprintf("tags=%d", tags), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, tags))
			seed := maphash.MakeSeed()
			// hash keeps the low bits of the real hash and picks one of
			// tags upper halves.
			hash := func(v string) uint64 {
				h := maphash.String(seed, v)
				return h&0xffffffff | h>>32%tags<<32
			}
			ids := []string{"a", "a\x00", "\x00", "ab", strings.Repeat("x", maxInlineID), strings.Repeat("x", maxInlineID-1),
				strings.Repeat("x", maxInlineID+1), strings.Repeat("x", maxInlineID) + "\x00", strings.Repeat("y", 100)}
			for i := range 300 {
				ids = append(ids, fmt.Sprintf("id-%d", i))
			}
			var tab idTable[int64]
			want := map[string]int64{}
			check := func(step int) {
				t.Helper()
				if tab.len() != len(want) {
					t.Fatalf("step %d: len() = %d, want %d", step, tab.len(), len(want))
				}
				for _, v := range ids {
					got, ok := tab.get(hash(v), v)
					w, wok := want[v]
					if ok != wok || got != w {
						t.Fatalf("step %d: get(%q) = %d, %v, want %d, %v", step, v, got, ok, w, wok)
					}
				}
				n := 0
				tab.each(func(inline []byte, long string, x int64) {
					v := long
					if inline != nil {
						v = string(inline)
					}
					if w, ok := want[v]; !ok || w != x {
						t.Fatalf("step %d: each gave %q: %d, want %d, %v", step, v, x, w, ok)
					}
					n++
				})
				if n != len(want) {
					t.Fatalf("step %d: each gave %d ids, want %d", step, n, len(want))
				}
			}
			for step := range 3000 {
				v := ids[rng.IntN(len(ids))]
				x := rng.Int64N(100)
				if rng.IntN(3) == 0 {
					// Delete v if its value is below x.
					old, ok := want[v]
					if got := tab.deleteIf(hash(v), v, func(y int64) bool { return y < x }); got != (ok && old < x) {
						t.Fatalf("step %d: deleteIf(%q, < %d) = %v, held %d, %v", step, v, x, got, old, ok)
					}
					if ok && old < x {
						delete(want, v)
					}
				} else {
					tab.put(hash(v), v, x, maxInt64)
					want[v] = max(want[v], x)
				}
				if step%50 == 0 {
					check(step)
				}
			}
			check(3000)
			for _, v := range ids { // empty it
				tab.deleteIf(hash(v), v, func(int64) bool { return true })
			}
			clear(want)
			check(3001)
		})
	}
}

// TestIDTableSized checks that a table made for n ids takes them without
// growing, and grows past them.
func TestIDTableSized(t *testing.T) {
	seed := maphash.MakeSeed()
	tab := newIDTable[cutoff](1000)
	size := len(tab.slots)
	for i := range 1000 {
		v := fmt.Sprintf("user-%d", i)
		tab.put(maphash.String(seed, v), v, cutoff{at: int64(i)}, mergeCutoffs)
	}
	if len(tab.slots) != size {
		t.Errorf("a table made for 1000 ids grew from %d to %d slots with 1000", size, len(tab.slots))
	}
	for i := range 1000 {
		v := fmt.Sprintf("more-%d", i)
		tab.put(maphash.String(seed, v), v, cutoff{}, mergeCutoffs)
	}
	if tab.len() != 2000 || len(tab.slots) <= size {
		t.Errorf("len() = %d with %d slots, want 2000 with more than %d", tab.len(), len(tab.slots), size)
	}
	for i := range 1000 {
		v := fmt.Sprintf("user-%d", i)
		if c, ok := tab.get(maphash.String(seed, v), v); !ok || c.at != int64(i) {
			t.Fatalf("get(%q) = %+v, %v after growing", v, c, ok)
		}
	}
}
