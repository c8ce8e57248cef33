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

// A Buffer of a huge page or more is a mapping of its own, asked for huge
// pages, that gives the same keys as x/crypto and is unmapped once the
// Buffer is garbage.
func TestMappedBlocks(t *testing.T) {
	const memory = 4 << 10 // KiB: two huge pages
	buf := new(Buffer)
	password, salt := []byte("password"), []byte("somesalt")
	want := xargon2.IDKey(password, salt, 1, memory, 1, 32)
	for range 2 {
		if got := IDKey(buf, password, salt, 1, memory, 1, 32); !bytes.Equal(got, want) {
			t.Fatalf("%x, want %x", got, want)
		}
	}
	start := uintptr(unsafe.Pointer(&buf.mem.b[0]))
	if start%hugePage != 0 {
		t.Errorf("blocks start at %#x, not on a huge page", start)
	}
	if !mapped(t, start) {
		t.Fatalf("no mapping holds %#x: the blocks are not mapped memory", start)
	}
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
