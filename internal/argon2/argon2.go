// Copyright 2017 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

// Package argon2 is the Argon2id of golang.org/x/crypto/argon2 (v0.58.0,
// whose LICENSE is beside this file), changed so that the caller can hand
// it the memory to work in, a Buffer, and use the same Buffer for hash
// after hash, where x/crypto allocates (and the runtime zeroes or faults
// in) the whole memory for every hash. Keycard's logins each hash once
// with 19 MiB; the allocation, its zeroing and the collector's work on it
// were the largest part of a login above the hash itself (BENCHMARKS.md,
// "Login, round 3"; docs/decisions/argon2-buffers.md).
//
// A reused buffer holds the last hash's blocks, so nothing may read a
// block before this hash has written it: the first pass computes each
// block without XOR (as RFC 9106 §3.2 says for every block of the first
// pass), where x/crypto XORs into the zeroed memory it has just made.
// The first lane of each segment is computed on the calling goroutine
// rather than on a new one, and on Linux a Buffer's memory is a mapping
// of its own (blocks_linux.go). The rest (the BlaMka compression in Go
// and SSE assembly, the indexing, BLAKE2b's H') is x/crypto's code
// unchanged. Tests check every result against x/crypto's IDKey, with
// fresh and reused buffers, and against RFC 9106's test vector.
package argon2

import (
	"encoding/binary"
	"runtime"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Version is the Argon2 version implemented by this package.
const Version = 0x13

const argon2id = 2

// A Buffer is the memory of Argon2id hashes made one after the other. Its
// zero value is empty and grows to the memory a hash needs; Free gives
// the memory back. A Buffer must not be used by two hashes at once, nor
// freed while a hash uses it.
//
// On Linux the memory of a Buffer of 2 MiB or more is mapped outside the
// Go heap, asked to be backed by transparent huge pages where the kernel
// allows it (madvise) and left out of core dumps: with two hashes at once
// Argon2's reads at random across its memory run measurably faster on
// 2 MiB pages (BENCHMARKS.md, "Login, round 3"). It is unmapped by Free,
// when the Buffer grows, or else once it is garbage. Elsewhere, and when
// the mapping fails, it is an ordinary slice.
type Buffer struct {
	mem *blocks
}

// blocks is the memory of a Buffer: all in one allocation, from the Go
// heap or mapped (blocks_linux.go).
type blocks struct {
	b    []block
	free func() // unmaps a mapping at once; nil for heap memory
}

// Size is the memory the Buffer holds, in KiB.
func (b *Buffer) Size() int {
	if b.mem == nil {
		return 0
	}
	return len(b.mem.b)
}

// Free gives the Buffer's memory back (unmapped at once, if it was
// mapped) and leaves it empty, ready to grow again.
func (b *Buffer) Free() {
	if b.mem != nil && b.mem.free != nil {
		b.mem.free()
	}
	b.mem = nil
}

// IDKey is golang.org/x/crypto/argon2.IDKey computed in buf: it derives a
// key of keyLen bytes from the password, salt and cost parameters with
// Argon2id. buf grows if it holds less than the hash needs (a larger one
// lends a prefix); with nil, the hash allocates its own memory on the Go
// heap, as x/crypto does. The CPU cost and parallelism degree must be
// greater than zero.
func IDKey(buf *Buffer, password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	return deriveKey(buf, password, salt, nil, nil, time, memory, threads, keyLen)
}

// deriveKey is x/crypto's deriveKey for Argon2id, in buf; secret and data
// are the optional K and X of RFC 9106 (IDKey has neither; the tests give
// them for the RFC's test vector).
func deriveKey(buf *Buffer, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if time < 1 {
		panic("argon2: number of rounds too small")
	}
	if threads < 1 {
		panic("argon2: parallelism degree too low")
	}
	h0 := initHash(password, salt, secret, data, time, memory, uint32(threads), keyLen, argon2id)

	memory = memory / (syncPoints * uint32(threads)) * (syncPoints * uint32(threads))
	if memory < 2*syncPoints*uint32(threads) {
		memory = 2 * syncPoints * uint32(threads)
	}
	var mem *blocks
	if buf == nil {
		// As x/crypto: heap memory that is garbage after this hash.
		mem = &blocks{b: make([]block, memory)}
	} else {
		if buf.Size() < int(memory) {
			buf.Free() // the old blocks go before the new ones come
			buf.mem = newBlocks(int(memory))
		}
		mem = buf.mem
	}
	B := mem.b[:memory]
	initBlocks(B, &h0, memory, uint32(threads))
	processBlocks(B, time, memory, uint32(threads), argon2id)
	key := extractKey(B, memory, uint32(threads), keyLen)
	// B may be memory the collector does not see: mem must live (and
	// not be unmapped) until the hash is done with it.
	runtime.KeepAlive(mem)
	return key
}

const (
	blockLength = 128
	syncPoints  = 4
)

type block [blockLength]uint64

func initHash(password, salt, key, data []byte, time, memory, threads, keyLen uint32, mode int) [blake2b.Size + 8]byte {
	var (
		h0     [blake2b.Size + 8]byte
		params [24]byte
		tmp    [4]byte
	)

	b2, _ := blake2b.New512(nil)
	binary.LittleEndian.PutUint32(params[0:4], threads)
	binary.LittleEndian.PutUint32(params[4:8], keyLen)
	binary.LittleEndian.PutUint32(params[8:12], memory)
	binary.LittleEndian.PutUint32(params[12:16], time)
	binary.LittleEndian.PutUint32(params[16:20], uint32(Version))
	binary.LittleEndian.PutUint32(params[20:24], uint32(mode))
	b2.Write(params[:])
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(password)))
	b2.Write(tmp[:])
	b2.Write(password)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(salt)))
	b2.Write(tmp[:])
	b2.Write(salt)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(key)))
	b2.Write(tmp[:])
	b2.Write(key)
	binary.LittleEndian.PutUint32(tmp[:], uint32(len(data)))
	b2.Write(tmp[:])
	b2.Write(data)
	b2.Sum(h0[:0])
	return h0
}

