package argon2

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	xargon2 "golang.org/x/crypto/argon2"
)

// A Buffer of a huge page or more is a mapping of its own, on a huge-page
// boundary, that gives x/crypto's keys when reused for other passwords,
// salts and lane counts, that Free unmaps at once, and that is unmapped
// once the Buffer is garbage.
func TestMappedBlocks(t *testing.T) {
	const memory = 4 << 10 // KiB: two huge pages
	buf := new(Buffer)
	for i, c := range []struct {
		password, salt string
		time, memory   uint32
		threads        uint8
	}{
		{"password", "somesalt", 1, memory, 1},
		{"another password", "another salt", 2, memory, 3},
		{"a third", "saltsaltsalt", 1, memory - 100, 2}, // a prefix of the mapping
		{"password", "somesalt", 1, memory, 4},
	} {
		want := xargon2.IDKey([]byte(c.password), []byte(c.salt), c.time, c.memory, c.threads, 32)
		if got := IDKey(buf, []byte(c.password), []byte(c.salt), c.time, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Fatalf("case %d: %x, want %x", i, got, want)
		}
	}
	start := uintptr(unsafe.Pointer(&buf.mem.b[0]))
	if start%hugePage != 0 {
		t.Errorf("blocks start at %#x, not on a huge page", start)
	}
	if !mapped(t, start) {
		t.Fatalf("no mapping holds %#x: the blocks are not mapped memory", start)
	}
	buf.Free()
	if buf.Size() != 0 {
		t.Fatalf("Size = %d after Free", buf.Size())
	}
	if mapped(t, start) {
		t.Fatalf("the mapping at %#x is still there after Free", start)
	}

	// Without Free: unmapped once garbage.
	buf = new(Buffer)
	IDKey(buf, []byte("password"), []byte("somesalt"), 1, memory, 1, 32)
	start = uintptr(unsafe.Pointer(&buf.mem.b[0]))
	buf = nil
	deadline := time.Now().Add(30 * time.Second)
	for mapped(t, start) {
		if time.Now().After(deadline) {
			t.Fatalf("the mapping at %#x is still there 30 s after its Buffer became garbage", start)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// mapped reports whether an anonymous mapping of the process holds addr.
func mapped(t *testing.T, addr uintptr) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for line := range strings.Lines(string(maps)) {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return true
		}
	}
	return false
}
