package outbox

import (
	"testing"
	"time"
)

// TestBackoff: the delay doubles from the base up to the limit, and the
// jitter keeps it between its half and itself.
func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempt int
		frac    float64
		want    time.Duration
	}{
		{attempt: 1, frac: 0, want: time.Second},
		{attempt: 1, frac: 0.999999, want: 2*time.Second - 2*time.Microsecond},
		{attempt: 2, frac: 0, want: 2 * time.Second},
		{attempt: 3, frac: 0.5, want: 6 * time.Second},
		{attempt: 8, frac: 0, want: 30 * time.Second},
		{attempt: 1000, frac: 0, want: 30 * time.Second},
	} {
		got := Backoff(tc.attempt, 2*time.Second, time.Minute, tc.frac)
		if got < tc.want-time.Microsecond || got > tc.want+time.Microsecond {
			t.Errorf("Backoff(%d, 2s, 1m, %v) = %v, want %v", tc.attempt, tc.frac, got, tc.want)
		}
	}
}
