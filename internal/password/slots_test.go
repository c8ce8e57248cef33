package password

import (
	"runtime"
	"testing"
	"time"

	"github.com/keycard-auth/keycard/internal/argon2"
)

// A Hasher runs no more than MaxConcurrent argon2id computations at once.
func TestHasherWaitsForAFreeSlot(t *testing.T) {
	h := &Hasher{Params: Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, MaxConcurrent: 1}
	if _, err := h.Hash("first password"); err != nil { // sets up the slots
		t.Fatal(err)
	}
	h.slots <- struct{}{} // take the only slot
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := h.Hash("second password"); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
		t.Fatal("a hash ran while every slot was taken")
	case <-time.After(100 * time.Millisecond):
	}
	<-h.slots // free it
	<-done
}

// A hash leaves its buffer for the next one, and buffers nobody has used
// across two garbage collections are let go, so an idle server gives the
// memory back.
func TestHasherBuffers(t *testing.T) {
	h := &Hasher{Params: Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}, MaxConcurrent: 1}
	var buf *argon2.Buffer
	// Under the race detector sync.Pool drops a quarter of what is put
	// in it at random; a few hashes make the miss unlikely to repeat.
	for i := 0; buf == nil && i < 20; i++ {
		if _, err := h.Hash("first password"); err != nil {
			t.Fatal(err)
		}
		buf, _ = h.buffers.Get().(*argon2.Buffer)
	}
	if buf == nil || buf.Size() != 64 {
		t.Fatalf("after a hash the pool holds %v, want a buffer of 64 KiB", buf)
	}
	h.buffers.Put(buf)
	runtime.GC()
	runtime.GC()
	if buf, _ := h.buffers.Get().(*argon2.Buffer); buf != nil {
		t.Fatalf("after two collections the pool still holds a buffer of %d KiB", buf.Size())
	}
}
