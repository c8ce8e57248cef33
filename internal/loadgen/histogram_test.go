package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// precision is the relative error allowed for a quantile: half a bucket
// (1/256) plus rounding.
const precision = 0.005

func TestBucketLayout(t *testing.T) {
	values := []int64{0, 1, 2, 255, 256, 257, 511, 512, 1000, 1023, 1024, 999_999, 1_000_000, 60_000_000_000, maxTrackable}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		values = append(values, rng.Int64N(maxTrackable+1))
		values = append(values, int64(math.Exp(rng.Float64()*math.Log(float64(maxTrackable)))))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, outside [0, %d)", v, i, numBuckets)
		}
		low, width := bucketBounds(i)
		if v < low || v >= low+width {
			t.Fatalf("value %d in bucket %d = [%d, %d)", v, i, low, low+width)
		}
		if v >= linearLimit && float64(width)/float64(low) > 1.0/subCount {
			t.Fatalf("bucket %d = [%d, %d) is wider than 1/%d of its values", i, low, low+width, subCount)
		}
	}
	if got := bucketOf(maxTrackable); got != numBuckets-1 {
		t.Errorf("the largest trackable value is in bucket %d, want the last, %d", got, numBuckets-1)
	}
	// Adjacent buckets tile the range with no gap.
	for i := 1; i < numBuckets; i++ {
		pl, pw := bucketBounds(i - 1)
		l, _ := bucketBounds(i)
		if pl+pw != l {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i-1, pl+pw, i, l)
		}
	}
}

// exactQuantile is the value of rank ⌈q·n⌉ of sorted values, the
// definition Quantile approximates.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	rank := max(int(math.Ceil(q*float64(len(sorted)))), 1)
	return sorted[rank-1]
}

func TestQuantilesOfKnownDistributions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name string
		draw func() time.Duration
	}{
		{"uniform 1µs-1s", func() time.Duration { return time.Microsecond + time.Duration(rng.Int64N(int64(time.Second))) }},
		{"exponential mean 2ms", func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond)) }},
		{"log-uniform 1µs-1min", func() time.Duration {
			return time.Duration(math.Exp(math.Log(1e3) + rng.Float64()*(math.Log(6e10)-math.Log(1e3))))
		}},
		{"bimodal 200µs and 50ms", func() time.Duration {
			if rng.IntN(100) < 95 {
				return 200*time.Microsecond + time.Duration(rng.NormFloat64()*float64(10*time.Microsecond))
			}
			return 50*time.Millisecond + time.Duration(rng.NormFloat64()*float64(time.Millisecond))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h Histogram
			values := make([]time.Duration, 200000)
			var sum time.Duration
			for i := range values {
				values[i] = tt.draw()
				sum += values[i]
				h.Record(values[i])
			}
			slices.Sort(values)
			if h.Count() != uint64(len(values)) {
				t.Errorf("count: got %d, want %d", h.Count(), len(values))
			}
			if h.Min() != values[0] || h.Max() != values[len(values)-1] {
				t.Errorf("min, max: got %v, %v, want %v, %v", h.Min(), h.Max(), values[0], values[len(values)-1])
			}
			if want := sum / time.Duration(len(values)); h.Mean() != want {
				t.Errorf("mean: got %v, want %v", h.Mean(), want)
			}
			for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999} {
				got, want := h.Quantile(q), exactQuantile(values, q)
				if diff := math.Abs(float64(got - want)); diff > 1 && diff/float64(want) > precision {
					t.Errorf("p%v: got %v, want %v (relative error %.4f)", q*100, got, want, math.Abs(float64(got-want))/float64(want))
				}
			}
			if h.Quantile(1) != h.Max() {
				t.Errorf("Quantile(1) = %v, want Max %v", h.Quantile(1), h.Max())
			}
		})
	}
}

func TestQuantileSmallCounts(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Errorf("empty histogram: p50 %v max %v min %v mean %v, want zeros", h.Quantile(0.5), h.Max(), h.Min(), h.Mean())
	}
	h.Record(123456 * time.Nanosecond)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.Quantile(q); got != 123456*time.Nanosecond {
			t.Errorf("one value: Quantile(%v) = %v, want it exactly (clamped to min and max)", q, got)
		}
	}
	h.Record(-time.Second) // a clock step backwards counts as 0
	if h.Min() != 0 || h.Count() != 2 {
		t.Errorf("negative value: min %v count %d, want 0 and 2", h.Min(), h.Count())
	}
}

func TestBeyondRange(t *testing.T) {
	var h Histogram
	h.Record(time.Millisecond)
	h.Record(5 * time.Minute)
	if h.Max() != 5*time.Minute {
		t.Errorf("max: got %v, want 5m exactly", h.Max())
	}
	if got := h.Quantile(0.99); got < time.Minute || got > 5*time.Minute {
		t.Errorf("p99 of a value beyond the range: got %v, want within [1m, 5m]", got)
	}
}

func TestMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var all, a, b Histogram
	for i := range 50000 {
		v := time.Duration(rng.ExpFloat64() * float64(time.Millisecond))
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	var merged Histogram
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(&Histogram{}) // an empty one changes nothing
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() || merged.Mean() != all.Mean() {
		t.Errorf("merged: count %d min %v max %v mean %v; want %d %v %v %v",
			merged.Count(), merged.Min(), merged.Max(), merged.Mean(), all.Count(), all.Min(), all.Max(), all.Mean())
	}
	for i := range all.counts {
		if merged.counts[i].Load() != all.counts[i].Load() {
			t.Fatalf("bucket %d: merged %d, want %d", i, merged.counts[i].Load(), all.counts[i].Load())
		}
	}
}

func TestSince(t *testing.T) {
	var h Histogram
	for range 1000 {
		h.Record(time.Second)
	}
	var snap Histogram
	snap.Merge(&h)
	for range 100 {
		h.Record(time.Millisecond)
	}
	d := h.Since(&snap)
	near := func(got time.Duration) bool {
		return math.Abs(float64(got-time.Millisecond)) <= precision*float64(time.Millisecond)
	}
	if d.Count() != 100 || !near(d.Quantile(0.5)) || !near(d.Quantile(0.99)) {
		t.Errorf("interval: count %d p50 %v p99 %v, want 100, 1ms, 1ms", d.Count(), d.Quantile(0.5), d.Quantile(0.99))
	}
	if d.Mean() != time.Millisecond {
		t.Errorf("interval mean: got %v, want 1ms", d.Mean())
	}
}

// TestConcurrentRecordAndMerge records from several goroutines while
// another merges; under the race detector it checks the lock-free
// access, and at the end nothing is lost.
func TestConcurrentRecordAndMerge(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	const writers, each = 4, 20000
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h.Record(time.Duration(w*each+i) * time.Microsecond)
			}
		})
	}
	stop := make(chan struct{})
	reader := make(chan struct{})
	go func() {
		defer close(reader)
		for {
			select {
			case <-stop:
				return
			default:
			}
			var m Histogram
			m.Merge(&h)
			_ = m.Quantile(0.99)
		}
	}()
	wg.Wait()
	close(stop)
	<-reader
	if h.Count() != writers*each || h.Min() != 0 || h.Max() != (writers*each-1)*time.Microsecond {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i&0xfffff) * time.Microsecond)
	}
}
