package password

import (
	"testing"
	"time"
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
