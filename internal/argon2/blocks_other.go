//go:build !linux

package argon2

// newBlocks allocates n blocks on the Go heap.
func newBlocks(n int) *blocks { return &blocks{b: make([]block, n)} }
