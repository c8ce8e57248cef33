package password

import (
	"sync"
	"testing"
	"time"
)

var smallParams = Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// A Hasher runs no more than MaxConcurrent argon2id computations at once.
func TestHasherWaitsForAFreeSlot(t *testing.T) {
	h := &Hasher{Params: smallParams, MaxConcurrent: 1}
	if _, err := h.Hash("first password"); err != nil { // sets up the slots
		t.Fatal(err)
	}
	buf := <-h.slots // take the only slot
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
	h.slots <- buf // free it
	<-done
}

// A hash leaves its memory to the next one; there are never more buffers
// than slots, however many hashes wait.
func TestHasherKeepsOneBufferPerSlot(t *testing.T) {
	h := &Hasher{Params: smallParams, MaxConcurrent: 2, idle: time.Hour}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := h.Hash("a password"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(h.slots); n != 2 {
		t.Fatalf("%d buffers in the slots, want 2", n)
	}
	kept := 0
	for range 2 {
		buf := <-h.slots
		defer func() { h.slots <- buf }()
		switch buf.Size() {
		case 64:
			kept++
		case 0:
		default:
			t.Errorf("a slot holds %d KiB, want 64 or none", buf.Size())
		}
	}
	if kept == 0 {
		t.Error("no slot kept the memory of its last hash")
	}
}

// A stored hash that needs more memory than the Hasher's own parameters
// (an older, costlier one, or a hostile row) is verified, and its memory
// is let go at once rather than kept for the hashes after it.
func TestHasherFreesLargerMemory(t *testing.T) {
	big := &Hasher{Params: Params{Memory: 4 << 10, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	stored, err := big.Hash("a password")
	if err != nil {
		t.Fatal(err)
	}
	h := &Hasher{Params: smallParams, MaxConcurrent: 1, idle: time.Hour}
	if ok, rehash, err := h.Verify("a password", stored); !ok || !rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	buf := <-h.slots
	defer func() { h.slots <- buf }()
	if buf.Size() != 0 {
		t.Fatalf("after a 4 MiB hash the slot keeps %d KiB; want it let go", buf.Size())
	}
}

// Without hashes for its idle time, a Hasher lets all its memory go.
func TestHasherFreesIdleMemory(t *testing.T) {
	h := &Hasher{Params: smallParams, MaxConcurrent: 2, idle: 20 * time.Millisecond}
	if _, err := h.Hash("a password"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		total := 0
		for range 2 {
			buf := <-h.slots
			total += buf.Size()
			h.slots <- buf
		}
		if total == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slots still hold %d KiB 30 s after the last hash", total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
