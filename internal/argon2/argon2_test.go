package argon2

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// TestRFC9106 is the Argon2id test vector of RFC 9106 §5.3 (with a secret
// and associated data), in a fresh buffer and in one dirty with another
// hash's blocks, with and without the SSE assembly.
func TestRFC9106(t *testing.T) {
	want, _ := hex.DecodeString("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
	password := bytes.Repeat([]byte{0x01}, 32)
	salt := bytes.Repeat([]byte{0x02}, 16)
	secret := bytes.Repeat([]byte{0x03}, 8)
	data := bytes.Repeat([]byte{0x04}, 12)
	forEachImpl(t, func(t *testing.T) {
		if got := deriveKey(nil, password, salt, secret, data, 3, 32, 4, 32); !bytes.Equal(got, want) {
			t.Errorf("fresh buffer: %x, want %x", got, want)
		}
		var buf Buffer
		IDKey(&buf, []byte("another password"), []byte("another salt"), 2, 64, 1, 32)
		if got := deriveKey(&buf, password, salt, secret, data, 3, 32, 4, 32); !bytes.Equal(got, want) {
			t.Errorf("reused buffer: %x, want %x", got, want)
		}
	})
}

// TestVectors are x/crypto's own Argon2id vectors (password "password",
// salt "somesalt"), all in one reused buffer.
func TestVectors(t *testing.T) {
	vectors := []struct {
		time, memory uint32
		threads      uint8
		hash         string
	}{
		{1, 64, 1, "655ad15eac652dc59f7170a7332bf49b8469be1fdb9c28bb"},
		{2, 64, 1, "068d62b26455936aa6ebe60060b0a65870dbfa3ddf8d41f7"},
		{2, 64, 2, "350ac37222f436ccb5c0972f1ebd3bf6b958bf2071841362"},
		{3, 256, 2, "4668d30ac4187e6878eedeacf0fd83c5a0a30db2cc16ef0b"},
		{4, 4096, 4, "145db9733a9f4ee43edf33c509be96b934d505a4efb33c5a"},
		{4, 1024, 8, "8dafa8e004f8ea96bf7c0f93eecf67a6047476143d15577f"},
		{2, 64, 3, "4a15b31aec7c2590b87d1f520be7d96f56658172deaa3079"},
		{3, 1024, 6, "1640b932f4b60e272f5d2207b9a9c626ffa1bd88d2349016"},
	}
	forEachImpl(t, func(t *testing.T) {
		var buf Buffer
		for i, v := range vectors {
			want, _ := hex.DecodeString(v.hash)
			got := IDKey(&buf, []byte("password"), []byte("somesalt"), v.time, v.memory, v.threads, uint32(len(want)))
			if !bytes.Equal(got, want) {
				t.Errorf("vector %d: %x, want %x", i, got, want)
			}
		}
	})
}

// TestAgainstXCrypto compares IDKey with x/crypto's on random inputs and
// parameters, in one buffer that grows, shrinks (a prefix is used) and
// always holds the previous hash's blocks. It fails if any block is read
// before this hash wrote it.
func TestAgainstXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 300
	if testing.Short() {
		n = 60
	}
	var buf Buffer
	for i := range n {
		password := make([]byte, rng.IntN(40))
		salt := make([]byte, 8+rng.IntN(24))
		for _, b := range [][]byte{password, salt} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		time := 1 + uint32(rng.IntN(3))
		threads := uint8(1 + rng.IntN(4))
		memory := uint32(rng.IntN(600)) // below the minimum too: rounded up
		keyLen := uint32(4 + rng.IntN(100))
		want := xargon2.IDKey(password, salt, time, memory, threads, keyLen)
		if got := IDKey(&buf, password, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("case %d (t=%d m=%d p=%d len=%d): %x, want %x", i, time, memory, threads, keyLen, got, want)
		}
		if got := IDKey(nil, password, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("case %d, no buffer: %x, want %x", i, got, want)
		}
	}
}

// TestBufferGrows checks the buffer keeps the largest memory asked for
// and that a larger buffer's prefix gives the same key.
func TestBufferGrows(t *testing.T) {
	var buf Buffer
	small := IDKey(&buf, []byte("pw"), []byte("saltsalt"), 1, 64, 1, 32)
	if buf.Size() != 64 {
		t.Fatalf("Size = %d, want 64", buf.Size())
	}
	IDKey(&buf, []byte("pw"), []byte("saltsalt"), 1, 256, 1, 32)
	if buf.Size() != 256 {
		t.Fatalf("Size = %d, want 256", buf.Size())
	}
	if again := IDKey(&buf, []byte("pw"), []byte("saltsalt"), 1, 64, 1, 32); !bytes.Equal(again, small) {
		t.Fatalf("in a larger buffer: %x, want %x", again, small)
	}
	if buf.Size() != 256 {
		t.Fatalf("Size = %d after a smaller hash, want 256", buf.Size())
	}
}

// forEachImpl runs f with the SSE4 BlaMka where the machine has it and
// with the generic Go one.
func forEachImpl(t *testing.T, f func(t *testing.T)) {
	sse4 := useSSE4
	defer func() { useSSE4 = sse4 }()
	if sse4 {
		t.Run("SSE4", f)
	}
	useSSE4 = false
	t.Run("generic", f)
}

// BenchmarkIDKey is one argon2id hash with Keycard's default parameters
// (19 MiB, 2 passes, 1 lane): x/crypto's, which allocates its memory
// every time; in a reused Buffer of Go heap memory; and in a Buffer as
// IDKey makes it (on Linux, mapped and asked for huge pages).
func BenchmarkIDKey(b *testing.B) {
	const memory = 19 * 1024
	password, salt := []byte("correct horse battery staple"), []byte("0123456789abcdef")
	b.Run("x/crypto", func(b *testing.B) {
		for b.Loop() {
			xargon2.IDKey(password, salt, 2, memory, 1, 32)
		}
	})
	b.Run("heap-buffer", func(b *testing.B) {
		buf := &Buffer{mem: &blocks{b: make([]block, memory)}}
		for b.Loop() {
			IDKey(buf, password, salt, 2, memory, 1, 32)
		}
	})
	b.Run("buffer", func(b *testing.B) {
		var buf Buffer
		for b.Loop() {
			IDKey(&buf, password, salt, 2, memory, 1, 32)
		}
	})
}

// TestProcessBlockGeneric checks the pure-Go compression (the one other
// architectures and the purego tag build) against this build's, with and
// without XOR, on random blocks.
func TestProcessBlockGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		var in1, in2, out block
		for i := range in1 {
			in1[i], in2[i], out[i] = rng.Uint64(), rng.Uint64(), rng.Uint64()
		}
		want, got := out, out
		processBlock(&want, &in1, &in2)
		processBlockGeneric(&got, &in1, &in2, false)
		if got != want {
			t.Fatal("processBlockGeneric without XOR differs")
		}
		want, got = out, out
		processBlockXOR(&want, &in1, &in2)
		processBlockGeneric(&got, &in1, &in2, true)
		if got != want {
			t.Fatal("processBlockGeneric with XOR differs")
		}
	}
}
