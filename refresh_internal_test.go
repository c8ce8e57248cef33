package keycard

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestRefreshIDTime: refresh token ids made at later milliseconds sort
// after those made earlier, as the stores compare them (bytewise), across
// every digit's carry; the id is still 16 bytes in canonical base64url,
// and its bits after the time are the random reader's.
func TestRefreshIDTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC).UnixMilli()
	var times []int64
	// Carries out of each of the seven digits, and random steps.
	for d := range 7 {
		step := int64(1) << (6 * d)
		base := start - start%step + step
		times = append(times, base-1, base, base+1)
	}
	for range 1000 {
		times = append(times, start+rng.Int64N(1<<40))
	}
	random := func() *bytes.Reader {
		b := make([]byte, IDLen+RefreshSecretLen)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return bytes.NewReader(b)
	}
	for i := range 2000 {
		a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
		if a == b {
			continue
		}
		if a > b {
			a, b = b, a
		}
		_, idA, _, err := newRefreshToken(random(), time.UnixMilli(a))
		if err != nil {
			t.Fatal(err)
		}
		_, idB, _, err := newRefreshToken(random(), time.UnixMilli(b))
		if err != nil {
			t.Fatal(err)
		}
		if !(idA < idB) {
			t.Fatalf("pair %d: id at %d ms = %q, not before the id at %d ms = %q", i, a, idA, b, idB)
		}
	}

	// Everything after the first 42 bits comes from the reader.
	for _, fill := range []byte{0x00, 0xff, 0xa5} {
		src := bytes.Repeat([]byte{fill}, IDLen+RefreshSecretLen)
		tok, id, _, err := newRefreshToken(bytes.NewReader(src), time.UnixMilli(start))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(id)
		if err != nil || len(raw) != IDLen {
			t.Fatalf("id %q: decoded %d bytes, %v; want %d canonical bytes", id, len(raw), err, IDLen)
		}
		if raw[5]&3 != fill&3 || !bytes.Equal(raw[6:], src[6:IDLen]) {
			t.Errorf("id %x: its last 86 bits are not the reader's %x", raw, src[:IDLen])
		}
		if _, secret, _ := strings.Cut(tok, "."); secret != base64.RawURLEncoding.EncodeToString(src[IDLen:]) {
			t.Errorf("secret %q is not the reader's", secret)
		}
		if _, _, err := ParseRefreshToken(tok); err != nil {
			t.Errorf("ParseRefreshToken(%q): %v", tok, err)
		}
	}
}

// TestRefreshIDTimeDigits: the id's first seven characters are the
// time's base-64 digits in sortedBase64URL.
func TestRefreshIDTimeDigits(t *testing.T) {
	const ms = 0x123456789ab // 42 bits
	_, id, _, err := newRefreshToken(bytes.NewReader(make([]byte, IDLen+RefreshSecretLen)), time.UnixMilli(ms))
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 7 {
		want = append(want, sortedBase64URL[ms>>(6*(6-i))&63])
	}
	if id[:7] != string(want) {
		t.Errorf("id %q begins %q, want %q", id, id[:7], want)
	}
}
