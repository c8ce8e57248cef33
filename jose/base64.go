package jose

import (
	"encoding/base64"
	"encoding/binary"
)

// The base64url encoder of signing (RFC 7515 section 2: the URL-safe
// alphabet of RFC 4648 section 5, no padding): it turns 12 bits into two
// characters with one table read, and writes eight characters at a time.
// It writes what b64 (base64.RawURLEncoding) writes, in about two thirds
// of the time (246 bytes of claims: 115 against 175 ns of CPU). Decoding
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
	i, j := 0, 0
	// Six bytes make eight characters: one 64-bit load (of eight bytes,
	// the top six used) and one 64-bit store.
	for ; i+8 <= len(src) && j+8 <= len(out); i, j = i+6, j+8 {
		v := binary.BigEndian.Uint64(src[i:]) >> 16
		binary.LittleEndian.PutUint64(out[j:], uint64(p[v>>36&0xfff])|uint64(p[v>>24&0xfff])<<16|
			uint64(p[v>>12&0xfff])<<32|uint64(p[v&0xfff])<<48)
	}
	for ; i+3 <= len(src); i, j = i+3, j+4 {
		v := uint(src[i])<<16 | uint(src[i+1])<<8 | uint(src[i+2])
		binary.LittleEndian.PutUint16(out[j:], p[v>>12])
		binary.LittleEndian.PutUint16(out[j+2:], p[v&0xfff])
	}
	switch len(src) - i {
	case 2:
		v := uint(src[i])<<16 | uint(src[i+1])<<8
		out[j], out[j+1], out[j+2] = b64Alphabet[v>>18], b64Alphabet[v>>12&63], b64Alphabet[v>>6&63]
	case 1:
		v := uint(src[i])
		out[j], out[j+1] = b64Alphabet[v>>2], b64Alphabet[v<<4&63]
	}
	return dst
}