// initBlocks writes the first two blocks of each lane into B (x/crypto
// allocates B here).
func initBlocks(B []block, h0 *[blake2b.Size + 8]byte, memory, threads uint32) {
	var block0 [1024]byte
	for lane := uint32(0); lane < threads; lane++ {
		j := lane * (memory / threads)
		binary.LittleEndian.PutUint32(h0[blake2b.Size+4:], lane)

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 0)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+0] {
			B[j+0][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}

		binary.LittleEndian.PutUint32(h0[blake2b.Size:], 1)
		blake2bHash(block0[:], h0[:])
		for i := range B[j+1] {
			B[j+1][i] = binary.LittleEndian.Uint64(block0[i*8:])
		}
	}
}

func processBlocks(B []block, time, memory, threads uint32, mode int) {
	lanes := memory / threads
	segments := lanes / syncPoints

	processSegment := func(n, slice, lane uint32, wg *sync.WaitGroup) {
		var addresses, in, zero block
		if mode == argon2id && n == 0 && slice < syncPoints/2 {
			in[0] = uint64(n)
			in[1] = uint64(lane)
			in[2] = uint64(slice)
			in[3] = uint64(memory)
			in[4] = uint64(time)
			in[5] = uint64(mode)
		}

		index := uint32(0)
		if n == 0 && slice == 0 {
			index = 2 // we have already generated the first two blocks
			in[6]++
			processBlock(&addresses, &in, &zero)
			processBlock(&addresses, &addresses, &zero)
		}

		offset := lane*lanes + slice*segments + index
		var random uint64
		for index < segments {
			prev := offset - 1
			if index == 0 && slice == 0 {
				prev += lanes // last block in lane
			}
			if mode == argon2id && n == 0 && slice < syncPoints/2 {
				if index%blockLength == 0 {
					in[6]++
					processBlock(&addresses, &in, &zero)
					processBlock(&addresses, &addresses, &zero)
				}
				random = addresses[index%blockLength]
			} else {
				random = B[prev][0]
			}
			newOffset := indexAlpha(random, lanes, segments, threads, n, slice, lane, index)
			if n == 0 {
				// The block's old contents are the last hash's (or
				// nothing): the first pass overwrites, it does not XOR.
				processBlock(&B[offset], &B[prev], &B[newOffset])
			} else {
				processBlockXOR(&B[offset], &B[prev], &B[newOffset])
			}
			index, offset = index+1, offset+1
		}
		wg.Done()
	}

	for n := uint32(0); n < time; n++ {
		for slice := uint32(0); slice < syncPoints; slice++ {
			var wg sync.WaitGroup
			for lane := uint32(1); lane < threads; lane++ {
				wg.Add(1)
				go processSegment(n, slice, lane, &wg)
			}
			// Lane 0 runs on this goroutine (x/crypto starts one for
			// every lane): with one lane, a hash never leaves the
			// goroutine that asked for it, nor the core it is on.
			wg.Add(1)
			processSegment(n, slice, 0, &wg)
			wg.Wait()
		}
	}

}

func extractKey(B []block, memory, threads, keyLen uint32) []byte {
	lanes := memory / threads
	for lane := uint32(0); lane < threads-1; lane++ {
		for i, v := range B[(lane*lanes)+lanes-1] {
			B[memory-1][i] ^= v
		}
	}

	var block [1024]byte
	for i, v := range B[memory-1] {
		binary.LittleEndian.PutUint64(block[i*8:], v)
	}
	key := make([]byte, keyLen)
	blake2bHash(key, block[:])
	return key
}

func indexAlpha(rand uint64, lanes, segments, threads, n, slice, lane, index uint32) uint32 {
	refLane := uint32(rand>>32) % threads
	if n == 0 && slice == 0 {
		refLane = lane
	}
	m, s := 3*segments, ((slice+1)%syncPoints)*segments
	if lane == refLane {
		m += index
	}
	if n == 0 {
		m, s = slice*segments, 0
		if slice == 0 || lane == refLane {
			m += index
		}
	}
	if index == 0 || lane == refLane {
		m--
	}
	return phi(rand, uint64(m), uint64(s), refLane, lanes)
}

func phi(rand, m, s uint64, lane, lanes uint32) uint32 {
	p := rand & 0xFFFFFFFF
	p = (p * p) >> 32
	p = (p * m) >> 32
	return lane*lanes + uint32((s+m-(p+1))%uint64(lanes))
}
