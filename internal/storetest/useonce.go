package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keycard-auth/keycard"
)

// testUseOnce checks GrantStore.UseOnce: the first use of a key is true,
// every later one false until the marker expires; an expired marker is
// replaced by a new use (and a later one is refused again); bad arguments
// are EINVALID and record nothing.
func testUseOnce(t *testing.T, open OpenFunc) {
	ctx := context.Background()
	s := open(t)
	exp := t0.Add(5 * time.Minute)
	steps := []struct {
		name      string
		key       string
		at, until time.Time
		want      bool
	}{
		{"first use", "a", t0, exp, true},
		{"replay", "a", t0.Add(time.Second), exp, false},
		{"replay with a later expiry", "a", t0.Add(time.Minute), exp.Add(time.Hour), false},
		{"replay a microsecond before the expiry", "a", exp.Add(-time.Microsecond), exp.Add(time.Hour), false},
		{"another key", "b", t0, exp, true},
		{"a key differing in case", "A", t0, exp, true},
		{"the longest key", strings.Repeat("k", keycard.MaxUseOnceKeyLen), t0, exp, true},
		{"the longest key again", strings.Repeat("k", keycard.MaxUseOnceKeyLen), t0, exp, false},
		{"at the expiry: the marker is dead", "a", exp, exp.Add(time.Minute), true},
		{"the new marker lives", "a", exp.Add(time.Second), exp.Add(2 * time.Minute), false},
	}
	for _, st := range steps {
		got, err := s.Grants.UseOnce(ctx, st.key, st.at, st.until)
		if err != nil || got != st.want {
			t.Errorf("%s: UseOnce(%.8q) = %v, %v; want %v, nil", st.name, st.key, got, err, st.want)
		}
	}
	bad := []struct {
		name      string
		key       string
		at, until time.Time
	}{
		{"empty key", "", t0, exp},
		{"key too long", strings.Repeat("k", keycard.MaxUseOnceKeyLen+1), t0, exp},
		{"expiry at its time", "c", t0, t0},
		{"expiry before its time", "c", t0, t0.Add(-time.Second)},
	}
	for _, b := range bad {
		got, err := s.Grants.UseOnce(ctx, b.key, b.at, b.until)
		if got {
			t.Errorf("%s: UseOnce = true, want false", b.name)
		}
		wantCode(t, b.name, err, keycard.EINVALID)
	}
	// The refused calls recorded nothing: "c" is still unused.
	if got, err := s.Grants.UseOnce(ctx, "c", t0, exp); err != nil || !got {
		t.Errorf("UseOnce(c) after refused calls = %v, %v; want true, nil", got, err)
	}
}

// testUseOnceConcurrent races several UseOnce calls of one key, a fresh
// key per round: exactly one of them gets true.
func testUseOnceConcurrent(t *testing.T, open OpenFunc) {
	const n, rounds = 8, 5
	ctx := context.Background()
	s := open(t)
	for round := range rounds {
		key := fmt.Sprintf("jti-%d", round)
		got := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		done := make(chan struct{})
		for i := range n {
			go func() {
				defer func() { done <- struct{}{} }()
				<-start
				got[i], errs[i] = s.Grants.UseOnce(ctx, key, t0, t0.Add(time.Minute))
			}()
		}
		close(start)
		for range n {
			<-done
		}
		firsts := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: UseOnce %d: %v", round, i, errs[i])
			}
			if got[i] {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("round %d: %d of %d concurrent UseOnce calls got true, want exactly 1", round, firsts, n)
		}
	}
}
