package argon2

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugePage is the size of an x86-64 (and arm64 4K-granule) transparent
// huge page.
const hugePage = 2 << 20

// newBlocks maps n blocks of anonymous memory, starting on a huge-page
// boundary; asks the kernel to back them with transparent huge pages
// (MADV_HUGEPAGE; a kernel that will not is no error, the pages are then
// 4 KiB ones) and to leave them out of core dumps (MADV_DONTDUMP: they
// hold password-derived blocks). The mapping is unmapped by the blocks'
// free, or once they are garbage. Blocks smaller than a huge page, or
// that cannot be mapped, come from the Go heap.
func newBlocks(n int) *blocks {
	size := n * int(unsafe.Sizeof(block{}))
	if size < hugePage {
		return &blocks{b: make([]block, n)}
	}
	mapping, err := unix.Mmap(-1, 0, size+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return &blocks{b: make([]block, n)}
	}
	off := 0
	if p := uintptr(unsafe.Pointer(&mapping[0])); p%hugePage != 0 {
		off = int(hugePage - p%hugePage)
	}
	_ = unix.Madvise(mapping[off:off+size], unix.MADV_HUGEPAGE)
	_ = unix.Madvise(mapping, unix.MADV_DONTDUMP)
	// The mapping holds no Go pointers and is aligned far beyond a
	// block's eight bytes; the collector never scans or moves it.
	m := &blocks{b: unsafe.Slice((*block)(unsafe.Pointer(&mapping[off])), n)}
	cleanup := runtime.AddCleanup(m, func(mapping []byte) { _ = unix.Munmap(mapping) }, mapping)
	m.free = func() {
		cleanup.Stop()
		_ = unix.Munmap(mapping)
	}
	return m
}
