package jose

import (
	"encoding/base64"
	"encoding/binary"
)

// The base64url encoder of signing (RFC 7515 section 2: the URL-safe
// alphabet of RFC 4648 section 5, no padding): it turns 12 bits into two
// characters with one table read, and writes eight characters at a time,
// sixteen a round, with no bounds checks in its loops. It writes what b64
// (base64.RawURLEncoding) writes, in about two thirds of the time (246
// bytes of claims: 115 against 175 ns of CPU with eight a round, which
// took 2,755 instructions under callgrind; sixteen take 1,653). Decoding
// stays with b64: a decoder written the same way was no faster.

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// b64Pairs maps 12 bits to their two characters, the first in the low
// byte. It is computed once and only read.
var b64Pairs = func() *[4096]uint16 {
	var t [4096]uint16
	for i := range t {
		t[i] = uint16(b64Alphabet[i>>6]) | uint16(b64Alphabet[i&63])<<8
	}
	return &t
}()

// b64AppendEncode appends the unpadded base64url encoding of src to dst,
// as b64.AppendEncode does.
func b64AppendEncode(dst, src []byte) []byte {
	n := base64.RawURLEncoding.EncodedLen(len(src))
	off := len(dst)
	if cap(dst)-off < n {
		grown := make([]byte, off, off+n)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:off+n]
	out := dst[off:]
	p := b64Pairs
	// Six bytes make eight characters: one 64-bit load (of eight bytes,
	// the top six used) and one 64-bit store; twelve bytes, two of each
	// per round. The loops advance the slices themselves, so that the
	// compiler sees every index is in bounds and checks none of them.
	for len(src) >= 14 && len(out) >= 16 {
		v := binary.BigEndian.Uint64(src) >> 16
		w := binary.BigEndian.Uint64(src[6:]) >> 16
		binary.LittleEndian.PutUint64(out, uint64(p[v>>36&0xfff])|uint64(p[v>>24&0xfff])<<16|
			uint64(p[v>>12&0xfff])<<32|uint64(p[v&0xfff])<<48)
		binary.LittleEndian.PutUint64(out[8:], uint64(p[w>>36&0xfff])|uint64(p[w>>24&0xfff])<<16|
			uint64(p[w>>12&0xfff])<<32|uint64(p[w&0xfff])<<48)
		src, out = src[12:], out[16:]
	}
	for len(src) >= 8 && len(out) >= 8 {
		v := binary.BigEndian.Uint64(src) >> 16
		binary.LittleEndian.PutUint64(out, uint64(p[v>>36&0xfff])|uint64(p[v>>24&0xfff])<<16|
			uint64(p[v>>12&0xfff])<<32|uint64(p[v&0xfff])<<48)
		src, out = src[6:], out[8:]
	}
	for len(src) >= 3 && len(out) >= 4 {
		v := uint(src[0])<<16 | uint(src[1])<<8 | uint(src[2])
		binary.LittleEndian.PutUint32(out, uint32(p[v>>12])|uint32(p[v&0xfff])<<16)
		src, out = src[3:], out[4:]
	}
	switch {
	case len(src) == 2 && len(out) >= 3:
		v := uint(src[0])<<16 | uint(src[1])<<8
		out[0], out[1], out[2] = b64Alphabet[v>>18], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63]
	case len(src) == 1 && len(out) >= 2:
		v := uint(src[0])
		out[0], out[1] = b64Alphabet[v>>2], b64Alphabet[v<<4&63]
	}
	return dst
}

// b64Values maps each byte to its six bits in the base64url alphabet, or
// to 0xff when it is not in it. It is computed once and only read.
var b64Values = func() *[256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(b64Alphabet) {
		t[b64Alphabet[i]] = byte(i)
	}
	return &t
}()

// b64Decode decodes src, unpadded base64url, into out and returns the
// number of bytes written; ok is false if src is not the canonical
// encoding of anything. It accepts exactly what b64
// (base64.RawURLEncoding.Strict()) accepts, except CR and LF, which b64
// skips wherever they are and b64Decode refuses like any other byte
// outside the alphabet (a compact JWS has none). out must hold
// b64.DecodedLen(len(src)) bytes; with two more, the loop writes eight
// characters' six bytes in one 64-bit store to the end. On failure out
// holds some of the decoding.
//
// Eight characters a round: eight table reads, one test that none of them
// was 0xff, one store. It takes about 60% of the instructions of
// encoding/base64's Decode (an HS256 verification's payload and
// signature under callgrind: 2,774 against 4,480; BENCHMARKS.md, "HS256
// verify, round 3").
func b64Decode(out, src []byte) (n int, ok bool) {
	t := b64Values
	total := len(out)
	// Each character's value is or-ed into bad (any 0xff shows as a bit
	// above the six) and, shifted, into v; the compiler keeps the three
	// in registers, and the array conversions leave one bounds check for
	// eight reads.
	for len(src) >= 8 && len(out) >= 8 {
		s := (*[8]byte)(src)
		c := uint64(t[s[0]])
		bad, v := c, c<<58
		c = uint64(t[s[1]])
		bad, v = bad|c, v|c<<52
		c = uint64(t[s[2]])
		bad, v = bad|c, v|c<<46
		c = uint64(t[s[3]])
		bad, v = bad|c, v|c<<40
		c = uint64(t[s[4]])
		bad, v = bad|c, v|c<<34
		c = uint64(t[s[5]])
		bad, v = bad|c, v|c<<28
		c = uint64(t[s[6]])
		bad, v = bad|c, v|c<<22
		c = uint64(t[s[7]])
		bad, v = bad|c, v|c<<16
		if bad >= 64 {
			return total - len(out), false
		}
		binary.BigEndian.PutUint64(out, v)
		src, out = src[8:], out[6:]
	}
	for len(src) >= 4 && len(out) >= 3 {
		a, b, c, d := t[src[0]], t[src[1]], t[src[2]], t[src[3]]
		if a|b|c|d >= 64 {
			return total - len(out), false
		}
		v := uint(a)<<18 | uint(b)<<12 | uint(c)<<6 | uint(d)
		out[0], out[1], out[2] = byte(v>>16), byte(v>>8), byte(v)
		src, out = src[4:], out[3:]
	}
	// The last one to three characters. Strict: the bits of the last
	// character that fall beyond the last byte must be zero, so that
	// every byte string has exactly one encoding.
	switch len(src) {
	case 0:
		return total - len(out), true
	case 2:
		a, b := t[src[0]], t[src[1]]
		if a|b >= 64 || b&0x0f != 0 || len(out) < 1 {
			return total - len(out), false
		}
		out[0] = a<<2 | b>>4
		return total - len(out) + 1, true
	case 3:
		a, b, c := t[src[0]], t[src[1]], t[src[2]]
		if a|b|c >= 64 || c&0x03 != 0 || len(out) < 2 {
			return total - len(out), false
		}
		out[0], out[1] = a<<2|b>>4, b<<4|c>>2
		return total - len(out) + 2, true
	}
	// One character left (no byte string encodes to that), or four or
	// more when out was too short.
	return total - len(out), false
}
